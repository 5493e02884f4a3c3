//! The read API behind the web UI, under `/api/v1/`: `GET /api/v1/posture` and the OpenAPI
//! document that describes every `/api/v1/` route (`GET /api/v1/openapi.json`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State as Extract};
use serde_json::Value;

use crate::posture::{self, Filter};
use crate::state::State;

/// `GET /api/v1/posture?policy=&namespace=&file=&action=`.
pub(crate) async fn posture(Extract(state): Extract<Arc<State>>, Query(filter): Query<Filter>) -> Json<Value> {
    Json(posture::document(&state, &filter).await)
}

/// The OpenAPI 3.1 document of `/api/v1/`.
const OPENAPI: &str = include_str!("openapi.json");

/// `GET /api/v1/openapi.json`.
pub(crate) async fn openapi() -> axum::response::Response {
    use axum::response::IntoResponse as _;
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}
