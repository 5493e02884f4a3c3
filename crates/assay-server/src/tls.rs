//! HTTPS: the certificate and key are read from PEM files and read again whenever either file
//! changes (cert-manager and Kubernetes secret volumes replace them in place), without dropping
//! connections. A file that does not parse is reported and the certificate in use stays.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum_server::tls_rustls::RustlsConfig;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The certificate chain and private key files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// How often the files are compared with what was loaded.
const RELOAD_EVERY: Duration = Duration::from_secs(2);

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading the TLS {what} {}", path.display()))
}

/// Builds a rustls server configuration from PEM bytes, naming the file that is wrong.
fn server_config(tls: &Tls, cert: &[u8], key: &[u8]) -> Result<ServerConfig> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("{}: not a PEM certificate chain: {e}", tls.cert.display()))?;
    if chain.is_empty() {
        bail!("{}: no CERTIFICATE block", tls.cert.display());
    }
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|e| anyhow::anyhow!("{}: no usable PEM private key: {e}", tls.key.display()))?;
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .with_context(|| format!("{} and {} do not make a certificate", tls.cert.display(), tls.key.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The certificate and key bytes that were loaded.
pub(crate) type Loaded = (Vec<u8>, Vec<u8>);

/// Loads the files once, for start-up: any problem is an error.
pub(crate) fn load(tls: &Tls) -> Result<(RustlsConfig, Loaded)> {
    // ring is the one crypto provider built in; installing it twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = read(&tls.cert, "certificate")?;
    let key = read(&tls.key, "key")?;
    let config = server_config(tls, &cert, &key)?;
    Ok((RustlsConfig::from_config(Arc::new(config)), (cert, key)))
}

/// Watches the files and swaps the certificate in when they change, for as long as it runs.
pub(crate) async fn watch(tls: Tls, config: RustlsConfig, mut loaded: Loaded) {
    let mut ticks = tokio::time::interval(RELOAD_EVERY);
    let mut rejected: Option<Loaded> = None;
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let (Ok(cert), Ok(key)) = (tokio::fs::read(&tls.cert).await, tokio::fs::read(&tls.key).await) else {
            continue;
        };
        if (&cert, &key) == (&loaded.0, &loaded.1) || rejected.as_ref().is_some_and(|r| (&r.0, &r.1) == (&cert, &key)) {
            continue;
        }
        match server_config(&tls, &cert, &key) {
            Ok(next) => {
                config.reload_from_config(Arc::new(next));
                tracing::info!(cert = %tls.cert.display(), "TLS certificate reloaded");
                eprintln!("assay serve: TLS certificate reloaded from {}", tls.cert.display());
                loaded = (cert, key);
            }
            // A half-written pair is common while a secret is being replaced: try again next tick.
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "TLS files changed but do not load; keeping the certificate in use");
                rejected = Some((cert, key));
            }
        }
    }
}
