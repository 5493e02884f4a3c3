//! The tiles and bundles `/ledger/…` served lately (see `ledger_http`): once a published
//! checkpoint covers one, its bytes never change.

use std::sync::Mutex;

use axum::body::Bytes;

/// The most bytes of tiles and bundles kept in memory.
const CACHE_BYTES: usize = 64 << 20;

/// Tiles and bundles served lately, the least recently served dropped first beyond
/// [`CACHE_BYTES`], and the largest size a checkpoint read here had.
pub(crate) struct TileCache(Mutex<Cached>);

struct Cached {
    files: lru::LruCache<String, Bytes>,
    bytes: usize,
    published: u64,
}

impl TileCache {
    pub(crate) fn new() -> TileCache {
        TileCache(Mutex::new(Cached { files: lru::LruCache::unbounded(), bytes: 0, published: 0 }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn published(&self) -> u64 {
        self.lock().published
    }

    pub(crate) fn saw(&self, size: u64) {
        let mut cached = self.lock();
        cached.published = cached.published.max(size);
    }

    pub(crate) fn get(&self, path: &str) -> Option<Bytes> {
        self.lock().files.get(path).cloned()
    }

    pub(crate) fn put(&self, path: &str, bytes: Bytes) {
        if bytes.len() > CACHE_BYTES / 8 {
            return;
        }
        let mut cached = self.lock();
        cached.bytes += bytes.len();
        if let Some(old) = cached.files.put(path.to_string(), bytes) {
            cached.bytes -= old.len();
        }
        while cached.bytes > CACHE_BYTES {
            match cached.files.pop_lru() {
                Some((_, dropped)) => cached.bytes -= dropped.len(),
                None => break,
            }
        }
    }
}
