//! Prometheus' HTTP API, the read side assay needs: `query_range`, with a bearer token or basic
//! authentication and a CA bundle. Answers are read as the API documents them
//! (`{"status": "success", "data": {"resultType": "matrix", "result": [...]}}`); an error names
//! the query and what Prometheus said (`bad_data: parse error …`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

/// How to reach a Prometheus.
#[derive(Debug, Clone, Default)]
pub struct Endpoint {
    /// Its base URL (`http://prometheus:9090`, or a path prefix behind a proxy).
    pub url: String,
    /// A bearer token sent as `Authorization: Bearer …`.
    pub bearer: Option<String>,
    /// Basic authentication: user and password.
    pub basic: Option<(String, String)>,
    /// PEM certificates to trust for HTTPS (beside none other).
    pub ca_pem: Option<Vec<u8>>,
}

/// One series of a range query: its labels and its (time, value) samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series' labels.
    pub labels: BTreeMap<String, String>,
    /// Samples in time order: seconds since the epoch, value.
    pub samples: Vec<(f64, f64)>,
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Prometheus could not be reached or did not answer.
    #[error("{url}: {message}")]
    Unreachable {
        /// Where.
        url: String,
        /// What happened.
        message: String,
    },
    /// Prometheus answered with an error.
    #[error("query {query:?}: {kind}: {message}")]
    Query {
        /// The query.
        query: String,
        /// Prometheus' `errorType` (or the HTTP status).
        kind: String,
        /// Prometheus' `error`.
        message: String,
    },
}

/// A client of one Prometheus.
pub struct Client {
    endpoint: Endpoint,
    agent: ureq::Agent,
    /// Range queries made.
    pub queries: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("url", &self.endpoint.url).finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `endpoint`; fails on a CA bundle that holds no certificate.
    pub fn new(endpoint: Endpoint) -> Result<Client, String> {
        use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
        let mut config =
            ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(120)));
        if let Some(pem) = &endpoint.ca_pem {
            let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err("the CA bundle holds no PEM certificate".into());
            }
            config = config.tls_config(
                TlsConfig::builder()
                    .provider(TlsProvider::Rustls)
                    .root_certs(RootCerts::Specific(std::sync::Arc::new(certs)))
                    .build(),
            );
        }
        Ok(Client { endpoint, agent: config.build().into(), queries: Default::default() })
    }

    /// `query_range`: every series `query` selects from `start` to `end` (seconds since the
    /// epoch) at `step` seconds.
    pub fn query_range(&self, query: &str, start: i64, end: i64, step: u64) -> Result<Vec<Series>, Error> {
        use base64::Engine as _;
        self.queries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let url = format!("{}/api/v1/query_range", self.endpoint.url.trim_end_matches('/'));
        let mut request = self.agent.post(&url);
        if let Some(token) = &self.endpoint.bearer {
            request = request.header("Authorization", &format!("Bearer {token}"));
        } else if let Some((user, password)) = &self.endpoint.basic {
            let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            request = request.header("Authorization", &format!("Basic {credentials}"));
        }
        let form = [
            ("query", query.to_string()),
            ("start", start.to_string()),
            ("end", end.to_string()),
            ("step", step.to_string()),
        ];
        let mut response =
            request.send_form(form).map_err(|e| Error::Unreachable { url: url.clone(), message: e.to_string() })?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(512 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| Error::Unreachable { url: url.clone(), message: e.to_string() })?;
        let doc: Value = serde_json::from_str(&body).map_err(|_| Error::Query {
            query: query.to_string(),
            kind: format!("HTTP {status}"),
            message: body.chars().take(200).collect(),
        })?;
        if doc["status"] != "success" {
            return Err(Error::Query {
                query: query.to_string(),
                kind: doc["errorType"].as_str().map_or_else(|| format!("HTTP {status}"), str::to_string),
                message: doc["error"].as_str().unwrap_or("").to_string(),
            });
        }
        Ok(parse_matrix(&doc["data"]))
    }
}

/// The series of a `matrix` answer's `data`; values that are not numbers (`NaN`, `+Inf` are
/// written as strings) are kept as such, and samples that do not read are left out.
pub fn parse_matrix(data: &Value) -> Vec<Series> {
    data["result"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|series| Series {
            labels: series["metric"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect(),
            samples: series["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|pair| {
                    let t = pair.get(0)?.as_f64()?;
                    let v = pair.get(1)?.as_str()?.parse::<f64>().ok()?;
                    Some((t, v))
                })
                .collect(),
        })
        .collect()
}
