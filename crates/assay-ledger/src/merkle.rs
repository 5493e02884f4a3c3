//! Merkle tree hashing and proofs as in RFC 9162 (which RFC 6962 first defined): the leaf hash
//! is SHA-256(0x00 ‖ entry), an interior node's SHA-256(0x01 ‖ left ‖ right); a tree of `n`
//! leaves splits at the largest power of two below `n`.
//!
//! Proof generation takes the leaf hashes; verification takes only hashes and sizes, so that an
//! auditor can check a proof with nothing but the proof, a root and a size.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The index is not inside the tree.
    #[error("leaf index {index} is not inside a tree of size {size}")]
    IndexOutOfRange {
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The sizes of a consistency proof are not ordered.
    #[error("tree size {first} is larger than tree size {second}")]
    SizesOutOfOrder {
        /// The older size.
        first: u64,
        /// The newer size.
        second: u64,
    },
    /// A consistency proof from the empty tree proves nothing.
    #[error("consistency with the empty tree proves nothing")]
    EmptyOldTree,
    /// The proof has the wrong number of hashes for the sizes.
    #[error("the proof has {got} hashes; these sizes need {want}")]
    WrongLength {
        /// Hashes in the proof.
        got: usize,
        /// Hashes the sizes call for.
        want: usize,
    },
    /// The proof computes another root.
    #[error("the proof leads to a different root")]
    RootMismatch,
    /// `start .. end` is not a subtree: empty, past the tree, or not aligned to its size.
    #[error("leaves {start}..{end} are not a subtree")]
    InvalidSubtree {
        /// The first leaf.
        start: u64,
        /// One past the last.
        end: u64,
    },
}

/// The hash of a leaf: SHA-256(0x00 ‖ entry).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

/// The hash of an interior node: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The hash of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two smaller than `n` (for `n > 1`): where a tree of `n` leaves splits.
fn split(n: u64) -> u64 {
    debug_assert!(n > 1);
    1 << (63 - (n - 1).leading_zeros())
}

/// The root of the tree whose leaf hashes are `leaves` (MTH).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n as u64) as usize;
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The inclusion proof of leaf `index` in the tree of `leaves` (PATH in RFC 9162), nearest
/// sibling first.
pub fn inclusion_proof(index: u64, leaves: &[Hash]) -> Result<Vec<Hash>, ProofError> {
    let size = leaves.len() as u64;
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut proof = Vec::new();
    path(index as usize, leaves, &mut proof);
    Ok(proof)
}

fn path(m: usize, leaves: &[Hash], out: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n as u64) as usize;
    if m < k {
        path(m, &leaves[..k], out);
        out.push(root(&leaves[k..]));
    } else {
        path(m - k, &leaves[k..], out);
        out.push(root(&leaves[..k]));
    }
}

/// The inclusion proof of leaf `index` in a tree of `size` leaves whose perfect subtrees come
/// from `subtree(start, height)` (the hash of leaves `start .. start + 2^height`): how a proof
/// is built from stored tiles without holding every leaf.
pub fn inclusion_proof_from<E>(
    index: u64,
    size: u64,
    subtree: &mut dyn FnMut(u64, u32) -> Result<Hash, E>,
) -> Result<Result<Vec<Hash>, ProofError>, E> {
    if index >= size {
        return Ok(Err(ProofError::IndexOutOfRange { index, size }));
    }
    let mut proof = Vec::new();
    let (mut start, mut end, mut m) = (0u64, size, index);
    // Walk down from the root, collecting the sibling of each step, then reverse (nearest first).
    while end - start > 1 {
        let k = split(end - start);
        if m < k {
            proof.push(range_root(start + k, end, subtree)?);
            end = start + k;
        } else {
            proof.push(range_root(start, start + k, subtree)?);
            start += k;
            m -= k;
        }
    }
    proof.reverse();
    Ok(Ok(proof))
}

/// The root of leaves `start .. end`, where `start` is a multiple of the largest power of two
/// not above `end - start` (true of every range the proofs ask for).
pub fn range_root<E>(start: u64, end: u64, subtree: &mut dyn FnMut(u64, u32) -> Result<Hash, E>) -> Result<Hash, E> {
    let n = end - start;
    if n.is_power_of_two() {
        return subtree(start, n.trailing_zeros());
    }
    let k = split(n);
    let left = range_root(start, start + k, subtree)?;
    let right = range_root(start + k, end, subtree)?;
    Ok(node_hash(&left, &right))
}

/// The consistency proof between the tree of the first `old_size` leaves and the tree of all
/// `leaves` (PROOF in RFC 9162).
pub fn consistency_proof(old_size: u64, leaves: &[Hash]) -> Result<Vec<Hash>, ProofError> {
    let size = leaves.len() as u64;
    if old_size > size {
        return Err(ProofError::SizesOutOfOrder { first: old_size, second: size });
    }
    let mut proof = Vec::new();
    if old_size > 0 && old_size < size {
        subproof(old_size as usize, leaves, true, &mut proof);
    }
    Ok(proof)
}

fn subproof(m: usize, leaves: &[Hash], complete: bool, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !complete {
            out.push(root(leaves));
        }
        return;
    }
    let k = split(n as u64) as usize;
    if m <= k {
        subproof(m, &leaves[..k], complete, out);
        out.push(root(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, out);
        out.push(root(&leaves[..k]));
    }
}

/// Verifies that `leaf` is at `index` in the tree of `size` leaves with root `root`
/// (RFC 9162, section 2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &[u8]) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return Err(ProofError::WrongLength { got: proof.len(), want: inclusion_length(index, size) });
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::WrongLength { got: proof.len(), want: inclusion_length(index, size) });
    }
    if r.as_slice() == root { Ok(()) } else { Err(ProofError::RootMismatch) }
}

/// The number of hashes in an inclusion proof of `index` in a tree of `size`: the levels where
/// the paths to `index` and to the last leaf differ (siblings inside the perfect subtree), plus
/// one for each perfect subtree to the left of it above them.
pub fn inclusion_length(index: u64, size: u64) -> usize {
    if index >= size {
        return 0;
    }
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// Verifies that the tree of `size1` leaves with `root1` is a prefix of the tree of `size2`
/// leaves with `root2` (RFC 9162, section 2.1.4.2).
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &[u8],
    root2: &[u8],
) -> Result<(), ProofError> {
    if size1 > size2 {
        return Err(ProofError::SizesOutOfOrder { first: size1, second: size2 });
    }
    if size1 == 0 {
        // Every tree extends the empty tree: there is nothing to prove, and a verifier that
        // accepted it would accept anything.
        return Err(ProofError::EmptyOldTree);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength { got: proof.len(), want: 0 });
        }
        return if root1 == root2 { Ok(()) } else { Err(ProofError::RootMismatch) };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength { got: 0, want: 1 });
    }
    // When size1 is a power of two, root1 itself starts the path.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        // A root that is not a hash cannot start a path, nor match one.
        path.push(root1.try_into().map_err(|_| ProofError::RootMismatch)?);
    }
    path.extend_from_slice(proof);
    let (mut f_n, mut s_n) = (size1 - 1, size2 - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s_n == 0 {
            return Err(ProofError::WrongLength { got: proof.len(), want: proof.len() - 1 });
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(ProofError::WrongLength { got: proof.len(), want: proof.len() + 1 });
    }
    if fr.as_slice() == root1 && sr.as_slice() == root2 { Ok(()) } else { Err(ProofError::RootMismatch) }
}

/// Whether leaves `start .. end` form a subtree (as Merkle Tree Certificates define it): not
/// empty, and `start` a multiple of the smallest power of two not below `end - start`, so the
/// range is one node of every tree that contains it, complete or on its right edge.
pub fn is_subtree(start: u64, end: u64) -> bool {
    start < end && (end - start).checked_next_power_of_two().is_some_and(|w| start.is_multiple_of(w))
}

/// Verifies that `leaf` is at `index` inside the subtree `start .. end` whose hash is `root`:
/// an ordinary inclusion proof inside the subtree's own tree.
pub fn verify_subtree_inclusion(
    index: u64,
    start: u64,
    end: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &[u8],
) -> Result<(), ProofError> {
    if !is_subtree(start, end) {
        return Err(ProofError::InvalidSubtree { start, end });
    }
    if index < start || index >= end {
        return Err(ProofError::IndexOutOfRange { index, size: end });
    }
    verify_inclusion(index - start, end - start, leaf, proof, root)
}

/// The proof that the subtree `start .. end` is part of the tree of all `leaves` (for
/// `start == 0`, an ordinary consistency proof): the siblings on the way down to the subtree,
/// and where the subtree is a prefix of a node, the RFC 9162 sub-proof within it.
pub fn subtree_consistency_proof(start: u64, end: u64, leaves: &[Hash]) -> Result<Vec<Hash>, ProofError> {
    let size = leaves.len() as u64;
    if !is_subtree(start, end) || end > size {
        return Err(ProofError::InvalidSubtree { start, end });
    }
    let mut out = Vec::new();
    subtree_subproof(start as usize, end as usize, leaves, true, &mut out);
    Ok(out)
}

fn subtree_subproof(start: usize, end: usize, leaves: &[Hash], known: bool, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if start == 0 && end == n {
        if !known {
            out.push(root(leaves));
        }
        return;
    }
    let k = split(n as u64) as usize;
    if end <= k {
        subtree_subproof(start, end, &leaves[..k], known, out);
        out.push(root(&leaves[k..]));
    } else if start >= k {
        subtree_subproof(start - k, end - k, &leaves[k..], known, out);
        out.push(root(&leaves[..k]));
    } else {
        // Only a subtree starting at 0 straddles a split; the rest of it is no longer a whole node.
        subtree_subproof(0, end - k, &leaves[k..], false, out);
        out.push(root(&leaves[..k]));
    }
}

/// Verifies that the subtree `start .. end` with hash `root1` is part of the tree of `size`
/// leaves with `root2`. With `start == 0` this is RFC 9162 consistency, read recursively.
pub fn verify_subtree_consistency(
    start: u64,
    end: u64,
    size: u64,
    proof: &[Hash],
    root1: &[u8],
    root2: &[u8],
) -> Result<(), ProofError> {
    if start == end && end <= size {
        // The empty subtree is in every tree; its hash must be the empty tree's, with no proof.
        if !proof.is_empty() {
            return Err(ProofError::WrongLength { got: proof.len(), want: 0 });
        }
        return if root1 == empty_root() { Ok(()) } else { Err(ProofError::RootMismatch) };
    }
    if !is_subtree(start, end) || end > size {
        return Err(ProofError::InvalidSubtree { start, end });
    }
    if start == 0 && end == size {
        // The same tree: nothing to prove but that the roots agree.
        if !proof.is_empty() {
            return Err(ProofError::WrongLength { got: proof.len(), want: 0 });
        }
        return if root1 == root2 { Ok(()) } else { Err(ProofError::RootMismatch) };
    }
    let root1: Hash = root1.try_into().map_err(|_| ProofError::RootMismatch)?;
    let mut rest = proof;
    let (old, new) = walk(start, end, size, true, &root1, &mut rest)?;
    if !rest.is_empty() {
        return Err(ProofError::WrongLength { got: proof.len(), want: proof.len() - rest.len() });
    }
    if old == root1 && new.as_slice() == root2 { Ok(()) } else { Err(ProofError::RootMismatch) }
}

/// Rebuilds (subtree hash, tree hash) for the subproof of `start .. end` in a tree of `n`,
/// taking proof hashes from the end of `proof` (the outermost sibling is last).
fn walk(
    start: u64,
    end: u64,
    n: u64,
    known: bool,
    root1: &Hash,
    proof: &mut &[Hash],
) -> Result<(Hash, Hash), ProofError> {
    let mut take = || -> Result<Hash, ProofError> {
        let (last, rest) = proof.split_last().ok_or(ProofError::WrongLength { got: 0, want: 1 })?;
        *proof = rest;
        Ok(*last)
    };
    if start == 0 && end == n {
        let h = if known { *root1 } else { take()? };
        return Ok((h, h));
    }
    let k = split(n);
    let sibling = take()?;
    if end <= k {
        let (old, new) = walk(start, end, k, known, root1, proof)?;
        Ok((old, node_hash(&new, &sibling)))
    } else if start >= k {
        let (old, new) = walk(start - k, end - k, n - k, known, root1, proof)?;
        Ok((old, node_hash(&sibling, &new)))
    } else {
        let (old, new) = walk(0, end - k, n - k, false, root1, proof)?;
        Ok((node_hash(&sibling, &old), node_hash(&sibling, &new)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(format!("entry {i}").as_bytes())).collect()
    }

    #[test]
    fn known_roots() {
        // RFC 6962's empty tree and single-leaf hashes.
        assert_eq!(
            empty_root().iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            leaf_hash(b"").iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        let l = leaves(3);
        assert_eq!(root(&l), node_hash(&node_hash(&l[0], &l[1]), &l[2]));
    }

    proptest! {
        #[test]
        fn every_inclusion_proof_verifies_and_no_other(size in 1usize..70, index in 0usize..70) {
            let index = index % size;
            let l = leaves(size);
            let r = root(&l);
            let proof = inclusion_proof(index as u64, &l).unwrap_or_default();
            prop_assert_eq!(proof.len(), inclusion_length(index as u64, size as u64));
            prop_assert_eq!(verify_inclusion(index as u64, size as u64, &l[index], &proof, &r), Ok(()));
            let other = (index + 1) % size;
            if other != index {
                prop_assert!(verify_inclusion(other as u64, size as u64, &l[index], &proof, &r).is_err());
            }
            prop_assert!(verify_inclusion(index as u64, size as u64, &leaf_hash(b"forged"), &proof, &r).is_err());
        }

        #[test]
        fn subtree_consistency_proofs_verify_and_forgeries_do_not(size in 1usize..70, a in 0u64..70, len in 1u64..40) {
            let l = leaves(size);
            let width = len.next_power_of_two();
            let start = (a / width) * width;
            let end = (start + len).min(size as u64);
            prop_assume!(start < end && is_subtree(start, end));
            let proof = subtree_consistency_proof(start, end, &l).unwrap_or_default();
            let sub = root(&l[start as usize..end as usize]);
            prop_assert_eq!(verify_subtree_consistency(start, end, size as u64, &proof, &sub, &root(&l)), Ok(()));
            prop_assert!(verify_subtree_consistency(start, end, size as u64, &proof, &leaf_hash(b"x"), &root(&l)).is_err());
            if start == 0 && (end as usize) < size {
                // From the start, it is exactly RFC 9162 consistency.
                prop_assert_eq!(Ok(proof), consistency_proof(end, &l));
            }
        }

        #[test]
        fn proofs_from_subtrees_equal_proofs_from_leaves(size in 1usize..300, index in 0usize..300) {
            let index = (index % size) as u64;
            let l = leaves(size);
            let mut subtree = |start: u64, height: u32| -> Result<Hash, ()> {
                Ok(root(&l[start as usize..(start + (1u64 << height)) as usize]))
            };
            let from_tiles = inclusion_proof_from(index, size as u64, &mut subtree);
            prop_assert_eq!(from_tiles, Ok(inclusion_proof(index, &l)));
        }

        #[test]
        fn every_consistency_proof_verifies_and_no_other(size2 in 1usize..70, size1 in 0usize..70) {
            let size1 = size1 % (size2 + 1);
            let l = leaves(size2);
            let (r1, r2) = (root(&l[..size1]), root(&l));
            let proof = consistency_proof(size1 as u64, &l).unwrap_or_default();
            let want = if size1 == 0 { Err(ProofError::EmptyOldTree) } else { Ok(()) };
            prop_assert_eq!(verify_consistency(size1 as u64, size2 as u64, &proof, &r1, &r2), want);
            if size1 > 0 && size1 < size2 {
                // A fork: the same old size, another history.
                let mut forked = l.clone();
                forked[0] = leaf_hash(b"rewritten");
                let forged = root(&forked[..size1]);
                prop_assert!(verify_consistency(size1 as u64, size2 as u64, &proof, &forged, &r2).is_err());
            }
        }
    }
}
