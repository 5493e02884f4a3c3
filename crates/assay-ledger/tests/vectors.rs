//! The Merkle proof vectors in `../shared/conformance/merkle/testdata`: every happy path
//! verifies and every corrupted proof fails. Skipped, with a message, when `../shared` is absent.

use std::path::{Path, PathBuf};

use assay_ledger::merkle::{
    Hash, verify_consistency, verify_inclusion, verify_subtree_consistency, verify_subtree_inclusion,
};
use base64::Engine;
use serde_json::Value;

fn testdata() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/merkle/testdata");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("{} not found: conformance vectors not run", dir.display());
        None
    }
}

fn hash(v: &Value) -> Option<Hash> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(v.as_str()?).ok()?;
    bytes.try_into().ok()
}

fn bytes(v: &Value) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(v.as_str()?).ok()
}

fn hashes(v: &Value) -> Option<Vec<Hash>> {
    match v {
        Value::Null => Some(Vec::new()),
        Value::Array(a) => a.iter().map(hash).collect(),
        _ => None,
    }
}

fn cases(dir: &Path) -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                let v = serde_json::from_str(&std::fs::read_to_string(&p).expect("read")).expect("JSON");
                out.push((p, v));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn inclusion_vectors() {
    let Some(dir) = testdata() else { return };
    let cases = cases(&dir.join("inclusion"));
    assert!(cases.len() > 50, "{} cases", cases.len());
    for (path, v) in cases {
        let result = match (bytes(&v["root"]), hash(&v["leafHash"]), hashes(&v["proof"])) {
            (Some(root), Some(leaf), Some(proof)) => verify_inclusion(
                v["leafIdx"].as_u64().unwrap_or(u64::MAX),
                v["treeSize"].as_u64().unwrap_or(0),
                &leaf,
                &proof,
                &root,
            )
            .map_err(|e| e.to_string()),
            // A proof hash or leaf hash that is not 32 bytes is itself a corruption.
            _ => Err("malformed hash".into()),
        };
        assert_eq!(result.is_err(), v["wantErr"] == true, "{}: {result:?}", path.display());
    }
}

#[test]
fn consistency_vectors() {
    let Some(dir) = testdata() else { return };
    let cases = cases(&dir.join("consistency"));
    assert!(cases.len() > 50, "{} cases", cases.len());
    for (path, v) in cases {
        let result = match (bytes(&v["root1"]), bytes(&v["root2"]), hashes(&v["proof"])) {
            (Some(r1), Some(r2), Some(proof)) => verify_consistency(
                v["size1"].as_u64().unwrap_or(u64::MAX),
                v["size2"].as_u64().unwrap_or(0),
                &proof,
                &r1,
                &r2,
            )
            .map_err(|e| e.to_string()),
            _ => Err("malformed hash".into()),
        };
        assert_eq!(result.is_err(), v["wantErr"] == true, "{}: {result:?}", path.display());
    }
}

#[test]
fn subtree_inclusion_vectors() {
    let Some(dir) = testdata() else { return };
    let cases = cases(&dir.join("subtreeinclusion"));
    assert!(cases.len() > 50, "{} cases", cases.len());
    for (path, v) in cases {
        let result = match (bytes(&v["root"]), hash(&v["leafHash"]), hashes(&v["proof"])) {
            (Some(root), Some(leaf), Some(proof)) => verify_subtree_inclusion(
                v["leafIdx"].as_u64().unwrap_or(u64::MAX),
                v["start"].as_u64().unwrap_or(0),
                v["end"].as_u64().unwrap_or(0),
                &leaf,
                &proof,
                &root,
            )
            .map_err(|e| e.to_string()),
            _ => Err("malformed hash".into()),
        };
        assert_eq!(result.is_err(), v["wantErr"] == true, "{}: {result:?}", path.display());
    }
}

#[test]
fn subtree_consistency_vectors() {
    let Some(dir) = testdata() else { return };
    let cases = cases(&dir.join("subtreeconsistency"));
    assert!(cases.len() > 50, "{} cases", cases.len());
    for (path, v) in cases {
        let result = match (bytes(&v["root1"]), bytes(&v["root2"]), hashes(&v["proof"])) {
            (Some(r1), Some(r2), Some(proof)) => verify_subtree_consistency(
                v["start"].as_u64().unwrap_or(u64::MAX),
                v["end"].as_u64().unwrap_or(0),
                v["size"].as_u64().unwrap_or(0),
                &proof,
                &r1,
                &r2,
            )
            .map_err(|e| e.to_string()),
            _ => Err("malformed hash".into()),
        };
        assert_eq!(result.is_err(), v["wantErr"] == true, "{}: {result:?}", path.display());
    }
}
