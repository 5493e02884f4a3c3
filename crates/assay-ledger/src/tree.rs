//! The right edge of a growing tree (sans-IO): what a writer must hold to append leaves, emit
//! tiles and compute the root without the rest of the tree.
//!
//! It keeps the *frontier* (the roots of the perfect subtrees that make up the tree, largest
//! first) and, for each tile level, the hashes of that level's last, unfinished tile. Both are
//! rebuilt from the edge tiles on disk when a log is reopened.

use crate::merkle::{Hash, empty_root, node_hash, root};
use crate::tiles::WIDTH;

/// Bits of tree height per tile level.
const TILE_HEIGHT: u32 = 8;

/// The right edge of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    size: u64,
    /// Perfect subtrees left to right: (height, root).
    frontier: Vec<(u32, Hash)>,
    /// For each level, the hashes of its unfinished tile (empty when the last tile is full).
    levels: Vec<Vec<Hash>>,
}

impl Default for Edge {
    fn default() -> Self {
        Edge::empty()
    }
}

impl Edge {
    /// The edge of the empty tree.
    pub fn empty() -> Edge {
        Edge { size: 0, frontier: Vec::new(), levels: Vec::new() }
    }

    /// Rebuilds the edge of a tree of `size` from its edge tiles: `tiles[L]` holds the hashes of
    /// the last tile at level L, as [`crate::tiles::edge`] lists them (full or partial).
    pub fn from_tiles(size: u64, tiles: &[Vec<Hash>]) -> Result<Edge, String> {
        let want = crate::tiles::edge(size);
        if tiles.len() != want.len() {
            return Err(format!("a tree of {size} has {} tile levels, got {}", want.len(), tiles.len()));
        }
        for ((level, _, width), tile) in want.iter().zip(tiles) {
            if tile.len() as u64 != *width {
                return Err(format!("the level-{level} edge tile needs {width} hashes, got {}", tile.len()));
            }
        }
        let mut frontier = Vec::new();
        let mut start = 0u64;
        for height in (0..64u32).rev() {
            if size & (1u64 << height) == 0 {
                continue;
            }
            let level = (height / TILE_HEIGHT) as usize;
            let span = height % TILE_HEIGHT;
            let position = ((start >> (TILE_HEIGHT * level as u32)) % WIDTH) as usize;
            let hashes = &tiles[level][position..position + (1usize << span)];
            frontier.push((height, root(hashes)));
            start += 1u64 << height;
        }
        let levels = tiles.iter().map(|t| if t.len() as u64 == WIDTH { Vec::new() } else { t.clone() }).collect();
        Ok(Edge { size, frontier, levels })
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The hashes of the unfinished tile at `level` (empty when there is none).
    pub fn partial(&self, level: usize) -> &[Hash] {
        self.levels.get(level).map_or(&[], Vec::as_slice)
    }

    /// The number of tile levels in use.
    pub fn depth(&self) -> usize {
        self.levels.len()
    }

    /// Appends a leaf hash. `full(level, index, hashes)` is called for each tile this completes.
    pub fn push(&mut self, leaf: Hash, full: &mut dyn FnMut(u8, u64, &[Hash])) {
        self.size += 1;
        self.add(0, leaf, full);
        self.frontier.push((0, leaf));
        while self.frontier.len() >= 2 {
            let (h2, right) = self.frontier[self.frontier.len() - 1];
            let (h1, left) = self.frontier[self.frontier.len() - 2];
            if h1 != h2 {
                break;
            }
            self.frontier.truncate(self.frontier.len() - 2);
            let merged = node_hash(&left, &right);
            let height = h1 + 1;
            self.frontier.push((height, merged));
            if height.is_multiple_of(TILE_HEIGHT) {
                self.add((height / TILE_HEIGHT) as usize, merged, full);
            }
        }
    }

    fn add(&mut self, level: usize, hash: Hash, full: &mut dyn FnMut(u8, u64, &[Hash])) {
        if self.levels.len() <= level {
            self.levels.resize(level + 1, Vec::new());
        }
        self.levels[level].push(hash);
        if self.levels[level].len() as u64 == WIDTH {
            // The number of level-L hashes so far, less this tile's, over the tile width.
            let count = self.size >> (TILE_HEIGHT * level as u32);
            full(level as u8, count / WIDTH - 1, &self.levels[level]);
            self.levels[level].clear();
        }
    }

    /// The root hash of the tree.
    pub fn root(&self) -> Hash {
        let mut iter = self.frontier.iter().rev();
        let Some(&(_, mut acc)) = iter.next() else { return empty_root() };
        for (_, left) in iter {
            acc = node_hash(left, &acc);
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::leaf_hash;
    use crate::tiles::{edge, tile_bytes};

    fn hashes(bytes: &[u8]) -> Vec<Hash> {
        bytes.chunks(32).map(|c| c.try_into().unwrap_or([0; 32])).collect()
    }

    #[test]
    fn pushing_matches_the_tree_and_its_tiles() {
        let mut e = Edge::empty();
        let mut leaves = Vec::new();
        let mut tiles = std::collections::BTreeMap::new();
        for i in 0..70_000u64 {
            let leaf = leaf_hash(&i.to_be_bytes());
            leaves.push(leaf);
            e.push(leaf, &mut |level, index, hashes| {
                tiles.insert((level, index), hashes.to_vec());
            });
            if [1, 2, 255, 256, 257, 65_535, 65_536, 65_537, 69_999].contains(&(i + 1)) {
                assert_eq!(e.root(), root(&leaves), "size {}", i + 1);
                let edge_tiles: Vec<Vec<Hash>> =
                    edge(i + 1).iter().map(|&(l, n, w)| hashes(&tile_bytes(l, n, w, &leaves))).collect();
                let rebuilt = Edge::from_tiles(i + 1, &edge_tiles);
                assert_eq!(rebuilt.as_ref(), Ok(&e), "size {}", i + 1);
            }
        }
        assert_eq!(tiles.len(), 273 + 1);
        assert_eq!(tiles[&(1, 0)], hashes(&tile_bytes(1, 0, 256, &leaves)));
        assert_eq!(tiles[&(0, 272)], hashes(&tile_bytes(0, 272, 256, &leaves)));
    }
}
