//! Who may call which routes. Routes fall in groups ([`Group`]); each group is opened by bearer
//! tokens read from files, by client certificates whose names are allowed for it, and (the
//! refresh route) by a Git provider's webhook signature. `data.system.authz.allow` of the active
//! estate decides what is left, as OPA's `--authorization=basic` does.
//!
//! Once any credential is configured every group needs one, except those named
//! unauthenticated; a group with no credential then refuses every request. Token files are read
//! again when they change, so a token is rotated by replacing its file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::active::ActiveCell;
use crate::errors::error;
use crate::metrics::Metrics;
use crate::tls::ClientCert;

/// A group of routes that share their credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    /// `POST /v1/admission`.
    Admission,
    /// OPA's data API: `/v1/data`, `/v0/data`.
    Data,
    /// `POST /v1/events`.
    Events,
    /// `POST /api/v1/lineage`: OpenLineage intake.
    Lineage,
    /// `POST /v1/estate/refresh`.
    Refresh,
    /// Reads of what was recorded: the ledger's checkpoint and tiles, lineage queries, drift,
    /// the read API under `/api/v1/` and the web UI under `/ui/`.
    Reads,
    /// `GET /v1/status` and `GET /metrics`.
    Status,
}

impl Group {
    /// Every group.
    pub const ALL: [Group; 7] =
        [Group::Admission, Group::Data, Group::Events, Group::Lineage, Group::Refresh, Group::Reads, Group::Status];

    /// The group's name in flags and the configuration file.
    pub fn name(self) -> &'static str {
        match self {
            Group::Admission => "admission",
            Group::Data => "data",
            Group::Events => "events",
            Group::Lineage => "lineage",
            Group::Refresh => "refresh",
            Group::Reads => "reads",
            Group::Status => "status",
        }
    }

    /// The group named `name`.
    pub fn parse(name: &str) -> Option<Group> {
        Group::ALL.into_iter().find(|g| g.name() == name)
    }

    /// Whether its routes write: into the ledger, the lineage graph, the outbox, or the active
    /// revision.
    pub fn writes(self) -> bool {
        !matches!(self, Group::Reads | Group::Status)
    }
}

/// The groups a credential opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every group.
    All,
    /// One group.
    Group(Group),
}

impl Scope {
    /// Parses `GROUP=VALUE` (or a bare `VALUE`, for every group).
    pub fn split(text: &str) -> std::result::Result<(Scope, String), String> {
        match text.split_once('=') {
            Some((name, value)) => {
                let scope = match name.trim() {
                    "all" | "*" => Scope::All,
                    other => Scope::Group(Group::parse(other).ok_or_else(|| {
                        format!(
                            "{other:?} is not a route group (one of all, {})",
                            Group::ALL.map(Group::name).join(", ")
                        )
                    })?),
                };
                Ok((scope, value.trim().to_string()))
            }
            None => Ok((Scope::All, text.trim().to_string())),
        }
    }

    fn covers(self, group: Group) -> bool {
        self == Scope::All || self == Scope::Group(group)
    }
}

/// How requests are authenticated and authorized.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// Files of bearer tokens (one per line; `#` comments), and the groups each opens.
    pub tokens: Vec<(Scope, PathBuf)>,
    /// Client-certificate names (subject common name or any subject alternative name; `*` for
    /// any certificate the CA verified) and the groups each opens. Needs `Tls::client_ca`.
    pub client_names: Vec<(Scope, String)>,
    /// A file holding the secret GitHub signs refresh webhooks with (`X-Hub-Signature-256`).
    pub github_secret: Option<PathBuf>,
    /// A file holding the token GitLab sends with refresh webhooks (`X-Gitlab-Token`).
    pub gitlab_token: Option<PathBuf>,
    /// Ask `data.system.authz.allow` of the active estate about every request.
    pub authorization: bool,
    /// Groups left open even when credentials are configured.
    pub unauthenticated: Vec<Group>,
    /// Listen on a non-loopback address with write routes open.
    pub insecure_allow_unauthenticated: bool,
}

impl AuthConfig {
    /// Whether any credential is configured.
    pub fn any(&self) -> bool {
        !self.tokens.is_empty()
            || !self.client_names.is_empty()
            || self.github_secret.is_some()
            || self.gitlab_token.is_some()
    }

    /// The credentials that open `group`, by kind.
    fn kinds(&self, group: Group) -> Vec<&'static str> {
        let mut kinds = Vec::new();
        if self.tokens.iter().any(|(s, _)| s.covers(group)) {
            kinds.push("token");
        }
        if self.client_names.iter().any(|(s, _)| s.covers(group)) {
            kinds.push("client-certificate");
        }
        if group == Group::Refresh && self.github_secret.is_some() {
            kinds.push("github-signature");
        }
        if group == Group::Refresh && self.gitlab_token.is_some() {
            kinds.push("gitlab-token");
        }
        kinds
    }

    /// Whether requests to `group` must carry a credential.
    pub fn required(&self, group: Group) -> bool {
        self.any() && !self.unauthenticated.contains(&group)
    }

    /// Checks the configuration against where the server listens; `Ok` holds warnings to print.
    pub fn check(&self, addr: SocketAddr, client_ca: bool) -> Result<Vec<String>> {
        self.check_mounted(addr, client_ca, true)
    }

    /// As [`AuthConfig::check`], for a server that mounts the routes that write only when
    /// `writes` (`assay ui` does not): without them, open reads are warned about instead.
    pub fn check_mounted(&self, addr: SocketAddr, client_ca: bool, writes: bool) -> Result<Vec<String>> {
        if !self.client_names.is_empty() && !client_ca {
            bail!("--client-name needs --client-ca (the CA bundle that client certificates are verified against)");
        }
        if client_ca && self.client_names.is_empty() {
            bail!(
                "--client-ca is set but no --client-name says which routes a client certificate opens \
                 (GROUP=NAME, or all=* for any certificate the CA signed)"
            );
        }
        let open: Vec<&str> =
            Group::ALL.into_iter().filter(|g| writes && g.writes() && !self.required(*g)).map(Group::name).collect();
        let mut warnings = Vec::new();
        if !writes && !self.required(Group::Reads) {
            warnings.push(format!(
                "WARNING: no authentication on the web UI and its read API: anyone who can reach {addr} can read \
                 the verdict, the ledger and the lineage graph"
            ));
        }
        if !open.is_empty() {
            if !addr.ip().is_loopback() && !self.insecure_allow_unauthenticated {
                bail!(
                    "refusing to listen on {addr} with routes that write open to anyone ({}): configure \
                     --auth-token or --client-ca with --client-name, or pass --insecure-allow-unauthenticated",
                    open.join(", ")
                );
            }
            warnings.push(format!(
                "WARNING: no authentication on {}: anyone who can reach {addr} can call them",
                open.join(", ")
            ));
        }
        for group in Group::ALL {
            if self.required(group) && self.kinds(group).is_empty() {
                warnings.push(format!(
                    "the {} routes need a credential but none is configured for them: every request to them \
                     is refused (give one, or --unauthenticated {})",
                    group.name(),
                    group.name()
                ));
            }
        }
        Ok(warnings)
    }
}

/// Secrets read from the configured files.
#[derive(Default, PartialEq)]
struct Secrets {
    /// SHA-256 of each token, with the groups it opens and the name of its file.
    tokens: Vec<(Scope, String, [u8; 32])>,
    github: Option<Vec<u8>>,
    gitlab: Option<[u8; 32]>,
}

fn read_secret(path: &Path, what: &str) -> Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the {what} {}", path.display()))?;
    let text = text.trim().to_string();
    if text.is_empty() {
        bail!("{}: the {what} file is empty", path.display());
    }
    Ok(text)
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl Secrets {
    fn read(config: &AuthConfig) -> Result<Secrets> {
        let mut secrets = Secrets::default();
        for (scope, path) in &config.tokens {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("reading the token file {}", path.display()))?;
            let name =
                path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
            let before = secrets.tokens.len();
            for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
                secrets.tokens.push((*scope, name.clone(), digest(line.as_bytes())));
            }
            if secrets.tokens.len() == before {
                bail!("{}: no token in the file (one per line; lines starting with # are comments)", path.display());
            }
        }
        if let Some(path) = &config.github_secret {
            secrets.github = Some(read_secret(path, "GitHub webhook secret")?.into_bytes());
        }
        if let Some(path) = &config.gitlab_token {
            secrets.gitlab = Some(digest(read_secret(path, "GitLab webhook token")?.as_bytes()));
        }
        Ok(secrets)
    }
}

/// Who a request was authenticated as.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    /// `token`, `client-certificate`, `github-signature`, `gitlab-token`, or `none`.
    pub(crate) method: &'static str,
    /// The token's file, the certificate's subject, or the provider.
    pub(crate) name: String,
}

/// The server's authentication: the configuration and the secrets as last read.
pub(crate) struct Auth {
    config: AuthConfig,
    secrets: RwLock<Secrets>,
    active: Arc<ActiveCell>,
    metrics: Arc<Metrics>,
    max_body: usize,
}

/// How often token and secret files are compared with what was loaded.
const RELOAD_EVERY: Duration = Duration::from_secs(2);

impl Auth {
    /// Reads the secrets once; any file that cannot be read is an error.
    pub(crate) fn new(
        config: AuthConfig,
        active: Arc<ActiveCell>,
        metrics: Arc<Metrics>,
        max_body: usize,
    ) -> Result<Auth> {
        let secrets = Secrets::read(&config)?;
        Ok(Auth { config, secrets: RwLock::new(secrets), active, metrics, max_body })
    }

    /// What `/v1/status` shows: each group's credentials, and whether an authorization policy
    /// is asked.
    pub(crate) fn describe(&self) -> Value {
        let groups: Map<String, Value> = Group::ALL
            .into_iter()
            .map(|g| {
                let v = if self.config.required(g) { json!(self.config.kinds(g)) } else { json!("unauthenticated") };
                (g.name().to_string(), v)
            })
            .collect();
        json!({
            "groups": groups,
            "authorization": if self.config.authorization { "rego: data.system.authz.allow" } else { "none" },
            "insecure": Group::ALL.into_iter().any(|g| g.writes() && !self.config.required(g)),
        })
    }

    /// Reads the files again every few seconds, for as long as it runs; a file that cannot be
    /// read now keeps the secrets last read from it, with a warning.
    pub(crate) async fn watch(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(RELOAD_EVERY);
        ticks.tick().await;
        let mut failing: Option<String> = None;
        loop {
            ticks.tick().await;
            let auth = Arc::clone(&self);
            let Ok(read) = tokio::task::spawn_blocking(move || Secrets::read(&auth.config)).await else { continue };
            match read {
                Ok(next) => {
                    failing = None;
                    let mut secrets = self.secrets.write().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if *secrets != next {
                        *secrets = next;
                        eprintln!("assay serve: tokens and webhook secrets read again");
                    }
                }
                Err(e) => {
                    let message = format!("{e:#}");
                    if failing.as_ref() != Some(&message) {
                        tracing::warn!(error = %message, "a credential file does not read; keeping the credentials in use");
                        eprintln!("assay serve: {message}; keeping the credentials in use");
                        failing = Some(message);
                    }
                }
            }
        }
    }

    /// Who presents `headers`, `client` and (for webhook signatures) `body` for `group`; `None`
    /// when nothing presented opens it.
    fn authenticate(
        &self,
        group: Group,
        headers: &HeaderMap,
        client: Option<&ClientCert>,
        body: Option<&[u8]>,
    ) -> Option<Identity> {
        let secrets = self.secrets.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(token) = bearer(headers) {
            let presented = digest(token.as_bytes());
            // Every token is compared, so the time taken does not say which one came close.
            let mut found: Option<&str> = None;
            for (scope, file, known) in &secrets.tokens {
                let equal: bool = known.ct_eq(&presented).into();
                if equal && scope.covers(group) && found.is_none() {
                    found = Some(file);
                }
            }
            if let Some(file) = found {
                return Some(Identity { method: "token", name: file.to_string() });
            }
        }
        if let Some(cert) = client {
            let allowed = self
                .config
                .client_names
                .iter()
                .any(|(scope, name)| scope.covers(group) && (name == "*" || cert.names.iter().any(|n| n == name)));
            if allowed {
                return Some(Identity { method: "client-certificate", name: cert.subject.clone() });
            }
        }
        if group == Group::Refresh {
            if let (Some(secret), Some(signature), Some(body)) =
                (&secrets.github, headers.get("x-hub-signature-256"), body)
                && github_signature_matches(secret, signature, body)
            {
                return Some(Identity { method: "github-signature", name: "github".into() });
            }
            if let (Some(known), Some(token)) = (&secrets.gitlab, headers.get("x-gitlab-token")) {
                let equal: bool = known.ct_eq(&digest(token.as_bytes())).into();
                if equal {
                    return Some(Identity { method: "gitlab-token", name: "gitlab".into() });
                }
            }
        }
        None
    }

    /// Whether `data.system.authz.allow` of the active estate allows the request.
    fn authorize(&self, input: &Value) -> std::result::Result<(), String> {
        let active = self.active.get();
        match active.policies.query(&["system", "authz", "allow"], Some(input)) {
            Ok(Some(Value::Bool(true))) => Ok(()),
            Ok(Some(other)) if other != Value::Bool(false) => {
                Err(format!("data.system.authz.allow is {other}, not a boolean: refused"))
            }
            Ok(_) => Err("not allowed by data.system.authz.allow".into()),
            Err(e) => Err(format!("data.system.authz.allow failed to evaluate: {e}")),
        }
    }

    fn refuse(&self, group: Group, status: StatusCode, reason: &'static str, message: String) -> Response {
        self.metrics.auth_refused(group.name(), reason);
        let mut response = error(status, reason, message);
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"assay\""));
        }
        response
    }
}

/// The bearer token of an `Authorization` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// Whether `signature` (`sha256=HEX`, as GitHub sends it) is the HMAC-SHA256 of `body`.
fn github_signature_matches(secret: &[u8], signature: &HeaderValue, body: &[u8]) -> bool {
    let Some(hex) = signature.to_str().ok().and_then(|s| s.trim().strip_prefix("sha256=")) else { return false };
    let Some(tag) = decode_hex(hex) else { return false };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    ring::hmac::verify(&key, body, &tag).is_ok()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
}

/// What `data.system.authz.allow` sees, in OPA's shape: `method`, `path` (segments), `params`,
/// `headers`, `identity` (the bearer token, as OPA gives it), `client_certificates`, and assay's
/// `assay.group` and `assay.authenticated` (how and as whom).
fn authz_input(request: &Request, group: Group, identity: Option<&Identity>, client: Option<&ClientCert>) -> Value {
    let uri = request.uri();
    let path: Vec<Value> = uri.path().split('/').filter(|s| !s.is_empty()).map(|s| json!(s)).collect();
    let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(query) = uri.query() {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            params.entry(k.to_string()).or_default().push(v.to_string());
        }
    }
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in request.headers() {
        if matches!(name.as_str(), "authorization" | "x-gitlab-token" | "cookie") {
            continue;
        }
        headers
            .entry(name.as_str().to_string())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let mut input = json!({
        "method": request.method().as_str(),
        "path": path,
        "params": params,
        "headers": headers,
        "assay": {
            "group": group.name(),
            "authenticated": identity.map(|i| json!({"method": i.method, "name": i.name})),
        },
    });
    if let Some(token) = bearer(request.headers()) {
        input["identity"] = json!(token);
    }
    if let Some(cert) = client {
        input["client_certificates"] = json!([{"subject": cert.subject, "names": cert.names}]);
    }
    input
}

/// Middleware for the routes of one group.
pub(crate) async fn check(State((auth, group)): State<(Arc<Auth>, Group)>, request: Request, next: Next) -> Response {
    let required = auth.config.required(group);
    if !required && !auth.config.authorization {
        return next.run(request).await;
    }
    let client = request.extensions().get::<Option<ClientCert>>().cloned().flatten();
    // A webhook's signature covers its body: read it (within the body limit) and put it back.
    let signed = group == Group::Refresh && request.headers().contains_key("x-hub-signature-256");
    let (request, body) = if signed {
        let (parts, body) = request.into_parts();
        match axum::body::to_bytes(body, auth.max_body).await {
            Ok(bytes) => (Request::from_parts(parts, axum::body::Body::from(bytes.clone())), Some(bytes)),
            Err(_) => {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request_too_large",
                    format!("the request body is larger than {} bytes", auth.max_body),
                );
            }
        }
    } else {
        (request, None)
    };
    let identity = auth.authenticate(group, request.headers(), client.as_ref(), body.as_deref());
    if required && identity.is_none() {
        let message = if request.headers().contains_key(header::AUTHORIZATION) || client.is_some() || signed {
            format!("the credentials given do not open the {} routes", group.name())
        } else {
            format!(
                "the {} routes need a credential: a bearer token, a client certificate or a webhook signature",
                group.name()
            )
        };
        return auth.refuse(group, StatusCode::UNAUTHORIZED, "unauthorized", message);
    }
    if auth.config.authorization {
        let input = authz_input(&request, group, identity.as_ref(), client.as_ref());
        if let Err(message) = auth.authorize(&input) {
            return auth.refuse(group, StatusCode::FORBIDDEN, "forbidden", message);
        }
    }
    let mut request = request;
    if let Some(identity) = identity {
        request.extensions_mut().insert(identity);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_name_bad_groups() {
        assert_eq!(Scope::split("admission=/t").expect("test"), (Scope::Group(Group::Admission), "/t".into()));
        assert_eq!(Scope::split("all=/t").expect("test"), (Scope::All, "/t".into()));
        assert_eq!(Scope::split("/t").expect("test"), (Scope::All, "/t".into()));
        let err = Scope::split("admin=/t").expect_err("must fail");
        assert!(err.contains("\"admin\" is not a route group"), "{err}");
    }

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer  abc "));
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), None);
    }

    #[test]
    fn github_signatures_are_hmac_sha256_of_the_body() {
        // GitHub's documented example: secret "It's a Secret to Everybody", payload "Hello, World!".
        let signature =
            HeaderValue::from_static("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
        assert!(github_signature_matches(b"It's a Secret to Everybody", &signature, b"Hello, World!"));
        assert!(!github_signature_matches(b"It's a Secret to Everybody", &signature, b"Hello, World?"));
        assert!(!github_signature_matches(b"another secret", &signature, b"Hello, World!"));
        assert!(!github_signature_matches(b"x", &HeaderValue::from_static("sha1=00"), b""));
    }

    #[test]
    fn open_write_routes_are_refused_off_loopback() {
        let public: SocketAddr = "0.0.0.0:8181".parse().expect("test");
        let local: SocketAddr = "127.0.0.1:8181".parse().expect("test");
        let none = AuthConfig::default();
        let err = format!("{:#}", none.check(public, false).expect_err("must refuse"));
        assert!(err.contains("--insecure-allow-unauthenticated"), "{err}");
        assert!(none.check(local, false).expect("test")[0].contains("WARNING"));
        let insecure = AuthConfig { insecure_allow_unauthenticated: true, ..AuthConfig::default() };
        assert!(insecure.check(public, false).is_ok());
        let tokens = AuthConfig {
            tokens: vec![(Scope::All, PathBuf::from("t"))],
            unauthenticated: vec![Group::Status],
            ..AuthConfig::default()
        };
        assert!(tokens.check(public, false).expect("test").is_empty());
        let open_events = AuthConfig { unauthenticated: vec![Group::Events], ..tokens.clone() };
        assert!(open_events.check(public, false).is_err());
        let admission_only =
            AuthConfig { tokens: vec![(Scope::Group(Group::Admission), PathBuf::from("t"))], ..AuthConfig::default() };
        let warnings = admission_only.check(public, false).expect("test");
        assert!(warnings.iter().any(|w| w.contains("the data routes need a credential")), "{warnings:?}");
        let names = AuthConfig { client_names: vec![(Scope::All, "*".into())], ..AuthConfig::default() };
        assert!(names.check(local, false).is_err());
        assert!(AuthConfig::default().check(local, true).is_err());
    }
}
