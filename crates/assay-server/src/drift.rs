//! The drift watch: the server keeps its cluster's drift and audit results current. It lists
//! the cluster (as `assay drift` does), then watches every kind the estate declares or audits
//! with kube's watcher (bookmarks; a `410 Gone` relists), lists everything again at each resync,
//! and after each change compares the live objects with the active estate and evaluates its
//! policies on them. An object that starts to drift or to violate a policy is alerted once (not
//! on every resync) and every change of standing is a ledger record; a sync attestation is
//! signed on each estate revision and at an interval. `drift_http` answers the current result.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use assay_live::cluster::{self, Store};
use assay_live::report::ClusterDrift;
use assay_live::state::{self, Status};
use serde_json::{Value, json};

/// What the watch needs of the server: the active revision, the outbox, the ledger, the metrics.
pub(crate) struct Parts {
    pub(crate) active: Arc<crate::active::ActiveCell>,
    pub(crate) outbox: Option<Arc<crate::outbox::Outbox>>,
    pub(crate) ledger: Arc<crate::ledger::Ledger>,
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
}

impl Parts {
    fn active(&self) -> Arc<crate::active::Active> {
        self.active.get()
    }

    fn outbox(&self) -> Option<Arc<crate::outbox::Outbox>> {
        self.outbox.clone()
    }
}

/// The latest result, as served.
pub(crate) struct Observation {
    pub(crate) report: ClusterDrift,
    pub(crate) revision: String,
    pub(crate) time: String,
    pub(crate) attestation: Option<Value>,
}

/// The watch's shared state.
pub(crate) struct Drift {
    pub(crate) config: crate::config::DriftWatch,
    pub(crate) current: RwLock<Option<Arc<Observation>>>,
    /// Per object or finding, the standing last recorded: what changed is what differs.
    standings: Mutex<Standings>,
    /// Where standings are kept across restarts (the data directory, or the shared database),
    /// when the server has one.
    memory: Option<Memory>,
    /// With a shared database, only the replica that leads watches for good: it alone alerts,
    /// records and signs attestations; the others keep `/v1/drift` current.
    leadership: Option<Arc<assay_store::Leadership>>,
    /// The leadership term the standings were read at.
    term: std::sync::atomic::AtomicU64,
    relists: Arc<AtomicUsize>,
}

impl Drift {
    /// Complete lists the watches have received so far (each kind's first, and one after each
    /// `410 Gone`), whether or not they changed anything.
    pub(crate) fn relists(&self) -> usize {
        self.relists.load(Ordering::Relaxed)
    }

    /// The watch's state; with a data directory, the standings recorded before a restart.
    pub(crate) fn new(
        config: crate::config::DriftWatch,
        data: Option<&std::path::Path>,
        database: Option<&str>,
    ) -> anyhow::Result<Drift> {
        use anyhow::Context as _;
        let location = match (database, data) {
            (Some(url), _) => Some(assay_store::Location::Postgres(url.to_string())),
            (None, Some(d)) => Some(assay_store::Location::Sqlite(d.join("drift.sqlite"))),
            (None, None) => None,
        };
        let memory = location
            .as_ref()
            .map(|l| {
                Memory::open(l, &config.cluster)
                    .with_context(|| format!("opening the drift standings in {}", l.redacted()))
            })
            .transpose()?;
        let leadership = database
            .map(|url| {
                let key = (stable_hash(&format!("drift watch {}", config.cluster)) >> 1) as i64;
                assay_store::Leadership::start(url, key, &format!("drift watch of {}", config.cluster))
            })
            .transpose()
            .context("the drift watch's leadership")?;
        let standings = match &memory {
            Some(m) => m.load().context("reading the drift standings")?,
            None => Standings::default(),
        };
        Ok(Drift {
            config,
            current: RwLock::new(None),
            standings: Mutex::new(standings),
            memory,
            leadership,
            term: std::sync::atomic::AtomicU64::new(0),
            relists: Arc::default(),
        })
    }
}

/// Watches until the server stops.
pub(crate) async fn run(state: Parts, drift: Arc<Drift>, signer: Option<assay_ledger::note::NoteSigner>) {
    let cluster_name = drift.config.cluster.clone();
    let mut attested: Option<String> = None;
    loop {
        // The context: the flag's, else the cluster's in the active `assay.yaml`, else in-cluster.
        let context = drift.config.context.clone().or_else(|| {
            let active = state.active();
            active.estate.settings.clusters.iter().find(|c| c.name == cluster_name).and_then(|c| c.context.clone())
        });
        let client = match cluster::client(context.as_deref()).await {
            Ok(c) => c,
            Err(e) => {
                publish_error(&state, &drift, format!("cluster {cluster_name}: {e}"));
                tokio::time::sleep(Duration::from_secs(10)).await;
                continue;
            }
        };
        let active = state.active();
        let estate = Arc::clone(&active.estate);
        let manifests = Arc::clone(&active.manifests);
        let desired: Vec<&assay_estate::PackedObject> =
            manifests.iter().filter(|o| cluster::bound_for(&estate, &o.path, &cluster_name)).collect();
        // Compiled once per revision (jq expressions included), not at every comparison.
        let (options, problems) = state::Options::for_settings(&estate.settings);
        for p in &problems {
            tracing::warn!("{p}; the rule is left out");
        }
        let wanted = cluster::wanted(&estate, &desired, true);
        let store: Store = Arc::default();
        let changed = Arc::new(tokio::sync::Notify::new());
        let snapshot = cluster::read(&client, &cluster_name, &wanted).await;
        let mut errors = snapshot.errors.clone();
        let warnings = snapshot.warnings.clone();
        fill(&store, snapshot.objects);
        let mut watchers = Vec::new();
        match cluster::watch_targets(&client, &wanted).await {
            Ok(targets) => {
                let keep = Arc::new(wanted.namespaces.clone());
                for (resource, namespace) in targets {
                    watchers.push(tokio::spawn(cluster::watch(
                        client.clone(),
                        resource,
                        namespace,
                        Arc::clone(&keep),
                        Arc::clone(&store),
                        Arc::clone(&changed),
                        Arc::clone(&drift.relists),
                    )));
                }
            }
            Err(e) => errors.push(format!("cluster {cluster_name}: cannot watch: {e}")),
        }
        let mut resync = tokio::time::interval(drift.config.resync);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        resync.tick().await;
        let mut attest_timer = drift.config.attest_every.map(tokio::time::interval);
        if let Some(t) = &mut attest_timer {
            t.tick().await;
        }
        let mut due = true;
        loop {
            if due {
                let attest_due = attested.as_deref() != Some(active.revision.as_str());
                // Comparing and auditing thousands of objects is CPU work: off the async workers.
                tokio::task::block_in_place(|| {
                    evaluate(
                        &state,
                        &drift,
                        &active,
                        &desired,
                        &options,
                        &store,
                        &errors,
                        &warnings,
                        signer.as_ref(),
                        attest_due,
                    );
                });
                if attest_due && signer.is_some() {
                    attested = Some(active.revision.clone());
                }
            }
            due = true;
            tokio::select! {
                () = changed.notified() => {
                    // Let a burst of events land before comparing again.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                _ = resync.tick() => {
                    let again = cluster::read(&client, &cluster_name, &wanted).await;
                    errors = again.errors;
                    fill(&store, again.objects);
                }
                () = async { match &mut attest_timer { Some(t) => { t.tick().await; } None => std::future::pending().await } } => {
                    attested = None;
                }
                // Nothing happened: only look whether a new revision was activated, and compare
                // again at once when this replica has just taken over the watch (what changed
                // while no replica led is alerted now).
                () = tokio::time::sleep(Duration::from_secs(2)) => due = takes_over(&drift),
            }
            if state.active().revision != active.revision {
                break;
            }
        }
        for w in watchers {
            w.abort();
        }
    }
}

/// The first 8 bytes of the SHA-256 of `text`: the same in every version, so standings kept in
/// the data directory still match after an upgrade.
fn stable_hash(text: &str) -> u64 {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(text.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().unwrap_or([0; 8]))
}

/// Per object or finding (by the hash of what it is about), the standing last recorded. Kept
/// small for hundreds of thousands of findings: 24 bytes each, the texts a finding names held
/// once in a table.
#[derive(Default)]
struct Standings {
    by_id: BTreeMap<u64, Standing>,
    /// The objects and policies findings name (what a resolution record says), by index.
    texts: Vec<Arc<str>>,
}

/// A standing: its signature (a hash of status and details), and of a finding the indexes of its
/// object and policy in [`Standings::texts`] (`NONE` for an object's own standing).
#[derive(Clone, Copy)]
struct Standing {
    signature: u64,
    object: u32,
    policy: u32,
}

const NONE: u32 = u32::MAX;

/// Builds a table of texts, each held once.
#[derive(Default)]
struct TextTable {
    texts: Vec<Arc<str>>,
    index: std::collections::HashMap<Arc<str>, u32>,
}

impl TextTable {
    fn index(&mut self, text: &Arc<str>) -> u32 {
        if let Some(i) = self.index.get(text) {
            return *i;
        }
        let i = u32::try_from(self.texts.len()).unwrap_or(NONE);
        self.texts.push(Arc::clone(text));
        self.index.insert(Arc::clone(text), i);
        i
    }
}
/// A standing set (its signature, and of a finding its object and policy), or removed.
type Change = (u64, Option<(u64, Option<(Arc<str>, Arc<str>)>)>);

/// The standings' schema: SQLite's first version is the one `drift.sqlite` had before versions
/// were kept; on PostgreSQL, replicas may watch different clusters, so standings are per cluster.
const MEMORY: [assay_store::Migration; 1] = [assay_store::Migration {
    version: 1,
    sqlite: "CREATE TABLE IF NOT EXISTS standings (
                 id INTEGER PRIMARY KEY, signature INTEGER NOT NULL, object TEXT, policy TEXT);",
    postgres: "CREATE TABLE drift_standings (
                   cluster TEXT NOT NULL, id BIGINT NOT NULL, signature BIGINT NOT NULL, object TEXT, policy TEXT,
                   PRIMARY KEY (cluster, id));",
}];

/// Standings kept across restarts (`drift.sqlite` in the data directory, or the database the
/// replicas share), so that a restart, or another replica taking over the watch, does not alert
/// again what was alerted before.
struct Memory {
    db: assay_store::Db,
    cluster: String,
}

impl Memory {
    fn open(location: &assay_store::Location, cluster: &str) -> assay_store::Result<Memory> {
        let db = assay_store::Db::open(location)?;
        assay_store::migrate(&db, "drift", &MEMORY)?;
        Ok(Memory { db, cluster: cluster.to_string() })
    }

    fn postgres(&self) -> bool {
        self.db.backend() == assay_store::Backend::Postgres
    }

    /// Every standing: id → signature, and of findings their object and policy.
    fn load(&self) -> assay_store::Result<Standings> {
        let rows = if self.postgres() {
            self.db.rows(
                "SELECT id, signature, object, policy FROM drift_standings WHERE cluster = ?1",
                &assay_store::vals![&self.cluster],
            )?
        } else {
            self.db.rows("SELECT id, signature, object, policy FROM standings", &[])?
        };
        let mut by_id = BTreeMap::new();
        let mut table = TextTable::default();
        for r in rows {
            let (id, signature, object, policy): (i64, i64, Option<String>, Option<String>) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            let (object, policy) = match (object, policy) {
                (Some(o), Some(p)) => (table.index(&o.into()), table.index(&p.into())),
                _ => (NONE, NONE),
            };
            by_id.insert(id as u64, Standing { signature: signature as u64, object, policy });
        }
        Ok(Standings { by_id, texts: table.texts })
    }

    /// Applies changes in one transaction: a standing set (with a finding's object and policy),
    /// or removed.
    fn save(&self, changes: &[Change]) -> assay_store::Result<()> {
        use assay_store::Val;
        let (put, del) = if self.postgres() {
            (
                "INSERT INTO drift_standings (cluster, id, signature, object, policy) VALUES (?5, ?1, ?2, ?3, ?4)
                 ON CONFLICT (cluster, id) DO UPDATE SET signature = excluded.signature,
                 object = coalesce(excluded.object, drift_standings.object),
                 policy = coalesce(excluded.policy, drift_standings.policy)",
                "DELETE FROM drift_standings WHERE id = ?1 AND cluster = ?2",
            )
        } else {
            (
                "INSERT INTO standings (id, signature, object, policy) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET signature = excluded.signature,
                 object = coalesce(excluded.object, object), policy = coalesce(excluded.policy, policy)",
                "DELETE FROM standings WHERE id = ?1",
            )
        };
        let postgres = self.postgres();
        self.db.transaction(|tx| {
            for (id, change) in changes {
                match change {
                    Some((signature, finding)) => {
                        let (o, p) = finding.clone().unzip();
                        let mut params = vec![
                            Val::Int(*id as i64),
                            Val::Int(*signature as i64),
                            Val::from(o.as_deref()),
                            Val::from(p.as_deref()),
                        ];
                        if postgres {
                            params.push(Val::Text(&self.cluster));
                        }
                        tx.execute(put, &params)?;
                    }
                    None => {
                        let mut params = vec![Val::Int(*id as i64)];
                        if postgres {
                            params.push(Val::Text(&self.cluster));
                        }
                        tx.execute(del, &params)?;
                    }
                }
            }
            Ok(())
        })
    }
}

/// Replaces the store's objects with a full list.
fn fill(store: &Store, objects: Vec<(state::Key, state::Packed)>) {
    let mut s = store.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    s.clear();
    s.extend(objects.into_iter().map(|(key, packed)| (key, Arc::new(packed))));
}

fn publish_error(state: &Parts, drift: &Drift, error: String) {
    tracing::warn!("{error}");
    let active = state.active();
    let report = ClusterDrift::new(&drift.config.cluster, "API server", Vec::new(), vec![error]);
    let observation = Observation {
        report,
        revision: active.revision.clone(),
        time: assay_record::Time::now().to_string(),
        attestation: None,
    };
    *drift.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(observation));
}

/// One comparison and audit; what changed since the last is alerted and recorded.
#[allow(clippy::too_many_arguments)]
fn evaluate(
    state: &Parts,
    drift: &Drift,
    active: &crate::active::Active,
    desired: &[&assay_estate::PackedObject],
    options: &state::Options,
    store: &Store,
    errors: &[String],
    warnings: &[String],
    signer: Option<&assay_ledger::note::NoteSigner>,
    attest: bool,
) {
    let cluster = drift.config.cluster.as_str();
    let estate = &active.estate;
    // The live objects are held packed: the comparison parses them one at a time, the audit a
    // thousand at a time, so the whole cluster is never held parsed.
    let snapshot: Vec<(state::Key, Arc<state::Packed>)> = store
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .map(|(k, v)| (k.clone(), Arc::clone(v)))
        .collect();
    let objects = state::reconcile(desired, &snapshot, options);
    let in_git: std::collections::BTreeSet<&state::Key> =
        objects.iter().filter(|o| o.status != Status::Extra).map(|o| &o.key).collect();
    let mut audit = Vec::new();
    let mut texts = assay_live::report::Interner::default();
    let place = format!("cluster {cluster}");
    for chunk in snapshot.chunks(1000) {
        let live: Vec<assay_estate::Object> = chunk
            .iter()
            .map(|(_, packed)| assay_estate::Object { path: place.clone(), line: 0, value: packed.value() })
            .collect();
        let evaluations = active.policies.evaluate_objects(&live);
        for ((key, _), (object, evaluation)) in chunk.iter().zip(live.iter().zip(&evaluations)) {
            if evaluation.findings.is_empty() {
                continue;
            }
            let identity = texts.get(&object.identity());
            let in_git = in_git.contains(key);
            for f in &evaluation.findings {
                audit.push(texts.finding(&identity, &f.policy.id(), f.action.as_str(), &f.message, in_git));
            }
        }
    }
    audit.shrink_to_fit();
    drop(texts);
    drop(in_git);
    drop(snapshot);
    let mut report = ClusterDrift::new(cluster, &source(drift), objects, errors.to_vec());
    report.warnings = warnings.to_vec();
    report.audit = Some(audit);
    let time = assay_record::Time::now();
    let estate_at = active.estate_at();
    let leads = leads(drift);
    if leads {
        record_changes(state, drift, &report, time, &estate_at);
    }
    let counts: Vec<(&str, usize)> = report.counts.iter().map(|(k, v)| (*k, *v)).collect();
    let mut by_action: BTreeMap<&str, usize> = [("deny", 0), ("warn", 0), ("dryrun", 0)].into();
    for f in report.audit.iter().flatten() {
        *by_action.entry(&*f.rule.action).or_default() += 1;
    }
    let findings: Vec<(&str, usize)> = by_action.into_iter().collect();
    state.metrics.drift(cluster, &counts, &findings);
    let mut attestation = drift.current.read().ok().and_then(|c| c.as_ref().and_then(|o| o.attestation.clone()));
    if attest
        && leads
        && let Some(signer) = signer
    {
        let statement = assay_live::attest::statement(
            &report,
            estate.settings.name.as_deref(),
            &active.revision,
            &time.to_string(),
        );
        let envelope = assay_lineage::provenance::envelope(&statement, signer.name(), |m| signer.sign_bytes(m));
        state.ledger.record(assay_record::Record::sync_attestation(&statement, &envelope, time, estate_at));
        attestation = Some(envelope);
    }
    let observation = Observation { report, revision: active.revision.clone(), time: time.to_string(), attestation };
    *drift.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(observation));
}

/// Whether this replica leads the watch at a term its standings were not read at.
fn takes_over(drift: &Drift) -> bool {
    drift.leadership.as_ref().and_then(|l| l.leading()).is_some_and(|term| drift.term.load(Ordering::Acquire) != term)
}

/// Whether this replica leads the drift watch (`None`: it is the only one).
impl Drift {
    pub(crate) fn leading(&self) -> Option<bool> {
        self.leadership.as_ref().map(|l| l.leading().is_some())
    }
}

/// Whether this replica alerts and records drift: always without a shared database; with one,
/// while it leads. A replica that has just taken the lead reads the standings again, as the
/// previous leader recorded them.
fn leads(drift: &Drift) -> bool {
    let Some(leadership) = &drift.leadership else { return true };
    let Some(term) = leadership.leading() else { return false };
    if drift.term.swap(term, Ordering::AcqRel) != term
        && let Some(memory) = &drift.memory
    {
        match memory.load() {
            Ok(standings) => *drift.standings.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = standings,
            Err(e) => {
                tracing::error!(error = %e, "reading the drift standings failed; not alerting until they can be read");
                drift.term.store(0, Ordering::Release);
                return false;
            }
        }
    }
    true
}

fn source(drift: &Drift) -> String {
    match &drift.config.context {
        Some(c) => format!("API server of kubeconfig context {c} (watched)"),
        None => "API server (in-cluster, watched)".to_string(),
    }
}

/// Alerts what started to drift or violate, and records every change of standing. Works through
/// the results without copying them: standings are compared by hash, and records and alerts go out
/// as they are made (a first audit of a large cluster has hundreds of thousands of findings).
fn record_changes(
    state: &Parts,
    drift: &Drift,
    report: &ClusterDrift,
    time: assay_record::Time,
    estate: &assay_record::EstateAt,
) {
    let in_sync_mark = stable_hash("in_sync");
    let active = state.active();
    let mut standings = drift.standings.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // The texts findings name, rebuilt at every pass so that what is gone is let go; the table of
    // the last pass names what was resolved.
    let mut table = TextTable::default();
    let mut current: std::collections::HashSet<u64> = std::collections::HashSet::new();
    let mut changes: Vec<Change> = Vec::new();
    let mut messages = Vec::new();
    let flush = |messages: &mut Vec<crate::outbox::Message>| {
        if !messages.is_empty()
            && let Some(outbox) = state.outbox()
            && let Err(e) = outbox.push(messages)
        {
            tracing::error!(error = %format!("{e:#}"), "storing drift alerts");
        }
        messages.clear();
    };
    // One standing: its id, status, signature, object, details and live digest.
    let mut judge = |id: u64,
                     status: &str,
                     signature: u64,
                     object: &str,
                     details: &dyn Fn() -> Vec<String>,
                     digest: Option<&String>,
                     finding: Option<(&Arc<str>, &Arc<str>)>,
                     messages: &mut Vec<crate::outbox::Message>| {
        current.insert(id);
        let (object_index, policy_index) = match finding {
            Some((o, p)) => (table.index(o), table.index(p)),
            None => (NONE, NONE),
        };
        let standing = Standing { signature, object: object_index, policy: policy_index };
        let before = standings.by_id.insert(id, standing).map(|s| s.signature);
        if before == Some(signature) {
            return;
        }
        let finding = finding.map(|(o, p)| (Arc::clone(o), Arc::clone(p)));
        changes.push((id, Some((signature, finding))));
        if status == "in_sync" && before.is_none() {
            return;
        }
        let details = details();
        if status != "in_sync" && before.is_none_or(|b| b == in_sync_mark) {
            let about = json!({"kind": "drift", "cluster": report.cluster, "object": object, "status": status,
                "details": details, "estate": estate});
            let alert = crate::alerts::Finding { about, subject: Some(object), quarantine: None, key: None };
            messages.extend(crate::alerts::messages(&active.actions, &alert));
        }
        state.ledger.record(assay_record::Record::DriftObservation(assay_record::DriftObservationRecord {
            time,
            cluster: report.cluster.clone(),
            estate: estate.clone(),
            object: object.to_string(),
            status: status.to_string(),
            details,
            live_sha256: digest.cloned(),
        }));
    };
    for o in &report.objects {
        let key = o.key.to_string();
        let fields = || o.diffs.iter().map(|d| d.path.clone()).collect::<Vec<String>>();
        let status = o.status.name();
        let signature = if o.status == Status::InSync {
            in_sync_mark
        } else {
            stable_hash(&format!("{status}|{}|{}", fields().join(","), o.live_sha256.as_deref().unwrap_or("")))
        };
        judge(
            stable_hash(&format!("object {key}")),
            status,
            signature,
            &key,
            &fields,
            o.live_sha256.as_ref(),
            None,
            &mut messages,
        );
        if messages.len() >= 1000 {
            flush(&mut messages);
        }
    }
    let violation = stable_hash("violation");
    for f in report.audit.iter().flatten() {
        let id = stable_hash(&format!("finding {} {} {}", f.object, f.rule.policy, f.rule.message));
        let details = || vec![f.rule.policy.to_string(), f.rule.message.to_string()];
        judge(id, "violation", violation, &f.object, &details, None, Some((&f.object, &f.rule.policy)), &mut messages);
        if messages.len() >= 1000 {
            flush(&mut messages);
        }
    }
    flush(&mut messages);
    // What is gone: findings resolved, objects no longer compared.
    let gone: Vec<u64> = standings.by_id.keys().filter(|k| !current.contains(*k)).copied().collect();
    drop(current);
    let last = std::mem::replace(&mut standings.texts, table.texts);
    drop(table.index);
    for id in gone {
        let Some(standing) = standings.by_id.remove(&id) else { continue };
        changes.push((id, None));
        let name = |i: u32| last.get(i as usize).map(Arc::clone);
        if let (Some(object), Some(policy)) = (name(standing.object), name(standing.policy)) {
            state.ledger.record(assay_record::Record::DriftObservation(assay_record::DriftObservationRecord {
                time,
                cluster: report.cluster.clone(),
                estate: estate.clone(),
                object: object.to_string(),
                status: "resolved".into(),
                details: vec![policy.to_string()],
                live_sha256: None,
            }));
        }
    }
    drop(last);
    drop(standings);
    if let Some(memory) = &drift.memory
        && let Err(e) = memory.save(&changes)
    {
        tracing::error!(error = %e, "keeping the drift standings; a restart may alert them again");
    }
}
