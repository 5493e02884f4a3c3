//! `assay serve`: argument parsing for the run-time server in `assay-server`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use assay_server::{Config, FailureMode};

/// What to answer when a policy fails to evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum FailureArg {
    /// Refuse the request (the default).
    Closed,
    /// Allow the request, with a warning.
    Open,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// The estate directory whose policies are enforced.
    #[arg(long, env = "ASSAY_ESTATE", default_value = ".")]
    estate: PathBuf,
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, env = "ASSAY_ADDR", default_value = "127.0.0.1:8181")]
    addr: SocketAddr,
    /// Append every decision to this ledger (a log made by `assay log init`).
    #[arg(long, env = "ASSAY_LEDGER")]
    ledger: Option<PathBuf>,
    /// The private key that signs the ledger's checkpoints.
    #[arg(long, env = "ASSAY_LEDGER_KEY")]
    ledger_key: Option<PathBuf>,
    /// The largest request body in bytes; larger requests get 413.
    #[arg(long, env = "ASSAY_MAX_BODY", default_value_t = 4 * 1024 * 1024)]
    max_body: usize,
    /// What to answer when a policy fails to evaluate.
    #[arg(long, env = "ASSAY_FAILURE_MODE", value_enum, default_value_t = FailureArg::Closed)]
    failure_mode: FailureArg,
}

pub(crate) fn run(args: ServeArgs) -> Result<u8> {
    let ledger = match (&args.ledger, &args.ledger_key) {
        (Some(dir), Some(key)) => Some((dir.clone(), crate::log::read_signer(key)?)),
        (Some(_), None) => anyhow::bail!("--ledger needs --ledger-key (or ASSAY_LEDGER_KEY)"),
        (None, _) => None,
    };
    let config = Config {
        estate: args.estate,
        addr: args.addr,
        ledger,
        max_body: args.max_body,
        failure_mode: match args.failure_mode {
            FailureArg::Closed => FailureMode::Closed,
            FailureArg::Open => FailureMode::Open,
        },
    };
    let runtime = crate::cost::runtime().context("starting the server runtime")?;
    runtime.block_on(assay_server::serve(config, assay_server::shutdown_signal()))?;
    Ok(0)
}
