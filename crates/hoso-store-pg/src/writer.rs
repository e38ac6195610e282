//! The writer: one task per store that commits the queued appends in groups, one transaction
//! per group, under the lock of the log's head row.
//!
//! Every append of every process takes the row `hoso_log_head` with `SELECT ... FOR UPDATE`
//! first and holds it until its transaction ends, so appends take positions and commit one
//! after the other (docs/design.md, "PostgreSQL store"). A group shares that turn and one
//! commit (one WAL flush) among all the appends queued while the previous group committed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hoso_store::{AppendResult, ExpectedVersion, GENESIS_HASH, NewEvent, Position, RecordedEvent, StoreError, Version};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, Statement};
use uuid::Uuid;

use crate::conn::{self, COLUMNS, bigint};
use crate::rows::{self, EventRows, RowText};

/// A group takes queued appends until it holds this many events.
const MAX_GROUP_EVENTS: usize = 4_096;

/// The channel every append of other processes is announced on (a wake-up only).
pub(crate) const CHANNEL: &str = "hoso_log";

/// What the writer and the head follower share with the store's handles.
pub(crate) struct Shared {
    /// The position after the last committed event this process knows of.
    pub(crate) head: watch::Sender<Position>,
    /// Why appends are refused, once the database was found to hold what the store did not write.
    pub(crate) refusal: Mutex<Option<String>>,
    /// Events written by each committed group and each group's transaction time, for `/metrics`.
    pub(crate) write_metrics: hoso_store::WriteMetrics,
}

impl Shared {
    /// Moves the head forward (never back: another connection may have seen less).
    pub(crate) fn advance_head(&self, head: Position) {
        self.head.send_if_modified(|known| {
            let moved = head > *known;
            if moved {
                *known = head;
            }
            moved
        });
    }

    pub(crate) fn refusal(&self) -> Option<String> {
        // A poisoned lock only means a panic while setting the text: the text is still sound.
        self.refusal
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn refuse(&self, reason: &str) {
        let mut refusal = self.refusal.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if refusal.is_none() {
            // The refusal is what the operator reads: the failure, then what to do.
            *refusal = Some(format!(
                "{reason}; restart the server (reopen the store) once the log's tables hold only what this store wrote"
            ));
        }
    }
}

/// An append, validated, waiting for the writer.
pub(crate) struct Request {
    pub(crate) stream_id: String,
    pub(crate) expected: ExpectedVersion,
    /// With `occurred_at` whole microseconds, as stored.
    pub(crate) events: Vec<NewEvent>,
    pub(crate) reply: oneshot::Sender<Result<AppendResult, StoreError>>,
}

/// The writer's connection and its statements.
struct Connection {
    client: Client,
    lock_head: Statement,
    by_ids: Statement,
    stream_heads: Statement,
    append_size: Statement,
    insert: Statement,
    set_head: Statement,
    notify: Statement,
}

impl Connection {
    async fn open(config: &Config) -> Result<Connection, StoreError> {
        let client = conn::connect(config).await?;
        let failed = |err: tokio_postgres::Error| conn::unavailable(&err, "cannot prepare the writer's statements");
        // An append is acknowledged once committed; with synchronous_commit off a commit could
        // be lost in a crash after the acknowledgement, so the writer never runs with it off.
        let synchronous: String = client
            .query_one("SHOW synchronous_commit", &[])
            .await
            .map_err(failed)?
            .try_get(0)
            .map_err(failed)?;
        if synchronous == "off" {
            client
                .batch_execute("SET synchronous_commit = on")
                .await
                .map_err(failed)?;
        }
        let lock_head = client
            .prepare(
                "SELECT next_position, last_recorded_at, \
                        floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint \
                 FROM hoso_log_head FOR UPDATE",
            )
            .await
            .map_err(failed)?;
        let by_ids = client
            .prepare(&format!("SELECT {COLUMNS} FROM hoso_events WHERE event_id = ANY($1)"))
            .await
            .map_err(failed)?;
        let stream_heads = client
            .prepare(
                "SELECT s.stream_id, e.version, e.hash FROM unnest($1::text[]) AS s(stream_id) \
                 CROSS JOIN LATERAL (SELECT version, hash FROM hoso_events \
                     WHERE hoso_events.stream_id = s.stream_id ORDER BY version DESC LIMIT 1) AS e",
            )
            .await
            .map_err(failed)?;
        let append_size = client
            .prepare("SELECT count(*) FROM hoso_events WHERE stream_id = $1 AND recorded_at = $2")
            .await
            .map_err(failed)?;
        let insert = client.prepare(&rows::insert_statement()).await.map_err(failed)?;
        let set_head = client
            .prepare("UPDATE hoso_log_head SET next_position = $1, last_recorded_at = $2")
            .await
            .map_err(failed)?;
        let notify = client
            .prepare(&format!("SELECT pg_notify('{CHANNEL}', $1)"))
            .await
            .map_err(failed)?;
        Ok(Connection {
            client,
            lock_head,
            by_ids,
            stream_heads,
            append_size,
            insert,
            set_head,
            notify,
        })
    }
}

/// Why a whole group failed.
enum GroupFailure {
    /// PostgreSQL could not be reached or refused the transaction: retryable.
    Unavailable(String),
    /// The database breaks the store's invariants: appends are refused from now on.
    Corrupted { position: Position, reason: String },
}

impl GroupFailure {
    fn from_pg(err: tokio_postgres::Error, position: Position) -> GroupFailure {
        if conn::is_integrity_violation(&err) {
            return GroupFailure::Corrupted {
                position,
                reason: format!(
                    "PostgreSQL refused the append for a constraint of the log ({err}): \
                     something other than this store's protocol wrote to it"
                ),
            };
        }
        GroupFailure::Unavailable(conn::describe(
            &err,
            "PostgreSQL failed during the append, which may or may not have been committed \
             (retry it with the same event ids: a retry is idempotent)",
        ))
    }

    fn to_error(&self) -> StoreError {
        match self {
            GroupFailure::Unavailable(reason) => StoreError::Unavailable(reason.clone()),
            GroupFailure::Corrupted { position, reason } => StoreError::Corrupted {
                position: *position,
                reason: reason.clone(),
            },
        }
    }
}

impl From<StoreError> for GroupFailure {
    fn from(err: StoreError) -> GroupFailure {
        match err {
            StoreError::Corrupted { position, reason } => GroupFailure::Corrupted { position, reason },
            StoreError::Unavailable(reason) => GroupFailure::Unavailable(reason),
            other => GroupFailure::Unavailable(other.to_string()),
        }
    }
}

/// What a group knows while it plans its appends, in memory.
struct Plan<'a> {
    next_position: Position,
    last_recorded_at: i64,
    now: i64,
    /// Stored events with the group's ids: from the database, then those the group writes.
    stored: HashMap<Uuid, RecordedEvent>,
    /// The last version and hash of each of the group's streams.
    heads: HashMap<String, (Version, [u8; 32])>,
    /// How many events each append of this group wrote, by its recorded_at.
    written_here: HashMap<i64, u64>,
    rows: EventRows<'a>,
}

pub(crate) struct Writer {
    config: Config,
    connection: Option<Connection>,
    shared: Arc<Shared>,
}

impl Writer {
    pub(crate) fn new(config: Config, shared: Arc<Shared>) -> Writer {
        Writer {
            config,
            connection: None,
            shared,
        }
    }

    /// Commits groups until every handle of the store is dropped or closed.
    pub(crate) async fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        while let Some(first) = requests.recv().await {
            let mut events = first.events.len();
            let mut group = vec![first];
            while events < MAX_GROUP_EVENTS {
                match requests.try_recv() {
                    Ok(request) => {
                        events += request.events.len();
                        group.push(request);
                    }
                    Err(_) => break,
                }
            }
            self.commit(group).await;
        }
    }

    async fn commit(&mut self, group: Vec<Request>) {
        if let Some(first_failure) = self.shared.refusal() {
            for request in group {
                let _ = request.reply.send(Err(StoreError::WritesRefused {
                    first_failure: first_failure.clone(),
                }));
            }
            return;
        }
        let started = std::time::Instant::now();
        match self.try_commit(&group).await {
            Ok((outcomes, head)) => {
                // The head moves before anyone is answered, so that a caller who reads right
                // after its append sees it counted.
                self.shared.advance_head(head);
                // Once per group, not per event: what the group wrote (retries wrote nothing).
                let written: usize = outcomes
                    .iter()
                    .filter_map(|outcome| outcome.as_ref().ok())
                    .filter(|result| !result.already_stored)
                    .filter_map(|result| result.positions)
                    .map(|(first, last)| (last - first + 1) as usize)
                    .sum();
                let metrics = &self.shared.write_metrics;
                metrics.fsync_seconds.observe(started.elapsed().as_secs_f64());
                metrics.batch_events.observe(written as f64);
                for (request, outcome) in group.into_iter().zip(outcomes) {
                    let _ = request.reply.send(outcome);
                }
            }
            Err(failure) => {
                if let GroupFailure::Corrupted { reason, .. } = &failure {
                    tracing::error!(%reason, "the PostgreSQL store refuses appends from now on");
                    self.shared.refuse(reason);
                }
                // After any failure the next group starts on a fresh connection: the old one
                // may be closed, or in a state this writer did not leave it in.
                self.connection = None;
                for request in group {
                    let _ = request.reply.send(Err(failure.to_error()));
                }
            }
        }
    }

    /// Plans and writes the group in one transaction; returns each append's outcome and the
    /// head after the commit.
    async fn try_commit(
        &mut self,
        group: &[Request],
    ) -> Result<(Vec<Result<AppendResult, StoreError>>, Position), GroupFailure> {
        if self.connection.as_ref().is_none_or(|c| c.client.is_closed()) {
            self.connection = None;
            self.connection = Some(Connection::open(&self.config).await?);
        }
        let Some(connection) = self.connection.as_mut() else {
            return Err(GroupFailure::Unavailable("no connection to PostgreSQL".to_owned()));
        };
        let Connection {
            client,
            lock_head,
            by_ids,
            stream_heads,
            append_size,
            insert,
            set_head,
            notify,
        } = connection;
        let ids: Vec<Uuid> = group.iter().flat_map(|r| r.events.iter().map(|e| e.event_id)).collect();
        let mut streams: Vec<&str> = group.iter().map(|r| r.stream_id.as_str()).collect();
        streams.sort_unstable();
        streams.dedup();
        let (ids_param, streams_param): ([&(dyn ToSql + Sync); 1], [&(dyn ToSql + Sync); 1]) = ([&ids], [&streams]);
        // Sent at once, pipelined: one round trip. The server runs them in order, so the lookups
        // start once the head row's lock is granted, each in a snapshot taken after that (READ
        // COMMITTED, named so that no server default changes it).
        let (begun, head_row, stored_rows, head_rows) = tokio::join!(
            client.batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED"),
            client.query_one(&*lock_head, &[]),
            client.query(&*by_ids, &ids_param),
            client.query(&*stream_heads, &streams_param),
        );
        let pg = |err| GroupFailure::from_pg(err, 0);
        begun.map_err(pg)?;
        let head_row = head_row.map_err(pg)?;
        let next_position: i64 = head_row.try_get(0).map_err(pg)?;
        let next_position = Position::try_from(next_position).map_err(|_| GroupFailure::Corrupted {
            position: 0,
            reason: format!("the log's head is at position {next_position}"),
        })?;
        let pg = |err| GroupFailure::from_pg(err, next_position);
        let mut plan = Plan {
            next_position,
            last_recorded_at: head_row.try_get(1).map_err(pg)?,
            now: head_row.try_get(2).map_err(pg)?,
            stored: HashMap::new(),
            heads: HashMap::new(),
            written_here: HashMap::new(),
            rows: EventRows::default(),
        };
        let (stored_rows, head_rows) = (stored_rows.map_err(pg)?, head_rows.map_err(pg)?);
        for row in &stored_rows {
            let record = conn::decode(row)?;
            plan.stored.insert(record.event_id, record);
        }
        for row in &head_rows {
            let stream: String = row.try_get(0).map_err(pg)?;
            let version: i64 = row.try_get(1).map_err(pg)?;
            let hash: Vec<u8> = row.try_get(2).map_err(pg)?;
            let corrupt = |reason: &str| GroupFailure::Corrupted {
                position: next_position,
                reason: format!("the last event of stream {stream} {reason}"),
            };
            let version = Version::try_from(version).map_err(|_| corrupt("has a negative version"))?;
            let hash: [u8; 32] = hash
                .try_into()
                .map_err(|_| corrupt("has a hash that is not 32 bytes"))?;
            plan.heads.insert(stream, (version, hash));
        }

        let mut outcomes = Vec::with_capacity(group.len());
        for request in group {
            outcomes.push(plan.append(client, append_size, request).await.map_err(pg)?);
        }

        let head = plan.next_position;
        if !plan.rows.is_empty() {
            let columns = plan.rows.params();
            let head_param = bigint(head);
            let set_head_params: [&(dyn ToSql + Sync); 2] = [&head_param, &plan.last_recorded_at];
            let head_text = head.to_string();
            let notify_params: [&(dyn ToSql + Sync); 1] = [&head_text];
            // Sent at once with the commit, pipelined: one round trip. The notification is
            // delivered only if the commit is. The first failed statement's error is the cause:
            // the transaction is then aborted, the later statements fail and COMMIT rolls back.
            let (inserted, head_set, notified, committed) = tokio::join!(
                client.execute(&*insert, &columns),
                client.execute(&*set_head, &set_head_params),
                client.execute(&*notify, &notify_params),
                client.batch_execute("COMMIT"),
            );
            inserted.map_err(pg)?;
            head_set.map_err(pg)?;
            notified.map_err(pg)?;
            committed.map_err(pg)?;
        } else {
            client.batch_execute("COMMIT").await.map_err(pg)?;
        }
        Ok((outcomes, head))
    }
}

impl<'a> Plan<'a> {
    /// Decides one append against what is stored and what the group wrote before it, and adds
    /// its rows. The outer error fails the whole group; the inner one is this append's answer.
    async fn append(
        &mut self,
        client: &Client,
        append_size: &Statement,
        request: &'a Request,
    ) -> Result<Result<AppendResult, StoreError>, tokio_postgres::Error> {
        let stream_id = request.stream_id.as_str();
        match self.find_retry(client, append_size, request).await? {
            Ok(Some(original)) => return Ok(Ok(original)),
            Ok(None) => {}
            Err(err) => return Ok(Err(err)),
        }
        let head = self.heads.get(stream_id).copied();
        let actual = head.map(|(version, _)| version);
        let allowed = match request.expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual.is_none(),
            ExpectedVersion::StreamExists => actual.is_some(),
            ExpectedVersion::Exact(v) => actual == Some(v),
        };
        if !allowed {
            return Ok(Err(StoreError::Conflict {
                stream: stream_id.to_owned(),
                expected: request.expected,
                actual,
            }));
        }
        if request.events.is_empty() {
            return Ok(Ok(AppendResult {
                current_version: actual,
                positions: None,
                already_stored: false,
            }));
        }
        // One recorded_at per append, later than every earlier append's, from the database's
        // clock so that every process of a province reads the same one.
        let recorded_at = self.now.max(self.last_recorded_at + 1);
        self.last_recorded_at = recorded_at;
        let Some(recorded) = conn::from_micros(recorded_at) else {
            return Ok(Err(StoreError::Io(format!(
                "the database's clock reads {recorded_at} µs since the epoch"
            ))));
        };
        let first_position = self.next_position;
        let (mut version, mut prev_hash) = match head {
            Some((version, hash)) => (version + 1, hash),
            None => (0, GENESIS_HASH),
        };
        for event in &request.events {
            let mut record = RecordedEvent {
                stream_id: stream_id.to_owned(),
                version,
                position: self.next_position,
                event_id: event.event_id,
                event_type: event.event_type.clone(),
                schema_version: event.schema_version,
                data: event.data.as_str().as_bytes().to_vec(),
                metadata: event.metadata.as_str().as_bytes().to_vec(),
                occurred_at: event.occurred_at,
                recorded_at: recorded,
                hash: [0; 32],
            };
            record.hash = hoso_store::record_hash(&prev_hash, &record);
            prev_hash = record.hash;
            self.rows.push(
                &record,
                RowText {
                    stream_id,
                    event_type: &event.event_type,
                    data: event.data.as_str(),
                    metadata: event.metadata.as_str(),
                },
            );
            self.stored.insert(event.event_id, record);
            version += 1;
            self.next_position += 1;
        }
        self.heads.insert(stream_id.to_owned(), (version - 1, prev_hash));
        self.written_here.insert(recorded_at, request.events.len() as u64);
        Ok(Ok(AppendResult {
            current_version: Some(version - 1),
            positions: Some((first_position, self.next_position - 1)),
            already_stored: false,
        }))
    }

    /// If the request's event ids are stored, checks that it is an exact retry of one append
    /// and returns that append's result (the same rules, reasons and order as the embedded
    /// store's writer).
    async fn find_retry(
        &self,
        client: &Client,
        append_size: &Statement,
        request: &Request,
    ) -> Result<Result<Option<AppendResult>, StoreError>, tokio_postgres::Error> {
        let stored: Vec<(&NewEvent, &RecordedEvent)> = request
            .events
            .iter()
            .filter_map(|e| self.stored.get(&e.event_id).map(|r| (e, r)))
            .collect();
        let Some(&(first_event, first)) = stored.first() else {
            return Ok(Ok(None));
        };
        let reused = |event_id: Uuid, reason: String| Ok(Err(StoreError::EventIdReused { event_id, reason }));
        if stored.len() != request.events.len() {
            return reused(
                first_event.event_id,
                "the append mixes events already stored with new ones".to_owned(),
            );
        }
        for (i, (event, record)) in stored.iter().enumerate() {
            let id = event.event_id;
            if record.stream_id != request.stream_id {
                return reused(id, format!("it is stored in stream {}", record.stream_id));
            }
            if record.position != first.position + i as u64 {
                return reused(id, "it was stored by a different append".to_owned());
            }
            if record.event_type != event.event_type {
                return reused(id, format!("it is stored with event type {}", record.event_type));
            }
            if record.schema_version != event.schema_version {
                return reused(
                    id,
                    format!("it is stored with schema version {}", record.schema_version),
                );
            }
            if !event.data.is_stored_as(&record.data) {
                return reused(id, "its data differs from the stored event".to_owned());
            }
            if !event.metadata.is_stored_as(&record.metadata) {
                return reused(id, "its metadata differs from the stored event".to_owned());
            }
            if record.occurred_at != event.occurred_at {
                return reused(id, "its occurred_at differs from the stored event".to_owned());
            }
        }
        // Every append has a recorded_at of its own: the stream's events with the same one are
        // exactly those of the original append, which may have carried more than this retry.
        let last = stored[stored.len() - 1].1;
        let recorded_at = last.recorded_at.timestamp_micros();
        let original_len = match self.written_here.get(&recorded_at) {
            Some(&n) => n,
            None => {
                let count: i64 = client
                    .query_one(append_size, &[&last.stream_id, &recorded_at])
                    .await?
                    .try_get(0)?;
                count.unsigned_abs()
            }
        };
        if original_len != stored.len() as u64 {
            return reused(
                first_event.event_id,
                "it was stored by an append with more events".to_owned(),
            );
        }
        Ok(Ok(Some(AppendResult {
            current_version: Some(last.version),
            positions: Some((first.position, last.position)),
            already_stored: true,
        })))
    }
}
