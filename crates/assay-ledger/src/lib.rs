//! The verifiable ledger: a Merkle transparency log (RFC 6962 / RFC 9162 tree hashing, C2SP
//! tlog formats) that stores opaque entries and must not know what they mean.
//!
//! - [`merkle`] is the sans-IO core: leaf and node hashes, tree roots, and inclusion and
//!   consistency proofs, generated and verified, for any tree size.
//! - [`note`] reads and writes C2SP signed notes and their Ed25519 keys; [`checkpoint`] is the
//!   C2SP tlog-checkpoint body; [`tiles`] the C2SP tlog-tiles paths and bytes.

pub mod appender;
pub mod bundle;
pub mod checkpoint;
pub mod files;
pub mod merkle;
pub mod note;
pub mod reader;
pub mod receipt;
pub mod store;
pub mod tiles;
pub mod tree;
pub mod verify;
