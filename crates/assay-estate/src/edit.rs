//! Minimal edits of YAML manifests (sans-IO): a container's resource requests set in place, so
//! that a recommendation lands in Git as a diff of the lines that change. The file is read with
//! a YAML parser that keeps source positions; only the bytes of the values that change are
//! replaced (a quoted value stays quoted), and a key that is missing is added beside its
//! siblings in their style (a new line at their indentation, or `, key: value` in a flow
//! mapping). Comments, key order and the formatting of everything else are kept.

use granit_parser::{Event, Parser, ScalarStyle, StructureStyle};

/// A node of the document with where it is in the text (byte offsets).
#[derive(Debug)]
enum Node {
    Scalar { value: String, style: ScalarStyle, start: usize, end: usize },
    Map { flow: bool, entries: Vec<(String, usize, Node)>, end: usize },
    Seq { items: Vec<Node> },
}

impl Node {
    fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map { entries, .. } => entries.iter().find(|(k, _, _)| k == key).map(|(_, _, n)| n),
            _ => None,
        }
    }

    /// The end of the last scalar in this node (where its text ends).
    fn last_end(&self) -> Option<usize> {
        match self {
            Node::Scalar { end, .. } => Some(*end),
            Node::Map { flow: true, end, .. } => Some(*end),
            Node::Map { entries, .. } => entries.last().and_then(|(_, _, n)| n.last_end()),
            Node::Seq { items } => items.last().and_then(Node::last_end),
        }
    }
}

/// Reads the root node of each document, in order.
fn documents(text: &str) -> Result<Vec<(usize, Node)>, String> {
    let mut parser = Parser::new_from_str(text);
    let mut docs = Vec::new();
    // Open collections: a map (with the key waiting for its value) or a sequence.
    enum Open {
        Map { flow: bool, entries: Vec<(String, usize, Node)>, key: Option<(String, usize)> },
        Seq { items: Vec<Node> },
    }
    let mut stack: Vec<Open> = Vec::new();
    let mut line = 1;
    let offset = |m: &granit_parser::Marker| m.byte_offset().unwrap_or(0);
    // Places a finished node in its parent, or as a document's root.
    fn place(stack: &mut [Open], docs: &mut Vec<(usize, Node)>, line: usize, node: Node) {
        match stack.last_mut() {
            None => docs.push((line, node)),
            Some(Open::Seq { items }) => items.push(node),
            Some(Open::Map { entries, key, .. }) => match key.take() {
                Some((k, at)) => entries.push((k, at, node)),
                None => {
                    // A key: only scalar keys are looked up.
                    let k = match &node {
                        Node::Scalar { value, start, .. } => (value.clone(), *start),
                        _ => (String::new(), 0),
                    };
                    *key = Some(k);
                }
            },
        }
    }
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| format!("line {}: {e}", e.marker().line()))?;
        match event {
            Event::Scalar(value, style, ..) => {
                let node = Node::Scalar {
                    value: value.into_owned(),
                    style,
                    start: offset(&span.start),
                    end: offset(&span.end),
                };
                place(&mut stack, &mut docs, line, node);
            }
            Event::MappingStart(style, ..) => {
                if stack.is_empty() {
                    line = span.start.line();
                }
                stack.push(Open::Map { flow: style == StructureStyle::Flow, entries: Vec::new(), key: None });
            }
            Event::SequenceStart(..) => {
                if stack.is_empty() {
                    line = span.start.line();
                }
                stack.push(Open::Seq { items: Vec::new() });
            }
            Event::MappingEnd => {
                if let Some(Open::Map { flow, entries, .. }) = stack.pop() {
                    let node = Node::Map { flow, entries, end: offset(&span.end) };
                    place(&mut stack, &mut docs, line, node);
                }
            }
            Event::SequenceEnd => {
                if let Some(Open::Seq { items }) = stack.pop() {
                    place(&mut stack, &mut docs, line, Node::Seq { items });
                }
            }
            Event::Alias(..) => {
                let node = Node::Scalar { value: String::new(), style: ScalarStyle::Plain, start: 0, end: 0 };
                place(&mut stack, &mut docs, line, node);
            }
            _ => {}
        }
    }
    Ok(docs)
}

/// The column of the line `at` is on where its text starts.
fn column(text: &str, at: usize) -> usize {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    at - line_start
}

/// Where the line holding `at` ends (after its line break).
fn line_end(text: &str, at: usize) -> usize {
    text[at..].find('\n').map_or(text.len(), |i| at + i + 1)
}

/// A scalar written in the style of the one it replaces.
fn styled(value: &str, style: Option<ScalarStyle>) -> String {
    match style {
        Some(ScalarStyle::DoubleQuoted) => format!("\"{value}\""),
        Some(ScalarStyle::SingleQuoted) => format!("'{value}'"),
        _ => value.to_string(),
    }
}

/// Sets `keys` (a path of mapping keys below `map`) to `value`, adding what is missing.
fn set_in(text: &str, map: &Node, keys: &[&str], value: &str) -> Result<(usize, usize, String), String> {
    let Node::Map { flow, entries, end, .. } = map else {
        return Err(format!("{} is not a mapping", keys.first().unwrap_or(&"")));
    };
    let (first, rest) = keys.split_first().ok_or("nothing to set")?;
    if let Some(node) = map.get(first) {
        return match (node, rest.is_empty()) {
            (Node::Scalar { start, end, style, .. }, true) => Ok((*start, *end, styled(value, Some(*style)))),
            (Node::Scalar { value: v, .. }, false) if v.is_empty() || v == "null" || v == "~" => {
                Err(format!("{first} is empty: add the requests by hand"))
            }
            (Node::Map { .. }, false) => set_in(text, node, rest, value),
            _ => Err(format!("{first} is not what was expected")),
        };
    }
    // Missing: add `first` with the rest of the path below it.
    if *flow {
        let mut inner = value.to_string();
        for k in rest.iter().rev() {
            inner = format!("{{{k}: {inner}}}");
        }
        let close = end.checked_sub(1).ok_or("a flow mapping without its end")?;
        let sep = if entries.is_empty() { "" } else { ", " };
        return Ok((close, close, format!("{sep}{first}: {inner}")));
    }
    let Some((_, key_at, last)) = entries.last() else {
        return Err("an empty block mapping: add the requests by hand".into());
    };
    let indent = column(text, *key_at);
    let at = line_end(text, last.last_end().ok_or("a mapping whose last value has no text")?);
    let mut lines = String::new();
    for (depth, k) in keys.iter().enumerate() {
        let pad = " ".repeat(indent + 2 * depth);
        if depth + 1 == keys.len() {
            lines.push_str(&format!("{pad}{k}: {value}\n"));
        } else {
            lines.push_str(&format!("{pad}{k}:\n"));
        }
    }
    let prefix = if at == text.len() && !text.ends_with('\n') { "\n" } else { "" };
    Ok((at, at, format!("{prefix}{lines}")))
}

/// Sets `resources.requests.<resource>` of the container named `container` in the pod spec
/// at `pod_spec` (keys from the document root, `["spec", "template", "spec"]`) of the document
/// that starts at or after `line`. Returns the new text; the error says what stood in the way.
pub fn set_request(
    text: &str,
    line: u32,
    pod_spec: &[&str],
    container: &str,
    resource: &str,
    value: &str,
) -> Result<String, String> {
    let docs = documents(text)?;
    let (_, root) =
        docs.iter().find(|(l, _)| *l >= line as usize).ok_or_else(|| format!("no YAML document at line {line}"))?;
    let mut node = root;
    for key in pod_spec {
        node = node.get(key).ok_or_else(|| format!("no {} in the document at line {line}", pod_spec.join(".")))?;
    }
    let Some(Node::Seq { items }) = node.get("containers") else {
        return Err(format!("no containers list in the document at line {line}"));
    };
    let spec = items
        .iter()
        .find(|c| matches!(c.get("name"), Some(Node::Scalar { value, .. }) if value == container))
        .ok_or_else(|| format!("no container {container} in the document at line {line}"))?;
    let (start, end, replacement) = set_in(text, spec, &["resources", "requests", resource], value)?;
    let mut out = String::with_capacity(text.len() + replacement.len());
    out.push_str(&text[..start]);
    out.push_str(&replacement);
    out.push_str(&text[end..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD: &[&str] = &["spec", "template", "spec"];

    #[test]
    fn a_value_is_replaced_in_place_in_its_style_and_nothing_else_moves() {
        let text = "# the inference service\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: llm}\nspec:\n  template:\n    spec:\n      containers:\n        - name: server   # main\n          image: vllm:0.6\n          resources:\n            requests: {cpu: \"2\", memory: 8Gi}   # sized by hand\n            limits:\n              memory: 8Gi\n";
        let out = set_request(text, 1, POD, "server", "cpu", "400m").expect("cpu");
        let out = set_request(&out, 1, POD, "server", "memory", "1200Mi").expect("memory");
        let changed: Vec<(&str, &str)> = text.lines().zip(out.lines()).filter(|(a, b)| a != b).collect();
        assert_eq!(
            changed,
            vec![(
                "            requests: {cpu: \"2\", memory: 8Gi}   # sized by hand",
                "            requests: {cpu: \"400m\", memory: 1200Mi}   # sized by hand"
            )]
        );
        assert_eq!(text.lines().count(), out.lines().count());
    }

    #[test]
    fn missing_keys_are_added_beside_their_siblings() {
        // Block style, requests without cpu; a second document; a container without resources.
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        resources:\n          requests:\n            memory: 1Gi\n      - name: sidecar\n        image: envoy\n      nodeSelector: {pool: a}\n";
        let out = set_request(text, 5, POD, "web", "cpu", "250m").expect("cpu");
        assert!(
            out.contains("          requests:\n            memory: 1Gi\n            cpu: 250m\n      - name: sidecar"),
            "{out}"
        );
        let out = set_request(&out, 5, POD, "sidecar", "memory", "64Mi").expect("sidecar");
        assert!(
            out.contains("      - name: sidecar\n        image: envoy\n        resources:\n          requests:\n            memory: 64Mi\n      nodeSelector"),
            "{out}"
        );
        // A flow mapping without the key.
        let text = "kind: Deployment\nspec:\n  template:\n    spec:\n      containers: [{name: a, resources: {requests: {memory: 1Gi}}}]\n";
        let out = set_request(text, 1, POD, "a", "cpu", "1").expect("flow");
        assert_eq!(out, text.replace("{memory: 1Gi}", "{memory: 1Gi, cpu: 1}"));
        // What is not there is named.
        let err = set_request(text, 1, POD, "b", "cpu", "1").expect_err("no such container");
        assert!(err.contains("no container b"), "{err}");
    }
}
