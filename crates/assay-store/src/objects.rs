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

use assay_ledger::files::{Files, Version};
use assay_ledger::store::LogError;
use futures_util::TryStreamExt;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig, UpdateVersion};

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
    client_with(url, &[])
}

/// The client of the bucket a URL names, from the environment and then `options`, named as the
/// environment names them (`AWS_ENDPOINT`, `GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_ACCOUNT_NAME`, …).
pub fn client_with(url: &str, options: &[(&str, String)]) -> Result<Arc<dyn ObjectStore>, String> {
    use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
    use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
    use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
    let bad = |e: &dyn std::fmt::Display| format!("{url}: {e}");
    let key = |name: &str| name.to_ascii_lowercase();
    let parsed = url::Url::parse(url).map_err(|e| bad(&e))?;
    let retry = RetryConfig { max_retries: 4, retry_timeout: RETRY_FOR, ..RetryConfig::default() };
    Ok(match parsed.scheme() {
        "s3" | "s3a" => {
            let mut builder = AmazonS3Builder::from_env().with_url(url).with_retry(retry);
            for (name, value) in options {
                builder = builder.with_config(key(name).parse::<AmazonS3ConfigKey>().map_err(|e| bad(&e))?, value);
            }
            Arc::new(builder.build().map_err(|e| bad(&e))?)
        }
        "gs" => {
            let mut builder = GoogleCloudStorageBuilder::from_env().with_url(url).with_retry(retry);
            for (name, value) in options {
                builder = builder.with_config(key(name).parse::<GoogleConfigKey>().map_err(|e| bad(&e))?, value);
            }
            Arc::new(builder.build().map_err(|e| bad(&e))?)
        }
        "az" | "azure" | "abfs" | "abfss" => {
            let mut builder = MicrosoftAzureBuilder::from_env().with_url(url).with_retry(retry);
            for (name, value) in options {
                builder = builder.with_config(key(name).parse::<AzureConfigKey>().map_err(|e| bad(&e))?, value);
            }
            Arc::new(builder.build().map_err(|e| bad(&e))?)
        }
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
        Bucket::open_with(url, &[])
    }

    /// The client of a bucket URL, from the environment and then `options` (see
    /// [`client_with`]).
    pub fn open_with(url: &str, options: &[(&str, String)]) -> Result<Bucket, String> {
        let bad = |e: &dyn std::fmt::Display| format!("{url}: {e}");
        let parsed = url::Url::parse(url).map_err(|e| bad(&e))?;
        let store = client_with(url, options)?;
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
        Ok(self.get_versioned(rel)?.map(|(bytes, _)| bytes))
    }

    /// Writes objects, each by one PUT, several at a time; returns once every one is stored.
    pub fn put_all(&self, objects: &[(String, Vec<u8>)]) -> Result<(), String> {
        self.put_each(objects, PutMode::Overwrite).map(|_| ()).map_err(Failed::into_message)
    }

    /// Reads whole objects, 16 at a time, in order; `None` for each that is not there.
    pub fn get_many(&self, rels: &[String]) -> Result<Vec<Option<Vec<u8>>>, String> {
        use futures_util::StreamExt;
        let work: Vec<(Key, String)> = rels.iter().map(|rel| (self.key(rel), self.name(rel))).collect();
        let store = self.store();
        self.run(
            async move {
                futures_util::stream::iter(work)
                    .map(|(key, name)| {
                        let store = Arc::clone(&store);
                        async move { Ok(fetch(store.as_ref(), &key, &name).await?.map(|(bytes, _)| bytes)) }
                    })
                    .buffered(16)
                    .try_collect()
                    .await
            },
            || self.stopped(),
        )
    }

    /// Reads a whole object with its version; `None` when there is none.
    pub fn get_versioned(&self, rel: &str) -> Result<Option<(Vec<u8>, Version)>, String> {
        let (store, key, name) = (self.store(), self.key(rel), self.name(rel));
        self.run(async move { fetch(store.as_ref(), &key, &name).await }, || self.stopped())
    }

    /// Writes objects in `mode`, each by one PUT, 16 at a time, and returns the version of the
    /// last. A store that cannot write conditionally (an S3-compatible server without
    /// precondition headers, with `AWS_CONDITIONAL_PUT=disabled`) writes over, once warned.
    fn put_each(&self, objects: &[(String, Vec<u8>)], mode: PutMode) -> Result<Version, Failed> {
        let work: Vec<(Key, String, PutPayload)> = objects
            .iter()
            .map(|(rel, bytes)| (self.key(rel), self.name(rel), PutPayload::from(bytes.clone())))
            .collect();
        let store = self.store();
        let url = self.url.clone();
        self.run(
            async move {
                let last = std::sync::Mutex::new(Version::default());
                futures_util::stream::iter(work.into_iter().map(Ok::<_, Failed>))
                    .try_for_each_concurrent(16, |(key, name, payload)| {
                        let (store, mode, url, last) = (Arc::clone(&store), mode.clone(), url.clone(), &last);
                        async move {
                            let put = store.put_opts(&key, payload.clone(), PutOptions::from(mode)).await;
                            let put = match put {
                                Err(object_store::Error::NotImplemented { .. }) => {
                                    unfenced(&url);
                                    store.put(&key, payload).await
                                }
                                other => other,
                            };
                            match put {
                                Ok(done) => {
                                    let mut last = last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                                    *last = Version { e_tag: done.e_tag, version: done.version };
                                    Ok(())
                                }
                                Err(
                                    object_store::Error::AlreadyExists { .. }
                                    | object_store::Error::Precondition { .. },
                                ) => Err(Failed::Superseded(name)),
                                Err(e) => Err(Failed::Other(format!("writing {name}: {e}"))),
                            }
                        }
                    })
                    .await?;
                Ok(last.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner))
            },
            || Failed::Other(self.stopped()),
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

/// One object with its version, `None` when there is none; errors name it (`name`).
async fn fetch(store: &dyn ObjectStore, key: &Key, name: &str) -> Result<Option<(Vec<u8>, Version)>, String> {
    match store.get(key).await {
        Ok(got) => {
            let version = Version { e_tag: got.meta.e_tag.clone(), version: got.meta.version.clone() };
            let bytes = got.bytes().await.map_err(|e| format!("reading {name}: {e}"))?;
            Ok(Some((bytes.to_vec(), version)))
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(format!("reading {name}: {e}")),
    }
}

fn log_error(e: String) -> LogError {
    LogError::Store(e)
}

/// Why a PUT failed.
enum Failed {
    /// The object exists (a create), or is not the version expected (a replace).
    Superseded(String),
    Other(String),
}

impl Failed {
    fn into_message(self) -> String {
        match self {
            Failed::Superseded(name) => format!("writing {name}: it was changed by another writer meanwhile"),
            Failed::Other(message) => message,
        }
    }

    fn into_log_error(self) -> LogError {
        match self {
            Failed::Superseded(name) => LogError::Superseded(name),
            Failed::Other(message) => LogError::Store(message),
        }
    }
}

/// Says once per process that a store writes a ledger without fencing a second writer.
fn unfenced(url: &str) {
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        tracing::warn!(
            store = url,
            "this object store cannot write conditionally: a ledger's sequencer that lost its lock \
             without knowing could write over what the next one published"
        )
    });
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

    fn read_many(&self, paths: &[String]) -> Result<Vec<Option<Vec<u8>>>, LogError> {
        self.get_many(paths).map_err(log_error)
    }

    fn write(&self, files: &[(String, Vec<u8>)]) -> Result<(), LogError> {
        self.put_all(files).map_err(log_error)
    }

    fn replace(&self, path: &str, bytes: &[u8]) -> Result<(), LogError> {
        // One PUT replaces an object atomically.
        self.put_all(&[(path.to_string(), bytes.to_vec())]).map_err(log_error)
    }

    fn read_versioned(&self, path: &str) -> Result<Option<(Vec<u8>, Version)>, LogError> {
        self.get_versioned(path).map_err(log_error)
    }

    fn create(&self, files: &[(String, Vec<u8>)]) -> Result<(), LogError> {
        // `If-None-Match: *` on S3 and Azure, a generation of 0 on Google Cloud Storage.
        self.put_each(files, PutMode::Create).map(|_| ()).map_err(Failed::into_log_error)
    }

    fn replace_if(&self, path: &str, bytes: &[u8], version: Option<&Version>) -> Result<Version, LogError> {
        // `If-Match` with the entity tag last read or written (a generation on Google Cloud
        // Storage); `If-None-Match: *` for the first checkpoint.
        let mode = match version {
            None => PutMode::Create,
            // A server that gave no ETag or version cannot be asked for one: written over.
            Some(Version { e_tag: None, version: None }) => {
                unfenced(&self.url);
                PutMode::Overwrite
            }
            Some(v) => PutMode::Update(UpdateVersion { e_tag: v.e_tag.clone(), version: v.version.clone() }),
        };
        self.put_each(&[(path.to_string(), bytes.to_vec())], mode).map_err(Failed::into_log_error)
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
