//! The Kubernetes admission webhook: AdmissionReview v1 in, AdmissionReview v1 out.
//!
//! The request's `uid` is echoed; a `deny` finding refuses the request with status 403 and
//! every deny message (`[policy] message`, one per line); `warn` findings become `warnings`;
//! `dryrun` findings are only logged. A policy that fails to evaluate follows the failure
//! mode: closed (the default) refuses with status 500 and says why; open allows and warns.

use std::sync::Arc;

use assay_estate::settings::EnforcementAction;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::config::FailureMode;
use crate::decisions::{decision_id, record};
use crate::errors::{Body, error, parse_json, require_json};
use crate::state::State as ServerState;

/// `POST /v1/admission`.
pub(crate) async fn review(State(state): State<Arc<ServerState>>, headers: HeaderMap, Body(body): Body) -> Response {
    if let Err(r) = require_json(&headers) {
        return r.into_response();
    }
    let review = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let (uid, request) = match assay_policy::review::admission_request(&review) {
        Ok(parsed) => parsed,
        Err(message) => return error(StatusCode::BAD_REQUEST, "invalid_parameter", message),
    };
    if let Some(why) = state.unloggable() {
        state.metrics.decision("admission", "unlogged");
        let response = json!({"uid": uid, "allowed": false, "status": {"code": 503, "message": why}});
        let answer = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response});
        return Json(answer).into_response();
    }
    // Evaluation takes well under a millisecond: it runs on the request's task, as OPA does,
    // rather than paying two thread hand-offs on the blocking pool.
    let active = state.active();
    let evaluation = active.policies.review(&request);
    let line = |f: &assay_policy::Finding| format!("[{}] {}", f.policy.id(), f.message);
    let denials: Vec<String> =
        evaluation.findings.iter().filter(|f| f.action == EnforcementAction::Deny).map(line).collect();
    let mut warnings: Vec<String> =
        evaluation.findings.iter().filter(|f| f.action == EnforcementAction::Warn).map(line).collect();
    let errors: Vec<String> = evaluation.errors.iter().map(|(p, e)| format!("[{}] {e}", p.id())).collect();

    let mut response = json!({"uid": uid});
    if !errors.is_empty() && state.failure_mode == FailureMode::Closed {
        response["allowed"] = json!(false);
        response["status"] = json!({
            "code": 500,
            "message": format!(
                "policy evaluation failed, so the request is refused (failure mode: closed):\n{}",
                errors.join("\n")
            ),
        });
    } else {
        if !errors.is_empty() {
            warnings.extend(errors.iter().map(|e| format!("{e} (failed to evaluate; allowed: failure mode open)")));
        }
        if denials.is_empty() {
            response["allowed"] = json!(true);
        } else {
            response["allowed"] = json!(false);
            response["status"] = json!({"code": 403, "reason": "Forbidden", "message": denials.join("\n")});
        }
    }
    if !warnings.is_empty() {
        response["warnings"] = json!(warnings);
    }
    let outcome = if !errors.is_empty() && state.failure_mode == FailureMode::Closed {
        "error"
    } else if response["allowed"] == true {
        "allowed"
    } else {
        "denied"
    };
    state.metrics.decision("admission", outcome);
    let answer = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response});

    let id = decision_id();
    let mut result = answer["response"].clone();
    result["findings"] = serde_json::to_value(&evaluation.findings).unwrap_or(Value::Null);
    state.log(record(&id, "admission", &review, Some(&result), &active), &active).await;
    ([("x-decision-id", id)], Json(answer)).into_response()
}
