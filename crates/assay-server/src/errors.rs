//! Error answers: a JSON body with a code and a message, in OPA's shape
//! (`{"code": "invalid_parameter", "message": "…"}`), for every endpoint.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The largest request body, in bytes: what [`Body`] takes from the router's state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimit(pub(crate) usize);

/// An error answer.
pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, Json(json!({"code": code, "message": message.into()}))).into_response()
}

/// A 503 answer with `Retry-After`: the server cannot do this now.
pub(crate) fn unavailable(message: impl Into<String>) -> Response {
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
    r.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("5"));
    r
}

/// An error answer not yet rendered (small, so that it can travel in a `Result`).
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// A 400 `invalid_parameter` answer.
    pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, code: "invalid_parameter", message: message.into() }
    }

    /// A 415 answer: the content type is not one this endpoint reads.
    pub(crate) fn unsupported(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::UNSUPPORTED_MEDIA_TYPE, code: "invalid_parameter", message: message.into() }
    }

    /// The same answer with `prefix` before its message.
    pub(crate) fn prefixed(mut self, prefix: &str) -> ApiError {
        self.message.insert_str(0, prefix);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.status, self.code, self.message)
    }
}

/// A request body, read whole and decoded when it is gzip-compressed (`Content-Encoding: gzip`,
/// as OPA accepts and OpenLineage's HTTP transport sends with `compression: gzip`); a body that
/// is too large, before or after decoding, is answered 413 with the limit, one that cannot be
/// read or decoded 400, another encoding 415, before the handler runs.
#[derive(Debug)]
pub(crate) struct Body(pub(crate) Bytes);

impl<S> FromRequest<S> for Body
where
    S: Send + Sync,
    BodyLimit: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let BodyLimit(limit) = BodyLimit::from_ref(state);
        let encoding = request
            .headers()
            .get(axum::http::header::CONTENT_ENCODING)
            .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
        let body = Bytes::from_request(request, state).await.map_err(|r| body_rejection(r, limit))?;
        match encoding.as_deref() {
            None | Some("" | "identity") => Ok(Body(body)),
            Some("gzip" | "x-gzip") => gunzip(&body, limit).map(Body).map_err(IntoResponse::into_response),
            Some(other) => {
                Err(ApiError::unsupported(format!("content encoding {other:?} is not supported (use gzip or none)"))
                    .into_response())
            }
        }
    }
}

/// Decodes a gzip body, refusing to decode more than `limit` bytes.
fn gunzip(body: &[u8], limit: usize) -> Result<Bytes, ApiError> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut decoder = flate2::read::GzDecoder::new(body).take(limit as u64 + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|e| ApiError::invalid(format!("the gzip-encoded body could not be decoded: {e}")))?;
    if out.len() > limit {
        return Err(ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "request_too_large",
            message: format!("the decoded request body is larger than {limit} bytes"),
        });
    }
    Ok(Bytes::from(out))
}

/// A body that could not be read: too large (413) or broken.
fn body_rejection(rejection: BytesRejection, limit: usize) -> Response {
    let status = rejection.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        error(status, "request_too_large", format!("the request body is larger than {limit} bytes"))
    } else {
        error(status, "invalid_parameter", format!("could not read the request body: {}", rejection.body_text()))
    }
}

/// Parses a JSON body, naming the line and column of a syntax error.
pub(crate) fn parse_json(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("the body is not valid JSON: {e}")))
}

/// Requires a JSON content type (a missing one is accepted, as OPA does).
pub(crate) fn require_json(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    match headers.get(axum::http::header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("")) {
        None => Ok(()),
        Some(v) if v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")) => Ok(()),
        Some(v) => Err(ApiError::unsupported(format!("content type {v:?} is not application/json"))),
    }
}

/// Unknown paths.
pub(crate) async fn not_found(method: Method, uri: Uri) -> Response {
    error(StatusCode::NOT_FOUND, "not_found", format!("no endpoint {method} {}", uri.path()))
}
