//! Memoized template answers.
//!
//! A ConstraintTemplate's answer depends only on the parts of `input` its Rego reads (and on
//! `data`, fixed for a compiled policy set). Those parts are found in the syntax tree of the
//! template's modules: every reference rooted at `input`, up to its first segment that is not a
//! literal (`input.review.object.spec[field][_]` reads `input.review.object.spec`), and
//! `object.get(input…, "key", default)` as a read of `input….key`. Any other use of `input`
//! (passing it whole to a function, `import input`) reads all of it. A template that calls a
//! builtin whose answer is not a function of its arguments (the time, random numbers, HTTP)
//! is not memoized.
//!
//! The cache key is the SHA-256 of the values at those paths, so two admission requests for
//! pods with the same spec (the replicas of one Deployment) are evaluated once per constraint
//! even though their names and uids differ, while a template that reads the name sees every
//! name. Each template keeps at most [`CAPACITY`] answers (or as many as the caller sets), least
//! recently used first out.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Answers kept per template unless told otherwise.
pub const CAPACITY: usize = 1024;

/// Builtins whose answer is not a function of their arguments: the current time (also inside
/// token and certificate verification), randomness, the network, the runtime.
const IMPURE: &[&str] = &[
    "time.now_ns",
    "rand.intn",
    "uuid.rfc4122",
    "http.send",
    "net.lookup_ip_addr",
    "opa.runtime",
    "io.jwt.decode_verify",
    "crypto.x509.parse_and_verify_certificates",
    "crypto.x509.parse_and_verify_certificates_with_options",
];

/// One step of a path into `input`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Segment {
    /// An object key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// What a template's modules read of `input`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reads {
    /// Only these paths (none a prefix of another); the empty path is all of `input`.
    Paths(Vec<Vec<Segment>>),
    /// Answers are not a function of `input`: the builtin named.
    Impure(String),
}

/// Finds what modules read of `input`, from regorus's syntax tree (`get_ast_as_json`).
pub fn reads(ast_json: &str) -> crate::Result<Reads> {
    let modules: Value = serde_json::from_str(ast_json).map_err(|e| crate::Error::SyntaxTree(e.to_string()))?;
    let mut found = Found::default();
    for module in modules.as_array().into_iter().flatten() {
        walk(module.get("ast").unwrap_or(&Value::Null), &mut found);
    }
    if let Some(name) = found.impure {
        return Ok(Reads::Impure(name));
    }
    let mut paths = found.paths;
    paths.sort();
    paths.dedup();
    let mut kept: Vec<Vec<Segment>> = Vec::new();
    for path in paths {
        // Sorted, so a prefix comes before the paths it covers.
        if !kept.iter().any(|k| path.starts_with(k)) {
            kept.push(path);
        }
    }
    Ok(Reads::Paths(kept))
}

#[derive(Default)]
struct Found {
    paths: Vec<Vec<Segment>>,
    impure: Option<String>,
}

/// The only key of a one-key object: how the syntax tree tags its nodes (`{"RefDot": {...}}`).
fn node(value: &Value) -> Option<(&str, &Value)> {
    let map = value.as_object()?;
    if map.len() != 1 {
        return None;
    }
    map.iter().next().map(|(k, v)| (k.as_str(), v))
}

/// A reference taken apart: the expression it starts from and its segments, first to last.
struct Chain<'a> {
    root: &'a Value,
    /// `None` marks a segment that is not a literal.
    segments: Vec<Option<Segment>>,
    /// Index expressions, to be walked for their own reads.
    indexes: Vec<&'a Value>,
}

fn chain(mut expr: &Value) -> Chain<'_> {
    let mut segments = Vec::new();
    let mut indexes = Vec::new();
    loop {
        match node(expr) {
            Some(("RefDot", inner)) => {
                let field = inner.pointer("/field/1").and_then(Value::as_str).map(|f| Segment::Key(f.to_string()));
                segments.push(field);
                expr = inner.get("refr").unwrap_or(&Value::Null);
            }
            Some(("RefBrack", inner)) => {
                let index = inner.get("index").unwrap_or(&Value::Null);
                let segment = match node(index) {
                    Some(("String", s)) => s.get("value").and_then(Value::as_str).map(|k| Segment::Key(k.to_string())),
                    Some(("Number", n)) => {
                        n.get("value").and_then(Value::as_u64).and_then(|i| usize::try_from(i).ok()).map(Segment::Index)
                    }
                    _ => None,
                };
                if segment.is_none() {
                    indexes.push(index);
                }
                segments.push(segment);
                expr = inner.get("refr").unwrap_or(&Value::Null);
            }
            _ => break,
        }
    }
    segments.reverse();
    Chain { root: expr, segments, indexes }
}

fn var_name(expr: &Value) -> Option<&str> {
    match node(expr) {
        Some(("Var", inner)) => inner.get("value").and_then(Value::as_str),
        _ => None,
    }
}

/// The literal path a chain rooted at `input` reads; `None` when it is not rooted at `input`.
fn input_path(chain: &Chain<'_>) -> Option<Vec<Segment>> {
    if var_name(chain.root) != Some("input") {
        return None;
    }
    Some(chain.segments.iter().map_while(Clone::clone).collect())
}

/// A function's dotted name (`object.get`), when the call names one.
fn function_name(fcn: &Value) -> Option<String> {
    let chain = chain(fcn);
    let mut name = var_name(chain.root)?.to_string();
    for segment in &chain.segments {
        match segment {
            Some(Segment::Key(k)) => {
                name.push('.');
                name.push_str(k);
            }
            _ => return None,
        }
    }
    Some(name)
}

fn string_literal(expr: &Value) -> Option<String> {
    match node(expr) {
        Some(("String", s)) => s.get("value").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

fn walk(value: &Value, found: &mut Found) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
        Value::Object(map) => {
            match node(value) {
                Some(("RefDot" | "RefBrack", _)) => {
                    let chain = chain(value);
                    match input_path(&chain) {
                        Some(path) => found.paths.push(path),
                        None => walk(chain.root, found),
                    }
                    chain.indexes.iter().for_each(|i| walk(i, found));
                    return;
                }
                Some(("Var", inner)) => {
                    if inner.get("value").and_then(Value::as_str) == Some("input") {
                        found.paths.push(Vec::new());
                    }
                    return;
                }
                Some(("Call", inner)) => {
                    let fcn = inner.get("fcn").unwrap_or(&Value::Null);
                    let params: &[Value] = inner.get("params").and_then(Value::as_array).map_or(&[], Vec::as_slice);
                    let name = function_name(fcn);
                    if let Some(name) = &name
                        && IMPURE.contains(&name.as_str())
                        && found.impure.is_none()
                    {
                        found.impure = Some(name.clone());
                    }
                    if name.as_deref() == Some("object.get")
                        && let [object, key, rest @ ..] = params
                        && let object = chain(object)
                        && let Some(mut path) = input_path(&object)
                    {
                        // object.get(input.x, "k", d) reads input.x.k; a key path
                        // (["a", "b"]) reads input.x.a.b.
                        let keys: Option<Vec<String>> = match node(key) {
                            Some(("Array", a)) => a
                                .get("items")
                                .and_then(Value::as_array)
                                .and_then(|items| items.iter().map(string_literal).collect::<Option<Vec<_>>>()),
                            _ => string_literal(key).map(|k| vec![k]),
                        };
                        let all_literal = object.segments.iter().all(Option::is_some);
                        if all_literal && let Some(keys) = keys {
                            path.extend(keys.into_iter().map(Segment::Key));
                        }
                        found.paths.push(path);
                        object.indexes.iter().for_each(|i| walk(i, found));
                        walk(key, found);
                        rest.iter().for_each(|p| walk(p, found));
                        return;
                    }
                    // A call through a reference rooted at input (regorus reads `input.a` followed
                    // by a parenthesis on the next line as one, gap G1) reads it too.
                    if name.as_deref().is_none_or(|n| n == "input" || n.starts_with("input.")) {
                        walk(fcn, found);
                    }
                    params.iter().for_each(|p| walk(p, found));
                    return;
                }
                _ => {}
            }
            map.values().for_each(|v| walk(v, found));
        }
        _ => {}
    }
}

/// The cache key of `input` for these paths.
pub fn key(paths: &[Vec<Segment>], input: &regorus::Value) -> [u8; 32] {
    let mut hash = Sha256::new();
    for path in paths {
        let mut at = Some(input);
        for segment in path {
            at = at.and_then(|v| match (segment, v) {
                (Segment::Key(k), regorus::Value::Object(map)) => map.get(&regorus::Value::from(k.as_str())),
                (Segment::Index(i), regorus::Value::Array(items)) => items.get(*i),
                _ => None,
            });
        }
        match at {
            // Each value framed by its length, so that no two sequences hash alike.
            Some(v) => {
                let bytes = serde_json::to_vec(v).unwrap_or_default();
                hash.update([1]);
                hash.update((bytes.len() as u64).to_le_bytes());
                hash.update(&bytes);
            }
            None => hash.update([0]),
        }
    }
    hash.finalize().into()
}

/// Answers by key, least recently used out first, with hit and miss counts.
pub struct Cache<T> {
    entries: Mutex<lru::LruCache<[u8; 32], T>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<T: Clone> Cache<T> {
    /// An empty cache.
    pub fn new() -> Cache<T> {
        let capacity = NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN);
        Cache { entries: Mutex::new(lru::LruCache::new(capacity)), hits: AtomicU64::new(0), misses: AtomicU64::new(0) }
    }

    /// The answer for `key`, counted as a hit or a miss.
    pub fn get(&self, key: &[u8; 32]) -> Option<T> {
        let found = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(key).cloned();
        let counter = if found.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Keeps an answer.
    pub fn put(&self, key: [u8; 32], value: T) {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).put(key, value);
    }

    /// Keeps at most `capacity` answers from now on (at least one).
    pub fn resize(&self, capacity: usize) {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).resize(capacity);
    }

    /// (hits, misses) so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }
}

impl<T> std::fmt::Debug for Cache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("hits", &self.hits.load(Ordering::Relaxed))
            .field("misses", &self.misses.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<T: Clone> Default for Cache<T> {
    fn default() -> Self {
        Cache::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads_of(rego: &str) -> Reads {
        let mut engine = regorus::Engine::new();
        engine.set_rego_v0(true);
        engine.add_policy("t.rego".into(), rego.into()).expect("parses");
        reads(&engine.get_ast_as_json().expect("ast")).expect("reads")
    }

    fn key(k: &str) -> Segment {
        Segment::Key(k.into())
    }

    #[test]
    fn literal_prefixes_of_input_references_are_read() {
        let found = reads_of(
            r#"package t
violation[{"msg": msg}] {
  c := input.review.object.spec[field][_]
  not startswith(c.image, input.parameters.registry)
  input["parameters"].strict
  x := input.review.object.metadata.labels[input.parameters.label]
  msg := sprintf("%v", [c.name])
}
"#,
        );
        assert_eq!(
            found,
            Reads::Paths(vec![
                vec![key("parameters"), key("label")],
                vec![key("parameters"), key("registry")],
                vec![key("parameters"), key("strict")],
                vec![key("review"), key("object"), key("metadata"), key("labels")],
                vec![key("review"), key("object"), key("spec")],
            ])
        );
    }

    #[test]
    fn object_get_reads_the_key_and_whole_uses_read_everything() {
        let found = reads_of(
            r#"package t
import input.review.kind as k
p := object.get(object.get(input, "parameters", {}), "exemptImages", [])
q := object.get(input.review, ["object", "spec"], {})
violation[{"msg": "x"}] { k.kind == "Pod"; p[_] == "a"; q }
"#,
        );
        assert_eq!(
            found,
            Reads::Paths(vec![
                vec![key("parameters")],
                vec![key("review"), key("kind")],
                vec![key("review"), key("object"), key("spec")],
            ])
        );
        let whole = reads_of("package t\nviolation[{\"msg\": \"x\"}] { f(input) }\nf(x) { x.a }\n");
        assert_eq!(whole, Reads::Paths(vec![vec![]]));
        let call = reads_of("package t\nviolation[{\"msg\": \"x\"}] {\n  input.a\n  (1 + 1) > 1\n}\n");
        assert_eq!(call, Reads::Paths(vec![vec![key("a")]]), "gap G1: a call through input.a");
    }

    #[test]
    fn impure_builtins_are_not_memoized() {
        let found =
            reads_of("package t\nviolation[{\"msg\": \"late\"}] { time.now_ns() > input.parameters.deadline }\n");
        assert_eq!(found, Reads::Impure("time.now_ns".into()));
    }

    #[test]
    fn keys_differ_only_where_the_paths_read() {
        let paths = vec![vec![key("review"), key("object"), key("spec")], vec![key("parameters")]];
        let input = |name: &str, image: &str| {
            crate::rego::to_rego(&serde_json::json!({
                "review": {"uid": name, "object": {"metadata": {"name": name}, "spec": {"image": image}}},
                "parameters": {"x": 1},
            }))
        };
        assert_eq!(super::key(&paths, &input("a", "i")), super::key(&paths, &input("b", "i")));
        assert_ne!(super::key(&paths, &input("a", "i")), super::key(&paths, &input("a", "j")));
        let missing = crate::rego::to_rego(&serde_json::json!({"review": {}, "parameters": {"x": 1}}));
        assert_ne!(super::key(&paths, &missing), super::key(&paths, &input("a", "i")));
    }
}
