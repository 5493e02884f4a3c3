//! A drift report: per cluster, each object's standing and, with an audit, what the estate's
//! policies find in the live objects; rendered as a table, JSON, Markdown or SARIF, as the verdict
//! of `assay check` is.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};

use crate::state::{ObjectDrift, Status, counts};

/// The schema of the JSON rendering.
pub const SCHEMA: &str = "assay.dev/drift/v1";

/// A policy finding on a live object (the audit). A large cluster's audit repeats the same objects
/// and the same policies and messages many thousands of times, so a finding is an object and a
/// shared [`Rule`], both handed out by an [`Interner`]: 32 bytes a finding instead of 72.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditFinding {
    /// The object, `Kind[.group]/[namespace/]name`.
    pub object: Arc<str>,
    /// What the policy found.
    pub rule: Arc<Rule>,
    /// Whether the object is in Git (false: made by hand or by a controller).
    pub in_git: bool,
}

/// What a policy found, shared by every finding that says the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    /// The rule or constraint (`data.k8s.labels.deny`, `K8sRequiredLabels/must-have-owner`).
    pub policy: Arc<str>,
    /// deny, warn or dryrun.
    pub action: Arc<str>,
    /// The policy's message.
    pub message: Arc<str>,
}

/// A finding is rendered flat: `object`, `policy`, `action`, `message`, `in_git`.
impl Serialize for AuditFinding {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut s = serializer.serialize_struct("AuditFinding", 5)?;
        s.serialize_field("object", &*self.object)?;
        s.serialize_field("policy", &*self.rule.policy)?;
        s.serialize_field("action", &*self.rule.action)?;
        s.serialize_field("message", &*self.rule.message)?;
        s.serialize_field("in_git", &self.in_git)?;
        s.end()
    }
}

/// One cluster's comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterDrift {
    /// The cluster's name.
    pub cluster: String,
    /// Where its live state was read from: files, or `context NAME`.
    pub source: String,
    /// How many objects stand where.
    pub counts: BTreeMap<&'static str, usize>,
    /// Every object's result, in key order.
    pub objects: Vec<ObjectDrift>,
    /// What could not be read (a file, a kind the API refused), named; the rest was compared.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// What was not searched (see [`crate::cluster::Snapshot::warnings`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// With an audit: the policies' findings on the live objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<Vec<AuditFinding>>,
}

impl ClusterDrift {
    /// A cluster's result from its objects.
    pub fn new(cluster: &str, source: &str, objects: Vec<ObjectDrift>, errors: Vec<String>) -> ClusterDrift {
        ClusterDrift {
            cluster: cluster.to_string(),
            source: source.to_string(),
            counts: counts(&objects),
            objects,
            errors,
            warnings: Vec::new(),
            audit: None,
        }
    }
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// The estate's `name`, if set.
    pub estate: Option<String>,
    /// The estate revision compared (a commit, or `sha256:` of a directory's files).
    pub revision: String,
    /// When the live state was read (RFC 3339).
    pub time: String,
    /// One per cluster.
    pub clusters: Vec<ClusterDrift>,
}

impl Report {
    /// Objects not in sync, over all clusters.
    pub fn drifted(&self) -> usize {
        self.clusters.iter().flat_map(|c| &c.objects).filter(|o| o.status != Status::InSync).count()
    }

    /// Audit findings that deny or warn, over all clusters.
    pub fn violations(&self) -> usize {
        self.clusters.iter().flat_map(|c| c.audit.iter().flatten()).filter(|f| &*f.rule.action != "dryrun").count()
    }

    /// What could not be read, over all clusters.
    pub fn errors(&self) -> usize {
        self.clusters.iter().map(|c| c.errors.len()).sum()
    }

    /// 0 in sync (and, with an audit, no violation); 1 drift or violations; 2 something could not
    /// be read.
    pub fn exit_code(&self) -> u8 {
        if self.errors() > 0 {
            2
        } else if self.drifted() > 0 || self.violations() > 0 {
            1
        } else {
            0
        }
    }
}

fn short(v: &Option<Value>) -> String {
    match v {
        None => "(absent)".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            let text = other.to_string();
            if text.chars().count() > 80 { format!("{}…", text.chars().take(79).collect::<String>()) } else { text }
        }
    }
}

/// A terminal table: per cluster, the objects not in sync with their fields, then the audit.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    for c in &report.clusters {
        let _ = writeln!(
            out,
            "cluster {} ({}): {} in sync, {} drifted, {} missing, {} extra",
            c.cluster, c.source, c.counts["in_sync"], c.counts["drifted"], c.counts["missing"], c.counts["extra"]
        );
        for o in c.objects.iter().filter(|o| o.status != Status::InSync) {
            let place = match (&o.file, o.line) {
                (Some(f), Some(l)) => format!("  ({f}:{l})"),
                _ => String::new(),
            };
            let _ = writeln!(out, "  {:<8} {}{place}", o.status.name(), o.key);
            for d in &o.diffs {
                let _ = writeln!(out, "           {}: {} → {}", d.path, short(&d.desired), short(&d.live));
            }
        }
        for e in &c.errors {
            let _ = writeln!(out, "  error    {e}");
        }
        for w in &c.warnings {
            let _ = writeln!(out, "  warning  {w}");
        }
        if let Some(audit) = &c.audit {
            let _ = writeln!(out, "  audit: {} finding(s) on live objects", audit.len());
            for f in audit {
                let origin = if f.in_git { "" } else { " (not in Git)" };
                let _ =
                    writeln!(out, "  {:<8} {}{origin}  {}  {}", f.rule.action, f.object, f.rule.policy, f.rule.message);
            }
        }
    }
    let _ = writeln!(
        out,
        "{} object(s) not in sync{}{}",
        report.drifted(),
        if report.clusters.iter().any(|c| c.audit.is_some()) {
            format!(", {} audit violation(s)", report.violations())
        } else {
            String::new()
        },
        if report.errors() > 0 { format!(", {} read error(s)", report.errors()) } else { String::new() }
    );
    out
}

fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Markdown, for an issue or a pull-request comment.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## Drift: {} object(s) not in sync\n", report.drifted());
    let _ = writeln!(out, "Estate revision `{}`, live state read at {}.\n", report.revision, report.time);
    for c in &report.clusters {
        let _ = writeln!(
            out,
            "### Cluster `{}`\n\n{} in sync, {} drifted, {} missing, {} extra ({}).\n",
            md(&c.cluster),
            c.counts["in_sync"],
            c.counts["drifted"],
            c.counts["missing"],
            c.counts["extra"],
            md(&c.source)
        );
        let rows: Vec<&ObjectDrift> = c.objects.iter().filter(|o| o.status != Status::InSync).collect();
        if !rows.is_empty() {
            out.push_str("| Status | Object | Field | Git | Live |\n|---|---|---|---|---|\n");
            for o in rows {
                if o.diffs.is_empty() {
                    let _ = writeln!(out, "| {} | `{}` | | | |", o.status.name(), md(&o.key.to_string()));
                }
                for d in &o.diffs {
                    let _ = writeln!(
                        out,
                        "| {} | `{}` | `{}` | `{}` | `{}` |",
                        o.status.name(),
                        md(&o.key.to_string()),
                        md(&d.path),
                        md(&short(&d.desired)),
                        md(&short(&d.live))
                    );
                }
            }
            out.push('\n');
        }
        for e in &c.errors {
            let _ = writeln!(out, "- **could not read**: {}", md(e));
        }
        if let Some(audit) = &c.audit.as_ref().filter(|a| !a.is_empty()) {
            out.push_str("\n| Action | Object | Policy | Message |\n|---|---|---|---|\n");
            for f in audit.iter() {
                let _ = writeln!(
                    out,
                    "| {} | `{}`{} | `{}` | {} |",
                    f.rule.action,
                    md(&f.object),
                    if f.in_git { "" } else { " (not in Git)" },
                    md(&f.rule.policy),
                    md(&f.rule.message)
                );
            }
            out.push('\n');
        }
    }
    out
}

/// SARIF 2.1.0: a result per object not in sync (at its estate file and line; an extra object,
/// which has none, at its logical location) and per audit finding.
pub fn sarif(report: &Report, path_prefix: &str) -> Value {
    let uri = |path: &str| {
        if path_prefix.is_empty() { path.to_string() } else { format!("{}/{path}", path_prefix.trim_end_matches('/')) }
    };
    let rules = [
        ("drift/drifted", "A live object differs from what Git declares", "error"),
        ("drift/missing", "An object Git declares is not live", "error"),
        ("drift/extra", "A live object of the estate is not in Git", "warning"),
        ("drift/audit", "A policy of the estate finds a live object in violation", "error"),
        ("drift/unreadable", "Live state that could not be read", "error"),
    ];
    let index = |id: &str| rules.iter().position(|r| r.0 == id).unwrap_or(0);
    let mut results = Vec::new();
    for c in &report.clusters {
        for o in c.objects.iter().filter(|o| o.status != Status::InSync) {
            let id = format!(
                "drift/{}",
                match o.status {
                    Status::Drifted => "drifted",
                    Status::Missing => "missing",
                    _ => "extra",
                }
            );
            let fields: Vec<String> =
                o.diffs.iter().map(|d| format!("{}: {} → {}", d.path, short(&d.desired), short(&d.live))).collect();
            let text = if fields.is_empty() {
                format!("{} in cluster {}: {}", o.key, c.cluster, o.status.name())
            } else {
                format!("{} in cluster {} drifted: {}", o.key, c.cluster, fields.join("; "))
            };
            let mut result = json!({
                "ruleId": id,
                "ruleIndex": index(&id),
                "level": rules[index(&id)].2,
                "message": {"text": text},
                "properties": {"cluster": c.cluster, "status": o.status.name(), "diffs": o.diffs},
            });
            let logical = json!([{"fullyQualifiedName": format!("{}/{}", c.cluster, o.key), "kind": "resource"}]);
            result["locations"] = match (&o.file, o.line) {
                (Some(f), Some(l)) => json!([{
                    "physicalLocation": {"artifactLocation": {"uri": uri(f), "uriBaseId": "%SRCROOT%"}, "region": {"startLine": l.max(1)}},
                    "logicalLocations": logical
                }]),
                _ => json!([{"logicalLocations": logical}]),
            };
            results.push(result);
        }
        for f in c.audit.iter().flatten() {
            results.push(json!({
                "ruleId": "drift/audit",
                "ruleIndex": index("drift/audit"),
                "level": if &*f.rule.action == "deny" { "error" } else { "warning" },
                "message": {"text": format!("{} in cluster {}: {}: {}", f.object, c.cluster, f.rule.policy, f.rule.message)},
                "locations": [{"logicalLocations": [{"fullyQualifiedName": format!("{}/{}", c.cluster, f.object), "kind": "resource"}]}],
                "properties": {"cluster": c.cluster, "policy": f.rule.policy, "action": f.rule.action, "inGit": f.in_git},
            }));
        }
        for e in &c.errors {
            results.push(json!({
                "ruleId": "drift/unreadable",
                "ruleIndex": index("drift/unreadable"),
                "level": "error",
                "message": {"text": format!("cluster {}: {e}", c.cluster)},
            }));
        }
    }
    let rules = rules
        .iter()
        .map(|(id, text, level)| {
            json!({
                "id": id,
                "shortDescription": {"text": text},
                "defaultConfiguration": {"level": level},
                "properties": {"tags": ["drift"]}
            })
        })
        .collect();
    assay_estate::sarif::log(rules, results, report.errors() == 0)
}

/// Hands out one shared copy of each text and of each [`Rule`] (see [`AuditFinding`]).
#[derive(Debug, Default)]
pub struct Interner {
    texts: std::collections::HashSet<Arc<str>>,
    rules: std::collections::HashSet<Arc<Rule>>,
}

impl Interner {
    /// The shared copy of `text`.
    pub fn get(&mut self, text: &str) -> Arc<str> {
        if let Some(t) = self.texts.get(text) {
            return Arc::clone(t);
        }
        let t: Arc<str> = Arc::from(text);
        self.texts.insert(Arc::clone(&t));
        t
    }

    /// A finding of `policy` with `action` and `message` on `object` (its identity, shared
    /// through [`Interner::get`] once for all of the object's findings).
    pub fn finding(
        &mut self,
        object: &Arc<str>,
        policy: &str,
        action: &str,
        message: &str,
        in_git: bool,
    ) -> AuditFinding {
        let rule = Rule { policy: self.get(policy), action: self.get(action), message: self.get(message) };
        let rule = match self.rules.get(&rule) {
            Some(r) => Arc::clone(r),
            None => {
                let r = Arc::new(rule);
                self.rules.insert(Arc::clone(&r));
                r
            }
        };
        AuditFinding { object: Arc::clone(object), rule, in_git }
    }
}
