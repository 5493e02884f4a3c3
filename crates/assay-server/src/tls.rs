//! HTTPS: the certificate and key are read from PEM files and read again whenever either file
//! changes (cert-manager and Kubernetes secret volumes replace them in place), without dropping
//! connections. A file that does not parse is reported and the certificate in use stays.
//!
//! With a client CA bundle, clients may present a certificate (mutual TLS, as the Kubernetes
//! API server does when it calls a webhook): one that the CA did not sign fails the handshake,
//! and the names of one it did ([`ClientCert`]) travel with each request of the connection for
//! `auth` to check. Clients without a certificate still connect (to present a token instead).

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
    /// PEM CA bundle that client certificates are verified against (read again with the rest).
    pub client_ca: Option<PathBuf>,
}

/// The verified client certificate of a connection: its subject and the names it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientCert {
    /// The subject, as RFC 4514 writes it (`CN=kube-apiserver,O=system`).
    pub(crate) subject: String,
    /// The subject's common names, then every DNS, URI, email and IP subject alternative name.
    pub(crate) names: Vec<String>,
}

impl ClientCert {
    /// Reads the names of a DER certificate (one rustls has verified).
    pub(crate) fn from_der(der: &[u8]) -> Option<ClientCert> {
        use x509_cert::der::Decode;
        use x509_cert::ext::pkix::SubjectAltName;
        use x509_cert::ext::pkix::name::GeneralName;
        let cert = x509_cert::Certificate::from_der(der).ok()?;
        let tbs = &cert.tbs_certificate;
        let mut names = Vec::new();
        for rdn in tbs.subject.0.iter() {
            for atv in rdn.0.iter() {
                if atv.oid == x509_cert::der::oid::db::rfc4519::CN {
                    let value = x509_cert::der::asn1::Utf8StringRef::try_from(&atv.value)
                        .map(|s| s.as_str().to_string())
                        .or_else(|_| {
                            x509_cert::der::asn1::PrintableStringRef::try_from(&atv.value)
                                .map(|s| s.as_str().to_string())
                        });
                    if let Ok(value) = value {
                        names.push(value);
                    }
                }
            }
        }
        if let Ok(Some((_, san))) = tbs.get::<SubjectAltName>() {
            for name in san.0 {
                match name {
                    GeneralName::DnsName(n)
                    | GeneralName::UniformResourceIdentifier(n)
                    | GeneralName::Rfc822Name(n) => {
                        names.push(n.as_str().to_string());
                    }
                    GeneralName::IpAddress(ip) => {
                        let bytes = ip.as_bytes();
                        let addr = match bytes.len() {
                            4 => <[u8; 4]>::try_from(bytes).ok().map(|b| std::net::IpAddr::from(b).to_string()),
                            16 => <[u8; 16]>::try_from(bytes).ok().map(|b| std::net::IpAddr::from(b).to_string()),
                            _ => None,
                        };
                        names.extend(addr);
                    }
                    _ => {}
                }
            }
        }
        Some(ClientCert { subject: tbs.subject.to_string(), names })
    }
}

/// How often the files are compared with what was loaded.
const RELOAD_EVERY: Duration = Duration::from_secs(2);

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading the TLS {what} {}", path.display()))
}

/// Builds a rustls server configuration from PEM bytes, naming the file that is wrong.
fn server_config(tls: &Tls, cert: &[u8], key: &[u8], ca: Option<&[u8]>) -> Result<ServerConfig> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("{}: not a PEM certificate chain: {e}", tls.cert.display()))?;
    if chain.is_empty() {
        bail!("{}: no CERTIFICATE block", tls.cert.display());
    }
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|e| anyhow::anyhow!("{}: no usable PEM private key: {e}", tls.key.display()))?;
    let builder = ServerConfig::builder();
    let builder = match (ca, &tls.client_ca) {
        (Some(ca), Some(path)) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(ca) {
                let c = c.map_err(|e| anyhow::anyhow!("{}: not a PEM CA bundle: {e}", path.display()))?;
                roots.add(c).with_context(|| format!("{}: a certificate that is not a usable CA", path.display()))?;
            }
            if roots.is_empty() {
                bail!("{}: no CERTIFICATE block", path.display());
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .allow_unauthenticated()
                .build()
                .with_context(|| format!("{}: the client CA bundle", path.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .with_context(|| format!("{} and {} do not make a certificate", tls.cert.display(), tls.key.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The certificate, key and client CA bytes that were loaded.
pub(crate) type Loaded = (Vec<u8>, Vec<u8>, Option<Vec<u8>>);

/// Loads the files once, for start-up: any problem is an error.
pub(crate) fn load(tls: &Tls) -> Result<(RustlsConfig, Loaded)> {
    // ring is the one crypto provider built in; installing it twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = read(&tls.cert, "certificate")?;
    let key = read(&tls.key, "key")?;
    let ca = tls.client_ca.as_deref().map(|p| read(p, "client CA bundle")).transpose()?;
    let config = server_config(tls, &cert, &key, ca.as_deref())?;
    Ok((RustlsConfig::from_config(Arc::new(config)), (cert, key, ca)))
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
        let ca = match &tls.client_ca {
            Some(path) => match tokio::fs::read(path).await {
                Ok(ca) => Some(ca),
                Err(_) => continue,
            },
            None => None,
        };
        let now = (cert, key, ca);
        if now == loaded || rejected.as_ref() == Some(&now) {
            continue;
        }
        match server_config(&tls, &now.0, &now.1, now.2.as_deref()) {
            Ok(next) => {
                config.reload_from_config(Arc::new(next));
                tracing::info!(cert = %tls.cert.display(), "TLS certificate reloaded");
                eprintln!("assay serve: TLS certificate reloaded from {}", tls.cert.display());
                loaded = now;
            }
            // A half-written pair is common while a secret is being replaced: try again next tick.
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "TLS files changed but do not load; keeping the certificate in use");
                rejected = Some(now);
            }
        }
    }
}

/// Accepts a TLS connection (with `TCP_NODELAY`) and gives each of its requests the client
/// certificate the handshake verified, if any.
#[derive(Debug, Clone)]
pub(crate) struct PeerAcceptor {
    pub(crate) inner: axum_server::tls_rustls::RustlsAcceptor<axum_server::accept::NoDelayAcceptor>,
}

type Accepted = axum_server::tls_rustls::RustlsAcceptor<axum_server::accept::NoDelayAcceptor>;

impl<S> axum_server::accept::Accept<tokio::net::TcpStream, S> for PeerAcceptor
where
    S: Send + 'static,
{
    type Stream = <Accepted as axum_server::accept::Accept<tokio::net::TcpStream, S>>::Stream;
    type Service = axum::middleware::AddExtension<S, Option<ClientCert>>;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = std::io::Result<(Self::Stream, Self::Service)>> + Send + 'static>,
    >;

    fn accept(&self, stream: tokio::net::TcpStream, service: S) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            let (stream, service) = axum_server::accept::Accept::accept(&inner, stream, service).await?;
            let client = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|leaf| ClientCert::from_der(leaf));
            Ok((stream, tower_layer::Layer::layer(&axum::Extension(client), service)))
        })
    }
}
