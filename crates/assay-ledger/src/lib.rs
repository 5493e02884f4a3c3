//! The verifiable ledger: a Merkle transparency log (RFC 6962 / RFC 9162 tree hashing, C2SP
//! tlog formats) that stores opaque entries and must not know what they mean.
//!
//! - [`merkle`] is the sans-IO core: leaf and node hashes, tree roots, and inclusion and
//!   consistency proofs, generated and verified, for any tree size.

pub mod merkle;
