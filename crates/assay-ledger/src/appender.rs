//! Batched appends from many producers: entries are queued, a writer thread commits them in
//! batches (closed by count or by time), and each producer learns its entry's index once a
//! checkpoint covering it is durable. A full queue blocks producers (back-pressure) instead of
//! dropping anything.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::store::{Log, MAX_ENTRY};

/// How batches are formed.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    /// A batch closes when it holds this many entries.
    pub max_entries: usize,
    /// … or when its first entry has waited this long.
    pub max_delay: Duration,
    /// Producers block while this many entries wait.
    pub max_queue: usize,
}

impl Default for Batching {
    fn default() -> Self {
        Batching { max_entries: 65_536, max_delay: Duration::from_millis(5), max_queue: 1 << 17 }
    }
}

#[derive(Default)]
struct State {
    queue: Vec<Vec<u8>>,
    /// Index the next submitted entry gets.
    next: u64,
    /// Entries below this index are durable.
    durable: u64,
    first_queued: Option<Instant>,
    /// Why the writer stopped for good.
    failed: Option<String>,
    /// Why the last write failed, while the writer retries it.
    failing: Option<String>,
    closing: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the writer.
    work: Condvar,
    /// Wakes producers (durable progress, failure, or room in the queue).
    progress: Condvar,
    max_queue: usize,
    /// The batch size that makes the writer write at once.
    max_entries: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A log with a writer thread. Cloneable handles are not needed: share it behind an `Arc`.
pub struct Appender {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Log>>,
}

impl std::fmt::Debug for Appender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appender").field("durable", &self.durable()).finish_non_exhaustive()
    }
}

/// Why an entry was not appended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The entry is too large.
    #[error("the entry is {0} bytes; entries are at most {MAX_ENTRY} bytes")]
    TooLarge(usize),
    /// Writing failed; nothing from the failed batch on is published.
    #[error("the log stopped accepting entries: {0}")]
    Failed(String),
    /// The appender is closing.
    #[error("the log is closing")]
    Closed,
}

/// Why [`Appender::try_submit`] did not queue an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrySubmitError {
    /// The queue is full; here is the entry back.
    #[error("the queue is full")]
    Full(Vec<u8>),
    /// The entry cannot be appended at all.
    #[error(transparent)]
    Append(AppendError),
}

impl Appender {
    /// Starts the writer thread for `log`.
    pub fn start(log: Log, batching: Batching) -> Appender {
        let shared = Arc::new(Shared {
            state: Mutex::new(State { next: log.size(), durable: log.size(), ..State::default() }),
            work: Condvar::new(),
            progress: Condvar::new(),
            max_queue: batching.max_queue.max(1),
            max_entries: batching.max_entries.max(1),
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("assay-ledger-writer".into())
            .spawn(move || writer(log, &thread_shared, batching))
            .ok();
        if thread.is_none() {
            shared.lock().failed = Some("could not start the writer thread".into());
        }
        Appender { shared, thread }
    }

    /// Queues an entry and returns the index it will have; blocks while the queue is full.
    pub fn submit(&self, entry: Vec<u8>) -> Result<u64, AppendError> {
        match self.enqueue(entry, true) {
            Ok(index) => Ok(index),
            Err(TrySubmitError::Append(e)) => Err(e),
            Err(TrySubmitError::Full(_)) => Err(AppendError::Closed),
        }
    }

    /// Queues an entry without waiting: when the queue is full the entry comes back in
    /// [`TrySubmitError::Full`], for a caller that must not block (an async task) to submit it
    /// from a thread that may.
    pub fn try_submit(&self, entry: Vec<u8>) -> Result<u64, TrySubmitError> {
        self.enqueue(entry, false)
    }

    fn enqueue(&self, entry: Vec<u8>, wait: bool) -> Result<u64, TrySubmitError> {
        if entry.len() > MAX_ENTRY {
            return Err(TrySubmitError::Append(AppendError::TooLarge(entry.len())));
        }
        let max_queue = self.shared.max_queue;
        let mut st = self.shared.lock();
        loop {
            if let Some(e) = &st.failed {
                return Err(TrySubmitError::Append(AppendError::Failed(e.clone())));
            }
            if st.closing {
                return Err(TrySubmitError::Append(AppendError::Closed));
            }
            if st.queue.len() < max_queue {
                break;
            }
            if !wait {
                return Err(TrySubmitError::Full(entry));
            }
            st = self.shared.progress.wait(st).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        let was_empty = st.queue.is_empty();
        if was_empty {
            st.first_queued = Some(Instant::now());
        }
        st.queue.push(entry);
        let index = st.next;
        st.next += 1;
        // The writer sleeps until the queue has something, then until the batch is due: it
        // needs waking only for the first entry of a batch and for a batch that is full.
        if was_empty || st.queue.len() >= self.shared.max_entries {
            self.shared.work.notify_one();
        }
        Ok(index)
    }

    /// Blocks until entry `index` is durable.
    pub fn wait(&self, index: u64) -> Result<(), AppendError> {
        let mut st = self.shared.lock();
        loop {
            if st.durable > index {
                return Ok(());
            }
            if let Some(e) = &st.failed {
                return Err(AppendError::Failed(e.clone()));
            }
            st = self.shared.progress.wait(st).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// Appends one entry and waits until it is durable.
    pub fn append(&self, entry: Vec<u8>) -> Result<u64, AppendError> {
        let index = self.submit(entry)?;
        self.wait(index)?;
        Ok(index)
    }

    /// The number of durable entries.
    pub fn durable(&self) -> u64 {
        self.shared.lock().durable
    }

    /// Why writing fails, while it does: the writer keeps the batch it could not write and
    /// tries it again (reading the log again first) until it succeeds, so nothing queued is
    /// lost; new entries queue behind it until the queue is full. `None` when the last write
    /// succeeded.
    pub fn failing(&self) -> Option<String> {
        let st = self.shared.lock();
        st.failing.clone().or_else(|| st.failed.clone())
    }

    /// Commits everything queued, stops the writer and returns the log.
    pub fn close(mut self) -> Result<Log, AppendError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<Log, AppendError> {
        self.shared.lock().closing = true;
        self.shared.work.notify_all();
        let log = self
            .thread
            .take()
            .ok_or(AppendError::Closed)?
            .join()
            .map_err(|_| AppendError::Failed("the writer thread panicked".into()))?;
        match &self.shared.lock().failed {
            Some(e) => Err(AppendError::Failed(e.clone())),
            None => Ok(log),
        }
    }
}

impl Drop for Appender {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.stop();
        }
    }
}

fn writer(mut log: Log, shared: &Shared, batching: Batching) -> Log {
    loop {
        let batch = {
            let mut st = shared.lock();
            loop {
                if st.failed.is_some() {
                    return log;
                }
                if st.queue.is_empty() {
                    if st.closing {
                        return log;
                    }
                    st = shared.work.wait(st).unwrap_or_else(std::sync::PoisonError::into_inner);
                    continue;
                }
                let waited = st.first_queued.map_or(Duration::ZERO, |t| t.elapsed());
                if st.closing || st.queue.len() >= batching.max_entries || waited >= batching.max_delay {
                    break;
                }
                let (guard, _) = shared
                    .work
                    .wait_timeout(st, batching.max_delay - waited)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                st = guard;
            }
            let take = st.queue.len().min(batching.max_entries);
            let rest = st.queue.split_off(take);
            let batch = std::mem::replace(&mut st.queue, rest);
            st.first_queued = if st.queue.is_empty() { None } else { Some(Instant::now()) };
            // Room in the queue again.
            shared.progress.notify_all();
            batch
        };
        if !write(&mut log, shared, &batch) {
            return log;
        }
    }
}

/// The wait before retry `n` of a failed write: 100 ms doubling to 5 s.
fn retry_delay(n: u32) -> Duration {
    Duration::from_millis(100).saturating_mul(1 << n.min(6)).min(Duration::from_secs(5))
}

/// Writes one batch, retrying (after reading the log again, which discards what a failed
/// batch left behind) until it is durable. `false` when the appender closes while writing
/// still fails: the batch is then lost, and the appender has failed.
fn write(log: &mut Log, shared: &Shared, batch: &[Vec<u8>]) -> bool {
    let mut attempt = 0;
    loop {
        match log.append(batch) {
            Ok(_) => {
                let mut st = shared.lock();
                st.durable = log.size();
                st.failing = None;
                shared.progress.notify_all();
                return true;
            }
            Err(e) => {
                let mut why = e.to_string();
                // The failed append changed the log in memory: read it again (which can fail as
                // well) before the batch is tried again.
                loop {
                    {
                        let mut st = shared.lock();
                        st.failing = Some(why.clone());
                        if st.closing {
                            st.failed = Some(format!("closed while writing failed: {why}"));
                            shared.progress.notify_all();
                            return false;
                        }
                    }
                    shared.progress.notify_all();
                    std::thread::sleep(retry_delay(attempt));
                    attempt += 1;
                    match log.reload() {
                        Ok(()) => break,
                        Err(e) => why = format!("reading the log again: {e}"),
                    }
                }
            }
        }
    }
}
