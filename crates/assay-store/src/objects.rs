//! Object storage (S3 and S3-compatible servers, Google Cloud Storage, Azure Blob Storage)
//! through `object_store`, for callers that are not async: a [`Bucket`] is a prefix in a bucket
//! with its client and a small runtime of its own, so any thread may wait on it.
//!
//! Credentials and endpoints come from the environment, as each cloud's own tools read them
//! (`AWS_*`, `GOOGLE_*`, `AZURE_*`). A request that fails is retried for at most
//! [`RETRY_FOR`], so that a store that is gone or hung is reported in seconds, not minutes.
//!
//! A [`Bucket`] also keeps a ledger's files ([`assay_ledger::files::Files`]): every object is
//! written whole by one PUT, so a reader sees an object complete or not at all.

use std::sync::Arc;
use std::time::Duration;

use assay_ledger::files::Files;
use assay_ledger::store::LogError;
use futures_util::TryStreamExt;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};

/// How long a failing request is retried before the error is returned.
pub const RETRY_FOR: Duration = Duration::from_secs(20);

/// Whether `location` is a URL (`scheme://…`) rather than a local path; [`Bucket::open`] says
/// which schemes are object storage.
pub fn is_url(location: &str) -> bool {
    location
        .split_once("://")
        .is_some_and(|(scheme, _)| !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// The files of the log at `location`: a directory, or a prefix on object storage.
pub fn log_files(location: &std::path::Path) -> Result<Arc<dyn Files>, String> {
    let text = location.to_string_lossy();
    if is_url(&text) {
        Ok(Arc::new(Bucket::open(&text)?))
    } else {
        Ok(Arc::new(assay_ledger::files::Dir::new(location)))
    }
}

/// The client of the bucket a URL names (`s3://bucket/…`, `gs://…`, `az://…`), from the
/// environment, with retries bounded to [`RETRY_FOR`].
pub fn client(url: &str) -> Result<Arc<dyn ObjectStore>, String> {
    let bad = |e: &dyn std::fmt::Display| format!("{url}: {e}");
    let parsed = url::Url::parse(url).map_err(|e| bad(&e))?;
    let retry = RetryConfig { max_retries: 4, retry_timeout: RETRY_FOR, ..RetryConfig::default() };
    Ok(match parsed.scheme() {
        "s3" | "s3a" => Arc::new(
            object_store::aws::AmazonS3Builder::from_env()
                .with_url(url)
                .with_retry(retry)
                .build()
                .map_err(|e| bad(&e))?,
        ),
        "gs" => Arc::new(
            object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(url)
                .with_retry(retry)
                .build()
                .map_err(|e| bad(&e))?,
        ),
        "az" | "azure" | "abfs" | "abfss" => Arc::new(
            object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(url)
                .with_retry(retry)
                .build()
                .map_err(|e| bad(&e))?,
        ),
        other => return Err(bad(&format!("{other}:// is not a storage assay knows (s3, gs, az)"))),
    })
}

/// A prefix in a bucket.
#[derive(Clone)]
pub struct Bucket {
    /// `s3://bucket/prefix`, without a trailing slash.
    url: String,
    /// `s3://bucket`, as DataFusion registers stores.
    root: url::Url,
    store: Arc<dyn ObjectStore>,
    /// `prefix` in the bucket.
    prefix: Key,
    rt: Arc<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

impl Bucket {
    /// The client of a bucket URL (`s3://bucket/prefix`, `gs://…`, `az://…`), from the
    /// environment.
    pub fn open(url: &str) -> Result<Bucket, String> {
        let bad = |e: &dyn std::fmt::Display| format!("{url}: {e}");
        let parsed = url::Url::parse(url).map_err(|e| bad(&e))?;
        let store = client(url)?;
        let root = url::Url::parse(&format!("{}://{}", parsed.scheme(), parsed.host_str().unwrap_or("")))
            .map_err(|e| bad(&e))?;
        let prefix = Key::from(parsed.path().trim_matches('/'));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("assay-object-store")
            .enable_all()
            .build()
            .map_err(|e| bad(&e))?;
        Ok(Bucket { url: url.trim_end_matches('/').to_string(), root, store, prefix, rt: Arc::new(rt) })
    }

    /// The same bucket, `rel` deeper.
    pub fn sub(&self, rel: &str) -> Bucket {
        Bucket { url: format!("{}/{}", self.url, rel.trim_matches('/')), prefix: self.key(rel), ..self.clone() }
    }

    /// `s3://bucket/prefix`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `s3://bucket`: where DataFusion looks the store up.
    pub fn root(&self) -> &url::Url {
        &self.root
    }

    /// The client.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }

    /// The prefix in the bucket.
    pub fn prefix(&self) -> &Key {
        &self.prefix
    }

    /// The key of `rel` (`a/b/c`) under the prefix.
    pub fn key(&self, rel: &str) -> Key {
        rel.split('/').filter(|p| !p.is_empty()).fold(self.prefix.clone(), |k, part| k.join(part))
    }

    /// Runs `work` on the bucket's runtime and waits for it, from any thread that is not one
    /// of that runtime's.
    pub fn run<T: Send + 'static, E: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = Result<T, E>> + Send + 'static,
        stopped: impl FnOnce() -> E,
    ) -> Result<T, E> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.rt.spawn(async move {
            let _ = tx.send(work.await);
        });
        rx.recv().unwrap_or_else(|_| Err(stopped()))
    }

    /// Reads a whole object; `None` when there is none.
    pub fn get(&self, rel: &str) -> Result<Option<Vec<u8>>, String> {
        let (store, key, name) = (self.store(), self.key(rel), self.name(rel));
        self.run(
            async move {
                match store.get(&key).await {
                    Ok(got) => got.bytes().await.map(|b| Some(b.to_vec())).map_err(|e| format!("reading {name}: {e}")),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(format!("reading {name}: {e}")),
                }
            },
            || self.stopped(),
        )
    }

    /// Writes objects, each by one PUT, several at a time; returns once every one is stored.
    pub fn put_all(&self, objects: &[(String, Vec<u8>)]) -> Result<(), String> {
        let work: Vec<(Key, String, PutPayload)> = objects
            .iter()
            .map(|(rel, bytes)| (self.key(rel), self.name(rel), PutPayload::from(bytes.clone())))
            .collect();
        let store = self.store();
        self.run(
            async move {
                futures_util::stream::iter(work.into_iter().map(Ok::<_, String>))
                    .try_for_each_concurrent(16, |(key, name, payload)| {
                        let store = Arc::clone(&store);
                        async move {
                            store.put(&key, payload).await.map(|_| ()).map_err(|e| format!("writing {name}: {e}"))
                        }
                    })
                    .await
            },
            || self.stopped(),
        )
    }

    /// Deletes objects; one that is not there is not an error.
    pub fn delete_all(&self, rels: &[String]) -> Result<(), String> {
        let work: Vec<(Key, String)> = rels.iter().map(|rel| (self.key(rel), self.name(rel))).collect();
        let store = self.store();
        self.run(
            async move {
                for (key, name) in work {
                    match store.delete(&key).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                        Err(e) => return Err(format!("deleting {name}: {e}")),
                    }
                }
                Ok(())
            },
            || self.stopped(),
        )
    }

    /// The names directly under `rel` (objects and "directories").
    pub fn names(&self, rel: &str) -> Result<Vec<String>, String> {
        let (store, key, name) = (self.store(), self.key(rel), self.name(rel));
        self.run(
            async move {
                let listed = store.list_with_delimiter(Some(&key)).await.map_err(|e| format!("listing {name}: {e}"))?;
                Ok(listed
                    .objects
                    .iter()
                    .map(|o| &o.location)
                    .chain(listed.common_prefixes.iter())
                    .filter_map(|k| k.filename().map(str::to_string))
                    .collect())
            },
            || self.stopped(),
        )
    }

    /// Every object under the prefix, however deep.
    pub fn list_all(&self) -> Result<Vec<object_store::ObjectMeta>, String> {
        let (store, key, url) = (self.store(), self.prefix.clone(), self.url.clone());
        self.run(
            async move { store.list(Some(&key)).try_collect().await.map_err(|e| format!("listing {url}: {e}")) },
            || self.stopped(),
        )
    }

    /// `s3://bucket/prefix/rel`.
    pub fn name(&self, rel: &str) -> String {
        format!("{}/{rel}", self.url)
    }

    fn stopped(&self) -> String {
        format!("{}: the object store's runtime stopped", self.url)
    }
}

fn log_error(e: String) -> LogError {
    LogError::Store(e)
}

/// A ledger on object storage. There is no lock: the one writer is chosen elsewhere (the shared
/// ledger's sequencer, through PostgreSQL).
impl Files for Bucket {
    fn location(&self) -> String {
        self.url.clone()
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, LogError> {
        self.get(path).map_err(log_error)
    }

    fn write(&self, files: &[(String, Vec<u8>)]) -> Result<(), LogError> {
        self.put_all(files).map_err(log_error)
    }

    fn replace(&self, path: &str, bytes: &[u8]) -> Result<(), LogError> {
        // One PUT replaces an object atomically.
        self.put_all(&[(path.to_string(), bytes.to_vec())]).map_err(log_error)
    }

    fn remove(&self, paths: &[String]) -> Result<(), LogError> {
        self.delete_all(paths).map_err(log_error)
    }

    fn list(&self, dir: &str) -> Result<Vec<String>, LogError> {
        self.names(dir).map_err(log_error)
    }

    fn is_empty(&self) -> Result<bool, LogError> {
        let (store, key, url) = (self.store(), self.prefix.clone(), self.url.clone());
        self.run(
            async move {
                let mut listing = store.list(Some(&key));
                listing.try_next().await.map(|first| first.is_none()).map_err(|e| format!("listing {url}: {e}"))
            },
            || self.stopped(),
        )
        .map_err(log_error)
    }
}
