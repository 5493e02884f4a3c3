//! `assay serve`: run-time enforcement of the estate's policies over HTTP.
//!
//! - `POST /v1/admission`: the Kubernetes admission webhook (AdmissionReview v1).
//! - `GET|POST /v1/data/{path}`, `POST /v0/data/{path}`, `GET /health`: OPA's data API, so
//!   gateways, meshes and applications that call OPA work unchanged.
//! - `GET /v1/status`: the active estate revision.
//! - `GET /ledger/checkpoint`, `/ledger/tile/...`: the decision ledger, read-only, in the C2SP
//!   tlog-tiles layout.
//! - `POST /v1/events`: CloudEvents checked by the event policies.
//! - `POST|GET /api/v1/lineage`: OpenLineage intake and Marquez-style lineage queries; new
//!   residency findings become alerts.
//! - `GET /v1/drift`: with `--watch-cluster`, the watched cluster's drift and audit results.
//! - `GET /api/v1/posture`, `GET /api/v1/openapi.json`: the read API of the web UI.
//! - `GET /ui/...`: the web UI, server-rendered from the same documents.
//!
//! Every decision is appended to the ledger through a bounded queue, off the request's path;
//! a full queue slows requests down instead of dropping a decision.

// Shared parts, each importing only those listed before it.
mod active;
mod alerts;
mod auth;
mod charts;
mod config;
mod cost_view;
mod decisions;
mod drift;
mod errors;
mod follow;
mod health;
mod ledger;
mod ledger_read;
mod ledger_shared;
mod limits;
mod lineage;
mod metrics;
mod outbox;
mod posture;
mod residency_view;
mod state;
mod tile_cache;
mod tls;
mod view_cache;
mod warm;
// Routes, each with its handlers.
mod admission;
mod api_http;
mod drift_http;
mod estate_http;
mod events;
mod ledger_http;
mod lineage_http;
mod metrics_http;
mod opa;
mod ui_http;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use assay_store::is_postgres;
pub use auth::{AuthConfig, Group, Scope};
pub use config::FailureMode;
pub use config::{Config, DriftWatch};
pub use decisions::DecisionInputs;
pub use follow::{EstateSource, is_url};
pub use outbox::Limits as OutboxLimits;
pub use tls::Tls;

fn router(state: Arc<state::State>, config: &Config) -> Router {
    let limits =
        Arc::new(limits::Limits::new(config.max_concurrent, config.request_timeout, Arc::clone(&state.metrics)));
    use auth::Group;
    type Routes = Router<Arc<state::State>>;
    let guard = |group: Group, routes: Routes| {
        routes.route_layer(axum::middleware::from_fn_with_state((Arc::clone(&state.auth), group), auth::check))
    };
    // `assay ui` mounts only what reads.
    let writes: Routes = if config.read_only {
        Router::new()
    } else {
        Router::new()
            .merge(guard(Group::Refresh, Router::new().route("/v1/estate/refresh", post(estate_http::refresh))))
            .merge(guard(Group::Admission, Router::new().route("/v1/admission", post(admission::review))))
            .merge(guard(Group::Events, Router::new().route("/v1/events", post(events::receive))))
            .merge(guard(
                Group::Data,
                Router::new()
                    .route("/v1/data", get(opa::get_v1_root).post(opa::post_v1_root))
                    .route("/v1/data/{*path}", get(opa::get_v1).post(opa::post_v1))
                    .route("/v0/data/{*path}", post(opa::post_v0)),
            ))
            .merge(guard(Group::Lineage, Router::new().route("/api/v1/lineage", post(lineage_http::post))))
    };
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .merge(guard(
            Group::Status,
            Router::new().route("/v1/status", get(estate_http::status)).route("/metrics", get(metrics_http::serve)),
        ))
        .merge(writes)
        .merge(guard(
            Group::Reads,
            Router::new()
                .route("/ledger/{*path}", get(ledger_http::serve))
                .route("/api/v1/lineage", get(lineage_http::get))
                .route("/v1/drift", get(drift_http::get))
                .route("/api/v1/posture", get(api_http::posture))
                .route("/api/v1/openapi.json", get(api_http::openapi))
                .route("/api/v1/cost", get(api_http::cost))
                .route("/api/v1/residency", get(api_http::residency))
                .route("/ui/residency", get(ui_http::residency))
                .route("/api/v1/ledger", get(api_http::ledger))
                .route("/api/v1/ledger/entries/{index}", get(api_http::ledger_entry))
                .route("/api/v1/ledger/entries/{index}/raw", get(api_http::ledger_raw))
                .route("/api/v1/ledger/entries/{index}/receipt", get(api_http::ledger_receipt))
                .route("/ui/cost", get(ui_http::cost))
                .route("/ui/ledger", get(ui_http::ledger))
                .route("/ui/ledger/entries/{index}", get(ui_http::ledger_entry))
                .route("/ui", get(ui_http::index))
                .route("/ui/", get(ui_http::index))
                .route("/ui/posture", get(ui_http::posture))
                .route("/ui/assets/assay.css", get(ui_http::css)),
        ))
        .route_layer(axum::middleware::from_fn_with_state(Arc::clone(&state), metrics_http::track))
        .fallback(errors::not_found)
        .layer(DefaultBodyLimit::max(config.max_body))
        .layer(axum::middleware::from_fn_with_state(limits, limits::limit))
        .with_state(state)
}

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// It could not start: the estate, the ledger, the data directory, the certificates or the
    /// address; the message names which, with the cause.
    #[error("{0}")]
    Start(String),
    /// It started, then serving or flushing the ledger failed.
    #[error("{0}")]
    Stop(String),
}

/// Runs the server until `shutdown` completes, then drains requests in flight and flushes the
/// decision ledger. Prints `listening on http://ADDR` on standard error once it accepts.
pub async fn serve(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::result::Result<(), Error> {
    let chain = |e: anyhow::Error| format!("{e:#}");
    let (state, listener) = start(&config).await.map_err(|e| Error::Start(chain(e)))?;
    run(&config, state, listener, shutdown).await.map_err(|e| Error::Stop(chain(e)))
}

/// A socket to serve on, and for HTTPS the certificates.
struct Listener {
    socket: std::net::TcpListener,
    tls: Option<(axum_server::tls_rustls::RustlsConfig, tls::Loaded)>,
}

/// Everything that can fail before the server accepts: state, checker, socket, certificates.
async fn start(config: &Config) -> Result<(Arc<state::State>, Listener)> {
    let client_ca = config.tls.as_ref().is_some_and(|t| t.client_ca.is_some());
    for warning in config.auth.check_mounted(config.addr, client_ca, !config.read_only)? {
        tracing::warn!("{warning}");
        eprintln!("assay serve: {warning}");
    }
    assay_policy::set_evaluation_time_limit(config.policy_timeout);
    // Opening the stores blocks (files, and PostgreSQL through a blocking client).
    let state = tokio::task::block_in_place(|| -> Result<Arc<state::State>> {
        let state = Arc::new(state::State::start(config)?);
        if !config.read_only {
            state.start_checker()?;
        }
        Ok(state)
    })?;
    let tls = config.tls.as_ref().map(tls::load).transpose()?;
    let socket = std::net::TcpListener::bind(config.addr).with_context(|| format!("listening on {}", config.addr))?;
    socket.set_nonblocking(true).context("the listening socket")?;
    Ok((state, Listener { socket, tls }))
}

/// HTTP/1 and HTTP/2 settings: a client has `header_timeout` to send a request's head (a slow
/// client cannot hold a connection open for free); idle keep-alive connections are closed.
fn settings<A>(server: &mut axum_server::Server<std::net::SocketAddr, A>, config: &Config) {
    let builder = server.http_builder();
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
}

async fn run(
    config: &Config,
    state: Arc<state::State>,
    listener: Listener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let app = router(Arc::clone(&state), config);
    let poller = config.poll.map(|every| tokio::spawn(poll(Arc::clone(&state), every)));
    let secrets = tokio::spawn(Arc::clone(&state.auth).watch());
    let warmer = tokio::spawn(warm::run(Arc::clone(&state)));
    let watch = state.drift().map(|d| {
        let signer = config.ledger.as_ref().map(|(_, s)| s.clone());
        tokio::spawn(drift::run(state.drift_parts(), d, signer))
    });
    let local = listener.socket.local_addr().context("the listening address")?;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(None);
    });
    match (listener.tls, &config.tls) {
        (Some((rustls, loaded)), Some(files)) => {
            let watcher = tokio::spawn(tls::watch(files.clone(), rustls.clone(), loaded));
            let mut server = axum_server::from_tcp_rustls(listener.socket, rustls)
                .context("serving HTTPS")?
                // Small answers go out at once: without TCP_NODELAY an answer written in two
                // parts waits for the client's delayed ACK (40 ms on Linux).
                .map(|tls| tls::PeerAcceptor { inner: tls.acceptor(axum_server::accept::NoDelayAcceptor) });
            settings(&mut server, config);
            eprintln!("assay serve: listening on https://{local}");
            server.handle(handle).serve(app.into_make_service()).await.context("serving HTTPS")?;
            watcher.abort();
        }
        _ => {
            let mut server = axum_server::from_tcp(listener.socket)
                .context("serving HTTP")?
                .acceptor(axum_server::accept::NoDelayAcceptor);
            settings(&mut server, config);
            eprintln!("assay serve: listening on http://{local}");
            server.handle(handle).serve(app.into_make_service()).await.context("serving HTTP")?;
        }
    }
    if let Some(poller) = poller {
        poller.abort();
    }
    secrets.abort();
    warmer.abort();
    if let Some(watch) = watch {
        watch.abort();
    }
    // Requests are drained: every decision they made is queued. Flush them.
    let flushed = tokio::task::spawn_blocking(move || state.close()).await.context("flushing the ledger")?;
    flushed?;
    eprintln!("assay serve: stopped; every decision is in the ledger");
    Ok(())
}

/// Looks at the estate's source every `every`, for as long as the server runs.
async fn poll(state: Arc<state::State>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let s = Arc::clone(&state);
        if tokio::task::spawn_blocking(move || s.refresh()).await.is_err() {
            tracing::error!("the estate poll task failed");
        }
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C): the signal for a graceful shutdown.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    eprintln!("assay serve: shutting down: finishing requests in flight and flushing the ledger");
}
