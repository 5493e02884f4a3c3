//! Findings into actions: the one place where a finding (of the event policies on a CloudEvent,
//! or of the residency check on the lineage graph) becomes the alerts and quarantine requests
//! that `assay.yaml`'s `actions` configure, each a structured-mode CloudEvent 1.0 for the
//! outbox: `dev.assay.alert.v1` to every URL of `actions.alerts`, and
//! `dev.assay.quarantine.requested.v1` to `actions.quarantine` when the finding asks for one.

use assay_estate::settings::Actions;
use serde::Serialize;
use serde_json::Value;

use crate::outbox::Message;

/// The `type` of alerts.
pub(crate) const ALERT: &str = "dev.assay.alert.v1";
/// The `type` of quarantine requests.
pub(crate) const QUARANTINE: &str = "dev.assay.quarantine.requested.v1";

/// A finding to act on.
#[derive(Debug)]
pub(crate) struct Finding<'a> {
    /// What the alert's `data` holds: the finding and what it is about.
    pub(crate) about: Value,
    /// The alert's `subject` (the event's subject, the dataset).
    pub(crate) subject: Option<&'a str>,
    /// `Some` when the finding asks for a quarantine: the resource, when named (the request's
    /// `subject`).
    pub(crate) quarantine: Option<Option<&'a str>>,
    /// A key that names the finding across replicas and restarts (a residency or quality
    /// finding's key): its messages are stored once however often it is found.
    pub(crate) key: Option<&'a str>,
}

/// The messages `actions` configure for a finding.
pub(crate) fn messages(actions: &Actions, finding: &Finding<'_>) -> Vec<Message> {
    let mut out: Vec<Message> = actions
        .alerts
        .iter()
        .map(|url| Message {
            kind: "alert",
            url: url.clone(),
            body: emitted(ALERT, finding.subject, &finding.about),
            dedup: finding.key.map(|k| format!("alert {k} {url}")),
        })
        .collect();
    if let (Some(resource), Some(url)) = (finding.quarantine, &actions.quarantine) {
        out.push(Message {
            kind: "quarantine",
            url: url.clone(),
            body: emitted(QUARANTINE, resource, &finding.about),
            dedup: finding.key.map(|k| format!("quarantine {k} {url}")),
        });
    }
    out
}

/// Whether `actions` would send a quarantine request for a finding that asks for one.
pub(crate) fn quarantines(actions: &Actions) -> bool {
    actions.quarantine.is_some()
}

/// A structured-mode CloudEvent that assay emits.
#[derive(Debug, Serialize)]
struct Emitted<'a> {
    specversion: &'static str,
    id: String,
    source: &'static str,
    #[serde(rename = "type")]
    kind: &'a str,
    time: String,
    datacontenttype: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
    data: &'a Value,
}

fn emitted(kind: &str, subject: Option<&str>, data: &Value) -> Vec<u8> {
    let event = Emitted {
        specversion: "1.0",
        id: uuid::Uuid::new_v4().to_string(),
        source: "assay/serve",
        kind,
        time: assay_record::Time::now().to_string(),
        datacontenttype: "application/json",
        subject,
        data,
    };
    serde_json::to_vec(&event).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_finding_alerts_every_url_and_asks_for_quarantine_only_when_it_wants_one() {
        let actions =
            Actions { alerts: vec!["http://a/1".into(), "http://a/2".into()], quarantine: Some("http://q".into()) };
        let about = json!({"finding": {"msg": "m"}});
        let plain = Finding { about: about.clone(), subject: Some("s"), quarantine: None, key: None };
        let kinds: Vec<&str> = messages(&actions, &plain).iter().map(|m| m.kind).collect();
        assert_eq!(kinds, ["alert", "alert"]);
        let asked = Finding { about, subject: Some("s"), quarantine: Some(Some("s3://bucket")), key: None };
        let sent = messages(&actions, &asked);
        assert_eq!(sent.len(), 3);
        let request: Value = serde_json::from_slice(&sent[2].body).expect("a CloudEvent");
        assert_eq!((request["type"].as_str(), request["subject"].as_str()), (Some(QUARANTINE), Some("s3://bucket")));
        assert_eq!(request["specversion"], "1.0");
        assert!(messages(&Actions::default(), &asked).is_empty());
    }
}
