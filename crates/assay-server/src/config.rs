//! How to run the server: what the command line and the configuration file give it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use assay_ledger::note::NoteSigner;

use crate::auth::AuthConfig;
use crate::follow::EstateSource;
use crate::tls::Tls;

/// How to run the server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the estate comes from.
    pub estate: EstateSource,
    /// How often to look for a new head; `None` only on `POST /v1/estate/refresh`.
    pub poll: Option<Duration>,
    /// Require every new commit to be signed by a trusted signer, whatever `assay.yaml` says.
    pub require_signed: bool,
    /// The server's own files: the mirror of a remote estate, the last active revision.
    pub data: Option<PathBuf>,
    /// A PostgreSQL database (`postgres://…`) for the state that replicas share (the lineage
    /// graph, the alert outbox, findings reported), instead of SQLite files in `data`.
    pub database: Option<String>,
    /// Where to listen.
    pub addr: SocketAddr,
    /// Serve HTTPS with these files instead of plain HTTP.
    pub tls: Option<Tls>,
    /// The decision ledger and the key that signs its checkpoints.
    pub ledger: Option<(PathBuf, NoteSigner)>,
    /// A ledger only read (shown by the UI), when `ledger` is not given.
    pub ledger_read_only: Option<PathBuf>,
    /// Serve only the web UI and the routes that read (`assay ui`): no admission, data API,
    /// event or lineage intake, or refresh; nothing written but the server's own bookkeeping.
    pub read_only: bool,
    /// The largest request body, in bytes.
    pub max_body: usize,
    /// What to answer when a policy fails to evaluate.
    pub failure_mode: FailureMode,
    /// Validate OpenLineage events against the JSON schemas in this directory too.
    pub lineage_schemas: Option<PathBuf>,
    /// Memoized answers kept per ConstraintTemplate ([`assay_policy::memo`]); 0 evaluates
    /// every constraint every time.
    pub constraint_memo: usize,
    /// Who may call which routes.
    pub auth: AuthConfig,
    /// What of a decision's input its ledger record keeps.
    pub decision_inputs: crate::decisions::DecisionInputs,
    /// Judge a head that does not descend from the active revision instead of refusing it.
    pub allow_history_rewrite: bool,
    /// The most bytes of estate files read from a head (a larger one is refused).
    pub max_estate_bytes: u64,
    /// How long a fetch of a remote estate may take.
    pub fetch_timeout: Duration,
    /// Requests in flight at most; more are answered 503 with `Retry-After`.
    pub max_concurrent: usize,
    /// How long a request may take before it is answered 503.
    pub request_timeout: Duration,
    /// How long a client has to send a request's head.
    pub header_timeout: Duration,
    /// How long one policy evaluation may take (regorus's execution timer); `None` for no limit.
    pub policy_timeout: Option<Duration>,
    /// What to answer when a decision cannot be logged because the ledger cannot write.
    pub ledger_failure: FailureMode,
    /// How much the alert outbox holds, and for how long.
    pub outbox: crate::outbox::Limits,
    /// An outbox whose oldest message has waited this long makes the server not ready.
    pub outbox_stall: Duration,
    /// Watch a cluster's live state for drift and audit it (`--watch-cluster`).
    pub drift: Option<DriftWatch>,
}

/// What the drift watch reads and how often it does more than watch.
#[derive(Debug, Clone)]
pub struct DriftWatch {
    /// The cluster of `assay.yaml` this server watches (`default` when it names none).
    pub cluster: String,
    /// The kubeconfig context that reaches it; the in-cluster service account when `None`.
    pub context: Option<String>,
    /// A full list (and search by ownership label) this often, besides the watches.
    pub resync: Duration,
    /// A signed sync attestation this often (and on every estate revision); needs a ledger.
    pub attest_every: Option<Duration>,
}

/// What to answer when a policy fails to evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailureMode {
    /// Refuse (the default): an error never lets a request through.
    #[default]
    Closed,
    /// Allow, with a warning that says so.
    Open,
}
