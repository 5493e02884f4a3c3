//! The filesystem log: appends in batches, reopening, the writer lock, recovery from an
//! unfinished batch, reading entries and proofs back, and the batching appender; and the same
//! log kept as blobs, as object storage keeps it.

use std::path::Path;
use std::sync::Arc;

use assay_ledger::appender::{Appender, Batching};
use assay_ledger::files::{Files, Version};
use assay_ledger::merkle::{Hash, inclusion_proof, leaf_hash, root, verify_inclusion};
use assay_ledger::note::NoteSigner;
use assay_ledger::reader::Reader;
use assay_ledger::store::{Log, LogError, PENDING_FILE};
use assay_ledger::verify::{verify, verify_in};

fn signer() -> NoteSigner {
    NoteSigner::from_seed("log.example/test", [9; 32]).expect("key")
}

fn entry(i: u64) -> Vec<u8> {
    format!("entry {i} {}", "x".repeat((i % 300) as usize)).into_bytes()
}

#[test]
fn batches_reopen_read_back_and_prove() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("log");
    let mut log = Log::create(&dir, signer()).expect("create");
    let mut leaves: Vec<Hash> = Vec::new();
    let mut next = 0u64;
    // Batch sizes that cross bundle and level-1 tile boundaries, with reopenings between.
    for (round, batch) in [1u64, 254, 1, 256, 300, 65_000, 1, 512, 7].iter().enumerate() {
        if round % 3 == 2 {
            drop(log);
            log = Log::open(&dir, signer()).expect("reopen");
            assert_eq!(log.size(), next);
        }
        let entries: Vec<Vec<u8>> = (next..next + batch).map(entry).collect();
        assert_eq!(log.append(&entries).expect("append"), next);
        leaves.extend(entries.iter().map(|e| leaf_hash(e)));
        next += batch;
    }
    drop(log);
    let mut reader = Reader::open(&dir, Some(&signer().verifier())).expect("read");
    assert_eq!(reader.checkpoint().size, next);
    assert_eq!(reader.checkpoint().root, root(&leaves));
    assert_eq!(reader.entries(255..258).expect("entries"), (255..258).map(entry).collect::<Vec<_>>());
    for index in [0, 1, 255, 256, 65_535, 65_536, 66_000, next - 1] {
        let proof = reader.inclusion_proof(index).expect("tiles").expect("in range");
        assert_eq!(Ok(proof.clone()), inclusion_proof(index, &leaves), "index {index}");
        assert_eq!(verify_inclusion(index, next, &leaves[index as usize], &proof, &root(&leaves)), Ok(()));
    }
    let report = verify(&dir, &signer().verifier(), None).expect("verify");
    assert_eq!(report.problems, vec![]);
}

#[test]
fn a_second_writer_is_refused_while_the_first_holds_the_log() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("log");
    let first = Log::create(&dir, signer()).expect("create");
    let second = Log::open(&dir, signer());
    let Err(LogError::Locked { holder, .. }) = second else { panic!("expected a lock error: {second:?}") };
    assert_eq!(holder, format!(" (pid {})", std::process::id()));
    drop(first);
    assert!(Log::open(&dir, signer()).is_ok());
    assert!(matches!(Log::create(&dir, signer()), Err(LogError::NotEmpty(_))));
    assert!(matches!(Log::open(&tmp.path().join("nothing"), signer()), Err(LogError::NoDirectory(_))));
    let other = NoteSigner::from_seed("log.example/other", [1; 32]).expect("key");
    assert!(matches!(Log::open(&dir, other), Err(LogError::WrongKey { .. })));
}

fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().strip_prefix(dir).expect("prefix").to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn reopening_removes_what_an_unfinished_batch_wrote() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("log");
    let mut log = Log::create(&dir, signer()).expect("create");
    log.append(&(0..300).map(entry).collect::<Vec<_>>()).expect("append");
    let published = files(&dir);
    let checkpoint = std::fs::read(dir.join("checkpoint")).expect("checkpoint");
    // A batch to 70,000 entries that wrote its tiles but not its checkpoint.
    log.append(&(300..70_000).map(entry).collect::<Vec<_>>()).expect("append");
    drop(log);
    std::fs::write(dir.join("checkpoint"), &checkpoint).expect("restore");
    std::fs::write(dir.join(PENDING_FILE), "70000\n").expect("pending");
    let log = Log::open(&dir, signer()).expect("reopen");
    assert_eq!(log.size(), 300);
    drop(log);
    let mut after = files(&dir);
    after.retain(|f| !f.starts_with(".checkpoint.tmp"));
    assert_eq!(after, published);
    assert_eq!(verify(&dir, &signer().verifier(), None).expect("verify").problems, vec![]);
}

#[test]
fn the_appender_batches_many_producers_and_acknowledges_each_entry() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("log");
    let log = Log::create(&dir, signer()).expect("create");
    let batching = Batching { max_entries: 1000, max_delay: std::time::Duration::from_millis(2), max_queue: 500 };
    let appender = Appender::start(log, batching);
    let indexes = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (appender, indexes) = (&appender, &indexes);
            s.spawn(move || {
                for i in 0..2_500u64 {
                    let index = appender.append(format!("producer {t} entry {i}").into_bytes()).expect("append");
                    indexes.lock().expect("lock").push(index);
                }
            });
        }
    });
    let log = appender.close().expect("close");
    assert_eq!(log.size(), 10_000);
    let mut indexes = indexes.into_inner().expect("lock");
    indexes.sort_unstable();
    assert_eq!(indexes, (0..10_000).collect::<Vec<_>>());
    drop(log);
    let reader = Reader::open(&dir, None).expect("read");
    let entries = reader.entries(0..10_000).expect("entries");
    for t in 0..4 {
        let mine: Vec<&Vec<u8>> =
            entries.iter().filter(|e| e.starts_with(format!("producer {t} ").as_bytes())).collect();
        assert_eq!(mine.len(), 2_500);
        assert_eq!(mine[2_499], &format!("producer {t} entry 2499").into_bytes());
    }
}

/// Blobs in memory, as object storage keeps them: no directories, no lock, whole objects, each
/// with a generation that changes whenever it is written, and conditional writes.
#[derive(Default)]
struct Blobs(std::sync::Mutex<(u64, BlobMap)>);

/// Each blob's bytes and generation, by name.
type BlobMap = std::collections::BTreeMap<String, (Vec<u8>, u64)>;

impl Blobs {
    fn keys(&self) -> Vec<String> {
        self.0.lock().expect("lock").1.keys().cloned().collect()
    }

    fn put(&self, path: &str, bytes: &[u8]) -> Version {
        let mut blobs = self.0.lock().expect("lock");
        blobs.0 += 1;
        let generation = blobs.0;
        blobs.1.insert(path.to_string(), (bytes.to_vec(), generation));
        Version { e_tag: None, version: Some(generation.to_string()) }
    }
}

impl Files for Blobs {
    fn location(&self) -> String {
        "mem://log".into()
    }
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, LogError> {
        Ok(self.read_versioned(path)?.map(|(bytes, _)| bytes))
    }
    fn read_versioned(&self, path: &str) -> Result<Option<(Vec<u8>, Version)>, LogError> {
        let blobs = self.0.lock().expect("lock");
        Ok(blobs.1.get(path).map(|(b, g)| (b.clone(), Version { e_tag: None, version: Some(g.to_string()) })))
    }
    fn write(&self, files: &[(String, Vec<u8>)]) -> Result<(), LogError> {
        files.iter().for_each(|(path, bytes)| drop(self.put(path, bytes)));
        Ok(())
    }
    fn create(&self, files: &[(String, Vec<u8>)]) -> Result<(), LogError> {
        for (path, bytes) in files {
            if self.0.lock().expect("lock").1.contains_key(path) {
                return Err(LogError::Superseded(self.name(path)));
            }
            self.put(path, bytes);
        }
        Ok(())
    }
    fn replace(&self, path: &str, bytes: &[u8]) -> Result<(), LogError> {
        self.put(path, bytes);
        Ok(())
    }
    fn replace_if(&self, path: &str, bytes: &[u8], version: Option<&Version>) -> Result<Version, LogError> {
        let now = self.read_versioned(path)?.map(|(_, v)| v);
        if now.as_ref() != version {
            return Err(LogError::Superseded(self.name(path)));
        }
        Ok(self.put(path, bytes))
    }
    fn remove(&self, paths: &[String]) -> Result<(), LogError> {
        let mut blobs = self.0.lock().expect("lock");
        paths.iter().for_each(|p| drop(blobs.1.remove(p)));
        Ok(())
    }
    fn list(&self, dir: &str) -> Result<Vec<String>, LogError> {
        let prefix = format!("{dir}/");
        let blobs = self.0.lock().expect("lock");
        let mut names: Vec<String> = blobs
            .1
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .map(|rest| rest.split('/').next().unwrap_or(rest).to_string())
            .collect();
        names.dedup();
        Ok(names)
    }
    fn is_empty(&self) -> Result<bool, LogError> {
        Ok(self.0.lock().expect("lock").1.is_empty())
    }
}

/// Where a writer is stopped while another one takes its turn.
#[derive(Clone, Copy, PartialEq)]
enum Moment {
    /// After its `.pending` record, before its tiles and bundles.
    BeforeTiles,
    /// After its tiles and bundles, before its checkpoint.
    BeforeCheckpoint,
}

/// The blobs as a writer sees them that is stopped once, at `at`, while `meanwhile` runs.
struct Paused {
    blobs: Arc<Blobs>,
    at: Moment,
    meanwhile: std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Paused {
    fn pause(&self, now: Moment) {
        if now == self.at
            && let Some(run) = self.meanwhile.lock().expect("lock").take()
        {
            run();
        }
    }
}

impl Files for Paused {
    fn location(&self) -> String {
        self.blobs.location()
    }
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, LogError> {
        self.blobs.read(path)
    }
    fn read_versioned(&self, path: &str) -> Result<Option<(Vec<u8>, Version)>, LogError> {
        self.blobs.read_versioned(path)
    }
    fn write(&self, files: &[(String, Vec<u8>)]) -> Result<(), LogError> {
        self.blobs.write(files)
    }
    fn create(&self, files: &[(String, Vec<u8>)]) -> Result<(), LogError> {
        self.pause(Moment::BeforeTiles);
        self.blobs.create(files)
    }
    fn replace(&self, path: &str, bytes: &[u8]) -> Result<(), LogError> {
        self.blobs.replace(path, bytes)
    }
    fn replace_if(&self, path: &str, bytes: &[u8], version: Option<&Version>) -> Result<Version, LogError> {
        self.pause(Moment::BeforeCheckpoint);
        self.blobs.replace_if(path, bytes, version)
    }
    fn remove(&self, paths: &[String]) -> Result<(), LogError> {
        self.blobs.remove(paths)
    }
    fn list(&self, dir: &str) -> Result<Vec<String>, LogError> {
        self.blobs.list(dir)
    }
    fn is_empty(&self) -> Result<bool, LogError> {
        self.blobs.is_empty()
    }
}

fn tagged(who: &str, range: std::ops::Range<u64>) -> Vec<Vec<u8>> {
    range.map(|i| format!("{who} {i}").into_bytes()).collect()
}

/// A writer that lost its turn without knowing it (a sequencer cut off from what elected it)
/// and goes on with its batch while the next writer publishes: what it writes fails, and the
/// next writer's log stays as published, never forked or rolled back.
#[test]
fn a_writer_that_lost_its_turn_writes_nothing_over_the_next_ones_log() {
    for (at, theirs) in [(Moment::BeforeCheckpoint, 15), (Moment::BeforeTiles, 13)] {
        let blobs = Arc::new(Blobs::default());
        let files: Arc<dyn Files> = blobs.clone();
        Log::create_in(Arc::clone(&files), signer()).expect("create").append(&tagged("first", 0..10)).expect("append");
        let next = Arc::clone(&files);
        let meanwhile = move || {
            let mut log = Log::open_in(next, signer()).expect("the next writer opens");
            log.append(&tagged("next", 10..theirs)).expect("the next writer appends");
        };
        let paused: Arc<dyn Files> = Arc::new(Paused {
            blobs: Arc::clone(&blobs),
            at,
            meanwhile: std::sync::Mutex::new(Some(Box::new(meanwhile))),
        });
        let mut stale = Log::open_in(paused, signer()).expect("open");
        // Three entries: with the next writer's three (BeforeTiles), the same tile and bundle
        // names, which a blind write would replace under its published checkpoint.
        let Err(e) = stale.append(&tagged("stale", 10..13)) else { panic!("the stale writer published") };
        let LogError::Superseded(name) = &e else { panic!("expected Superseded: {e}") };
        let expected = if at == Moment::BeforeTiles { "mem://log/tile/" } else { "mem://log/checkpoint" };
        assert!(name.starts_with(expected), "{e}");
        assert!(e.to_string().contains("another writer"), "{e}");

        // The log is the next writer's, whole.
        assert_eq!(verify_in(files.as_ref(), &signer().verifier(), None).expect("verify").problems, vec![]);
        let reader = Reader::open_in(Arc::clone(&files), Some(&signer().verifier())).expect("read");
        assert_eq!(reader.checkpoint().size, theirs);
        assert_eq!(reader.entries(10..theirs).expect("entries"), tagged("next", 10..theirs));

        // Read again (its turn back), the stale writer appends after them.
        stale.reload().expect("reload");
        assert_eq!(stale.size(), theirs);
        stale.append(&tagged("stale", theirs..theirs + 3)).expect("append after reading again");
        assert_eq!(verify_in(files.as_ref(), &signer().verifier(), None).expect("verify").problems, vec![]);
        let reader = Reader::open_in(Arc::clone(&files), Some(&signer().verifier())).expect("read");
        assert_eq!(reader.entries(theirs..theirs + 3).expect("entries"), tagged("stale", theirs..theirs + 3));
    }
}

#[test]
fn a_log_kept_as_blobs_is_the_same_log_recovers_and_verifies() {
    let blobs = Arc::new(Blobs::default());
    let files: Arc<dyn Files> = blobs.clone();
    let mut log = Log::create_in(Arc::clone(&files), signer()).expect("create");
    assert!(matches!(Log::create_in(Arc::clone(&files), signer()), Err(LogError::NotEmpty(_))));
    log.append(&(0..300).map(entry).collect::<Vec<_>>()).expect("append");
    let published = blobs.keys();
    let checkpoint = files.read("checkpoint").expect("read").expect("checkpoint");
    // A batch to 70,000 entries that wrote its tiles but not its checkpoint.
    log.append(&(300..70_000).map(entry).collect::<Vec<_>>()).expect("append");
    drop(log);
    files.replace("checkpoint", &checkpoint).expect("restore");
    files.write(&[(PENDING_FILE.to_string(), b"70000\n".to_vec())]).expect("pending");
    let mut log = Log::open_in(Arc::clone(&files), signer()).expect("reopen");
    assert_eq!(log.size(), 300);
    assert_eq!(blobs.keys(), published, "what the unfinished batch wrote is gone");
    log.append(&(300..1_000).map(entry).collect::<Vec<_>>()).expect("append");

    // Byte for byte the log a directory holds after the same appends.
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("log");
    let mut on_disk = Log::create(&dir, signer()).expect("create");
    on_disk.append(&(0..300).map(entry).collect::<Vec<_>>()).expect("append");
    on_disk.append(&(300..1_000).map(entry).collect::<Vec<_>>()).expect("append");
    drop(on_disk);
    let disk_files: Vec<String> =
        self::files(&dir).into_iter().filter(|f| !f.starts_with('.') && !f.contains("/.")).collect();
    let blob_files: Vec<String> = blobs.keys().into_iter().filter(|k| !k.starts_with('.')).collect();
    assert_eq!(blob_files, disk_files);
    for f in &disk_files {
        assert_eq!(files.read(f).expect("read"), Some(std::fs::read(dir.join(f)).expect("read")), "{f}");
    }

    assert_eq!(verify_in(files.as_ref(), &signer().verifier(), None).expect("verify").problems, vec![]);
    let mut reader = Reader::open_in(Arc::clone(&files), Some(&signer().verifier())).expect("read");
    assert_eq!(reader.entries(998..1_000).expect("entries"), vec![entry(998), entry(999)]);
    assert!(reader.inclusion_proof(500).expect("tiles").is_ok());
    // A missing tile is named with where the log is.
    files.remove(&["tile/entries/001".to_string()]).expect("remove");
    let report = verify_in(files.as_ref(), &signer().verifier(), None).expect("verify");
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let Err(e) = reader.entries(300..301) else { panic!("a missing bundle reads") };
    assert!(e.to_string().contains("mem://log/tile/entries/001"), "{e}");
}
