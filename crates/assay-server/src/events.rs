//! Event-driven compliance: `POST /v1/events` takes CloudEvents 1.0 over HTTP, in structured mode
//! (`application/cloudevents+json`), batched mode (`application/cloudevents-batch+json`) or
//! binary mode (`ce-*` headers, the body is the data). Event policies (`package assay.events`)
//! see the event in its JSON form as `input`; what they put in `findings` (or `deny`) is
//! answered, written to the ledger, and turned into the actions `assay.yaml` configures: an
//! alert to each URL in `actions.alerts`, and a quarantine request to `actions.quarantine` for a
//! finding that asks for one. Both go through the persistent outbox.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Map, Value, json};

use assay_record::Record;

use crate::alerts;
use crate::decisions::{decision_id, record};
use crate::errors::{ApiError, Body, error, parse_json};
use crate::state::State as ServerState;

const STRUCTURED: &str = "application/cloudevents+json";
const BATCH: &str = "application/cloudevents-batch+json";

fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase())
}

fn is_json_type(media: &str) -> bool {
    media == "application/json" || media.ends_with("+json") || media == "text/json"
}

/// Checks the context attributes CloudEvents 1.0 requires, and the types of the optional ones.
fn validate(event: &Value) -> Result<(), ApiError> {
    let Value::Object(map) = event else {
        return Err(ApiError::invalid("a CloudEvent must be a JSON object"));
    };
    match map.get("specversion") {
        Some(Value::String(v)) if v == "1.0" => {}
        Some(v) => return Err(ApiError::invalid(format!("specversion is {v}; this endpoint takes CloudEvents 1.0"))),
        None => return Err(ApiError::invalid("the CloudEvent has no specversion")),
    }
    for required in ["id", "source", "type"] {
        match map.get(required) {
            Some(Value::String(s)) if !s.is_empty() => {}
            Some(_) => {
                return Err(ApiError::invalid(format!("the CloudEvent's {required} must be a non-empty string")));
            }
            None => return Err(ApiError::invalid(format!("the CloudEvent has no {required}"))),
        }
    }
    for optional in ["subject", "datacontenttype", "dataschema", "time"] {
        if let Some(v) = map.get(optional)
            && !v.is_string()
        {
            return Err(ApiError::invalid(format!("the CloudEvent's {optional} must be a string")));
        }
    }
    if let Some(Value::String(t)) = map.get("time")
        && chrono::DateTime::parse_from_rfc3339(t).is_err()
    {
        return Err(ApiError::invalid(format!("the CloudEvent's time {t:?} is not an RFC 3339 timestamp")));
    }
    if map.contains_key("data") && map.contains_key("data_base64") {
        return Err(ApiError::invalid("a CloudEvent has data or data_base64, not both"));
    }
    for name in map.keys() {
        if name == "data_base64" {
            continue;
        }
        if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
            return Err(ApiError::invalid(format!(
                "attribute name {name:?}: CloudEvents attribute names are lowercase letters and digits"
            )));
        }
    }
    Ok(())
}

/// Reads a binary-mode event: attributes from `ce-*` headers, data from the body.
fn binary(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let mut map = Map::new();
    for (name, value) in headers {
        let Some(attribute) = name.as_str().strip_prefix("ce-") else { continue };
        let value = value.to_str().map_err(|_| ApiError::invalid(format!("header {name} is not text")))?;
        // Header values are percent-encoded where they are not printable ASCII.
        let decoded = percent_decode(value).map_err(|e| ApiError::invalid(format!("header {name}: {e}")))?;
        map.insert(attribute.to_string(), Value::String(decoded));
    }
    let media = media_type(headers);
    if let Some(m) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        map.insert("datacontenttype".into(), Value::String(m.to_string()));
    }
    if !body.is_empty() {
        let data = match media.as_deref() {
            Some(m) if is_json_type(m) => parse_json(body)?,
            Some(m) if m.starts_with("text/") => match std::str::from_utf8(body) {
                Ok(text) => Value::String(text.to_string()),
                Err(_) => return Err(ApiError::invalid("a text/* body that is not UTF-8")),
            },
            _ => {
                map.insert("data_base64".into(), Value::String(base64::engine::general_purpose::STANDARD.encode(body)));
                return Ok(Value::Object(map));
            }
        };
        map.insert("data".into(), data);
    }
    Ok(Value::Object(map))
}

fn percent_decode(value: &str) -> Result<String, String> {
    if !value.contains('%') {
        return Ok(value.to_string());
    }
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or("a % without two hex digits")?;
            let hex = std::str::from_utf8(hex).map_err(|_| "a % without two hex digits")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "a % without two hex digits")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "percent-encoding that is not UTF-8".to_string())
}

/// The events in a request, in JSON form.
fn events_of(headers: &HeaderMap, body: &[u8]) -> Result<Vec<Value>, ApiError> {
    let media = media_type(headers);
    let events = if headers.contains_key("ce-specversion") {
        vec![binary(headers, body)?]
    } else {
        match media.as_deref() {
            Some(STRUCTURED) => vec![parse_json(body)?],
            Some(BATCH) => match parse_json(body)? {
                Value::Array(items) => items,
                _ => return Err(ApiError::invalid("a batch of CloudEvents must be a JSON array")),
            },
            Some(other) => {
                return Err(ApiError::unsupported(format!(
                    "content type {other:?} without ce-* headers: send {STRUCTURED}, {BATCH}, \
                     or binary mode with ce-specversion, ce-id, ce-source and ce-type headers"
                )));
            }
            None => {
                return Err(ApiError::unsupported("no content type: send a CloudEvent (structured or binary mode)"));
            }
        }
    };
    for (i, event) in events.iter().enumerate() {
        validate(event).map_err(|e| if events.len() > 1 { e.prefixed(&format!("event {i}: ")) } else { e })?;
    }
    Ok(events)
}

/// `POST /v1/events`.
pub(crate) async fn receive(State(state): State<Arc<ServerState>>, headers: HeaderMap, Body(body): Body) -> Response {
    let events = match events_of(&headers, &body) {
        Ok(e) => e,
        Err(e) => return e.into_response(),
    };
    if let Some(why) = state.unloggable() {
        return crate::errors::unavailable(why);
    }
    let active = state.active();
    let actions = &active.actions;
    let mut answers = Vec::new();
    let mut messages = Vec::new();
    let mut records = Vec::new();
    for event in events {
        let id = decision_id();
        let event_id = event["id"].as_str().unwrap_or_default().to_string();
        let found = match assay_policy::events::evaluate(&active.policies, &event) {
            Ok(f) => f,
            Err(e) => {
                let message = format!("evaluating the event policies on event {event_id}: {e}");
                records.push(record(&id, "assay/events", &event, Some(&json!({"error": message})), &active));
                for r in records {
                    state.log(r, &active).await;
                }
                return error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message);
            }
        };
        let subject = event.get("subject").and_then(Value::as_str);
        let mut quarantined = 0;
        for f in &found {
            let about = json!({
                "finding": f.finding,
                "event": {"id": event_id, "source": event["source"], "type": event["type"], "subject": event.get("subject")},
                "decision_id": id,
                "estate": active.estate_at(),
            });
            let quarantine = f.quarantine.is_some() && alerts::quarantines(actions);
            quarantined += usize::from(quarantine);
            messages.extend(alerts::messages(
                actions,
                &alerts::Finding {
                    about,
                    subject,
                    quarantine: f.quarantine.as_ref().map(|q| q.resource.as_deref()),
                    key: None,
                },
            ));
            records.push(Record::event_finding(
                &id,
                &event,
                &f.finding,
                actions.alerts.len(),
                quarantine,
                active.estate_at(),
            ));
        }
        state.metrics.decision("event", if found.is_empty() { "clean" } else { "finding" });
        let findings: Vec<&Value> = found.iter().map(|f| &f.finding).collect();
        records.push(record(&id, "assay/events", &event, Some(&json!({"findings": findings})), &active));
        answers.push(json!({
            "id": event_id,
            "decision_id": id,
            "findings": findings,
            "alerts": found.len() * actions.alerts.len(),
            "quarantine_requests": quarantined,
        }));
    }
    // The actions are stored before the answer: an event that was answered never loses one.
    if !messages.is_empty() {
        match state.outbox() {
            Some(outbox) => {
                let pushed = tokio::task::spawn_blocking(move || outbox.push(&messages)).await;
                match pushed {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        return error(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "outbox_unavailable",
                            format!("the findings' alerts could not be stored, so the event is not accepted: {e:#}"),
                        );
                    }
                    Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", e.to_string()),
                }
            }
            None => {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "outbox_unavailable",
                    "assay.yaml configures alert actions, but the server has no --data directory for its outbox",
                );
            }
        }
    }
    for r in records {
        state.log(r, &active).await;
    }
    let body = if answers.len() == 1 && media_type(&headers).as_deref() != Some(BATCH) {
        answers.pop().unwrap_or_default()
    } else {
        json!({"events": answers})
    };
    Json(body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(axum::http::HeaderName::from_bytes(k.as_bytes()).expect("test"), v.parse().expect("test"));
        }
        h
    }

    #[test]
    fn structured_and_binary_modes_give_the_same_event() {
        let structured = br#"{"specversion":"1.0","id":"e1","source":"aws.s3","type":"com.example.copy","subject":"b/k","datacontenttype":"application/json","data":{"a":1}}"#;
        let s = events_of(&headers(&[("content-type", STRUCTURED)]), structured).expect("test");
        let b = events_of(
            &headers(&[
                ("content-type", "application/json"),
                ("ce-specversion", "1.0"),
                ("ce-id", "e1"),
                ("ce-source", "aws.s3"),
                ("ce-type", "com.example.copy"),
                ("ce-subject", "b%2Fk"),
            ]),
            br#"{"a":1}"#,
        )
        .expect("test");
        assert_eq!(s, b);
    }

    #[test]
    fn missing_and_bad_attributes_are_named() {
        let h = headers(&[("content-type", STRUCTURED)]);
        let msg = |body: &str| format!("{:?}", events_of(&h, body.as_bytes()).expect_err("must fail"));
        assert!(msg(r#"{"specversion":"1.0","source":"s","type":"t"}"#).contains("no id"));
        assert!(msg(r#"{"specversion":"0.3","id":"1","source":"s","type":"t"}"#).contains("specversion"));
        assert!(msg(r#"{"specversion":"1.0","id":"1","source":"s","type":"t","time":"yesterday"}"#).contains("time"));
        assert!(msg(r#"{"specversion":"1.0","id":"1","source":"s","type":"t","Bad":1}"#).contains("Bad"));
        let binary = headers(&[("ce-specversion", "1.0"), ("ce-id", "1"), ("ce-source", "s")]);
        assert!(format!("{:?}", events_of(&binary, b"").expect_err("must fail")).contains("no type"));
        let wrong = headers(&[("content-type", "text/plain")]);
        assert!(format!("{:?}", events_of(&wrong, b"hi").expect_err("must fail")).contains("without ce-* headers"));
    }

    #[test]
    fn binary_data_that_is_not_text_is_kept_as_base64() {
        let h = headers(&[
            ("content-type", "application/octet-stream"),
            ("ce-specversion", "1.0"),
            ("ce-id", "1"),
            ("ce-source", "s"),
            ("ce-type", "t"),
        ]);
        let e = events_of(&h, &[0, 159, 146, 150]).expect("test");
        assert_eq!(e[0]["data_base64"], "AJ+Slg==");
    }
}
