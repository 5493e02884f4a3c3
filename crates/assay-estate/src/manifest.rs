//! Parsing manifest files: multi-document YAML and JSON into Kubernetes-style objects that
//! remember their file and the line where their document starts.
//!
//! A YAML stream is split into documents at `---` lines before parsing. YAML forbids `---` at
//! the start of a line inside any scalar, so the split is exact, and it lets one broken document
//! be reported while its neighbours still load.

use std::fmt;

use serde::Serialize;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::Diagnostic;

/// A parsed document with the line where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// 1-based line of the document's first content line.
    pub line: u32,
    /// The document as JSON.
    pub value: Value,
}

/// A Kubernetes-style object (`apiVersion`, `kind`, `metadata`) from an estate file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Object {
    /// File it came from, relative to the estate root.
    pub path: String,
    /// 1-based line where its document starts.
    pub line: u32,
    /// The whole object.
    pub value: Value,
}

impl Object {
    /// `apiVersion`, or `""`.
    pub fn api_version(&self) -> &str {
        self.value.get("apiVersion").and_then(Value::as_str).unwrap_or("")
    }

    /// `kind`, or `""`.
    pub fn kind(&self) -> &str {
        self.value.get("kind").and_then(Value::as_str).unwrap_or("")
    }

    /// `metadata.name`, or `""`.
    pub fn name(&self) -> &str {
        self.value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
    }

    /// `metadata.namespace`, or `""`.
    pub fn namespace(&self) -> &str {
        self.value.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("")
    }

    /// The API group: the part of `apiVersion` before `/`, or `""` for the core group.
    pub fn group(&self) -> &str {
        self.api_version().rsplit_once('/').map(|(g, _)| g).unwrap_or("")
    }

    /// The API version without the group.
    pub fn version(&self) -> &str {
        let v = self.api_version();
        v.rsplit_once('/').map(|(_, v)| v).unwrap_or(v)
    }

    /// A stable identity: `group/Kind namespace/name`, as users name objects.
    pub fn identity(&self) -> String {
        let ns = self.namespace();
        let name = self.name();
        let kind = match self.group() {
            "" => self.kind().to_string(),
            g => format!("{}.{g}", self.kind()),
        };
        if ns.is_empty() { format!("{kind}/{name}") } else { format!("{kind}/{ns}/{name}") }
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}:{})", self.identity(), self.path, self.line)
    }
}

/// An [`Object`] held as its JSON text, for what keeps many objects for a long time: about a
/// ninth of the memory of the parsed value (a ten-thousand-manifest estate is 37 MB parsed,
/// 4 MB packed). The text is serde_json's own, so unpacking gives back the same value, key
/// order included.
#[derive(Debug, Clone)]
pub struct PackedObject {
    /// File it came from, relative to the estate root.
    pub path: String,
    /// 1-based line where its document starts.
    pub line: u32,
    text: Box<[u8]>,
}

impl PackedObject {
    /// `object`, packed.
    pub fn pack(object: &Object) -> PackedObject {
        PackedObject {
            path: object.path.clone(),
            line: object.line,
            text: serde_json::to_vec(&object.value).unwrap_or_default().into_boxed_slice(),
        }
    }

    /// The object again, parsed.
    pub fn unpack(&self) -> Object {
        // Only text `pack` wrote is held, so it parses.
        let value = serde_json::from_slice(&self.text).unwrap_or(Value::Null);
        Object { path: self.path.clone(), line: self.line, value }
    }
}

/// Parses a YAML or JSON file into Kubernetes-style objects. Documents that are empty are
/// skipped; documents that do not parse or lack `apiVersion`/`kind` become diagnostics.
/// `kind: List` documents (and typed lists, `DeploymentList`) are expanded into their items, as
/// kubectl does.
pub fn parse_objects(path: &str, text: &str) -> (Vec<Object>, Vec<Diagnostic>) {
    let (docs, mut diags) = parse_documents(path, text);
    let mut objects = Vec::new();
    for mut doc in docs {
        if doc.value.is_null() {
            continue;
        }
        // `kind: List` (kubectl's) and typed lists as the API server answers them
        // (`DeploymentList`, whose items carry no kind or apiVersion of their own).
        let list_of = doc
            .value
            .get("kind")
            .and_then(Value::as_str)
            .and_then(|k| k.strip_suffix("List"))
            .filter(|_| doc.value.get("items").is_some_and(Value::is_array))
            .map(str::to_string);
        if let Some(item_kind) = list_of {
            let api_version = doc.value.get("apiVersion").cloned();
            let items = match doc.value.get_mut("items").map(Value::take) {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            };
            for mut item in items {
                if !item_kind.is_empty()
                    && let Some(map) = item.as_object_mut()
                {
                    map.entry("kind").or_insert_with(|| Value::String(item_kind.to_string()));
                    if let Some(v) = &api_version {
                        map.entry("apiVersion").or_insert_with(|| v.clone());
                    }
                }
                check_object(path, doc.line, item, &mut objects, &mut diags);
            }
            continue;
        }
        check_object(path, doc.line, doc.value, &mut objects, &mut diags);
    }
    (objects, diags)
}

fn check_object(path: &str, line: u32, value: Value, objects: &mut Vec<Object>, diags: &mut Vec<Diagnostic>) {
    let Some(map) = value.as_object() else {
        diags.push(Diagnostic::error(path, "document is not a mapping with apiVersion and kind").at(line, None));
        return;
    };
    let missing: Vec<&str> = ["apiVersion", "kind"]
        .into_iter()
        .filter(|k| map.get(*k).is_none_or(|v| v.as_str().is_none_or(|s| s.is_empty())))
        .collect();
    if !missing.is_empty() {
        diags.push(
            Diagnostic::error(
                path,
                format!("document has no {} (not a Kubernetes-style object)", missing.join(" or ")),
            )
            .at(line, None),
        );
        return;
    }
    if let Some(metadata) = map.get("metadata")
        && !metadata.is_object()
    {
        diags.push(Diagnostic::error(path, "metadata is not a mapping").at(line, None));
        return;
    }
    objects.push(Object { path: path.to_string(), line, value });
}

/// Parses a file into documents: JSON when the name ends in `.json`, YAML otherwise.
pub fn parse_documents(path: &str, text: &str) -> (Vec<Document>, Vec<Diagnostic>) {
    if path.ends_with(".json") { parse_json(path, text) } else { parse_yaml(path, text) }
}

fn parse_json(path: &str, text: &str) -> (Vec<Document>, Vec<Diagnostic>) {
    let mut de = serde_json::Deserializer::from_str(text);
    match StrictValue::deserialize(&mut de).and_then(|v| de.end().map(|()| v)) {
        Ok(StrictValue(value)) => {
            let line = text.lines().position(|l| !l.trim().is_empty()).map_or(1, |i| i as u32 + 1);
            (vec![Document { line, value }], Vec::new())
        }
        Err(e) => {
            let line = e.line().max(1) as u32;
            let column = (e.column() > 0).then_some(e.column() as u32);
            let message = strip_position(&e.to_string());
            (Vec::new(), vec![Diagnostic::error(path, format!("invalid JSON: {message}")).at(line, column)])
        }
    }
}

/// serde_json appends " at line L column C" to its messages; the diagnostic carries those.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn is_document_marker(line: &str) -> bool {
    line.strip_prefix("---").is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

fn parse_yaml(path: &str, text: &str) -> (Vec<Document>, Vec<Diagnostic>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut docs = Vec::new();
    let mut diags = Vec::new();
    // (first line number of the chunk, byte range)
    let mut chunks: Vec<(u32, usize, usize)> = Vec::new();
    let mut start = 0usize;
    let mut start_line = 1u32;
    let mut offset = 0usize;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if is_document_marker(line) && offset > start {
            chunks.push((start_line, start, offset));
            start = offset;
            start_line = i as u32 + 1;
        }
        offset += line.len();
    }
    chunks.push((start_line, start, text.len()));

    for (first_line, from, to) in chunks {
        let chunk = &text[from..to];
        let Some(content_line) = first_content_line(chunk) else {
            continue;
        };
        let line = first_line + content_line;
        match yaml_serde::from_str::<yaml_serde::Value>(chunk) {
            Ok(value) => match yaml_to_json(value) {
                Ok(Value::Null) => {}
                Ok(value) => docs.push(Document { line, value }),
                Err(message) => diags.push(Diagnostic::error(path, message).at(line, None)),
            },
            Err(e) => {
                let (l, c) = e.location().map_or((line, None), |loc| {
                    (first_line + loc.line().saturating_sub(1) as u32, Some(loc.column() as u32))
                });
                let message = strip_yaml_position(&e.to_string());
                diags.push(Diagnostic::error(path, format!("invalid YAML: {message}")).at(l, c));
            }
        }
    }
    (docs, diags)
}

/// A YAML error's message without the position, which the diagnostic carries.
pub(crate) fn yaml_message(e: &yaml_serde::Error) -> String {
    strip_yaml_position(&e.to_string())
}

/// libyaml messages end in " at line L column C"; the diagnostic carries those.
fn strip_yaml_position(message: &str) -> String {
    let message = match message.find(" at line ") {
        Some(i) => &message[..i],
        None => message,
    };
    message.trim_end_matches(':').to_string()
}

/// Offset (0-based) of the first line that holds content, skipping blanks, comments,
/// directives, and a bare `---`; `None` when the chunk is an empty document.
fn first_content_line(chunk: &str) -> Option<u32> {
    for (i, raw) in chunk.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('%') || line == "..." {
            continue;
        }
        if is_document_marker(raw) {
            let rest = raw[3..].trim();
            if rest.is_empty() || rest.starts_with('#') {
                continue;
            }
        }
        return Some(i as u32);
    }
    None
}

/// Converts YAML to JSON as Kubernetes does: keys become strings, tags are dropped.
fn yaml_to_json(value: yaml_serde::Value) -> Result<Value, String> {
    use yaml_serde::Value as Y;
    Ok(match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or_else(|| format!("number {f} cannot be represented in JSON"))?
            }
        }
        Y::String(s) => Value::String(s),
        // Collections are made at their exact size: an estate's parsed manifests are held for as
        // long as its revision is active, and grown ones are a third larger.
        Y::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(yaml_to_json(item)?);
            }
            Value::Array(out)
        }
        Y::Mapping(map) => {
            let mut out = Map::with_capacity(map.len());
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    Y::Bool(b) => b.to_string(),
                    Y::Number(n) => n.to_string(),
                    Y::Null => "null".to_string(),
                    other => return Err(format!("mapping key {other:?} is not a scalar")),
                };
                if out.contains_key(&key) {
                    return Err(format!("duplicate key {key:?}"));
                }
                out.insert(key, yaml_to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => yaml_to_json(tagged.value)?,
    })
}

/// A JSON value that rejects duplicate keys, which `serde_json::Value` silently overwrites.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        out.shrink_to_fit();
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let StrictValue(v) = map.next_value()?;
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            out.insert(key, v);
        }
        // At its exact size (see `yaml_to_json`).
        let mut exact = Map::with_capacity(out.len());
        exact.extend(out);
        Ok(Value::Object(exact))
    }
}

/// Parses a Kubernetes quantity (`500m`, `2`, `1.5Gi`, `512Mi`, `1G`, `1e3`) into base units.
pub fn parse_quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
    ];
    for (suffix, factor) in SUFFIXES {
        if let Some(number) = text.strip_suffix(suffix) {
            return number.parse::<f64>().ok().filter(|n| n.is_finite() && *n >= 0.0).map(|n| n * factor);
        }
    }
    text.parse::<f64>().ok().filter(|n| n.is_finite() && *n >= 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &str, text: &str) -> (Vec<(u32, String)>, Vec<String>) {
        let (objects, diags) = parse_objects(path, text);
        (objects.iter().map(|o| (o.line, o.identity())).collect(), diags.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn multi_document_yaml_keeps_start_lines() {
        let text = "# leading comment\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n\n---\n# c\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: b\n  namespace: ns\n--- {apiVersion: v1, kind: Secret, metadata: {name: c}}\n";
        let (objects, diags) = check("m.yaml", text);
        assert_eq!(
            objects,
            vec![(2, "ConfigMap/a".to_string()), (9, "Deployment.apps/ns/b".to_string()), (14, "Secret/c".to_string())]
        );
        assert!(diags.is_empty(), "{diags:?}");
    }

    #[test]
    fn broken_document_is_reported_and_neighbours_load() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: [unclosed\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: c}\n";
        let (objects, diags) = check("m.yaml", text);
        assert_eq!(objects, vec![(1, "ConfigMap/a".to_string()), (8, "Secret/c".to_string())]);
        assert_eq!(diags.len(), 1);
        assert!(diags[0].starts_with("m.yaml:7:"), "{}", diags[0]);
        assert!(diags[0].contains("invalid YAML"), "{}", diags[0]);
    }

    #[test]
    fn duplicate_keys_are_errors_in_yaml_and_json() {
        let (objects, diags) = check("d.yaml", "apiVersion: v1\nkind: A\nkind: B\n");
        assert!(objects.is_empty());
        assert!(diags[0].contains("duplicate"), "{diags:?}");
        let (objects, diags) = check("d.json", "{\"apiVersion\": \"v1\", \"kind\": \"A\", \"kind\": \"B\"}");
        assert!(objects.is_empty());
        assert!(diags[0].contains("duplicate key \"kind\""), "{diags:?}");
    }

    #[test]
    fn documents_without_kind_are_reported() {
        let (objects, diags) = check("x.yaml", "foo: bar\n---\n- 1\n");
        assert!(objects.is_empty());
        assert_eq!(diags.len(), 2);
        assert!(diags[0].starts_with("x.yaml:1: error: document has no apiVersion or kind"), "{}", diags[0]);
        assert!(diags[1].starts_with("x.yaml:3: error: document is not a mapping"), "{}", diags[1]);
    }

    #[test]
    fn list_kind_is_expanded() {
        let (objects, _) = check(
            "l.json",
            r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}]}"#,
        );
        assert_eq!(objects, vec![(1, "Pod/p".to_string())]);
    }

    #[test]
    fn marker_with_spaces_inside_block_scalars_is_not_confused() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  x: |\n    ---not a marker\n    --- indented\n";
        let (objects, diags) = check("c.yaml", text);
        assert_eq!(objects.len(), 1, "{diags:?}");
        assert_eq!(objects[0].1, "ConfigMap/a");
    }

    #[test]
    fn invalid_json_has_line_and_column() {
        let (_, diags) = check("j.json", "{\n  \"a\": 1,\n  \"b\": }\n");
        assert_eq!(diags.len(), 1);
        assert!(diags[0].starts_with("j.json:3:"), "{}", diags[0]);
    }
}
