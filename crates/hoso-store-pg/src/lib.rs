//! hoso-store-pg: hoso's event log in PostgreSQL, for a province whose record must survive the
//! loss of a machine (a PostgreSQL primary with streaming replication) or that runs several
//! hoso servers over one record.
//!
//! What it is: [`PgStore`], an implementation of [`hoso_store::EventStore`] that keeps every
//! promise of the embedded store and passes the same conformance suite, model test and tamper
//! test: gap-free positions in commit order even with appenders in several processes,
//! idempotent appends by event id (across restarts too), the four expected-version modes, the
//! per-stream SHA-256 chain computed exactly as the embedded store computes it
//! ([`hoso_store::record_hash`]) and checked by `verify`, `recorded_at` from the database's
//! clock (strictly later for every append), "as of" reads, and catch-up-then-live
//! subscriptions woken by `LISTEN`/`NOTIFY` and driven by reads of the log. Its schema is
//! versioned in `schema/*.sql` and applied on open; a database whose schema is newer than this
//! build is refused. How positions are kept in commit order, and why that holds, is in
//! `docs/design.md`, "PostgreSQL store".
//!
//! What it is not: a replication scheme (that is PostgreSQL's), a connection pool for others,
//! or a client of TLS (connect over a Unix socket or a trusted network). It does not back
//! itself up (PostgreSQL's own tools do); it takes events recorded by another store verbatim
//! ([`hoso_store::ImportStore`]) for `hoso copy`, and `hoso serve --store postgres://...` (the
//! server's `postgres` feature) runs on it.
//!
//! An append is acknowledged once its transaction committed: with `synchronous_commit` at `on`
//! (the writer sets it if the server has it `off`) that is once PostgreSQL flushed its WAL, and
//! with a synchronous standby configured, once the standby has it too. A lost connection fails
//! the call with [`StoreError::Unavailable`] (an append's outcome is then unknown, and a retry
//! with the same event ids is idempotent); every connection is opened again for the next call,
//! so a URL naming a primary and its standby with `target_session_attrs=read-write` reaches the
//! standby once it is promoted (`docs/design.md`, "Across a failover").

mod conn;
mod follow;
mod import;
mod rows;
mod schema;
mod writer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hoso_store::{
    AppendResult, Direction, EventStore, ExpectedVersion, GENESIS_HASH, ImportStore, Limits, NewEvent, Position,
    Problem, RecordedEvent, StoreError, StreamRead, VerifyReport, VerifyScope, Version,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::{Config, IsolationLevel, Transaction};
use uuid::Uuid;

pub use import::serving_sessions;
pub use schema::SCHEMA_VERSION;

use conn::{COLUMNS, Readers, bigint, read_failed};
use writer::{Request, Shared, Writer};

/// Options of the PostgreSQL store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgOptions {
    /// Request limits, the same as the embedded store's.
    pub limits: Limits,
    /// Connections that reads share, pipelined (besides the writer's and the follower's). Default 4.
    pub read_connections: usize,
    /// How often the head is read whatever notifications say: the longest a subscriber waits
    /// for another process's append if a notification is lost. Default 1 s.
    pub poll_interval: Duration,
    /// Whether to `LISTEN` for other processes' appends; without, they are found by polling
    /// alone (for a pooler in transaction mode, which does not pass notifications on). Default on.
    pub listen: bool,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            limits: Limits::default(),
            read_connections: 4,
            poll_interval: Duration::from_secs(1),
            listen: true,
        }
    }
}

/// An event store in a PostgreSQL database: see the crate's documentation. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// The store's id (table `hoso_store_id`).
    store_id: uuid::Uuid,
    config: Config,
    limits: Limits,
    shared: Arc<Shared>,
    requests: Mutex<Option<mpsc::Sender<Request>>>,
    readers: Readers,
    /// Stops the head follower when set, or when the last handle drops it.
    stop: watch::Sender<bool>,
    /// The connection imports go through (`ImportStore`), opened on the first.
    importer: tokio::sync::Mutex<Option<tokio_postgres::Client>>,
}

impl PgStore {
    /// Connects to the database at `url` (a libpq-style connection string or URL, several
    /// hosts allowed), brings its schema to [`SCHEMA_VERSION`] and starts the writer and the
    /// head follower. Must be called within a Tokio runtime.
    ///
    /// Fails with [`StoreError::UnsupportedFormat`] if the database's schema is newer than
    /// this build, and with [`StoreError::Unavailable`] if PostgreSQL cannot be reached.
    pub async fn connect(url: &str, options: PgOptions) -> Result<PgStore, StoreError> {
        let mut config: Config = url
            .parse()
            .map_err(|err| StoreError::Io(format!("invalid PostgreSQL connection string: {err}")))?;
        conn::failover_defaults(&mut config);
        if config.get_application_name().is_none() {
            config.application_name("hoso");
        }
        let mut client = conn::connect(&config).await?;
        schema::migrate(&mut client).await?;
        let head: i64 = client
            .query_one("SELECT next_position FROM hoso_log_head", &[])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(read_failed)?;
        let store_id: uuid::Uuid = client
            .query_one("SELECT id FROM hoso_store_id", &[])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(read_failed)?;
        drop(client);

        let (head, _) = watch::channel(head.unsigned_abs());
        let shared = Arc::new(Shared {
            head,
            refusal: Mutex::new(None),
            write_metrics: hoso_store::WriteMetrics::default(),
        });
        let (requests, queue) = mpsc::channel(1_024);
        tokio::spawn(Writer::new(config.clone(), Arc::clone(&shared)).run(queue));
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(follow::run(
            config.clone(),
            Arc::clone(&shared),
            options.listen,
            options.poll_interval,
            stopped,
        ));
        Ok(PgStore {
            inner: Arc::new(Inner {
                readers: Readers::new(config.clone(), options.read_connections),
                store_id,
                config,
                limits: options.limits,
                shared,
                requests: Mutex::new(Some(requests)),
                stop,
                importer: tokio::sync::Mutex::new(None),
            }),
        })
    }

    /// Stops taking appends (those queued are still committed and answered) and stops
    /// following the head. Later appends through any clone fail with [`StoreError::Closed`].
    pub fn close(&self) {
        self.inner.requests.lock().unwrap_or_else(|p| p.into_inner()).take();
        self.inner.stop.send_replace(true);
    }

    fn sender(&self) -> Result<mpsc::Sender<Request>, StoreError> {
        let requests = self.inner.requests.lock().unwrap_or_else(|p| p.into_inner());
        requests.clone().ok_or(StoreError::Closed)
    }

    async fn verify_in(&self, tx: &Transaction<'_>, scope: &VerifyScope) -> Result<VerifyReport, StoreError> {
        let head: i64 = tx
            .query_one("SELECT next_position FROM hoso_log_head", &[])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(read_failed)?;
        let head = head.unsigned_abs();
        match scope {
            VerifyScope::All => {
                let batch = tx
                    .prepare(&format!(
                        "SELECT {COLUMNS} FROM hoso_events WHERE position >= $1 ORDER BY position LIMIT {VERIFY_BATCH}"
                    ))
                    .await
                    .map_err(read_failed)?;
                let mut chains: HashMap<String, (Version, [u8; 32])> = HashMap::new();
                let mut expected: Position = 0;
                loop {
                    let rows = tx.query(&batch, &[&bigint(expected)]).await.map_err(read_failed)?;
                    if rows.is_empty() {
                        break;
                    }
                    for row in &rows {
                        let problem = match conn::decode(row) {
                            Err(StoreError::Corrupted { reason, .. }) => {
                                Some(Problem::new(expected, None, None, reason))
                            }
                            Err(other) => return Err(other),
                            Ok(record) if record.position != expected => Some(Problem::new(
                                expected,
                                None,
                                None,
                                format!(
                                    "the log has no event at this position (the next is at {})",
                                    record.position
                                ),
                            )),
                            Ok(record) if record.position >= head => Some(Problem::new(
                                expected,
                                Some(&record.stream_id),
                                Some(record.version),
                                format!("the record lies past the log's head ({head})"),
                            )),
                            Ok(record) => {
                                let chain = chains.get(&record.stream_id).copied().unwrap_or((0, GENESIS_HASH));
                                match check_chain(&record, chain) {
                                    Some(p) => Some(p),
                                    None => {
                                        chains.insert(record.stream_id, (record.version + 1, record.hash));
                                        None
                                    }
                                }
                            }
                        };
                        if let Some(p) = problem {
                            return Ok(VerifyReport::new(expected, chains.len() as u64, Some(p)));
                        }
                        expected += 1;
                    }
                }
                let problem =
                    (expected < head).then(|| Problem::new(expected, None, None, "the log ends before its head"));
                Ok(VerifyReport::new(expected, chains.len() as u64, problem))
            }
            VerifyScope::Stream(stream_id) => {
                hoso_store::check_stream_id(stream_id)?;
                let batch = tx
                    .prepare(&format!(
                        "SELECT {COLUMNS} FROM hoso_events WHERE stream_id = $1 AND version >= $2 \
                         ORDER BY version LIMIT {VERIFY_BATCH}"
                    ))
                    .await
                    .map_err(read_failed)?;
                let mut chain = (0, GENESIS_HASH);
                let mut checked = 0;
                loop {
                    let rows = tx
                        .query(&batch, &[stream_id, &bigint(chain.0)])
                        .await
                        .map_err(read_failed)?;
                    if rows.is_empty() {
                        break;
                    }
                    for row in &rows {
                        let record = match conn::decode(row) {
                            Ok(record) => record,
                            Err(StoreError::Corrupted { position, reason }) => {
                                let p = Problem::new(position, Some(stream_id), Some(chain.0), reason);
                                return Ok(VerifyReport::new(checked, 1, Some(p)));
                            }
                            Err(other) => return Err(other),
                        };
                        if let Some(p) = check_chain(&record, chain) {
                            return Ok(VerifyReport::new(checked, 1, Some(p)));
                        }
                        chain = (record.version + 1, record.hash);
                        checked += 1;
                    }
                }
                Ok(VerifyReport::new(checked, u64::from(checked > 0), None))
            }
        }
    }
}

/// Rows `verify` reads per query.
const VERIFY_BATCH: usize = 1_000;

/// Checks a record against its stream's chain so far: the version that must come next and the
/// previous record's hash. The reasons are the embedded store's.
fn check_chain(record: &RecordedEvent, (expected_version, prev_hash): (Version, [u8; 32])) -> Option<Problem> {
    let at = |reason: String| {
        Some(Problem::new(
            record.position,
            Some(&record.stream_id),
            Some(record.version),
            reason,
        ))
    };
    if record.version != expected_version {
        return at(format!(
            "version {} follows version {} of its stream",
            record.version,
            i128::from(expected_version) - 1
        ));
    }
    if hoso_store::record_hash(&prev_hash, record) != record.hash {
        return at("the record's bytes do not match its hash (altered or damaged)".to_owned());
    }
    None
}

/// Rows read by position must be the positions asked for, one after the other: a gap means a
/// row was removed behind the store's back.
fn gap_free(from: Position, records: Vec<RecordedEvent>) -> Result<Vec<RecordedEvent>, StoreError> {
    for (i, record) in records.iter().enumerate() {
        let expected = from + i as u64;
        if record.position != expected {
            return Err(StoreError::Corrupted {
                position: expected,
                reason: format!(
                    "the log has no event at this position (the next is at {})",
                    record.position
                ),
            });
        }
    }
    Ok(records)
}

fn decode_all(rows: &[tokio_postgres::Row]) -> Result<Vec<RecordedEvent>, StoreError> {
    rows.iter().map(conn::decode).collect()
}

impl EventStore for PgStore {
    async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        if let Some(first_failure) = self.write_refusal() {
            return Err(StoreError::WritesRefused { first_failure });
        }
        self.inner.limits.check_append(stream_id, &events)?;
        let events = events
            .into_iter()
            .map(|mut event| {
                // Stored to the microsecond, as the embedded store does; a retry compares so.
                let micros = event.occurred_at.timestamp_micros();
                event.occurred_at = conn::from_micros(micros).unwrap_or(event.occurred_at);
                event
            })
            .collect();
        let (reply, answer) = oneshot::channel();
        let request = Request {
            stream_id: stream_id.to_owned(),
            expected,
            events,
            reply,
        };
        self.sender()?.send(request).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn read_stream(&self, stream_id: &str, read: StreamRead) -> Result<Vec<RecordedEvent>, StoreError> {
        hoso_store::check_stream_id(stream_id)?;
        if read.max_count == 0 {
            return Ok(Vec::new());
        }
        let reader = self.inner.readers.get().await?;
        let statement = match read.direction {
            Direction::Forward => &reader.stream_forward,
            Direction::Backward => &reader.stream_backward,
        };
        let cutoff = read.as_of.map_or(i64::MAX, |at| at.timestamp_micros());
        let rows = reader
            .client
            .query(
                statement,
                &[&stream_id, &bigint(read.from), &cutoff, &bigint(read.max_count as u64)],
            )
            .await
            .map_err(read_failed)?;
        decode_all(&rows)
    }

    async fn read_all(&self, from: Position, max_count: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        if max_count == 0 {
            return Ok(Vec::new());
        }
        let reader = self.inner.readers.get().await?;
        let rows = reader
            .client
            .query(&reader.read_all, &[&bigint(from), &bigint(max_count as u64)])
            .await
            .map_err(read_failed)?;
        gap_free(from, decode_all(&rows)?)
    }

    async fn event_by_id(&self, event_id: Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        let reader = self.inner.readers.get().await?;
        let row = reader
            .client
            .query_opt(&reader.by_id, &[&event_id])
            .await
            .map_err(read_failed)?;
        row.as_ref().map(conn::decode).transpose()
    }

    async fn stream_version(&self, stream_id: &str) -> Result<Option<Version>, StoreError> {
        hoso_store::check_stream_id(stream_id)?;
        let reader = self.inner.readers.get().await?;
        let row = reader
            .client
            .query_opt(&reader.stream_version, &[&stream_id])
            .await
            .map_err(read_failed)?;
        match row {
            None => Ok(None),
            Some(row) => {
                let version: i64 = row.try_get(0).map_err(read_failed)?;
                Ok(Some(version.unsigned_abs()))
            }
        }
    }

    /// The position after the last event this process knows to be committed: its own appends
    /// at once, other processes' within a notification or a poll interval.
    fn head(&self) -> Position {
        *self.inner.shared.head.borrow()
    }

    fn watch_head(&self) -> watch::Receiver<Position> {
        self.inner.shared.head.subscribe()
    }

    /// `Some` once the database was found to hold what this store's protocol cannot have
    /// written (a constraint of the log refused an append); a lost connection is not a refusal.
    fn store_id(&self) -> uuid::Uuid {
        self.inner.store_id
    }

    /// PostgreSQL recovers its own log; nothing is ever cut off and kept aside here.
    fn quarantined(&self) -> Vec<hoso_store::Quarantined> {
        Vec::new()
    }

    fn write_refusal(&self) -> Option<String> {
        self.inner.shared.refusal()
    }

    fn write_metrics(&self) -> Option<hoso_store::WriteMetrics> {
        Some(self.inner.shared.write_metrics.clone())
    }

    /// Walks the log (or one stream) in one repeatable-read snapshot, on a connection of its own.
    async fn verify(&self, scope: VerifyScope) -> Result<VerifyReport, StoreError> {
        let mut client = conn::connect(&self.inner.config).await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(read_failed)?;
        let report = self.verify_in(&tx, &scope).await?;
        tx.commit().await.map_err(read_failed)?;
        Ok(report)
    }
}

/// Imports through a connection of its own, one transaction per batch (see `import`).
impl ImportStore for PgStore {
    async fn import(&self, events: Vec<RecordedEvent>) -> Result<Position, StoreError> {
        if events.is_empty() {
            return Ok(self.head());
        }
        let mut slot = self.inner.importer.lock().await;
        let client = match slot.take() {
            Some(client) if !client.is_closed() => slot.insert(client),
            _ => slot.insert(conn::connect(&self.inner.config).await?),
        };
        let head = import::import(client, &self.inner.limits, &events).await;
        if matches!(head, Err(StoreError::Io(_))) {
            // The next import starts on a fresh connection, as the writer's next group does.
            slot.take();
        }
        let head = head?;
        self.inner.shared.advance_head(head);
        Ok(head)
    }
}
