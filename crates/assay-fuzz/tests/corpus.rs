//! Every input in the fuzz corpora (`fuzz/corpus/TARGET/`) and every crasher found while
//! fuzzing (`fuzz/regressions/TARGET/`, named for what it found) runs through its target: none
//! may panic again.

use std::path::Path;

fn inputs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn corpora_and_crashers_run_through_their_targets() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut seen = 0;
    for (name, target) in assay_fuzz::TARGETS {
        let corpus = inputs(&root.join("corpus").join(name));
        assert!(!corpus.is_empty(), "fuzz/corpus/{name} has no seeds");
        for path in corpus.iter().chain(inputs(&root.join("regressions").join(name)).iter()) {
            let bytes = std::fs::read(path).expect("read");
            let outcome = std::panic::catch_unwind(|| target(&bytes));
            assert!(outcome.is_ok(), "{name} panicked on {}", path.display());
            seen += 1;
        }
    }
    assert!(seen >= 5);
}
