//! OpenLineage intake and Marquez-style lineage queries:
//!
//! - `POST /api/v1/lineage`: one OpenLineage event, as OpenLineage's HTTP transport sends it
//!   (the path Marquez serves, so producers work unchanged). A valid event is applied to the graph
//!   in the data directory and committed before the answer (201; concurrent requests share one
//!   commit); an invalid one is answered 400 naming the field (checked against the OpenLineage
//!   JSON schemas too when the server has them). Each new event is a ledger entry holding its
//!   digest.
//! - `GET /api/v1/lineage?nodeId=dataset:NS:NAME&depth=20`: the connected graph around a node
//!   (upstream and downstream), in Marquez's answer shape.

use std::collections::HashMap;
use std::sync::Arc;

use assay_lineage::graph::{Applied, Node};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::errors::{ApiError, Body, error, parse_json, require_json};
use crate::state::State as ServerState;

fn no_graph() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "lineage_unavailable",
        "the server has no --data directory for its lineage graph",
    )
}

/// `POST /api/v1/lineage`.
pub(crate) async fn post(State(state): State<Arc<ServerState>>, headers: HeaderMap, Body(body): Body) -> Response {
    if let Err(e) = require_json(&headers) {
        return e.into_response();
    }
    let raw = match parse_json(&body) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let event = match assay_lineage::parse(&raw) {
        Ok(e) => e,
        Err(e) => return ApiError::invalid(e.to_string()).into_response(),
    };
    let Some(intake) = state.lineage() else { return no_graph() };
    if let Some(schemas) = &intake.schemas {
        let problems: Vec<String> = schemas.validate(&raw).iter().map(ToString::to_string).collect();
        if !problems.is_empty() {
            return ApiError::invalid(problems.join("; ")).into_response();
        }
    }
    let digest = format!("sha256:{}", event.digest);
    let record = assay_record::Record::lineage_event(&event);
    match intake.apply(event).await {
        Ok(applied) => {
            let new = applied == Applied::New;
            state.metrics.decision("lineage", if new { "new" } else { "duplicate" });
            if new {
                state.record(record);
            }
            (StatusCode::CREATED, Json(json!({"digest": digest, "new": new}))).into_response()
        }
        // The graph's store failed (PostgreSQL unreachable, a full disk): nothing was kept, and
        // the sender should send again later.
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", e),
    }
}

/// `GET /api/v1/lineage?nodeId=…&depth=…`.
pub(crate) async fn get(
    State(state): State<Arc<ServerState>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let Some(id) = params.get("nodeId") else {
        return ApiError::invalid("nodeId is required: dataset:NAMESPACE:NAME or job:NAMESPACE:NAME").into_response();
    };
    let Some(node) = Node::parse(id) else {
        return ApiError::invalid(format!("nodeId {id:?} is not dataset:NAMESPACE:NAME or job:NAMESPACE:NAME"))
            .into_response();
    };
    let depth = match params.get("depth").map(|d| d.parse::<usize>()) {
        None => 20,
        Some(Ok(d)) => d.min(100),
        Some(Err(_)) => return ApiError::invalid("depth must be a whole number").into_response(),
    };
    let Some(intake) = state.lineage() else { return no_graph() };
    let answer = intake
        .query(move |graph| {
            let Some(mut lineage) = graph.upstream(&node, depth)? else { return Ok(None) };
            if let Some(down) = graph.downstream(&node, depth)? {
                lineage.merge(down);
            }
            graph.marquez(&lineage).map(Some)
        })
        .await;
    match answer {
        Ok(Some(v)) => Json(v).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "not_found", format!("{id} is not in the lineage graph")),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", e),
    }
}
