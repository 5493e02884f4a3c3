//! The server's modules import each other without cycles: shared parts never import the route
//! handlers or the state that uses them (ARCHITECTURE.md).

use std::collections::{BTreeMap, BTreeSet};

/// Module name -> the modules of this crate it refers to (`crate::name`).
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("src") {
        let path = entry.expect("entry").path();
        let Some(name) = path.file_stem().and_then(|s| s.to_str()).map(str::to_string) else { continue };
        if name == "lib" || path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("source");
        let mut used = BTreeSet::new();
        for (i, _) in text.match_indices("crate::") {
            let rest = &text[i + "crate::".len()..];
            let module: String = rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
            // `crate::Config` and the like are items of lib.rs, which only re-exports.
            if !module.is_empty() && module != name {
                used.insert(module);
            }
        }
        graph.insert(name, used);
    }
    graph
}

fn cycle_from(
    node: &str,
    graph: &BTreeMap<String, BTreeSet<String>>,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(at) = path.iter().position(|n| n == node) {
        let mut cycle = path[at..].to_vec();
        cycle.push(node.to_string());
        return Some(cycle);
    }
    if done.contains(node) {
        return None;
    }
    path.push(node.to_string());
    for next in graph.get(node).into_iter().flatten() {
        if let Some(c) = cycle_from(next, graph, path, done) {
            return Some(c);
        }
    }
    path.pop();
    done.insert(node.to_string());
    None
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let graph = imports();
    assert!(graph.len() > 10, "{graph:?}");
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = cycle_from(node, &graph, &mut Vec::new(), &mut done) {
            panic!("the server's modules import each other in a cycle: {}", cycle.join(" -> "));
        }
    }
    // The shared parts do not know the state or the routes.
    for shared in ["active", "alerts", "decisions", "ledger", "lineage", "metrics", "outbox", "follow", "errors"] {
        let uses = &graph[shared];
        assert!(!uses.contains("state"), "{shared} imports state: {uses:?}");
    }
}
