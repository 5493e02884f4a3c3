//! Benchmarks for `cargo bench -p assay-ledger`: sustained appends of 256-byte entries with
//! durable checkpoints, the latency from append to durable checkpoint at a fixed offered load,
//! inclusion proofs from the tiles of a 10-million-entry log, and verifying a 1-million-entry log.
//! Prints figures for BENCHMARKS.md.
//!
//! Logs are written under `ASSAY_BENCH_DIR` (default: a temporary directory on the same disk as
//! the target directory), on the real filesystem, with every fsync.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use assay_ledger::appender::{Appender, Batching};
use assay_ledger::note::NoteSigner;
use assay_ledger::reader::Reader;
use assay_ledger::store::Log;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

fn signer() -> NoteSigner {
    NoteSigner::from_seed("bench.example/log", [42; 32]).unwrap_or_else(|e| panic!("{e}"))
}

fn entry(i: u64, len: usize) -> Vec<u8> {
    let mut e = format!("entry {i:012} ").into_bytes();
    e.resize(len, b'x');
    e
}

fn fresh(base: &Path, name: &str) -> PathBuf {
    let dir = base.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Producers submit as fast as the writer takes entries (back-pressure bounds the queue).
fn sustained(base: &Path, total: u64, producers: u64) {
    let dir = fresh(base, "sustained");
    let log = Log::create(&dir, signer()).unwrap_or_else(|e| panic!("{e}"));
    let appender = Appender::start(log, Batching::default());
    let start = Instant::now();
    std::thread::scope(|s| {
        for p in 0..producers {
            let appender = &appender;
            s.spawn(move || {
                for i in (p..total).step_by(producers as usize) {
                    if let Err(e) = appender.submit(entry(i, 256)) {
                        panic!("{e}");
                    }
                }
            });
        }
    });
    if let Err(e) = appender.wait(total - 1) {
        panic!("{e}");
    }
    let elapsed = start.elapsed();
    drop(appender);
    println!(
        "appends, sustained: {total} entries of 256 bytes, {producers} producers: {:.2} s, {:.0} entries/s (durable checkpoints)",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
}

/// Entries offered at `rate` per second for `seconds`; latency from submit to durable.
fn latency(base: &Path, rate: u64, seconds: u64) {
    let dir = fresh(base, "latency");
    let log = Log::create(&dir, signer()).unwrap_or_else(|e| panic!("{e}"));
    let appender = Appender::start(log, Batching::default());
    let total = rate * seconds;
    let submitted: Mutex<Vec<Instant>> = Mutex::new(Vec::with_capacity(total as usize));
    let mut latencies = Vec::with_capacity(total as usize);
    let start = Instant::now();
    std::thread::scope(|s| {
        let (appender, submitted) = (&appender, &submitted);
        s.spawn(move || {
            // Offer entries in 1 ms ticks at the given rate.
            let per_tick = rate / 1000;
            let mut i = 0u64;
            let mut tick = 0u64;
            while i < total {
                let due = start + Duration::from_millis(tick);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                for _ in 0..per_tick.min(total - i) {
                    let now = Instant::now();
                    let index = appender.submit(entry(i, 256)).unwrap_or_else(|e| panic!("{e}"));
                    debug_assert_eq!(index, i);
                    submitted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(now);
                    i += 1;
                }
                tick += 1;
            }
        });
        for i in 0..total {
            if let Err(e) = appender.wait(i) {
                panic!("{e}");
            }
            let done = Instant::now();
            let at = loop {
                if let Some(t) = submitted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(i as usize) {
                    break *t;
                }
                std::thread::yield_now();
            };
            latencies.push(done.duration_since(at));
        }
    });
    drop(appender);
    latencies.sort();
    println!(
        "append to durable checkpoint at {rate} entries/s for {seconds} s: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        percentile(&latencies, 1.0).as_secs_f64() * 1e3,
    );
}

/// A log of `size` entries of `len` bytes, written in large batches (reused when present).
fn build(base: &Path, name: &str, size: u64, len: usize) -> PathBuf {
    let dir = base.join(name);
    if Reader::open(&dir, None).is_ok_and(|r| r.checkpoint().size == size) {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let start = Instant::now();
    let mut log = Log::create(&dir, signer()).unwrap_or_else(|e| panic!("{e}"));
    let mut i = 0u64;
    while i < size {
        let n = (size - i).min(1 << 16);
        let batch: Vec<Vec<u8>> = (i..i + n).map(|k| entry(k, len)).collect();
        log.append(&batch).unwrap_or_else(|e| panic!("{e}"));
        i += n;
    }
    println!("  (built {name}: {size} entries of {len} bytes in {:.1} s)", start.elapsed().as_secs_f64());
    dir
}

fn proofs(base: &Path, size: u64) {
    let dir = build(base, "proofs", size, 32);
    let mut times = Vec::new();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..2000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let index = x % size;
        let start = Instant::now();
        // A fresh reader each time: no tile is cached between proofs.
        let mut reader = Reader::open(&dir, None).unwrap_or_else(|e| panic!("{e}"));
        let proof = reader.inclusion_proof(index).unwrap_or_else(|e| panic!("{e}"));
        times.push(start.elapsed());
        assert!(proof.is_ok());
    }
    times.sort();
    println!(
        "inclusion proof at {size} entries (open the checkpoint, read the tiles, build the proof): p50 {:.3} ms, p99 {:.3} ms",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3
    );
}

fn verify(base: &Path, size: u64) {
    let dir = build(base, "verify", size, 256);
    let verifier = signer().verifier();
    let mut times = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let report = assay_ledger::verify::verify(&dir, &verifier, None).unwrap_or_else(|e| panic!("{e}"));
        times.push(start.elapsed());
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }
    times.sort();
    println!(
        "verify {size} entries of 256 bytes (every entry, every tile, the root, the signature): best {:.2} s, worst {:.2} s",
        times[0].as_secs_f64(),
        times[times.len() - 1].as_secs_f64()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let base = std::env::var_os("ASSAY_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-ledger"));
    std::fs::create_dir_all(&base).unwrap_or_else(|e| panic!("{}: {e}", base.display()));
    // `cargo bench -p assay-ledger -- latency proofs` runs only those parts.
    let only: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let run = |name: &str| {
        let wanted = only.is_empty() || only.iter().any(|o| o == name);
        if wanted {
            // Start each part with nothing left to write back from the one before.
            let _ = std::process::Command::new("sync").status();
        }
        wanted
    };
    if run("sustained") {
        sustained(&base, 1_000_000, 4);
    }
    if run("latency") {
        latency(&base, 50_000, 10);
    }
    if run("proofs") {
        proofs(&base, 10_000_000);
    }
    if run("verify") {
        verify(&base, 1_000_000);
    }
}
