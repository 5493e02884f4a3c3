//! `assay serve`: flags, environment and configuration file for the run-time server in
//! `assay-server`. A setting comes from the flag, else its environment variable, else the
//! configuration file, else its default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use assay_server::{AuthConfig, Config, DecisionInputs, EstateSource, FailureMode, Group, OutboxLimits, Scope, Tls};
use serde::Deserialize;

/// What to answer when something a decision needs fails (a policy, the ledger).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FailureArg {
    /// Refuse the request.
    Closed,
    /// Answer the request, with a warning or a count of what was lost.
    Open,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// A YAML file with any of the settings below, by their long names (`ledger-key: ...`);
    /// flags and environment variables override it. Unknown keys are an error.
    #[arg(long, env = "ASSAY_CONFIG")]
    config: Option<PathBuf>,
    /// The estate: a directory, a path inside a Git repository, or a repository URL
    /// (default `.`).
    #[arg(long, env = "ASSAY_ESTATE")]
    estate: Option<String>,
    /// Follow this branch of the estate's repository (needed for a URL; default `main` then).
    /// Without it a directory is served as it is on disk.
    #[arg(long, env = "ASSAY_BRANCH")]
    branch: Option<String>,
    /// The server's own files: the mirror of a remote estate, the last active revision,
    /// the alert outbox.
    #[arg(long, env = "ASSAY_DATA")]
    data: Option<PathBuf>,
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE`: keep the state that replicas share (the
    /// lineage graph, the alert outbox, findings already reported) in PostgreSQL instead of
    /// SQLite files in --data, so that several `assay serve` replicas act as one.
    #[arg(long, env = "ASSAY_DATABASE")]
    database: Option<String>,
    /// How often to look for a new estate head: `30s` (the default), `5m`, `500ms`; `0` only on
    /// `POST /v1/estate/refresh`.
    #[arg(long, env = "ASSAY_POLL")]
    poll: Option<String>,
    /// Refuse any new head with a commit not signed by a trusted signer, whatever
    /// `assay.yaml` says.
    #[arg(long, env = "ASSAY_REQUIRE_SIGNED")]
    require_signed: bool,
    /// Address to listen on (default 127.0.0.1:8181; port 0 picks a free port, printed).
    #[arg(long, env = "ASSAY_ADDR")]
    addr: Option<SocketAddr>,
    /// Serve HTTPS with this PEM certificate chain (reloaded when the file changes).
    #[arg(long, env = "ASSAY_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key for --tls-cert.
    #[arg(long, env = "ASSAY_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Append every decision to this ledger (a log made by `assay log init`): a directory, or
    /// object storage (`s3://bucket/prefix`, `gs://…`, `az://…`; with --database postgres://…,
    /// which chooses the one replica that writes it).
    #[arg(long, env = "ASSAY_LEDGER")]
    ledger: Option<PathBuf>,
    /// The private key that signs the ledger's checkpoints.
    #[arg(long, env = "ASSAY_LEDGER_KEY")]
    ledger_key: Option<PathBuf>,
    /// The largest request body in bytes (default 4194304); larger requests get 413.
    #[arg(long, env = "ASSAY_MAX_BODY")]
    max_body: Option<usize>,
    /// What to answer when a policy fails to evaluate (default closed).
    #[arg(long, env = "ASSAY_FAILURE_MODE", value_enum)]
    failure_mode: Option<FailureArg>,
    /// Validate OpenLineage events on `POST /api/v1/lineage` against the JSON schemas in this
    /// directory too (`OpenLineage.json` and `facets/*.json`, as the spec publishes them).
    #[arg(long, env = "ASSAY_OPENLINEAGE_SCHEMAS")]
    lineage_schemas: Option<PathBuf>,
    /// Answers kept per ConstraintTemplate for requests whose parts the template reads were
    /// seen before (default 1024); 0 evaluates every constraint every time.
    #[arg(long, env = "ASSAY_CONSTRAINT_MEMO")]
    constraint_memo: Option<usize>,
    /// `[GROUP=]FILE`: bearer tokens (one per line) that open a route group (admission, data,
    /// events, lineage, refresh, reads, status; `all`, the default, for every group). Repeat for
    /// several files; a file is read again when it changes.
    #[arg(long = "auth-token", env = "ASSAY_AUTH_TOKEN", value_delimiter = ',', value_name = "[GROUP=]FILE")]
    auth_token: Vec<String>,
    /// Verify client certificates (mutual TLS) against this PEM CA bundle; needs --tls-cert and
    /// --client-name.
    #[arg(long, env = "ASSAY_CLIENT_CA")]
    client_ca: Option<PathBuf>,
    /// `[GROUP=]NAME`: a client certificate with this subject common name or subject alternative
    /// name opens the group (`*` for any certificate the CA signed). Repeat as needed.
    #[arg(long = "client-name", env = "ASSAY_CLIENT_NAME", value_delimiter = ',', value_name = "[GROUP=]NAME")]
    client_name: Vec<String>,
    /// A file holding the secret GitHub signs push webhooks with: a refresh carrying a good
    /// `X-Hub-Signature-256` is let in.
    #[arg(long, env = "ASSAY_GITHUB_WEBHOOK_SECRET")]
    github_webhook_secret: Option<PathBuf>,
    /// A file holding the secret token GitLab sends in `X-Gitlab-Token` with push webhooks.
    #[arg(long, env = "ASSAY_GITLAB_WEBHOOK_TOKEN")]
    gitlab_webhook_token: Option<PathBuf>,
    /// `basic`: ask `data.system.authz.allow` of the active estate about every request, as OPA's
    /// `--authorization=basic` does (default `off`).
    #[arg(long, env = "ASSAY_AUTHORIZATION", value_enum)]
    authorization: Option<AuthorizationArg>,
    /// A route group left open when credentials are configured (typically `status`). Repeat as
    /// needed.
    #[arg(long, env = "ASSAY_UNAUTHENTICATED", value_delimiter = ',', value_name = "GROUP")]
    unauthenticated: Vec<String>,
    /// Listen on a non-loopback address even though routes that write are open to anyone.
    #[arg(long, env = "ASSAY_INSECURE_ALLOW_UNAUTHENTICATED")]
    insecure_allow_unauthenticated: bool,
    /// Judge a head that does not descend from the active revision (a force-push, a rewritten
    /// history) instead of refusing it; its commits are still checked against the signers
    /// trusted at the active revision.
    #[arg(long, env = "ASSAY_ALLOW_HISTORY_REWRITE")]
    allow_history_rewrite: bool,
    /// The most bytes of estate files read from a new head (default 67108864); a larger
    /// estate is refused before it is parsed.
    #[arg(long, env = "ASSAY_MAX_ESTATE_BYTES")]
    max_estate_bytes: Option<u64>,
    /// How long a fetch of a remote estate may take: `2m` (the default), `30s`.
    #[arg(long, env = "ASSAY_FETCH_TIMEOUT")]
    fetch_timeout: Option<String>,
    /// What of a decision's input its ledger record keeps (default summary).
    #[arg(long, env = "ASSAY_DECISION_INPUTS", value_enum)]
    decision_inputs: Option<DecisionInputsArg>,
    /// Requests in flight at most (default 512); more are answered 503 with Retry-After.
    #[arg(long, env = "ASSAY_MAX_CONCURRENT_REQUESTS")]
    max_concurrent_requests: Option<usize>,
    /// How long a request may take before it is answered 503 (default 30s).
    #[arg(long, env = "ASSAY_REQUEST_TIMEOUT")]
    request_timeout: Option<String>,
    /// How long a client has to send a request's head (default 10s).
    #[arg(long, env = "ASSAY_HEADER_TIMEOUT")]
    header_timeout: Option<String>,
    /// How long one policy evaluation may take (default 2s; 0 for no limit); past it the
    /// evaluation fails and is answered per --failure-mode.
    #[arg(long, env = "ASSAY_POLICY_TIMEOUT")]
    policy_timeout: Option<String>,
    /// What to answer when a decision cannot be logged because the ledger cannot write (a full
    /// disk): `open` (the default) answers and counts the lost records in /metrics; `closed`
    /// refuses admission requests and answers 503 to data and event requests until it can.
    #[arg(long, env = "ASSAY_LEDGER_FAILURE", value_enum)]
    ledger_failure: Option<FailureArg>,
    /// Undelivered alerts kept at most (default 100000); beyond it an event is answered 503.
    #[arg(long, env = "ASSAY_OUTBOX_MAX_PENDING")]
    outbox_max_pending: Option<u64>,
    /// An alert undelivered this long moves to the outbox's dead-letter table (default 24h).
    #[arg(long, env = "ASSAY_OUTBOX_MAX_AGE")]
    outbox_max_age: Option<String>,
    /// The server is not ready (/ready, /health) while the outbox's oldest alert has waited
    /// this long (default 15m).
    #[arg(long, env = "ASSAY_OUTBOX_STALL")]
    outbox_stall: Option<String>,
    /// Watch this cluster of `assay.yaml` (`default` when it names none) for drift, audit its
    /// live objects, and answer `GET /v1/drift`.
    #[arg(long, env = "ASSAY_WATCH_CLUSTER")]
    watch_cluster: Option<String>,
    /// The kubeconfig context that reaches the watched cluster (default: the cluster's
    /// `context`, else the in-cluster service account).
    #[arg(long, env = "ASSAY_KUBE_CONTEXT")]
    kube_context: Option<String>,
    /// List the watched cluster in full this often, besides watching it (default 10m).
    #[arg(long, env = "ASSAY_DRIFT_RESYNC")]
    drift_resync: Option<String>,
    /// Sign a sync attestation this often, besides one per estate revision (default 1h; needs
    /// the ledger).
    #[arg(long, env = "ASSAY_ATTEST_EVERY")]
    attest_every: Option<String>,
}

/// What of a decision's input its ledger record keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DecisionInputsArg {
    /// The input's SHA-256 and, of an admission review, what names the request (uid, kind,
    /// namespace, name, operation, user), never the object.
    Summary,
    /// The whole input, less what the estate's `data.system.log.mask` erases (OPA's decision
    /// logs).
    Masked,
}

/// Whether an authorization policy is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AuthorizationArg {
    /// Authentication alone decides.
    Off,
    /// `data.system.authz.allow` decides too.
    Basic,
}

/// The configuration file: the same settings as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    estate: Option<String>,
    branch: Option<String>,
    data: Option<PathBuf>,
    database: Option<String>,
    poll: Option<String>,
    require_signed: Option<bool>,
    addr: Option<SocketAddr>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    ledger: Option<PathBuf>,
    ledger_key: Option<PathBuf>,
    max_body: Option<usize>,
    failure_mode: Option<FailureArg>,
    lineage_schemas: Option<PathBuf>,
    constraint_memo: Option<usize>,
    auth_token: Option<Vec<String>>,
    client_ca: Option<PathBuf>,
    client_name: Option<Vec<String>>,
    github_webhook_secret: Option<PathBuf>,
    gitlab_webhook_token: Option<PathBuf>,
    authorization: Option<AuthorizationArg>,
    unauthenticated: Option<Vec<String>>,
    insecure_allow_unauthenticated: Option<bool>,
    allow_history_rewrite: Option<bool>,
    max_estate_bytes: Option<u64>,
    fetch_timeout: Option<String>,
    decision_inputs: Option<DecisionInputsArg>,
    max_concurrent_requests: Option<usize>,
    request_timeout: Option<String>,
    header_timeout: Option<String>,
    policy_timeout: Option<String>,
    ledger_failure: Option<FailureArg>,
    outbox_max_pending: Option<u64>,
    outbox_max_age: Option<String>,
    outbox_stall: Option<String>,
    watch_cluster: Option<String>,
    kube_context: Option<String>,
    drift_resync: Option<String>,
    attest_every: Option<String>,
}

/// A duration setting that must be more than zero.
fn duration(flag: &str, text: Option<String>, default: Duration) -> Result<Duration> {
    match text {
        Some(text) => parse_interval(&text)
            .with_context(|| format!("--{flag}"))?
            .with_context(|| format!("--{flag} must be more than 0")),
        None => Ok(default),
    }
}

/// The authentication settings: flags and environment first, else the file.
fn auth_config(args: &mut ServeArgs, file: &mut FileConfig) -> Result<AuthConfig> {
    let pick =
        |flag: Vec<String>, file: Option<Vec<String>>| if flag.is_empty() { file.unwrap_or_default() } else { flag };
    let scoped = |values: Vec<String>, what: &str| -> Result<Vec<(Scope, String)>> {
        values
            .iter()
            .filter(|v| !v.trim().is_empty())
            .map(|v| Scope::split(v).map_err(|e| anyhow::anyhow!("--{what} {v:?}: {e}")))
            .collect()
    };
    let tokens = scoped(pick(std::mem::take(&mut args.auth_token), file.auth_token.take()), "auth-token")?;
    let client_names = scoped(pick(std::mem::take(&mut args.client_name), file.client_name.take()), "client-name")?;
    let unauthenticated = pick(std::mem::take(&mut args.unauthenticated), file.unauthenticated.take())
        .iter()
        .filter(|v| !v.trim().is_empty())
        .map(|v| {
            Group::parse(v.trim()).with_context(|| {
                format!(
                    "--unauthenticated {v:?}: not a route group (one of {})",
                    Group::ALL.map(Group::name).join(", ")
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(AuthConfig {
        tokens: tokens.into_iter().map(|(s, f)| (s, PathBuf::from(f))).collect(),
        client_names,
        github_secret: args.github_webhook_secret.take().or(file.github_webhook_secret.take()),
        gitlab_token: args.gitlab_webhook_token.take().or(file.gitlab_webhook_token.take()),
        authorization: args.authorization.or(file.authorization) == Some(AuthorizationArg::Basic),
        unauthenticated,
        insecure_allow_unauthenticated: args.insecure_allow_unauthenticated
            || file.insecure_allow_unauthenticated.unwrap_or(false),
    })
}

fn read_config(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    yaml_serde::from_str(&text).map_err(|e| {
        let at = e.location().map(|l| format!(":{}:{}", l.line(), l.column())).unwrap_or_default();
        anyhow::anyhow!("{}{at}: {e}", path.display())
    })
}

/// Parses `30s`, `5m`, `500ms`, `1h` or a bare number of seconds; `0` is `None` (no polling).
pub(crate) fn parse_interval(text: &str) -> Result<Option<Duration>> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let n: u64 = number.parse().with_context(|| format!("{text:?}: expected a duration such as 30s or 5m"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => bail!("{text:?}: unknown unit {unit:?} (use ms, s, m or h)"),
    };
    Ok(if d.is_zero() { None } else { Some(d) })
}

/// `assay serve`.
pub(crate) fn run(args: ServeArgs) -> Result<u8> {
    run_with(args, false)
}

/// `assay ui`: the read routes and the web UI alone.
pub(crate) fn run_ui(args: ServeArgs) -> Result<u8> {
    run_with(args, true)
}

fn run_with(mut args: ServeArgs, read_only: bool) -> Result<u8> {
    crate::without_huge_pages();
    crate::return_freed_memory();
    let mut file = match &args.config {
        Some(path) => read_config(path)?,
        None => FileConfig::default(),
    };
    let auth = auth_config(&mut args, &mut file)?;
    let estate = args.estate.or(file.estate).unwrap_or_else(|| ".".to_string());
    let branch = args.branch.or(file.branch);
    let source = match branch {
        Some(branch) => EstateSource::Git { repository: estate, branch },
        None if assay_server::is_url(&estate) => EstateSource::Git { repository: estate, branch: "main".to_string() },
        None => EstateSource::Directory(PathBuf::from(estate)),
    };
    let ledger = args.ledger.or(file.ledger);
    let ledger_key = args.ledger_key.or(file.ledger_key);
    let (ledger, ledger_read_only) = match (ledger, ledger_key) {
        (Some(dir), _) if read_only => (None, Some(dir)),
        (Some(dir), Some(key)) => (Some((dir, crate::log::read_signer(&key)?)), None),
        (Some(_), None) => bail!("--ledger needs --ledger-key (or ASSAY_LEDGER_KEY)"),
        (None, _) => (None, None),
    };
    let client_ca = args.client_ca.or(file.client_ca);
    let tls = match (args.tls_cert.or(file.tls_cert), args.tls_key.or(file.tls_key)) {
        (Some(cert), Some(key)) => Some(Tls { cert, key, client_ca }),
        (None, None) if client_ca.is_some() => bail!("--client-ca needs HTTPS: give --tls-cert and --tls-key"),
        (None, None) => None,
        _ => bail!("--tls-cert and --tls-key go together"),
    };
    let poll = match args.poll.or(file.poll) {
        Some(text) => parse_interval(&text).context("--poll")?,
        None => Some(Duration::from_secs(30)),
    };
    let config = Config {
        estate: source,
        poll,
        require_signed: args.require_signed || file.require_signed.unwrap_or(false),
        data: args.data.or(file.data),
        database: match args.database.or(file.database) {
            Some(url) if !assay_server::is_postgres(&url) => {
                bail!("--database {url:?}: give a PostgreSQL URL, postgres://USER:PASSWORD@HOST:PORT/DATABASE")
            }
            other => other,
        },
        addr: args
            .addr
            .or(file.addr)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], if read_only { 8080 } else { 8181 }))),
        tls,
        ledger,
        ledger_read_only,
        read_only,
        max_body: args.max_body.or(file.max_body).unwrap_or(4 * 1024 * 1024),
        failure_mode: match args.failure_mode.or(file.failure_mode).unwrap_or(FailureArg::Closed) {
            FailureArg::Closed => FailureMode::Closed,
            FailureArg::Open => FailureMode::Open,
        },
        lineage_schemas: args.lineage_schemas.or(file.lineage_schemas),
        constraint_memo: args.constraint_memo.or(file.constraint_memo).unwrap_or(assay_policy::memo::CAPACITY),
        auth,
        decision_inputs: match args.decision_inputs.or(file.decision_inputs).unwrap_or(DecisionInputsArg::Summary) {
            DecisionInputsArg::Summary => DecisionInputs::Summary,
            DecisionInputsArg::Masked => DecisionInputs::Masked,
        },
        allow_history_rewrite: args.allow_history_rewrite || file.allow_history_rewrite.unwrap_or(false),
        max_estate_bytes: args.max_estate_bytes.or(file.max_estate_bytes).unwrap_or(64 * 1024 * 1024),
        fetch_timeout: duration("fetch-timeout", args.fetch_timeout.or(file.fetch_timeout), Duration::from_secs(120))?,
        max_concurrent: match args.max_concurrent_requests.or(file.max_concurrent_requests).unwrap_or(512) {
            0 => bail!("--max-concurrent-requests must be more than 0"),
            n => n,
        },
        request_timeout: duration(
            "request-timeout",
            args.request_timeout.or(file.request_timeout),
            Duration::from_secs(30),
        )?,
        header_timeout: duration(
            "header-timeout",
            args.header_timeout.or(file.header_timeout),
            Duration::from_secs(10),
        )?,
        ledger_failure: match args.ledger_failure.or(file.ledger_failure).unwrap_or(FailureArg::Open) {
            FailureArg::Closed => FailureMode::Closed,
            FailureArg::Open => FailureMode::Open,
        },
        outbox: OutboxLimits {
            max_pending: args.outbox_max_pending.or(file.outbox_max_pending).unwrap_or(100_000),
            max_age: duration(
                "outbox-max-age",
                args.outbox_max_age.or(file.outbox_max_age),
                Duration::from_secs(86_400),
            )?,
        },
        outbox_stall: duration("outbox-stall", args.outbox_stall.or(file.outbox_stall), Duration::from_secs(900))?,
        drift: match args.watch_cluster.or(file.watch_cluster) {
            None => None,
            Some(cluster) => Some(assay_server::DriftWatch {
                cluster,
                context: args.kube_context.or(file.kube_context),
                resync: duration("drift-resync", args.drift_resync.or(file.drift_resync), Duration::from_secs(600))?,
                attest_every: Some(duration(
                    "attest-every",
                    args.attest_every.or(file.attest_every),
                    Duration::from_secs(3600),
                )?),
            }),
        },
        policy_timeout: match args.policy_timeout.or(file.policy_timeout) {
            Some(text) => parse_interval(&text).context("--policy-timeout")?,
            None => Some(Duration::from_secs(2)),
        },
    };
    let runtime = crate::cost::runtime().context("starting the server runtime")?;
    runtime.block_on(assay_server::serve(config, assay_server::shutdown_signal()))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("30s").expect("test"), Some(Duration::from_secs(30)));
        assert_eq!(parse_interval("5m").expect("test"), Some(Duration::from_secs(300)));
        assert_eq!(parse_interval("250ms").expect("test"), Some(Duration::from_millis(250)));
        assert_eq!(parse_interval("12").expect("test"), Some(Duration::from_secs(12)));
        assert_eq!(parse_interval("0").expect("test"), None);
        assert!(parse_interval("5 days").is_err());
        assert!(parse_interval("fast").is_err());
    }

    #[test]
    fn config_file_rejects_unknown_keys_with_line() {
        let dir = tempfile::tempdir().expect("test");
        let path = dir.path().join("serve.yaml");
        std::fs::write(&path, "addr: 127.0.0.1:9000\nledgr: /tmp/x\n").expect("test");
        let err = format!("{:#}", read_config(&path).expect_err("must fail"));
        assert!(err.contains("serve.yaml:2"), "{err}");
        assert!(err.contains("unknown field `ledgr`"), "{err}");
        std::fs::write(&path, "addr: 127.0.0.1:9000\nfailure-mode: open\npoll: 5s\nconstraint-memo: 0\n")
            .expect("test");
        let c = read_config(&path).expect("test");
        assert_eq!(c.failure_mode, Some(FailureArg::Open));
        assert_eq!(c.poll.as_deref(), Some("5s"));
        assert_eq!(c.constraint_memo, Some(0));
    }

    /// The manifests in `deploy/` agree with the server: the webhook calls the admission path
    /// with AdmissionReview v1, and the ConfigMap's configuration file is one `assay serve` reads.
    #[test]
    fn deploy_manifests_match_the_server() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
        let read = |name: &str| {
            let text = std::fs::read_to_string(root.join(name)).expect("test");
            let (objects, diags) = assay_estate::manifest::parse_objects(name, &text);
            assert!(diags.is_empty(), "{diags:?}");
            objects
        };
        // The reader role only reads.
        let rbac = read("rbac.yaml");
        let role = rbac.iter().find(|o| o.kind() == "ClusterRole").expect("test");
        for rule in role.value["rules"].as_array().expect("test") {
            for verb in rule["verbs"].as_array().expect("test") {
                assert!(["get", "list", "watch"].contains(&verb.as_str().expect("test")), "{rule}");
            }
        }
        let binding = rbac.iter().find(|o| o.kind() == "ClusterRoleBinding").expect("test");
        assert_eq!(binding.value["subjects"][0]["name"], "assay");
        let webhook = read("webhook.yaml");
        let hook = &webhook[0].value["webhooks"][0];
        assert_eq!(webhook[0].kind(), "ValidatingWebhookConfiguration");
        assert_eq!(hook["clientConfig"]["service"]["path"], "/v1/admission");
        assert_eq!(hook["admissionReviewVersions"][0], "v1");
        let deployment = read("deployment.yaml");
        let config = deployment.iter().find(|o| o.kind() == "ConfigMap").expect("test");
        let text = config.value["data"]["serve.yaml"].as_str().expect("test");
        let dir = tempfile::tempdir().expect("test");
        std::fs::write(dir.path().join("serve.yaml"), text).expect("test");
        let c = read_config(&dir.path().join("serve.yaml")).expect("test");
        assert_eq!(c.branch.as_deref(), Some("main"));
        assert!(c.tls_cert.is_some() && c.ledger.is_some() && c.data.is_some());
        let container = &deployment.iter().find(|o| o.kind() == "Deployment").expect("test").value["spec"]["template"]
            ["spec"]["containers"][0];
        assert_eq!(container["args"][0], "serve");
        let port = c.addr.expect("test").port();
        assert_eq!(container["ports"][0]["containerPort"], port);
        let policy = deployment.iter().find(|o| o.kind() == "NetworkPolicy").expect("test");
        assert_eq!(policy.value["spec"]["ingress"][0]["ports"][0]["port"], port);

        // The configuration starts off loopback: every route that writes needs a credential,
        // admission takes the API server's client certificate.
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: ServeArgs,
        }
        let mut args = <Cli as clap::Parser>::parse_from(["assay"]).args;
        let mut file = c;
        let auth = auth_config(&mut args, &mut file).expect("test");
        let client_ca = file.client_ca.is_some();
        let warnings = auth.check(file.addr.expect("test"), client_ca).expect("the deployed configuration starts");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(Group::ALL.iter().all(|g| auth.required(*g)));
        assert!(
            auth.client_names
                .iter()
                .any(|(s, n)| *s == Scope::Group(Group::Admission) && n == "kube-apiserver-admission")
        );
    }
}
