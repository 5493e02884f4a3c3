//! OPA's data API: `POST /v1/data/{path}` with `{"input": …}` answers `{"result": …}` (no
//! `result` when the document is undefined), `GET /v1/data/{path}` (with an optional `input`
//! query parameter holding JSON), `POST /v0/data/{path}` (the body is the input, the answer the
//! bare value, 404 when undefined), and `GET /health`. Every answer carries a `decision_id`
//! (v1 in the body, v0 in the `X-Decision-Id` header) that names its ledger record.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::decisions::{decision_id, record};
use crate::errors::{ApiError, Body, error, parse_json, require_json};
use crate::state::State as ServerState;

/// Evaluates `data.<path>` and logs the decision. `Err` is an answer to send as is.
async fn decide(
    state: &Arc<ServerState>,
    path: &str,
    input: Option<Value>,
) -> Result<(String, Option<Value>), Response> {
    if let Some(why) = state.unloggable() {
        return Err(crate::errors::unavailable(why));
    }
    let segments: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect();
    let active = state.active();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let result = active.policies.query(&segments, input.as_ref()).map_err(|e| {
        error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", format!("evaluating data/{path}: {e}"))
    })?;
    let id = decision_id();
    state.metrics.decision("data", if result.is_some() { "defined" } else { "undefined" });
    state.log(record(&id, path, &input.unwrap_or(Value::Null), result.as_ref(), &active), &active).await;
    Ok((id, result))
}

fn v1_answer(id: String, result: Option<Value>) -> Response {
    let mut body = json!({"decision_id": id});
    if let Some(result) = result {
        body["result"] = result;
    }
    Json(body).into_response()
}

/// The input of a v1 POST body: `{"input": …}`, or none for an empty body.
fn v1_input(headers: &HeaderMap, body: &[u8]) -> Result<Option<Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    require_json(headers)?;
    match parse_json(body)? {
        Value::Object(mut map) => Ok(map.remove("input")),
        _ => Err(ApiError::invalid("the body must be an object: {\"input\": …}")),
    }
}

/// `POST /v1/data/{path}`.
pub(crate) async fn post_v1(
    State(state): State<Arc<ServerState>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Response {
    let input = match v1_input(&headers, &body) {
        Ok(i) => i,
        Err(r) => return r.into_response(),
    };
    match decide(&state, &path, input).await {
        Ok((id, result)) => v1_answer(id, result),
        Err(r) => r,
    }
}

/// `POST /v1/data`: the whole `data` document.
pub(crate) async fn post_v1_root(state: State<Arc<ServerState>>, headers: HeaderMap, Body(body): Body) -> Response {
    post_v1(state, Path(String::new()), headers, Body(body)).await
}

/// `GET /v1/data/{path}?input=<json>`.
pub(crate) async fn get_v1(
    State(state): State<Arc<ServerState>>,
    Path(path): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(input) = query.get("input")
        && input.len() > state.max_body
    {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            format!("the input parameter is larger than {} bytes (the body limit)", state.max_body),
        );
    }
    let input = match query.get("input").map(|i| serde_json::from_str::<Value>(i)) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_parameter",
                format!("the input parameter is not JSON: {e}"),
            );
        }
    };
    match decide(&state, &path, input).await {
        Ok((id, result)) => v1_answer(id, result),
        Err(r) => r,
    }
}

/// `GET /v1/data`.
pub(crate) async fn get_v1_root(state: State<Arc<ServerState>>, query: Query<HashMap<String, String>>) -> Response {
    get_v1(state, Path(String::new()), query).await
}

/// `POST /v0/data/{path}`: the body is the input; the answer is the value itself.
pub(crate) async fn post_v0(
    State(state): State<Arc<ServerState>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Response {
    let input = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        if let Err(r) = require_json(&headers) {
            return r.into_response();
        }
        match parse_json(&body) {
            Ok(v) => Some(v),
            Err(r) => return r.into_response(),
        }
    };
    match decide(&state, &path, input).await {
        Ok((id, Some(result))) => ([("x-decision-id", id)], Json(result)).into_response(),
        Ok((id, None)) => {
            let mut r = error(StatusCode::NOT_FOUND, "undefined_document", format!("document missing: data/{path}"));
            if let Ok(v) = id.parse() {
                r.headers_mut().insert("x-decision-id", v);
            }
            r
        }
        Err(r) => r,
    }
}
