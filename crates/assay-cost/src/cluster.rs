//! Billing queries on a Ballista cluster (DataFusion's distributed engine, the release assay's
//! DataFusion is): `assay cost --cluster df://HOST:PORT query|report|anomalies` plans a query as
//! on one machine and has the cluster's executors run it over the store's Parquet files, on
//! object storage (or a filesystem every executor mounts).
//!
//! The scheduler and executors are assay itself (`assay cost cluster scheduler|executor`), so
//! that they know what a plan from assay names: `date_trunc` on UTC timestamps
//! ([`crate::datetime`]) and object stores built from the environment for any bucket a plan
//! reads ([`EnvStores`]). Decimal division ([`crate::sql::DecimalDivision`]) is rewritten
//! before a plan leaves the client, so the cluster needs nothing for it.

use std::net::SocketAddr;
use std::sync::Arc;

use ballista_core::extension::SessionConfigExt;
use ballista_core::registry::BallistaFunctionRegistry;
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::prelude::SessionConfig;
use object_store::ObjectStore;
use url::Url;

use crate::{Error, Result};

/// Object stores for the URLs plans read: `file://` as DataFusion has it, and `s3://`,
/// `gs://`, `az://` buckets built from the environment on first use (`AWS_*`, `GOOGLE_*`,
/// `AZURE_*`, as on the client).
#[derive(Debug, Default)]
pub struct EnvStores {
    known: DefaultObjectStoreRegistry,
}

impl ObjectStoreRegistry for EnvStores {
    fn register_store(&self, url: &Url, store: Arc<dyn ObjectStore>) -> Option<Arc<dyn ObjectStore>> {
        self.known.register_store(url, store)
    }

    fn get_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        if let Ok(store) = self.known.get_store(url) {
            return Ok(store);
        }
        let root = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
        let store =
            assay_store::objects::client(&root).map_err(|e| datafusion::error::DataFusionError::External(e.into()))?;
        self.known.register_store(url, Arc::clone(&store));
        Ok(store)
    }
}

/// A runtime whose object stores come from [`EnvStores`].
fn runtime() -> datafusion::error::Result<Arc<RuntimeEnv>> {
    RuntimeEnvBuilder::new().with_object_store_registry(Arc::new(EnvStores::default())).build_arc()
}

/// The scheduler's session for a client's configuration: Ballista's, with assay's functions
/// and object stores.
fn scheduler_session(config: SessionConfig) -> datafusion::error::Result<SessionState> {
    let state = ballista_core::utils::default_session_builder(config)?;
    let mut state = SessionStateBuilder::new_from_existing(state).with_runtime_env(runtime()?).build();
    datafusion::execution::FunctionRegistry::register_udf(&mut state, Arc::new(crate::datetime::UtcDateTrunc::udf()))?;
    Ok(state)
}

/// Runs a scheduler on `bind` until the process ends.
pub async fn scheduler(bind: SocketAddr) -> Result<()> {
    use ballista_scheduler::cluster::BallistaCluster;
    use ballista_scheduler::config::{SchedulerConfig, TaskDistributionPolicy};
    let config = SchedulerConfig {
        // Tasks go to the executors in turn, so that a scan of object storage is spread over
        // every machine (Ballista's default fills one executor's slots first).
        task_distribution: TaskDistributionPolicy::RoundRobin,
        bind_host: bind.ip().to_string(),
        bind_port: bind.port(),
        external_host: bind.ip().to_string(),
        override_session_builder: Some(Arc::new(scheduler_session)),
        ..SchedulerConfig::default()
    };
    let failed = |e: &dyn std::fmt::Display| Error::Store(format!("the Ballista scheduler on {bind}: {e}"));
    let cluster = BallistaCluster::new_from_config(&config).await.map_err(|e| failed(&e))?;
    ballista_scheduler::scheduler_process::start_server(cluster, bind, Arc::new(config)).await.map_err(|e| failed(&e))
}

/// Where an executor listens and which scheduler it serves.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler, `host:port`.
    pub scheduler: String,
    /// The address it listens on for results (Arrow Flight); its control port is
    /// [`ExecutorOptions::grpc_port`].
    pub bind: SocketAddr,
    /// The port the scheduler gives it tasks on.
    pub grpc_port: u16,
    /// Tasks it runs at once (default: the machine's cores).
    pub concurrency: Option<usize>,
    /// Where it keeps shuffle files (default: a temporary directory).
    pub work_dir: Option<String>,
    /// The memory its tasks may hold together, in bytes (default: 70% of the machine's), shared
    /// out among its task slots; past it, operators that can spill do.
    pub memory_limit: Option<usize>,
}

/// Runs an executor until the process ends or the scheduler stops it.
pub async fn executor(options: ExecutorOptions) -> Result<()> {
    use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
    let (host, port) = options
        .scheduler
        .rsplit_once(':')
        .and_then(|(h, p)| p.parse::<u16>().ok().map(|p| (h.to_string(), p)))
        .ok_or_else(|| Error::Store(format!("--scheduler {}: give HOST:PORT", options.scheduler)))?;
    // The functions a plan may name: DataFusion's and Ballista's, and assay's date_trunc.
    let mut registry = BallistaFunctionRegistry::default();
    let udf = Arc::new(crate::datetime::UtcDateTrunc::udf());
    registry.scalar_functions.insert(udf.name().to_string(), udf);
    let defaults = ExecutorProcessConfig::default();
    let config = ExecutorProcessConfig {
        bind_host: options.bind.ip().to_string(),
        external_host: Some(options.bind.ip().to_string()),
        port: options.bind.port(),
        grpc_port: options.grpc_port,
        scheduler_host: host,
        scheduler_port: port,
        scheduler_connect_timeout_seconds: 30,
        vcores: options.concurrency.unwrap_or(defaults.vcores),
        work_dir: options.work_dir.clone(),
        memory_pool_size: options.memory_limit.map(|b| b as u64),
        print_thread_info: false,
        override_function_registry: Some(Arc::new(registry)),
        override_runtime_producer: Some(Arc::new(|_config: &SessionConfig| runtime())),
        ..defaults
    };
    start_executor_process(Arc::new(config))
        .await
        .map_err(|e| Error::Store(format!("the Ballista executor on {}: {e}", options.bind)))
}

/// A session that plans here and runs on the cluster whose scheduler is `url`
/// (`df://host:port`), from `state` (the session assay builds for one machine).
pub async fn remote(url: &str, state: SessionState) -> Result<datafusion::prelude::SessionContext> {
    use ballista::prelude::SessionContextExt;
    let config = state.config().clone().upgrade_for_ballista();
    let state = SessionStateBuilder::new_from_existing(state).with_config(config).build();
    datafusion::prelude::SessionContext::remote_with_state(url, state)
        .await
        .map_err(|e| Error::Store(format!("the Ballista cluster {url}: {e}")))
}
