//! Ledger records: every `assay.dev/record/*` type that assay writes into the ledger, as typed
//! structs, and the one way to turn a record into a ledger entry (canonical JSON, RFC 8785).
//!
//! This crate owns the records' schemas (documented field by field in `docs/records.md`); no
//! other crate builds a record. Every record has a versioned `type` and a `time` (RFC 3339, UTC,
//! microseconds). Reading accepts every version assay has written, so that `assay log show`
//! reads old logs: `decision/v1` and `finding/v1` had `timestamp` where later versions have
//! `time`; `lineage-event/v1` and `provenance/v1` had no time.
//!
//! This crate knows what records mean, but not where they go: it neither opens the ledger nor
//! reads a clock except in [`Time::now`].

use std::collections::BTreeMap;

use assay_estate::Origin;
use assay_ledger::store::MAX_ENTRY;
use assay_lineage::check::Finding;
use assay_lineage::graph::sha256_hex;
use assay_verdict::{Summary, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Errors of making a ledger entry from a record.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The record could not be serialized.
    #[error("serializing a {kind} record: {message}")]
    Serialize {
        /// The record's type.
        kind: &'static str,
        /// Why.
        message: String,
    },
    /// The record does not fit a ledger entry.
    #[error("the {kind} record is {size} bytes, more than a ledger entry holds ({MAX_ENTRY})")]
    TooLarge {
        /// The record's type.
        kind: &'static str,
        /// Its size in canonical JSON.
        size: usize,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// When a record was made: RFC 3339 in UTC with microseconds (`2026-11-23T07:00:00.123456Z`).
/// Any RFC 3339 time is read (earlier versions wrote milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub chrono::DateTime<chrono::Utc>);

impl Time {
    /// Now, by the system clock, to the microsecond (what a record keeps).
    pub fn now() -> Time {
        use chrono::SubsecRound as _;
        Time(chrono::Utc::now().trunc_subsecs(6))
    }

    /// Parses an RFC 3339 time.
    pub fn parse(text: &str) -> Option<Time> {
        chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| Time(t.with_timezone(&chrono::Utc)))
    }
}

impl std::fmt::Display for Time {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
    }
}

impl Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Time, D::Error> {
        let text = String::deserialize(d)?;
        Time::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not an RFC 3339 time")))
    }
}

/// The estate revision a run-time record was made under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EstateAt {
    /// `name` from `assay.yaml`, if set.
    pub name: Option<String>,
    /// The commit, or `sha256:` of the files for a directory.
    pub revision: String,
}

/// One ledger record, tagged by its `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Record {
    /// A verdict of `assay check --ledger`.
    #[serde(rename = "assay.dev/record/verdict/v1")]
    Verdict(VerdictRecord),
    /// A decision of `assay serve` (admission, data API, event).
    #[serde(rename = "assay.dev/record/decision/v2", alias = "assay.dev/record/decision/v1")]
    Decision(DecisionRecord),
    /// A finding of the event policies on a CloudEvent.
    #[serde(rename = "assay.dev/record/finding/v2", alias = "assay.dev/record/finding/v1")]
    EventFinding(EventFindingRecord),
    /// An estate revision the server activated.
    #[serde(rename = "assay.dev/record/activation/v1")]
    Activation(ActivationRecord),
    /// An estate revision the server refused.
    #[serde(rename = "assay.dev/record/refusal/v1")]
    Refusal(RefusalRecord),
    /// An OpenLineage event accepted into the lineage graph.
    #[serde(rename = "assay.dev/record/lineage-event/v2", alias = "assay.dev/record/lineage-event/v1")]
    LineageEvent(LineageEventRecord),
    /// A data-residency finding.
    #[serde(rename = "assay.dev/record/residency-finding/v1")]
    ResidencyFinding(ResidencyFindingRecord),
    /// A signed provenance statement that was issued.
    #[serde(rename = "assay.dev/record/provenance/v2", alias = "assay.dev/record/provenance/v1")]
    Provenance(ProvenanceRecord),
    /// A change in a dataset's data-quality metric across runs.
    #[serde(rename = "assay.dev/record/quality-finding/v1")]
    QualityFinding(QualityFindingRecord),
    /// A signed statement of what a cluster matched of the estate at a time.
    #[serde(rename = "assay.dev/record/sync-attestation/v1")]
    SyncAttestation(SyncAttestationRecord),
    /// A live object started or stopped drifting, or violating a policy.
    #[serde(rename = "assay.dev/record/drift-observation/v1")]
    DriftObservation(DriftObservationRecord),
}

/// The prefix of every record type.
pub const TYPE_PREFIX: &str = "assay.dev/record/";

impl Record {
    /// The record's `type`, as written.
    pub fn kind(&self) -> &'static str {
        match self {
            Record::Verdict(_) => "assay.dev/record/verdict/v1",
            Record::Decision(_) => "assay.dev/record/decision/v2",
            Record::EventFinding(_) => "assay.dev/record/finding/v2",
            Record::Activation(_) => "assay.dev/record/activation/v1",
            Record::Refusal(_) => "assay.dev/record/refusal/v1",
            Record::LineageEvent(_) => "assay.dev/record/lineage-event/v2",
            Record::ResidencyFinding(_) => "assay.dev/record/residency-finding/v1",
            Record::Provenance(_) => "assay.dev/record/provenance/v2",
            Record::QualityFinding(_) => "assay.dev/record/quality-finding/v1",
            Record::SyncAttestation(_) => "assay.dev/record/sync-attestation/v1",
            Record::DriftObservation(_) => "assay.dev/record/drift-observation/v1",
        }
    }

    /// Reads a record from a ledger entry. `Ok(None)` when the entry is not an assay record at all
    /// (not JSON, or no `assay.dev/record/` type); an error names what is wrong with one that is.
    pub fn from_entry(entry: &[u8]) -> std::result::Result<Option<Record>, String> {
        let Ok(value) = serde_json::from_slice::<Value>(entry) else { return Ok(None) };
        let Some(kind) = value.get("type").and_then(Value::as_str) else { return Ok(None) };
        if !kind.starts_with(TYPE_PREFIX) {
            return Ok(None);
        }
        let kind = kind.to_string();
        serde_json::from_value(value).map(Some).map_err(|e| format!("{kind}: {e}"))
    }

    /// The record as a ledger entry: canonical JSON (RFC 8785). A decision too large for an
    /// entry keeps its input's SHA-256 and size instead of the input.
    pub fn to_entry(&self) -> Result<Vec<u8>> {
        let kind = self.kind();
        let bytes = canonical(kind, self)?;
        if bytes.len() <= MAX_ENTRY {
            return Ok(bytes);
        }
        if let Record::Decision(d) = self
            && d.input.is_some()
        {
            let mut smaller = d.clone();
            if let Some(input) = smaller.input.take() {
                let canonical_input = canonical(kind, &input)?;
                smaller.input_sha256 = Some(sha256_hex(&canonical_input));
                smaller.input_size = Some(canonical_input.len());
            }
            return Record::Decision(smaller).to_entry();
        }
        Err(Error::TooLarge { kind, size: bytes.len() })
    }
}

fn canonical(kind: &'static str, value: &impl Serialize) -> Result<Vec<u8>> {
    serde_json_canonicalizer::to_vec(value).map_err(|e| Error::Serialize { kind, message: e.to_string() })
}

/// `assay.dev/record/verdict/v1`: a verdict, by digest and summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerdictRecord {
    /// When it was recorded.
    pub time: Time,
    /// The estate checked.
    pub estate: VerdictEstate,
    /// The verdict.
    pub verdict: VerdictDigest,
}

/// The estate of a verdict record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictEstate {
    /// `name` from `assay.yaml`, if set.
    pub name: Option<String>,
    /// Where it was read from.
    pub origin: Origin,
    /// The commit, or `sha256:` of the files for a directory.
    pub revision: String,
}

/// A verdict in a record: its schema, digest and counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictDigest {
    /// The verdict's `schema`.
    pub schema: String,
    /// `sha256:` of the canonical JSON of the whole verdict (what `--format json` prints).
    pub digest: String,
    /// Its summary.
    pub summary: Summary,
}

impl Record {
    /// The record of a verdict about the estate at `revision`.
    pub fn verdict(verdict: &Verdict, revision: String) -> Result<Record> {
        let canonical = canonical("assay.dev/record/verdict/v1", verdict)?;
        Ok(Record::Verdict(VerdictRecord {
            time: Time::now(),
            estate: VerdictEstate {
                name: verdict.estate.name.clone(),
                origin: verdict.estate.origin.clone(),
                revision,
            },
            verdict: VerdictDigest {
                schema: verdict.schema.to_string(),
                digest: format!("sha256:{}", sha256_hex(&canonical)),
                summary: verdict.summary.clone(),
            },
        }))
    }
}

/// `assay.dev/record/decision/v2`: one policy decision at run time, with the fields of OPA's
/// decision-log events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// The decision's id (a random UUID), as answered to the caller.
    pub decision_id: String,
    /// What was decided: `admission`, `assay/events`, or the data API path.
    pub path: String,
    /// The input, or what of it the server keeps (by default, for an admission review, what
    /// names the request; see `DecisionRecord::summarize_input`); absent when nothing is kept,
    /// when too large for an entry, or erased by a mask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// SHA-256 (hex) of the whole input's canonical JSON (RFC 8785).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_sha256: Option<String>,
    /// Size in bytes of the whole input's canonical JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_size: Option<usize>,
    /// The result (`null` when undefined).
    pub result: Option<Value>,
    /// When (`timestamp` in v1).
    #[serde(alias = "timestamp")]
    pub time: Time,
    /// The estate revision that decided.
    pub estate: EstateAt,
    /// JSON pointers erased by `data.system.log.mask`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub erased: Vec<String>,
    /// JSON pointers replaced by `data.system.log.mask`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masked: Vec<String>,
    /// Why the mask policy failed (the whole input is then erased).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_error: Option<String>,
}

impl DecisionRecord {
    /// A decision made now.
    pub fn new(decision_id: &str, path: &str, input: &Value, result: Option<&Value>, estate: EstateAt) -> Self {
        DecisionRecord {
            decision_id: decision_id.to_string(),
            path: path.to_string(),
            input: Some(input.clone()),
            input_sha256: None,
            input_size: None,
            result: result.cloned(),
            time: Time::now(),
            estate,
            erased: Vec::new(),
            masked: Vec::new(),
            mask_error: None,
        }
    }

    /// Sets `input_sha256` and `input_size` from the input (a decision keeps its input's
    /// digest whatever else is kept of it).
    pub fn digest_input(&mut self) {
        if let Some(input) = &self.input
            && let Ok(bytes) = serde_json_canonicalizer::to_vec(input)
        {
            self.input_sha256 = Some(sha256_hex(&bytes));
            self.input_size = Some(bytes.len());
        }
    }

    /// Keeps only what names the request, with the input's digest: of an AdmissionReview,
    /// its `apiVersion`, `kind` and the request's `uid`, `kind`, `resource`, `subResource`,
    /// `namespace`, `name`, `operation`, `dryRun` and `userInfo.username`, never the object;
    /// of any other input, nothing. An auditor who holds an input can prove it was the one
    /// decided by its digest.
    pub fn summarize_input(&mut self) {
        self.digest_input();
        let Some(input) = self.input.take() else { return };
        if input.get("kind").and_then(Value::as_str) != Some("AdmissionReview") {
            return;
        }
        let mut kept = serde_json::Map::new();
        for key in ["apiVersion", "kind"] {
            if let Some(v) = input.get(key) {
                kept.insert(key.into(), v.clone());
            }
        }
        if let Some(request) = input.get("request") {
            let mut r = serde_json::Map::new();
            for key in ["uid", "kind", "resource", "subResource", "namespace", "name", "operation", "dryRun"] {
                if let Some(v) = request.get(key) {
                    r.insert(key.into(), v.clone());
                }
            }
            if let Some(user) = request.pointer("/userInfo/username") {
                r.insert("userInfo".into(), serde_json::json!({"username": user}));
            }
            kept.insert("request".into(), Value::Object(r));
        }
        self.input = Some(Value::Object(kept));
    }
}

/// The CloudEvent a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRef {
    /// `id`.
    pub id: String,
    /// `source`.
    pub source: String,
    /// `type`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// `assay.dev/record/finding/v2`: what the event policies found in one CloudEvent, and the
/// actions taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventFindingRecord {
    /// The decision that found it.
    pub decision_id: String,
    /// The event.
    pub event: EventRef,
    /// The finding as the policy wrote it (an object with at least `msg`).
    pub finding: Value,
    /// Alerts queued for it.
    pub alerts: usize,
    /// Whether a quarantine request was queued.
    pub quarantine: bool,
    /// When (`timestamp` in v1).
    #[serde(alias = "timestamp")]
    pub time: Time,
    /// The estate revision that decided.
    pub estate: EstateAt,
}

impl Record {
    /// The record of a finding of the event policies on `event` (a CloudEvent), made now.
    pub fn event_finding(
        decision_id: &str,
        event: &Value,
        finding: &Value,
        alerts: usize,
        quarantine: bool,
        estate: EstateAt,
    ) -> Record {
        let text = |key: &str| event.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
        Record::EventFinding(EventFindingRecord {
            decision_id: decision_id.to_string(),
            event: EventRef { id: text("id"), source: text("source"), kind: text("type") },
            finding: finding.clone(),
            alerts,
            quarantine,
            time: Time::now(),
            estate,
        })
    }

    /// The record of a revision activated now, replacing `previous`.
    pub fn activation(
        estate: EstateAt,
        previous: Option<&str>,
        policies: usize,
        signatures: Vec<SignatureCheck>,
    ) -> Record {
        Record::Activation(ActivationRecord {
            time: Time::now(),
            estate,
            previous: previous.map(str::to_string),
            policies,
            signatures,
        })
    }

    /// The record of a revision refused at `time`, `active` staying in force.
    pub fn refusal(time: Time, estate: EstateAt, active: Option<&str>, reasons: Vec<String>) -> Record {
        Record::Refusal(RefusalRecord { time, estate, active: active.map(str::to_string), reasons })
    }
}

/// A commit's signature check, as an activation records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureCheck {
    /// The commit id.
    pub commit: String,
    /// Whether a trusted signer signed it.
    pub trusted: bool,
    /// Who signed it, or what is wrong.
    pub detail: String,
}

/// `assay.dev/record/activation/v1`: the server enforces a new estate revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationRecord {
    /// When.
    pub time: Time,
    /// The revision activated.
    pub estate: EstateAt,
    /// The revision it replaced.
    pub previous: Option<String>,
    /// Rules and constraints compiled.
    pub policies: usize,
    /// Signature checks of the commits since the previous revision (empty when not required).
    pub signatures: Vec<SignatureCheck>,
}

/// `assay.dev/record/refusal/v1`: the server refused a new estate revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefusalRecord {
    /// When.
    pub time: Time,
    /// The revision refused.
    pub estate: EstateAt,
    /// The revision that stays active.
    pub active: Option<String>,
    /// Why: untrusted commits, policies that do not compile.
    pub reasons: Vec<String>,
}

/// `assay.dev/record/lineage-event/v2`: an OpenLineage event accepted into the graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineageEventRecord {
    /// When it was accepted (absent in v1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
    /// `sha256:` of the event's canonical JSON.
    pub digest: String,
    /// `eventType` of a run event.
    #[serde(rename = "eventType")]
    pub event_type: Option<String>,
    /// `eventTime`, as sent.
    #[serde(rename = "eventTime")]
    pub event_time: String,
    /// The run id of a run event.
    pub run: Option<String>,
    /// `NAMESPACE:NAME` of the job.
    pub job: Option<String>,
    /// `producer`.
    pub producer: String,
}

impl Record {
    /// The record of an event accepted now.
    pub fn lineage_event(event: &assay_lineage::Event) -> Record {
        Record::LineageEvent(LineageEventRecord {
            time: Some(Time::now()),
            digest: format!("sha256:{}", event.digest),
            event_type: event.event_type.clone(),
            event_time: event.event_time.clone(),
            run: event.run_id.clone(),
            job: event.job.as_ref().map(|(ns, n)| format!("{ns}:{n}")),
            producer: event.producer.clone(),
        })
    }
}

/// `assay.dev/record/residency-finding/v1`: a flow that breaks a residency rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResidencyFindingRecord {
    /// When it was found.
    pub time: Time,
    /// What identifies it across checks (see `Finding::key`).
    pub key: String,
    /// The finding.
    pub finding: Finding,
    /// The estate whose rules it breaks.
    pub estate: EstateAt,
}

impl Record {
    /// The record of a residency finding made at `time`.
    pub fn residency_finding(finding: &Finding, time: Time, estate: EstateAt) -> Record {
        Record::ResidencyFinding(ResidencyFindingRecord { time, key: finding.key(), finding: finding.clone(), estate })
    }
}

/// `assay.dev/record/quality-finding/v1`: a dataset's metric changed across runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityFindingRecord {
    /// When it was found.
    pub time: Time,
    /// What identifies it across checks (see `quality::Finding::key`).
    pub key: String,
    /// The finding.
    pub finding: assay_lineage::quality::Finding,
}

impl Record {
    /// The record of a data-quality finding made at `time`.
    pub fn quality_finding(finding: &assay_lineage::quality::Finding, time: Time) -> Record {
        Record::QualityFinding(QualityFindingRecord { time, key: finding.key(), finding: finding.clone() })
    }
}

/// `assay.dev/record/sync-attestation/v1`: a sync attestation was signed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncAttestationRecord {
    /// When the live state was observed.
    pub time: Time,
    /// The cluster.
    pub cluster: String,
    /// The estate revision it was compared with.
    pub estate: EstateAt,
    /// How many objects stood where (`in_sync`, `drifted`, `missing`, `extra`).
    pub counts: BTreeMap<String, usize>,
    /// The statement's subject digest: SHA-256 of what was live.
    pub observed_sha256: String,
    /// SHA-256 (hex) of the DSSE envelope's canonical JSON.
    pub envelope_sha256: String,
}

impl Record {
    /// The record of a signed sync attestation (`statement` in `envelope`).
    pub fn sync_attestation(statement: &Value, envelope: &Value, time: Time, estate: EstateAt) -> Record {
        let predicate = &statement["predicate"];
        Record::SyncAttestation(SyncAttestationRecord {
            time,
            cluster: predicate["cluster"].as_str().unwrap_or("").to_string(),
            estate,
            counts: serde_json::from_value(predicate["counts"].clone()).unwrap_or_default(),
            observed_sha256: statement["subject"][0]["digest"]["sha256"].as_str().unwrap_or("").to_string(),
            envelope_sha256: assay_lineage::graph::digest(envelope),
        })
    }
}

/// `assay.dev/record/drift-observation/v1`: what changed in a watched cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftObservationRecord {
    /// When it was observed.
    pub time: Time,
    /// The cluster.
    pub cluster: String,
    /// The estate revision compared with.
    pub estate: EstateAt,
    /// The object (`apps/Deployment ns/name`, or `Kind/ns/name` for an audit finding).
    pub object: String,
    /// `drifted`, `missing`, `extra`, `in_sync` (no longer drifting), or `violation` /
    /// `resolved` for an audit finding.
    pub status: String,
    /// The fields that differ (drift) or the policy and its message (audit).
    pub details: Vec<String>,
    /// SHA-256 of the live object as observed, when it is live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_sha256: Option<String>,
}

/// The subject of a provenance statement: the dataset version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// `dataset:NAMESPACE:NAME`.
    pub name: String,
    /// Its digest set (`sha256`).
    pub digest: BTreeMap<String, String>,
    /// Annotations (`version`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// `assay.dev/record/provenance/v2`: a signed provenance statement was issued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvenanceRecord {
    /// When it was issued (absent in v1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
    /// The statement's subject.
    pub subject: Subject,
    /// SHA-256 (hex) of the DSSE envelope's canonical JSON.
    pub envelope_sha256: String,
    /// The run that produced the subject.
    pub run: String,
}

impl Record {
    /// The record of a provenance statement issued now, in `envelope`.
    pub fn provenance(statement: &Value, envelope: &Value, run: &str) -> Result<Record> {
        let subject = statement.get("subject").and_then(|s| s.get(0)).cloned().unwrap_or(Value::Null);
        let subject: Subject = serde_json::from_value(subject).map_err(|e| Error::Serialize {
            kind: "assay.dev/record/provenance/v2",
            message: format!("the statement's subject: {e}"),
        })?;
        Ok(Record::Provenance(ProvenanceRecord {
            time: Some(Time::now()),
            subject,
            envelope_sha256: assay_lineage::graph::digest(envelope),
            run: run.to_string(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estate() -> EstateAt {
        EstateAt { name: Some("acme".into()), revision: "abc".into() }
    }

    #[test]
    fn time_is_written_with_microseconds_and_read_in_any_precision() {
        let t = Time::parse("2026-11-23T07:00:00.123Z").expect("parse");
        assert_eq!(t.to_string(), "2026-11-23T07:00:00.123000Z");
        assert_eq!(Time::parse("2026-11-23T08:00:00.123+01:00"), Some(t));
        assert_eq!(Time::parse("yesterday"), None);
    }

    #[test]
    fn a_record_round_trips_through_its_entry() {
        let record = Record::Decision(DecisionRecord::new(
            "id-1",
            "admission",
            &serde_json::json!({"a": 1}),
            Some(&serde_json::json!(true)),
            estate(),
        ));
        let entry = record.to_entry().expect("entry");
        let text = String::from_utf8(entry.clone()).expect("utf-8");
        assert!(text.contains(r#""type":"assay.dev/record/decision/v2""#), "{text}");
        assert_eq!(Record::from_entry(&entry), Ok(Some(record)));
    }

    #[test]
    fn a_summarized_admission_keeps_what_names_the_request_and_the_digest_of_the_rest() {
        let review = serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u1", "kind": {"kind": "Secret"}, "namespace": "prod", "name": "db",
                        "operation": "CREATE", "userInfo": {"username": "ci", "groups": ["system:masters"]},
                        "object": {"data": {"password": "c2VjcmV0"}}}
        });
        let mut d = DecisionRecord::new("id", "admission", &review, None, estate());
        d.summarize_input();
        let kept = d.input.clone().expect("kept");
        assert_eq!(kept["request"]["uid"], "u1");
        assert_eq!(kept["request"]["userInfo"], serde_json::json!({"username": "ci"}));
        assert!(!kept.to_string().contains("c2VjcmV0") && !kept.to_string().contains("system:masters"), "{kept}");
        let whole = serde_json_canonicalizer::to_vec(&review).expect("json");
        assert_eq!(d.input_sha256.as_deref(), Some(sha256_hex(&whole).as_str()));
        assert_eq!(d.input_size, Some(whole.len()));
        let mut other = DecisionRecord::new("id", "authz/allow", &serde_json::json!({"token": "t"}), None, estate());
        other.summarize_input();
        assert_eq!(other.input, None);
        assert!(other.input_sha256.is_some());
    }

    #[test]
    fn a_decision_too_large_keeps_its_input_digest() {
        let big = serde_json::json!({"blob": "x".repeat(MAX_ENTRY)});
        let record = Record::Decision(DecisionRecord::new("id", "p", &big, None, estate()));
        let entry = record.to_entry().expect("entry");
        assert!(entry.len() <= MAX_ENTRY);
        let Ok(Some(Record::Decision(d))) = Record::from_entry(&entry) else { panic!("not a decision") };
        assert_eq!(d.input, None);
        assert_eq!(d.input_size, Some(serde_json_canonicalizer::to_vec(&big).expect("json").len()));
        assert_eq!(d.input_sha256.map(|h| h.len()), Some(64));
    }

    #[test]
    fn version_1_decisions_with_a_timestamp_are_read() {
        let v1 = br#"{"decision_id":"d","estate":{"name":null,"revision":"r"},"input":{},"path":"admission","result":null,"timestamp":"2026-11-20T10:00:00.000001Z","type":"assay.dev/record/decision/v1"}"#;
        let Ok(Some(Record::Decision(d))) = Record::from_entry(v1) else { panic!("not read") };
        assert_eq!(d.time.to_string(), "2026-11-20T10:00:00.000001Z");
    }

    #[test]
    fn entries_that_are_not_records_are_told_apart_from_broken_records() {
        assert_eq!(Record::from_entry(b"plain text"), Ok(None));
        assert_eq!(Record::from_entry(br#"{"type":"something/else"}"#), Ok(None));
        let broken = Record::from_entry(br#"{"type":"assay.dev/record/refusal/v1","time":"now"}"#);
        assert!(broken.as_ref().is_err_and(|e| e.starts_with("assay.dev/record/refusal/v1: ")), "{broken:?}");
    }
}
