//! The lineage graph in SQLite: jobs, runs, datasets and dataset versions, with edges from a
//! run's inputs through the run to its outputs, and job-level edges (job reads dataset, job
//! writes dataset) for graph queries.
//!
//! Events may arrive out of order and more than once: an event is identified by the SHA-256 of
//! its canonical JSON and applied once; a run's state is the terminal state with the latest event
//! time (a START that arrives after its COMPLETE does not reopen it); each facet keeps the value
//! from the event with the latest event time (ties broken by digest). So the graph ends the same
//! whatever the order.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;

use assay_store::{Backend, Db, Location, Migration, Row, Tx, Val, vals};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::event::{Dataset, Event};

/// A node of the graph, as Marquez names them: `dataset:NAMESPACE:NAME`, `job:NAMESPACE:NAME`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Node {
    /// A dataset.
    Dataset(String, String),
    /// A job.
    Job(String, String),
}

impl Node {
    /// Parses `dataset:NS:NAME` or `job:NS:NAME` (the namespace may itself hold colons, as in
    /// `s3://bucket`: the name is what follows the last colon that is not part of `://`).
    pub fn parse(id: &str) -> Option<Node> {
        let (kind, rest) = id.split_once(':')?;
        let split = rest.rmatch_indices(':').map(|(i, _)| i).find(|&i| !rest[i..].starts_with("://"))?;
        let (ns, name) = (&rest[..split], &rest[split + 1..]);
        if ns.is_empty() || name.is_empty() {
            return None;
        }
        match kind {
            "dataset" => Some(Node::Dataset(ns.to_string(), name.to_string())),
            "job" => Some(Node::Job(ns.to_string(), name.to_string())),
            _ => None,
        }
    }

    /// The node's id, `dataset:NS:NAME` or `job:NS:NAME`.
    pub fn id(&self) -> String {
        match self {
            Node::Dataset(ns, n) => format!("dataset:{ns}:{n}"),
            Node::Job(ns, n) => format!("job:{ns}:{n}"),
        }
    }
}

/// A run that wrote a model (see [`Graph::training_runs`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TrainingRun {
    /// The run's id.
    pub run_id: String,
    /// Its job, `job:NS:NAME`.
    pub job: String,
    /// When it started and ended (UTC, RFC 3339, as the events said).
    pub started: Option<String>,
    /// When it ended.
    pub ended: Option<String>,
    /// The models it wrote, `dataset:NS:NAME`.
    pub models: Vec<String>,
}

/// A problem with the store.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// The store (SQLite or PostgreSQL) failed.
    #[error("the lineage store: {0}")]
    Store(#[from] assay_store::Error),
}

/// The graph.
#[derive(Debug)]
pub struct Graph {
    db: Db,
}

/// What applying an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The event was new.
    New,
    /// The same event was applied before.
    Duplicate,
}

const TERMINAL: [&str; 3] = ["COMPLETE", "FAIL", "ABORT"];

/// The SHA-256 of an event's canonical JSON (RFC 8785), hex: its identity.
pub fn digest(event: &Value) -> String {
    let canonical = serde_json_canonicalizer::to_vec(event).unwrap_or_else(|_| event.to_string().into_bytes());
    sha256_hex(&canonical)
}

/// The SHA-256 of some bytes, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The graph's schema. SQLite's first version is the schema files had before versions were
/// kept (so that they adopt it unchanged); PostgreSQL's keeps text in code-point order
/// (`COLLATE "C"`), as SQLite does, so that both sort alike, and counts new events in
/// `graph_version` (its identity columns are not in commit order).
const SCHEMA: [Migration; 1] = [Migration {
    version: 1,
    sqlite: "CREATE TABLE IF NOT EXISTS events (digest TEXT PRIMARY KEY, event_time TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS jobs (
                 id INTEGER PRIMARY KEY, namespace TEXT NOT NULL, name TEXT NOT NULL,
                 UNIQUE (namespace, name));
             CREATE TABLE IF NOT EXISTS datasets (
                 id INTEGER PRIMARY KEY, namespace TEXT NOT NULL, name TEXT NOT NULL,
                 UNIQUE (namespace, name));
             CREATE TABLE IF NOT EXISTS versions (
                 id INTEGER PRIMARY KEY, dataset INTEGER NOT NULL REFERENCES datasets(id),
                 version TEXT NOT NULL, UNIQUE (dataset, version));
             CREATE TABLE IF NOT EXISTS runs (
                 id INTEGER PRIMARY KEY, run_id TEXT NOT NULL UNIQUE, job INTEGER NOT NULL REFERENCES jobs(id),
                 state TEXT, state_time TEXT, started TEXT, ended TEXT);
             CREATE TABLE IF NOT EXISTS run_io (
                 run INTEGER NOT NULL REFERENCES runs(id), dataset INTEGER NOT NULL REFERENCES datasets(id),
                 output INTEGER NOT NULL, version INTEGER REFERENCES versions(id),
                 PRIMARY KEY (run, dataset, output));
             CREATE TABLE IF NOT EXISTS job_io (
                 job INTEGER NOT NULL REFERENCES jobs(id), dataset INTEGER NOT NULL REFERENCES datasets(id),
                 output INTEGER NOT NULL, PRIMARY KEY (job, dataset, output)) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS job_io_dataset ON job_io (dataset, output, job);
             CREATE TABLE IF NOT EXISTS facets (
                 owner TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                 event_time TEXT NOT NULL, digest TEXT NOT NULL, PRIMARY KEY (owner, key)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS reported (key TEXT PRIMARY KEY, time TEXT NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS metrics (
                 dataset INTEGER NOT NULL REFERENCES datasets(id), metric TEXT NOT NULL,
                 run INTEGER NOT NULL REFERENCES runs(id), time TEXT NOT NULL, value REAL NOT NULL,
                 PRIMARY KEY (dataset, metric, run)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS run_versions (
                 run INTEGER PRIMARY KEY REFERENCES runs(id), version TEXT NOT NULL);",
    postgres: r#"CREATE TABLE events (
                 digest TEXT COLLATE "C" PRIMARY KEY, event_time TEXT COLLATE "C" NOT NULL);
             CREATE TABLE graph_version (id BIGINT PRIMARY KEY, n BIGINT NOT NULL);
             INSERT INTO graph_version (id, n) VALUES (1, 0);
             CREATE TABLE jobs (
                 id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                 namespace TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL, UNIQUE (namespace, name));
             CREATE TABLE datasets (
                 id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                 namespace TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL, UNIQUE (namespace, name));
             CREATE TABLE versions (
                 id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, dataset BIGINT NOT NULL REFERENCES datasets(id),
                 version TEXT COLLATE "C" NOT NULL, UNIQUE (dataset, version));
             CREATE TABLE runs (
                 id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, run_id TEXT COLLATE "C" NOT NULL UNIQUE,
                 job BIGINT NOT NULL REFERENCES jobs(id), state TEXT COLLATE "C", state_time TEXT COLLATE "C",
                 started TEXT COLLATE "C", ended TEXT COLLATE "C");
             CREATE TABLE run_io (
                 run BIGINT NOT NULL REFERENCES runs(id), dataset BIGINT NOT NULL REFERENCES datasets(id),
                 output BIGINT NOT NULL, version BIGINT REFERENCES versions(id), PRIMARY KEY (run, dataset, output));
             CREATE TABLE job_io (
                 job BIGINT NOT NULL REFERENCES jobs(id), dataset BIGINT NOT NULL REFERENCES datasets(id),
                 output BIGINT NOT NULL, PRIMARY KEY (job, dataset, output));
             CREATE INDEX job_io_dataset ON job_io (dataset, output, job);
             CREATE TABLE facets (
                 owner TEXT COLLATE "C" NOT NULL, key TEXT COLLATE "C" NOT NULL, value TEXT NOT NULL,
                 event_time TEXT COLLATE "C" NOT NULL, digest TEXT COLLATE "C" NOT NULL, PRIMARY KEY (owner, key));
             CREATE TABLE reported (key TEXT COLLATE "C" PRIMARY KEY, time TEXT NOT NULL);
             CREATE TABLE metrics (
                 dataset BIGINT NOT NULL REFERENCES datasets(id), metric TEXT COLLATE "C" NOT NULL,
                 run BIGINT NOT NULL REFERENCES runs(id), time TEXT COLLATE "C" NOT NULL,
                 value DOUBLE PRECISION NOT NULL, PRIMARY KEY (dataset, metric, run));
             CREATE TABLE run_versions (run BIGINT PRIMARY KEY REFERENCES runs(id), version TEXT NOT NULL);"#,
}];

fn triple(r: &Row) -> Result<(i64, String, String), assay_store::Error> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
}

impl Graph {
    /// Opens (or creates) the graph in a SQLite file.
    pub fn open(path: &Path) -> Result<Graph, GraphError> {
        Graph::at(&Location::Sqlite(path.to_path_buf()))
    }

    /// A graph in memory, for tests and one-off analysis.
    pub fn in_memory() -> Result<Graph, GraphError> {
        Graph::at(&Location::Memory)
    }

    /// Opens (or creates) the graph where `location` says: a SQLite file, or a PostgreSQL
    /// database that several servers share. The schema is migrated first.
    pub fn at(location: &Location) -> Result<Graph, GraphError> {
        let db = Db::open(location)?;
        if db.backend() == Backend::Sqlite {
            db.batch("PRAGMA cache_size = -32768; PRAGMA wal_autocheckpoint = 8192;")?;
        }
        assay_store::migrate(&db, "lineage", &SCHEMA)?;
        Ok(Graph { db })
    }

    /// Which engine the graph is on.
    pub fn backend(&self) -> Backend {
        self.db.backend()
    }

    /// Applies events in one transaction (durable when this returns).
    pub fn apply_all(&mut self, events: &[Event]) -> Result<Vec<Applied>, GraphError> {
        Ok(self.db.transaction(|tx| {
            let out = events.iter().map(|e| apply(tx, e)).collect::<Result<Vec<_>, _>>()?;
            count_new(tx, out.iter().filter(|a| **a == Applied::New).count())?;
            Ok(out)
        })?)
    }

    /// Applies one event.
    pub fn apply(&mut self, event: &Event) -> Result<Applied, GraphError> {
        Ok(self.apply_all(std::slice::from_ref(event))?[0])
    }

    /// Which of these finding keys (see `check::Finding::key`) were not reported yet.
    pub fn unreported(&self, keys: &[String]) -> Result<Vec<bool>, GraphError> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.db.row("SELECT 1 FROM reported WHERE key = ?1", &vals![key])?.is_none());
        }
        Ok(out)
    }

    /// Marks finding keys as reported (durable when this returns); for each, whether this call
    /// marked it (`false`: it was marked before, by another replica sharing the graph, say).
    pub fn mark_reported(&mut self, keys: &[String], time: &str) -> Result<Vec<bool>, GraphError> {
        Ok(self.db.transaction(|tx| {
            keys.iter()
                .map(|key| {
                    tx.execute(
                        "INSERT INTO reported (key, time) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                        &vals![key, time],
                    )
                    .map(|n| n > 0)
                })
                .collect()
        })?)
    }

    fn id_of(&self, node: &Node) -> Result<Option<i64>, GraphError> {
        let (sql, ns, name) = match node {
            Node::Dataset(ns, n) => ("SELECT id FROM datasets WHERE namespace = ?1 AND name = ?2", ns, n),
            Node::Job(ns, n) => ("SELECT id FROM jobs WHERE namespace = ?1 AND name = ?2", ns, n),
        };
        Ok(self.db.row(sql, &vals![ns, name])?.map(|r| r.get(0)).transpose()?)
    }

    /// Every metric measured per run (see [`crate::quality`]), ordered by dataset, metric and
    /// time.
    pub fn metric_points(&self) -> Result<Vec<MetricPoint>, GraphError> {
        let rows = self.db.rows(
            "SELECT d.namespace, d.name, m.metric, r.run_id, j.namespace, j.name, m.time, m.value, v.version
             FROM metrics m JOIN datasets d ON d.id = m.dataset JOIN runs r ON r.id = m.run
             JOIN jobs j ON j.id = r.job LEFT JOIN run_versions v ON v.run = m.run
             ORDER BY d.namespace, d.name, m.metric, m.time, r.run_id",
            &[],
        )?;
        let point = |r: &Row| -> Result<MetricPoint, assay_store::Error> {
            Ok(MetricPoint {
                dataset: Node::Dataset(r.get(0)?, r.get(1)?).id(),
                metric: r.get(2)?,
                run_id: r.get(3)?,
                job: Node::Job(r.get(4)?, r.get(5)?).id(),
                time: r.get(6)?,
                value: r.get(7)?,
                version: r.get(8)?,
            })
        };
        Ok(rows.iter().map(point).collect::<Result<_, _>>()?)
    }

    /// The nodes upstream of `node` (what it was derived from), up to `depth` job hops, with the
    /// edges between them, breadth first. `None` when the node is not in the graph.
    pub fn upstream(&self, node: &Node, depth: usize) -> Result<Option<Lineage>, GraphError> {
        self.walk(node, depth, true)
    }

    /// The nodes downstream of `node` (what was derived from it).
    pub fn downstream(&self, node: &Node, depth: usize) -> Result<Option<Lineage>, GraphError> {
        self.walk(node, depth, false)
    }

    fn ids(&self, sql: &str, id: i64, output: bool) -> Result<Vec<i64>, GraphError> {
        Ok(self.db.rows(sql, &vals![id, output])?.iter().map(|r| r.get(0)).collect::<Result<_, _>>()?)
    }

    fn walk(&self, start: &Node, depth: usize, up: bool) -> Result<Option<Lineage>, GraphError> {
        let Some(start_id) = self.id_of(start)? else { return Ok(None) };
        // Going up: a dataset's writers (job_io.output = 1), a job's reads (output = 0).
        const WRITERS: &str = "SELECT job FROM job_io WHERE dataset = ?1 AND output = ?2";
        const TOUCHED: &str = "SELECT dataset FROM job_io WHERE job = ?1 AND output = ?2";
        // On PostgreSQL a lookup is a round trip: what the queue holds is asked for at once,
        // in one query per kind, before the first of it is needed.
        let batched = self.db.backend() == Backend::Postgres;
        let mut fetched: HashMap<(bool, i64), Vec<i64>> = HashMap::new();
        let mut lineage = Lineage::default();
        let mut seen: HashSet<(bool, i64)> = HashSet::new();
        let is_job = matches!(start, Node::Job(..));
        let mut queue = VecDeque::from([((is_job, start_id), 0usize)]);
        seen.insert((is_job, start_id));
        while let Some(((job, id), hops)) = queue.pop_front() {
            if job && hops >= depth {
                lineage.jobs.push(id);
                continue;
            }
            if batched && !fetched.contains_key(&(job, id)) {
                let mut wanted: Vec<(bool, i64)> = vec![(job, id)];
                wanted.extend(queue.iter().filter(|((j, _), h)| !*j || *h < depth).map(|(n, _)| *n));
                wanted.retain(|n| !fetched.contains_key(n));
                self.prefetch(&wanted, up, &mut fetched)?;
            }
            let next = match fetched.remove(&(job, id)) {
                Some(ids) => ids,
                None if job => self.ids(TOUCHED, id, !up)?,
                None => self.ids(WRITERS, id, up)?,
            };
            if job {
                lineage.jobs.push(id);
                // The job's inputs (up) or outputs (down).
                for d in next {
                    lineage.edges.push((d, id, !up));
                    if seen.insert((false, d)) {
                        queue.push_back(((false, d), hops + 1));
                    }
                }
            } else {
                lineage.datasets.push(id);
                // The dataset's writers (up) or readers (down).
                for j in next {
                    lineage.edges.push((id, j, up));
                    if seen.insert((true, j)) {
                        queue.push_back(((true, j), hops));
                    }
                }
            }
        }
        Ok(Some(lineage))
    }

    /// The neighbours of many nodes in two queries (PostgreSQL), ordered by id as the indexed
    /// lookups of [`Graph::walk`] give them.
    fn prefetch(
        &self,
        nodes: &[(bool, i64)],
        up: bool,
        into: &mut HashMap<(bool, i64), Vec<i64>>,
    ) -> Result<(), GraphError> {
        let list = |job: bool| -> String {
            nodes.iter().filter(|(j, _)| *j == job).map(|(_, id)| id.to_string()).collect::<Vec<_>>().join(",")
        };
        let (jobs, datasets) = (list(true), list(false));
        for &(job, id) in nodes {
            into.insert((job, id), Vec::new());
        }
        if !jobs.is_empty() {
            let rows = self.db.rows(
                "SELECT job, dataset FROM job_io WHERE job = ANY(string_to_array(?1, ',')::bigint[]) AND output = ?2
                 ORDER BY job, dataset",
                &vals![&jobs, !up],
            )?;
            for r in rows {
                into.entry((true, r.get(0)?)).or_default().push(r.get(1)?);
            }
        }
        if !datasets.is_empty() {
            let rows = self.db.rows(
                "SELECT dataset, job FROM job_io WHERE dataset = ANY(string_to_array(?1, ',')::bigint[]) AND output = ?2
                 ORDER BY dataset, job",
                &vals![&datasets, up],
            )?;
            for r in rows {
                into.entry((false, r.get(0)?)).or_default().push(r.get(1)?);
            }
        }
        Ok(())
    }

    /// The names of many nodes (one query per kind on PostgreSQL, indexed lookups on SQLite).
    fn names(&self, nodes: &[(bool, i64)]) -> Result<HashMap<(bool, i64), Node>, GraphError> {
        let mut out = HashMap::with_capacity(nodes.len());
        if self.db.backend() == Backend::Sqlite {
            for &(job, id) in nodes {
                out.insert((job, id), self.node(job, id)?);
            }
            return Ok(out);
        }
        for job in [false, true] {
            let ids: Vec<String> = nodes.iter().filter(|(j, _)| *j == job).map(|(_, id)| id.to_string()).collect();
            if ids.is_empty() {
                continue;
            }
            let sql = if job {
                "SELECT id, namespace, name FROM jobs WHERE id = ANY(string_to_array(?1, ',')::bigint[])"
            } else {
                "SELECT id, namespace, name FROM datasets WHERE id = ANY(string_to_array(?1, ',')::bigint[])"
            };
            for r in self.db.rows(sql, &vals![&ids.join(",")])? {
                let (id, ns, name) = triple(&r)?;
                out.insert((job, id), if job { Node::Job(ns, name) } else { Node::Dataset(ns, name) });
            }
        }
        Ok(out)
    }

    /// The facets of many owners (one query on PostgreSQL).
    fn facets_of(&self, owners: &[String]) -> Result<HashMap<String, Map<String, Value>>, GraphError> {
        let mut out: HashMap<String, Map<String, Value>> = HashMap::with_capacity(owners.len());
        if self.db.backend() == Backend::Sqlite {
            for owner in owners {
                out.insert(owner.clone(), self.facets(owner)?);
            }
            return Ok(out);
        }
        // Owners hold colons and commas; the ASCII unit separator they do not.
        let list = owners.join("\u{1f}");
        let rows = self.db.rows(
            "SELECT owner, key, value FROM facets WHERE owner = ANY(string_to_array(?1, chr(31))) ORDER BY owner, key",
            &vals![&list],
        )?;
        for r in rows {
            let (owner, key, value): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
            out.entry(owner).or_default().insert(key, serde_json::from_str(&value).unwrap_or(Value::Null));
        }
        Ok(out)
    }

    /// The node of a dataset or job id, for rendering a [`Lineage`].
    pub fn node(&self, job: bool, id: i64) -> Result<Node, GraphError> {
        let sql = if job {
            "SELECT namespace, name FROM jobs WHERE id = ?1"
        } else {
            "SELECT namespace, name FROM datasets WHERE id = ?1"
        };
        let row = self.db.row(sql, &vals![id])?.ok_or_else(|| {
            assay_store::Error::Type(format!("no {} with id {id}", if job { "job" } else { "dataset" }))
        })?;
        let (ns, name): (String, String) = (row.get(0)?, row.get(1)?);
        Ok(if job { Node::Job(ns, name) } else { Node::Dataset(ns, name) })
    }

    /// A run's job and state.
    pub fn run(&self, run_id: &str) -> Result<Option<(Node, Option<String>)>, GraphError> {
        let lower = run_id.to_ascii_lowercase();
        let Some(row) = self.db.row("SELECT job, state FROM runs WHERE run_id = ?1", &vals![&lower])? else {
            return Ok(None);
        };
        Ok(Some((self.node(true, row.get(0)?)?, row.get(1)?)))
    }

    /// The facets kept for a node (`dataset:…`, `job:…`) or run (`run:ID`).
    pub fn facets(&self, owner: &str) -> Result<Map<String, Value>, GraphError> {
        let rows = self.db.rows("SELECT key, value FROM facets WHERE owner = ?1 ORDER BY key", &vals![owner])?;
        let mut out = Map::new();
        for row in rows {
            let (k, v): (String, String) = (row.get(0)?, row.get(1)?);
            out.insert(k, serde_json::from_str(&v).unwrap_or(Value::Null));
        }
        Ok(out)
    }

    /// A number that grows with every new event the graph takes (events are only added, and
    /// an event already known changes nothing), in constant time. For callers that keep answers
    /// worked out from the graph and must know when they are stale.
    pub fn version(&self) -> Result<i64, GraphError> {
        let sql = match self.db.backend() {
            Backend::Sqlite => "SELECT coalesce(max(rowid), 0) FROM events",
            Backend::Postgres => "SELECT n FROM graph_version WHERE id = 1",
        };
        Ok(self.db.row(sql, &[])?.map(|r| r.get(0)).transpose()?.unwrap_or(0))
    }

    /// Counts of jobs, runs, datasets, versions and events, for reports and tests.
    pub fn counts(&self) -> Result<[i64; 5], GraphError> {
        let row = self
            .db
            .row(
                "SELECT (SELECT count(*) FROM jobs), (SELECT count(*) FROM runs), (SELECT count(*) FROM datasets),
                        (SELECT count(*) FROM versions), (SELECT count(*) FROM events)",
                &[],
            )?
            .ok_or_else(|| assay_store::Error::Type("no counts".into()))?;
        Ok([row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?])
    }

    /// Training runs: runs that wrote a model, a dataset whose OpenLineage `datasetType` facet
    /// says `MODEL`; by start time.
    pub fn training_runs(&self) -> Result<Vec<TrainingRun>, GraphError> {
        let model_type = match self.db.backend() {
            Backend::Sqlite => "json_extract(f.value, '$.datasetType')",
            Backend::Postgres => "(f.value::jsonb ->> 'datasetType')",
        };
        let rows = self.db.rows(
            &format!(
                "SELECT r.run_id, j.namespace, j.name, r.started, r.ended, d.namespace, d.name
                 FROM runs r JOIN jobs j ON j.id = r.job
                 JOIN run_io io ON io.run = r.id AND io.output = 1
                 JOIN datasets d ON d.id = io.dataset
                 JOIN facets f ON f.owner = 'dataset:' || d.namespace || ':' || d.name AND f.key = 'datasetType'
                 WHERE upper({model_type}) = 'MODEL'
                 ORDER BY coalesce(r.started, ''), r.run_id, d.namespace, d.name"
            ),
            &[],
        )?;
        let mut out: Vec<TrainingRun> = Vec::new();
        for r in &rows {
            let (run_id, job, started, ended, model): (String, Node, Option<String>, Option<String>, Node) =
                (r.get(0)?, Node::Job(r.get(1)?, r.get(2)?), r.get(3)?, r.get(4)?, Node::Dataset(r.get(5)?, r.get(6)?));
            match out.last_mut() {
                Some(last) if last.run_id == run_id => last.models.push(model.id()),
                _ => out.push(TrainingRun { run_id, job: job.id(), started, ended, models: vec![model.id()] }),
            }
        }
        Ok(out)
    }

    /// Every dataset: (id, namespace, name), by id.
    pub fn datasets(&self) -> Result<Vec<(i64, String, String)>, GraphError> {
        let rows = self.db.rows("SELECT id, namespace, name FROM datasets ORDER BY id", &[])?;
        Ok(rows.iter().map(triple).collect::<Result<_, _>>()?)
    }

    /// Every job: (id, namespace, name), by id.
    pub fn jobs(&self) -> Result<Vec<(i64, String, String)>, GraphError> {
        let rows = self.db.rows("SELECT id, namespace, name FROM jobs ORDER BY id", &[])?;
        Ok(rows.iter().map(triple).collect::<Result<_, _>>()?)
    }

    /// The latest run that wrote a dataset (at `version`, when given), with what it read.
    pub fn producing_run(
        &self,
        namespace: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<Produced>, GraphError> {
        let Some(dataset) = self.id_of(&Node::Dataset(namespace.to_string(), name.to_string()))? else {
            return Ok(None);
        };
        let Some(r) = self.db.row(
            "SELECT r.id, r.run_id, r.job, r.started, r.ended, v.version FROM run_io io
             JOIN runs r ON r.id = io.run LEFT JOIN versions v ON v.id = io.version
             WHERE io.dataset = ?1 AND io.output = 1 AND (CAST(?2 AS TEXT) IS NULL OR v.version = ?2)
             ORDER BY coalesce(r.ended, r.state_time, '') DESC, r.id DESC LIMIT 1",
            &vals![dataset, version],
        )?
        else {
            return Ok(None);
        };
        let (run, run_id, job, started, ended, found_version): (
            i64,
            String,
            i64,
            Option<String>,
            Option<String>,
            Option<String>,
        ) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?);
        let inputs = self
            .db
            .rows(
                "SELECT d.namespace, d.name, v.version FROM run_io io JOIN datasets d ON d.id = io.dataset
                 LEFT JOIN versions v ON v.id = io.version WHERE io.run = ?1 AND io.output = 0
                 ORDER BY d.namespace, d.name",
                &vals![run],
            )?
            .iter()
            .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .collect::<Result<Vec<(String, String, Option<String>)>, assay_store::Error>>()?;
        let job = self.node(true, job)?;
        Ok(Some(Produced { run_id, job, started, ended, version: found_version, inputs }))
    }

    /// Every run's inputs and outputs: (run id, job id, dataset id, is output).
    pub fn run_edges(&self) -> Result<Vec<(String, i64, i64, bool)>, GraphError> {
        let rows = self.db.rows(
            "SELECT r.run_id, r.job, io.dataset, io.output FROM run_io io JOIN runs r ON r.id = io.run
             ORDER BY r.run_id, io.output, io.dataset",
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .collect::<Result<_, assay_store::Error>>()?)
    }

    /// Every job-level edge by id: (job, dataset, the job writes it).
    pub fn job_edges(&self) -> Result<Vec<(i64, i64, bool)>, GraphError> {
        let rows = self.db.rows("SELECT job, dataset, output FROM job_io ORDER BY job, dataset, output", &[])?;
        Ok(rows.iter().map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).collect::<Result<_, assay_store::Error>>()?)
    }

    /// Every job-level edge, as (dataset, job, job writes it), sorted: the graph's shape, for
    /// comparing two graphs.
    pub fn edges(&self) -> Result<Vec<(String, String, bool)>, GraphError> {
        let rows = self.db.rows(
            "SELECT d.namespace || ':' || d.name, j.namespace || ':' || j.name, io.output
             FROM job_io io JOIN datasets d ON d.id = io.dataset JOIN jobs j ON j.id = io.job
             ORDER BY 1, 2, 3",
            &[],
        )?;
        Ok(rows.iter().map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).collect::<Result<_, assay_store::Error>>()?)
    }
}

impl Graph {
    /// A walk in the shape of Marquez's `GET /api/v1/lineage` answer:
    /// `{"graph": [{"id", "type", "data", "inEdges", "outEdges"}]}`.
    pub fn marquez(&self, lineage: &Lineage) -> Result<Value, GraphError> {
        let mut wanted: Vec<(bool, i64)> = lineage.datasets.iter().map(|d| (false, *d)).collect();
        wanted.extend(lineage.jobs.iter().map(|j| (true, *j)));
        let mut edge_ends: Vec<(bool, i64)> = Vec::new();
        for &(d, j, _) in &lineage.edges {
            edge_ends.extend([(false, d), (true, j)]);
        }
        let known: HashSet<(bool, i64)> = wanted.iter().copied().collect();
        edge_ends.retain(|n| !known.contains(n));
        edge_ends.sort_unstable();
        edge_ends.dedup();
        wanted.extend(edge_ends);
        let named = self.names(&wanted)?;
        let owners: Vec<String> = lineage
            .datasets
            .iter()
            .map(|d| (false, *d))
            .chain(lineage.jobs.iter().map(|j| (true, *j)))
            .filter_map(|n| named.get(&n).map(Node::id))
            .collect();
        let mut facets = self.facets_of(&owners)?;
        let names: HashMap<(bool, i64), String> = named.iter().map(|(k, n)| (*k, n.id())).collect();
        let name = |job: bool, id: i64| -> Result<String, GraphError> {
            names.get(&(job, id)).cloned().ok_or_else(|| {
                GraphError::Store(assay_store::Error::Type(format!(
                    "no {} with id {id}",
                    if job { "job" } else { "dataset" }
                )))
            })
        };
        // Edges by node, each edge once: (origin, destination).
        let mut ins: HashMap<(bool, i64), Vec<(String, String)>> = HashMap::new();
        let mut outs: HashMap<(bool, i64), Vec<(String, String)>> = HashMap::new();
        let mut seen = HashSet::new();
        for &(d, j, writes) in &lineage.edges {
            if !seen.insert((d, j, writes)) {
                continue;
            }
            let (dn, jn) = (name(false, d)?, name(true, j)?);
            if writes {
                outs.entry((true, j)).or_default().push((jn.clone(), dn.clone()));
                ins.entry((false, d)).or_default().push((jn, dn));
            } else {
                ins.entry((true, j)).or_default().push((dn.clone(), jn.clone()));
                outs.entry((false, d)).or_default().push((dn, jn));
            }
        }
        let render = |edges: Option<Vec<(String, String)>>| -> Vec<Value> {
            let mut edges = edges.unwrap_or_default();
            edges.sort();
            edges.into_iter().map(|(o, d)| serde_json::json!({"origin": o, "destination": d})).collect()
        };
        let mut nodes = Vec::with_capacity(lineage.datasets.len() + lineage.jobs.len());
        for (job, ids) in [(false, &lineage.datasets), (true, &lineage.jobs)] {
            for id in ids {
                let node = match named.get(&(job, *id)) {
                    Some(n) => n.clone(),
                    None => self.node(job, *id)?,
                };
                let (ns, name) = match &node {
                    Node::Dataset(ns, n) | Node::Job(ns, n) => (ns.clone(), n.clone()),
                };
                let id_text = node.id();
                let node_facets = facets.remove(&id_text).unwrap_or_default();
                nodes.push(serde_json::json!({
                    "id": id_text,
                    "type": if job { "JOB" } else { "DATASET" },
                    "data": {"namespace": ns, "name": name, "facets": node_facets},
                    "inEdges": render(ins.remove(&(job, *id))),
                    "outEdges": render(outs.remove(&(job, *id))),
                }));
            }
        }
        Ok(serde_json::json!({"graph": nodes}))
    }
}

impl Lineage {
    /// Adds what `other` reached that this walk did not.
    pub fn merge(&mut self, other: Lineage) {
        let jobs: HashSet<i64> = self.jobs.iter().copied().collect();
        self.jobs.extend(other.jobs.into_iter().filter(|j| !jobs.contains(j)));
        let datasets: HashSet<i64> = self.datasets.iter().copied().collect();
        self.datasets.extend(other.datasets.into_iter().filter(|d| !datasets.contains(d)));
        let edges: HashSet<(i64, i64, bool)> = self.edges.iter().copied().collect();
        self.edges.extend(other.edges.into_iter().filter(|e| !edges.contains(e)));
    }
}

/// One value of a metric measured in a run.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    /// `dataset:NS:NAME`.
    pub dataset: String,
    /// The metric, by facet and field (`outputStatistics.rowCount`).
    pub metric: String,
    /// The run that measured it.
    pub run_id: String,
    /// `job:NS:NAME` of the run.
    pub job: String,
    /// The time of the event that carried it (RFC 3339, UTC).
    pub time: String,
    /// The value.
    pub value: f64,
    /// The version of the job's code the run ran, when its events said.
    pub version: Option<String>,
}

/// The run that produced a dataset version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Produced {
    /// The run id.
    pub run_id: String,
    /// The job.
    pub job: Node,
    /// When it started and ended (UTC, as stored).
    pub started: Option<String>,
    /// When it ended.
    pub ended: Option<String>,
    /// The version it wrote, when the output had one.
    pub version: Option<String>,
    /// What it read: namespace, name, version.
    pub inputs: Vec<(String, String, Option<String>)>,
}

/// The result of a walk: ids of the jobs and datasets reached, and edges (dataset, job, whether
/// the edge goes from the job to the dataset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lineage {
    /// Jobs reached, in breadth-first order.
    pub jobs: Vec<i64>,
    /// Datasets reached, in breadth-first order.
    pub datasets: Vec<i64>,
    /// Edges: (dataset, job, true when the job writes the dataset).
    pub edges: Vec<(i64, i64, bool)>,
}

type StoreResult<T> = Result<T, assay_store::Error>;

fn upsert_node(tx: &mut Tx<'_>, dataset: bool, ns: &str, name: &str) -> StoreResult<i64> {
    let sql = if dataset {
        "INSERT INTO datasets (namespace, name) VALUES (?1, ?2)
         ON CONFLICT (namespace, name) DO UPDATE SET name = excluded.name RETURNING id"
    } else {
        "INSERT INTO jobs (namespace, name) VALUES (?1, ?2)
         ON CONFLICT (namespace, name) DO UPDATE SET name = excluded.name RETURNING id"
    };
    returned_id(tx.row(sql, &vals![ns, name])?)
}

fn returned_id(row: Option<Row>) -> StoreResult<i64> {
    row.ok_or_else(|| assay_store::Error::Type("an upsert returned no id".into()))?.get(0)
}

/// Adds the events a transaction applied to PostgreSQL's event count (see [`Graph::version`]).
fn count_new(tx: &mut Tx<'_>, new: usize) -> StoreResult<()> {
    if new > 0 && tx.backend() == Backend::Postgres {
        tx.execute("UPDATE graph_version SET n = n + ?1 WHERE id = 1", &vals![new as i64])?;
    }
    Ok(())
}

/// Rows a multi-row statement carries at most (well under both engines' parameter limits).
const ROWS: usize = 400;

/// `(?1, ?2), (?3, ?4), …`: `rows` rows of `cols` parameters.
fn placeholders(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", (1..=cols).map(|c| format!("?{}", r * cols + c)).collect::<Vec<_>>().join(", ")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `head VALUES … tail` over `rows` (each `cols` values), [`ROWS`] rows a statement;
/// the rows every statement returned.
fn multi(tx: &mut Tx<'_>, head: &str, tail: &str, cols: usize, rows: &[Vec<Val<'_>>]) -> StoreResult<Vec<Row>> {
    let mut out = Vec::new();
    for chunk in rows.chunks(ROWS) {
        let sql = format!("{head} VALUES {} {tail}", placeholders(chunk.len(), cols));
        let params: Vec<Val<'_>> = chunk.iter().flatten().copied().collect();
        out.extend(tx.rows(&sql, &params)?);
    }
    Ok(out)
}

/// The ids of datasets, created when new: one statement for all of an event's datasets.
fn upsert_datasets<'a>(tx: &mut Tx<'_>, keys: &[(&'a str, &'a str)]) -> StoreResult<HashMap<(&'a str, &'a str), i64>> {
    let rows: Vec<Vec<Val<'_>>> = keys.iter().map(|(ns, n)| vec![Val::Text(ns), Val::Text(n)]).collect();
    let returned = multi(
        tx,
        "INSERT INTO datasets (namespace, name)",
        "ON CONFLICT (namespace, name) DO UPDATE SET name = excluded.name RETURNING id, namespace, name",
        2,
        &rows,
    )?;
    let mut ids = HashMap::with_capacity(keys.len());
    for r in returned {
        let (id, ns, name) = triple(&r)?;
        if let Some(key) = keys.iter().find(|(k_ns, k_n)| *k_ns == ns && *k_n == name) {
            ids.insert(*key, id);
        }
    }
    Ok(ids)
}

/// One facet row: owner, key, value (JSON text).
type FacetRow = (String, String, String);

/// Adds each facet of `facets` for `owner`, unless the event gave that owner and key already
/// (the first wins, as rows of one event have the same time and digest).
fn facet_rows(
    rows: &mut Vec<FacetRow>,
    seen: &mut HashSet<(String, String)>,
    owner: &str,
    facets: &Map<String, Value>,
) {
    for (key, value) in facets {
        if seen.insert((owner.to_string(), key.clone())) {
            rows.push((owner.to_string(), key.clone(), value.to_string()));
        }
    }
}

/// Keeps each facet from the latest event (event time, then digest): one statement for all of
/// an event's facets.
fn merge_facets(tx: &mut Tx<'_>, rows: &[FacetRow], time: &str, digest: &str) -> StoreResult<()> {
    let rows: Vec<Vec<Val<'_>>> = rows
        .iter()
        .map(|(owner, key, value)| {
            vec![Val::Text(owner), Val::Text(key), Val::Text(value), Val::Text(time), Val::Text(digest)]
        })
        .collect();
    multi(
        tx,
        "INSERT INTO facets (owner, key, value, event_time, digest)",
        "ON CONFLICT (owner, key) DO UPDATE SET value = excluded.value, event_time = excluded.event_time,
             digest = excluded.digest
         WHERE (excluded.event_time, excluded.digest) > (facets.event_time, facets.digest)",
        5,
        &rows,
    )?;
    Ok(())
}

/// The version of a dataset in an event: the DatasetVersion facet, else none.
fn version_of(d: &Dataset) -> Option<String> {
    d.facets.get("version").and_then(|v| v.get("datasetVersion")).and_then(Value::as_str).map(str::to_string)
}

/// The event time normalised to UTC with fixed precision, so that text order is time order.
fn normal_time(t: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.with_timezone(&chrono::Utc).format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string())
        .unwrap_or_else(|_| t.to_string())
}

/// The version of the job's code a run ran: `sourceCodeLocation.version` (a commit), else its
/// `tag`.
fn code_version(job_facets: &Map<String, Value>) -> Option<String> {
    let facet = job_facets.get("sourceCodeLocation")?;
    ["version", "tag"]
        .iter()
        .find_map(|k| facet.get(*k).and_then(Value::as_str).filter(|v| !v.is_empty()))
        .map(str::to_string)
}

fn apply(tx: &mut Tx<'_>, event: &Event) -> StoreResult<Applied> {
    let digest = event.digest.as_str();
    let time = normal_time(&event.event_time);
    let inserted = tx.execute(
        "INSERT INTO events (digest, event_time) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        &vals![digest, &time],
    )?;
    if inserted == 0 {
        return Ok(Applied::Duplicate);
    }
    // Each statement covers every row of its kind the event holds (a round trip each on
    // PostgreSQL); rows that the event names twice are sent once, as applying them one by one
    // would leave them.
    let datasets: Vec<&Dataset> = event.dataset.iter().chain(&event.inputs).chain(&event.outputs).collect();
    let mut keys: Vec<(&str, &str)> = Vec::with_capacity(datasets.len());
    for d in &datasets {
        let key = (d.namespace.as_str(), d.name.as_str());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let ids = if keys.is_empty() { HashMap::new() } else { upsert_datasets(tx, &keys)? };
    let id_of = |d: &Dataset| -> StoreResult<i64> {
        ids.get(&(d.namespace.as_str(), d.name.as_str()))
            .copied()
            .ok_or_else(|| assay_store::Error::Type(format!("no id for dataset {}:{}", d.namespace, d.name)))
    };
    let mut facets: Vec<FacetRow> = Vec::new();
    let mut seen_facets: HashSet<(String, String)> = HashSet::new();
    if let Some(d) = &event.dataset {
        facet_rows(&mut facets, &mut seen_facets, &format!("dataset:{}:{}", d.namespace, d.name), &d.facets);
        if let Some(v) = version_of(d) {
            tx.execute(
                "INSERT INTO versions (dataset, version) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                &vals![id_of(d)?, &v],
            )?;
        }
    }
    let Some((job_ns, job_name)) = &event.job else {
        merge_facets(tx, &facets, &time, digest)?;
        return Ok(Applied::New);
    };
    let job = upsert_node(tx, false, job_ns, job_name)?;
    facet_rows(&mut facets, &mut seen_facets, &format!("job:{job_ns}:{job_name}"), &event.job_facets);
    let run = match &event.run_id {
        Some(run_id) => {
            let id = returned_id(tx.row(
                "INSERT INTO runs (run_id, job) VALUES (?1, ?2) ON CONFLICT (run_id) DO UPDATE SET job = runs.job RETURNING id",
                &vals![run_id, job],
            )?)?;
            facet_rows(&mut facets, &mut seen_facets, &format!("run:{run_id}"), &event.run_facets);
            if let Some(state) = &event.event_type {
                // A terminal state beats any other; among equals, the later event wins. The
                // first and last times of a run move in the same statement.
                let rank = i64::from(TERMINAL.contains(&state.as_str()));
                tx.execute(
                    "UPDATE runs SET
                       state = CASE WHEN state IS NULL
                         OR (?4, ?3) > (CASE WHEN state IN ('COMPLETE', 'FAIL', 'ABORT') THEN 1 ELSE 0 END, state_time)
                         THEN ?2 ELSE state END,
                       state_time = CASE WHEN state IS NULL
                         OR (?4, ?3) > (CASE WHEN state IN ('COMPLETE', 'FAIL', 'ABORT') THEN 1 ELSE 0 END, state_time)
                         THEN ?3 ELSE state_time END,
                       started = CASE WHEN ?5 = 1 AND (started IS NULL OR started > ?3) THEN ?3 ELSE started END,
                       ended = CASE WHEN ?4 = 1 AND (ended IS NULL OR ended < ?3) THEN ?3 ELSE ended END
                     WHERE id = ?1",
                    &vals![id, state, &time, rank, state == "START"],
                )?;
            }
            if let Some(version) = code_version(&event.job_facets) {
                tx.execute(
                    "INSERT INTO run_versions (run, version) VALUES (?1, ?2)
                     ON CONFLICT (run) DO UPDATE SET version = excluded.version",
                    &vals![id, &version],
                )?;
            }
            Some(id)
        }
        None => None,
    };
    // Versions of the inputs and outputs, one statement.
    let io: Vec<(bool, &Dataset)> =
        event.inputs.iter().map(|d| (false, d)).chain(event.outputs.iter().map(|d| (true, d))).collect();
    let mut wanted: Vec<(i64, String)> = Vec::new();
    for (_, d) in &io {
        if let Some(v) = version_of(d) {
            let key = (id_of(d)?, v);
            if !wanted.contains(&key) {
                wanted.push(key);
            }
        }
    }
    let mut version_ids: HashMap<(i64, String), i64> = HashMap::new();
    if !wanted.is_empty() {
        let rows: Vec<Vec<Val<'_>>> = wanted.iter().map(|(d, v)| vec![Val::Int(*d), Val::Text(v)]).collect();
        for r in multi(
            tx,
            "INSERT INTO versions (dataset, version)",
            "ON CONFLICT (dataset, version) DO UPDATE SET version = excluded.version RETURNING id, dataset, version",
            2,
            &rows,
        )? {
            version_ids.insert((r.get(1)?, r.get(2)?), r.get(0)?);
        }
    }
    let mut job_io: Vec<(i64, bool)> = Vec::new();
    // (dataset, output) → version: a dataset named twice keeps its last version.
    let mut run_io: Vec<((i64, bool), Option<i64>)> = Vec::new();
    // (dataset, metric) → value: the last one given wins.
    let mut metrics: Vec<((i64, String), f64)> = Vec::new();
    for (output, d) in &io {
        let dataset = id_of(d)?;
        facet_rows(&mut facets, &mut seen_facets, &format!("dataset:{}:{}", d.namespace, d.name), &d.facets);
        if !job_io.contains(&(dataset, *output)) {
            job_io.push((dataset, *output));
        }
        if run.is_none() {
            continue;
        }
        let version = match version_of(d) {
            Some(v) => version_ids.get(&(dataset, v)).copied(),
            None => None,
        };
        match run_io.iter_mut().find(|(k, _)| *k == (dataset, *output)) {
            Some((_, kept)) => *kept = version.or(*kept),
            None => run_io.push(((dataset, *output), version)),
        }
        let side = if *output { "output" } else { "input" };
        let owner = format!("run:{}:{side}:{}:{}", event.run_id.as_deref().unwrap_or(""), d.namespace, d.name);
        facet_rows(&mut facets, &mut seen_facets, &owner, &d.io_facets);
        for (metric, value) in
            crate::quality::metrics(&d.io_facets).into_iter().chain(crate::quality::metrics(&d.facets))
        {
            match metrics.iter_mut().find(|(k, _)| k.0 == dataset && k.1 == metric) {
                Some((_, kept)) => *kept = value,
                None => metrics.push(((dataset, metric), value)),
            }
        }
    }
    let rows: Vec<Vec<Val<'_>>> =
        job_io.iter().map(|(d, o)| vec![Val::Int(job), Val::Int(*d), Val::from(*o)]).collect();
    multi(tx, "INSERT INTO job_io (job, dataset, output)", "ON CONFLICT DO NOTHING", 3, &rows)?;
    if let Some(run) = run {
        let rows: Vec<Vec<Val<'_>>> =
            run_io.iter().map(|((d, o), v)| vec![Val::Int(run), Val::Int(*d), Val::from(*o), Val::from(*v)]).collect();
        multi(
            tx,
            "INSERT INTO run_io (run, dataset, output, version)",
            "ON CONFLICT (run, dataset, output) DO UPDATE SET version = coalesce(excluded.version, run_io.version)",
            4,
            &rows,
        )?;
        let rows: Vec<Vec<Val<'_>>> = metrics
            .iter()
            .map(|((d, m), v)| vec![Val::Int(*d), Val::Text(m), Val::Int(run), Val::Text(&time), Val::Real(*v)])
            .collect();
        multi(
            tx,
            "INSERT INTO metrics (dataset, metric, run, time, value)",
            "ON CONFLICT (dataset, metric, run) DO UPDATE SET value = excluded.value, time = excluded.time",
            5,
            &rows,
        )?;
    }
    merge_facets(tx, &facets, &time, digest)?;
    Ok(Applied::New)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(run: &str, kind: &str, time: &str, job: &str, inputs: &[&str], outputs: &[&str]) -> Event {
        let ds = |names: &[&str]| -> Vec<Value> {
            names.iter().map(|n| json!({"namespace": "s3://lake", "name": n})).collect()
        };
        let raw = json!({
            "eventType": kind, "eventTime": time, "producer": "https://x.example/p",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": run}, "job": {"namespace": "airflow", "name": job},
            "inputs": ds(inputs), "outputs": ds(outputs),
        });
        crate::parse(&raw).expect("valid")
    }

    const R1: &str = "00000000-0000-4000-8000-000000000001";
    const R2: &str = "00000000-0000-4000-8000-000000000002";

    fn pipeline() -> Vec<Event> {
        vec![
            event(R1, "START", "2026-11-23T10:00:00Z", "clean", &["raw"], &[]),
            event(R1, "COMPLETE", "2026-11-23T10:05:00Z", "clean", &["raw"], &["clean"]),
            event(R2, "START", "2026-11-23T11:00:00Z", "train", &["clean", "labels"], &[]),
            event(R2, "COMPLETE", "2026-11-23T11:30:00Z", "train", &["clean", "labels"], &["model"]),
        ]
    }

    #[test]
    fn node_ids_parse_with_colons_in_the_namespace() {
        assert_eq!(Node::parse("dataset:s3://lake:clean"), Some(Node::Dataset("s3://lake".into(), "clean".into())));
        assert_eq!(Node::parse("job:airflow:train"), Some(Node::Job("airflow".into(), "train".into())));
        assert_eq!(
            Node::parse("dataset:postgres://db:5432:public.users").map(|n| n.id()).as_deref(),
            Some("dataset:postgres://db:5432:public.users")
        );
        assert_eq!(Node::parse("table:x:y"), None);
        assert_eq!(Node::parse("dataset:x"), None);
    }

    #[test]
    fn out_of_order_and_repeated_events_give_the_same_graph() {
        let mut a = Graph::in_memory().expect("graph");
        a.apply_all(&pipeline()).expect("apply");
        let mut b = Graph::in_memory().expect("graph");
        let mut shuffled: Vec<_> = pipeline().into_iter().rev().collect();
        shuffled.extend(pipeline());
        let applied = b.apply_all(&shuffled).expect("apply");
        assert_eq!(applied.iter().filter(|a| **a == Applied::Duplicate).count(), 4);
        assert_eq!(a.edges().expect("edges"), b.edges().expect("edges"));
        assert_eq!(a.counts().expect("counts"), b.counts().expect("counts"));
        for g in [&a, &b] {
            let (job, state) = g.run(R1).expect("run").expect("known");
            assert_eq!(job, Node::Job("airflow".into(), "clean".into()));
            assert_eq!(state.as_deref(), Some("COMPLETE"), "a late START does not reopen a finished run");
        }
    }

    #[test]
    fn the_version_grows_with_new_events_and_not_with_repeated_ones() {
        let mut g = Graph::in_memory().expect("graph");
        assert_eq!(g.version().expect("version"), 0);
        let events = pipeline();
        g.apply_all(&events[..2]).expect("apply");
        let two = g.version().expect("version");
        assert!(two > 0);
        g.apply_all(&events[..2]).expect("apply again");
        assert_eq!(g.version().expect("version"), two, "known events change nothing");
        g.apply(&events[2]).expect("apply");
        assert!(g.version().expect("version") > two);
    }

    #[test]
    fn upstream_and_downstream_walk_through_jobs() {
        let mut g = Graph::in_memory().expect("graph");
        g.apply_all(&pipeline()).expect("apply");
        let model = Node::Dataset("s3://lake".into(), "model".into());
        let up = g.upstream(&model, 20).expect("walk").expect("known");
        let names = |l: &Lineage| -> Vec<String> {
            let mut v: Vec<String> = l.datasets.iter().map(|d| g.node(false, *d).expect("node").id()).collect();
            v.extend(l.jobs.iter().map(|j| g.node(true, *j).expect("node").id()));
            v.sort();
            v
        };
        assert_eq!(
            names(&up),
            [
                "dataset:s3://lake:clean",
                "dataset:s3://lake:labels",
                "dataset:s3://lake:model",
                "dataset:s3://lake:raw",
                "job:airflow:clean",
                "job:airflow:train"
            ]
        );
        let one = g.upstream(&model, 1).expect("walk").expect("known");
        assert!(!names(&one).contains(&"dataset:s3://lake:raw".to_string()), "depth 1 stops at train's inputs");
        let raw = Node::Dataset("s3://lake".into(), "raw".into());
        let down = g.downstream(&raw, 20).expect("walk").expect("known");
        assert!(names(&down).contains(&"dataset:s3://lake:model".to_string()));
        assert!(g.upstream(&Node::Dataset("s3://lake".into(), "nope".into()), 5).expect("walk").is_none());
    }
}
