//! `../shared/conformance/tessera`: appending the 15 entries of its README to an empty log with
//! its key reproduces `checkpoint.0` … `checkpoint.15` byte for byte, and every tile and entry
//! bundle file. Skipped, with a message, when `../shared` is absent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assay_ledger::checkpoint::Checkpoint;
use assay_ledger::merkle::{leaf_hash, root};
use assay_ledger::note::NoteSigner;
use assay_ledger::tiles::{WIDTH, bundle_bytes, bundle_path, edge, tile_bytes, tile_path};

const KEY: &str = "PRIVATE+KEY+example.com/log/testdata+33d7b496+AeymY/SZAX0jZcJ8enZ5FY1Dz+wTML2yWSkK+9DSF3eg";
const ORIGIN: &str = "example.com/log/testdata";
const ENTRIES: &[&str] = &[
    "one", "two", "three", "four", "five", "six", "seven", "eit", "nain", "ten", "ileven", "twelf", "threeten",
    "fourten", "fivten",
];

fn golden() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/tessera/log");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("{} not found: tessera conformance not run", dir.display());
        None
    }
}

fn files(dir: &Path, base: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, base, out);
        } else {
            let rel = p.strip_prefix(base).expect("prefix").to_string_lossy().replace('\\', "/");
            out.insert(rel, std::fs::read(&p).expect("read"));
        }
    }
}

#[test]
fn checkpoints_tiles_and_bundles_match_tessera_byte_for_byte() {
    let Some(dir) = golden() else { return };
    let signer = NoteSigner::from_text(KEY).expect("key");
    let mut written: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut leaves = Vec::new();
    for size in 0..=ENTRIES.len() {
        if size > 0 {
            leaves.push(leaf_hash(ENTRIES[size - 1].as_bytes()));
            for (level, index, width) in edge(size as u64) {
                written.insert(tile_path(level, index, width), tile_bytes(level, index, width, &leaves));
            }
            let index = (size as u64 - 1) / WIDTH;
            let first = (index * WIDTH) as usize;
            written.insert(bundle_path(index, (size - first) as u64), bundle_bytes(&ENTRIES[first..size]));
        }
        let text = Checkpoint { origin: ORIGIN.into(), size: size as u64, root: root(&leaves) }.text();
        let note = signer.sign(&text).expect("sign");
        let want = std::fs::read_to_string(dir.join(format!("checkpoint.{size}"))).expect("golden checkpoint");
        assert_eq!(note, want, "checkpoint.{size}");
        assert_eq!(
            signer.verifier().verify(&want).map(Checkpoint::parse),
            Ok(Ok(Checkpoint { origin: ORIGIN.into(), size: size as u64, root: root(&leaves) }))
        );
    }
    let mut golden_tiles = BTreeMap::new();
    files(&dir.join("tile"), &dir, &mut golden_tiles);
    assert_eq!(written.keys().collect::<Vec<_>>(), golden_tiles.keys().collect::<Vec<_>>());
    for (path, bytes) in &golden_tiles {
        assert_eq!(&written[path], bytes, "{path}");
    }
    assert_eq!(
        std::fs::read(dir.join("checkpoint")).expect("checkpoint"),
        std::fs::read(dir.join("checkpoint.15")).expect("15")
    );
}

#[test]
fn the_filesystem_log_writes_the_same_log_as_tessera() {
    let Some(golden_dir) = golden() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("log");
    let mut log = assay_ledger::store::Log::create(&dir, NoteSigner::from_text(KEY).expect("key")).expect("create");
    for size in 0..=ENTRIES.len() {
        if size > 0 {
            log.append(&[ENTRIES[size - 1]]).expect("append");
        }
        let want = std::fs::read_to_string(golden_dir.join(format!("checkpoint.{size}"))).expect("golden");
        assert_eq!(std::fs::read_to_string(dir.join("checkpoint")).expect("checkpoint"), want, "checkpoint.{size}");
    }
    drop(log);
    let (mut ours, mut theirs) = (BTreeMap::new(), BTreeMap::new());
    files(&dir.join("tile"), &dir, &mut ours);
    files(&golden_dir.join("tile"), &golden_dir, &mut theirs);
    assert_eq!(ours, theirs);
}
