//! The C2SP tlog-tiles layout (sans-IO): which hash tiles and entry bundles a tree of a given
//! size has, their paths, and their bytes.
//!
//! A tile holds up to 256 hashes. A level-0 tile holds leaf hashes; a level-L tile holds the
//! roots of complete subtrees of 256^L leaves. A tile that is not yet full is *partial*:
//! `tile/<L>/<N>.p/<W>` with its width W. Entry bundles hold the entries of a level-0 tile, each
//! as a big-endian 16-bit length and the bytes: `tile/entries/<N>[.p/<W>]`.

use crate::merkle::{Hash, root};

/// Hashes per tile, and entries per bundle.
pub const WIDTH: u64 = 256;

/// A tile index as a path: groups of three digits, all but the last prefixed with `x`
/// (`000`, `x001/234`).
pub fn encode_index(n: u64) -> String {
    let digits = n.to_string();
    let padded = format!("{}{digits}", "0".repeat((3 - digits.len() % 3) % 3));
    let groups: Vec<&str> = (0..padded.len()).step_by(3).map(|i| &padded[i..i + 3]).collect();
    let last = groups.len() - 1;
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| if i < last { format!("x{g}") } else { (*g).to_string() })
        .collect::<Vec<_>>()
        .join("/")
}

fn suffix(width: u64) -> String {
    if width == WIDTH { String::new() } else { format!(".p/{width}") }
}

/// The path of hash tile `index` at `level` holding `width` hashes.
pub fn tile_path(level: u8, index: u64, width: u64) -> String {
    format!("tile/{level}/{}{}", encode_index(index), suffix(width))
}

/// The path of entry bundle `index` holding `width` entries.
pub fn bundle_path(index: u64, width: u64) -> String {
    format!("tile/entries/{}{}", encode_index(index), suffix(width))
}

/// What a tlog-tiles path names: a hash tile's level (`None` for an entry bundle), its index
/// and its width. `None` for anything that is not a tile or bundle path in its one spelling.
pub fn parse_path(path: &str) -> Option<(Option<u8>, u64, u64)> {
    let rest = path.strip_prefix("tile/")?;
    let (kind, rest) = rest.split_once('/')?;
    let level = match kind {
        "entries" => None,
        _ => Some(kind.parse::<u8>().ok()?),
    };
    let (digits, width) = match rest.split_once(".p/") {
        Some((digits, width)) => (digits, width.parse::<u64>().ok().filter(|w| (1..WIDTH).contains(w))?),
        None => (rest, WIDTH),
    };
    let mut index = 0u64;
    for group in digits.split('/') {
        let group = group.strip_prefix('x').unwrap_or(group);
        if group.len() != 3 || !group.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        index = index.checked_mul(1000)?.checked_add(group.parse::<u64>().ok()?)?;
    }
    let canonical = match level {
        Some(level) => tile_path(level, index, width),
        None => bundle_path(index, width),
    };
    (canonical == path).then_some((level, index, width))
}

/// The size a tree must have for it to hold the tile at `level`, `index`, `width` (level 0 for
/// an entry bundle): the end of the leaves it covers. `None` when no tree that large can be.
pub fn needs_size(level: u8, index: u64, width: u64) -> Option<u64> {
    index.checked_mul(WIDTH)?.checked_add(width)?.checked_mul(WIDTH.checked_pow(u32::from(level))?)
}

/// The right edge of a tree of `size`: for each level, the last tile (index, width), full or
/// partial. Tiles to its left are full and do not change as the tree grows.
pub fn edge(size: u64) -> Vec<(u8, u64, u64)> {
    let mut out = Vec::new();
    let mut count = size; // complete subtrees of 256^level leaves
    let mut level = 0u8;
    while count > 0 {
        let (index, width) =
            if count.is_multiple_of(WIDTH) { (count / WIDTH - 1, WIDTH) } else { (count / WIDTH, count % WIDTH) };
        out.push((level, index, width));
        count /= WIDTH;
        level += 1;
    }
    out
}

/// The path of every hash tile and entry bundle of a tree of `size`, as a tlog-tiles client
/// fetches them: the full tiles of each level, and the partial tile at its right edge.
pub fn paths(size: u64) -> Vec<String> {
    let mut out = Vec::new();
    let mut count = size; // hashes stored at this level
    let mut level = 0u8;
    while count > 0 {
        let (full, partial) = (count / WIDTH, count % WIDTH);
        let widths = (0..full).map(|i| (i, WIDTH)).chain((partial > 0).then_some((full, partial)));
        for (index, width) in widths {
            out.push(tile_path(level, index, width));
            if level == 0 {
                out.push(bundle_path(index, width));
            }
        }
        count = full;
        level += 1;
    }
    out
}

/// The bytes of hash tile `index` at `level` with `width` hashes, from the leaf hashes.
pub fn tile_bytes(level: u8, index: u64, width: u64, leaves: &[Hash]) -> Vec<u8> {
    let span = WIDTH.pow(u32::from(level)) as usize;
    let mut out = Vec::with_capacity(width as usize * 32);
    for j in 0..width as usize {
        let start = (index as usize * WIDTH as usize + j) * span;
        out.extend_from_slice(&root(&leaves[start..start + span]));
    }
    out
}

/// The bytes of an entry bundle.
pub fn bundle_bytes<E: AsRef<[u8]>>(entries: &[E]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let e = e.as_ref();
        out.extend_from_slice(&(e.len() as u16).to_be_bytes());
        out.extend_from_slice(e);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_parse_back_and_say_what_tree_holds_them() {
        for (level, index, width) in [(0u8, 0u64, 256u64), (0, 1_234_067, 13), (3, 7, 256), (1, 1000, 1)] {
            assert_eq!(super::parse_path(&super::tile_path(level, index, width)), Some((Some(level), index, width)));
            assert_eq!(super::parse_path(&super::bundle_path(index, width)), Some((None, index, width)));
        }
        for bad in [
            "tile/0/1",
            "tile/0/0001",
            "tile/0/x000",
            "tile/0/001.p/256",
            "tile/0/001.p/0",
            "tile/0/x0/001",
            "tile/entries/001.p/",
            "checkpoint",
            "tile/e/000",
            "tile/0/000/",
        ] {
            assert_eq!(super::parse_path(bad), None, "{bad}");
        }
        assert_eq!(super::needs_size(0, 0, 5), Some(5));
        assert_eq!(super::needs_size(0, 2, 256), Some(768));
        assert_eq!(super::needs_size(1, 0, 3), Some(768));
        assert_eq!(super::needs_size(2, 1, 256), Some(2 * 256 * 256 * 256));
        assert_eq!(super::needs_size(8, 0, 1), None);
    }

    #[test]
    fn paths_cover_full_and_partial_tiles_at_every_level() {
        assert!(paths(0).is_empty());
        assert_eq!(paths(3), ["tile/0/000.p/3", "tile/entries/000.p/3"]);
        let p = paths(256 * 256 + 513);
        assert!(p.contains(&"tile/0/255".to_string()) && p.contains(&"tile/entries/255".to_string()));
        assert!(p.contains(&"tile/0/258.p/1".to_string()) && p.contains(&"tile/entries/258.p/1".to_string()));
        assert!(p.contains(&"tile/1/000".to_string()) && p.contains(&"tile/1/001.p/2".to_string()));
        assert!(p.contains(&"tile/2/000.p/1".to_string()));
        assert_eq!(p.len(), 2 * 259 + 2 + 1);
    }

    use super::*;

    #[test]
    fn paths_follow_the_spec() {
        assert_eq!(encode_index(0), "000");
        assert_eq!(encode_index(7), "007");
        assert_eq!(encode_index(1234), "x001/234");
        assert_eq!(encode_index(1_234_067), "x001/x234/067");
        assert_eq!(tile_path(0, 1234, 256), "tile/0/x001/234");
        assert_eq!(tile_path(1, 0, 3), "tile/1/000.p/3");
        assert_eq!(bundle_path(5, 17), "tile/entries/005.p/17");
    }

    #[test]
    fn the_edge_of_a_tree() {
        assert_eq!(edge(0), vec![]);
        assert_eq!(edge(15), vec![(0, 0, 15)]);
        assert_eq!(edge(256), vec![(0, 0, 256), (1, 0, 1)]);
        assert_eq!(edge(70_000), vec![(0, 273, 112), (1, 1, 17), (2, 0, 1)]);
    }
}
