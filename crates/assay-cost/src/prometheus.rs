//! Prometheus' HTTP API, the read side assay needs: `query_range`, with a bearer token or basic
//! authentication and a CA bundle. Answers are read as the API documents them
//! (`{"status": "success", "data": {"resultType": "matrix", "result": [...]}}`); an error names
//! the query and what Prometheus said (`bad_data: parse error …`).

use std::collections::BTreeMap;
use std::time::Duration;

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
        // Read straight into series (sample values borrowed from the body until parsed): an
        // answer of fourteen days for a namespace is megabytes.
        let answer: Answer<'_> = serde_json::from_str(&body).map_err(|_| Error::Query {
            query: query.to_string(),
            kind: format!("HTTP {status}"),
            message: body.chars().take(200).collect(),
        })?;
        if answer.status != "success" {
            return Err(Error::Query {
                query: query.to_string(),
                kind: answer.error_type.map_or_else(|| format!("HTTP {status}"), |t| t.to_string()),
                message: answer.error.unwrap_or_default().to_string(),
            });
        }
        Ok(answer
            .data
            .map(|d| {
                d.result
                    .into_iter()
                    .map(|r| Series {
                        labels: r.metric,
                        samples: r.values.into_iter().filter_map(|(t, v)| Some((t, v.parse::<f64>().ok()?))).collect(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// Prometheus's answer, as its HTTP API documents it.
#[derive(serde::Deserialize)]
struct Answer<'a> {
    #[serde(borrow)]
    status: std::borrow::Cow<'a, str>,
    #[serde(rename = "errorType", borrow, default)]
    error_type: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    error: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<Matrix<'a>>,
}

#[derive(serde::Deserialize)]
struct Matrix<'a> {
    #[serde(borrow, default)]
    result: Vec<RawSeries<'a>>,
}

#[derive(serde::Deserialize)]
struct RawSeries<'a> {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    /// `[time, "value"]` pairs; values are strings (`NaN` and `+Inf` included).
    #[serde(borrow, default)]
    values: Vec<(f64, std::borrow::Cow<'a, str>)>,
}
