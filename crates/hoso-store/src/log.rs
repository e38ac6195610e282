//! The log itself, generic over the key-value engine: validation, the single writer with group
//! commit, reads capped at the durable head, and verification of the hash chains.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

use crate::kv::{self, Kv};
use crate::record::{self, GENESIS_HASH, RecordFields};
use crate::{
    AppendResult, Direction, ExpectedVersion, Limits, NewEvent, Position, Problem, RecordedEvent, StoreError,
    StreamRead, VerifyReport, VerifyScope, Version,
};

/// The on-disk format this build writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// Stream ids and event types are at most this many bytes.
pub(crate) const MAX_NAME_BYTES: usize = 255;
/// At most this many appends share one flush.
const MAX_GROUP: usize = 512;
/// Index entries and records are read from the engine in chunks of this many.
const CHUNK: usize = 256;

/// An event that passed validation, with its JSON already rendered to bytes.
struct PreparedEvent {
    event_id: Uuid,
    event_type: String,
    schema_version: u32,
    data: Vec<u8>,
    metadata: Vec<u8>,
    occurred_at: DateTime<Utc>,
}

struct Request {
    stream_id: String,
    expected: ExpectedVersion,
    events: Vec<PreparedEvent>,
    reply: oneshot::Sender<Result<AppendResult, StoreError>>,
}

/// The shared state of one open log.
pub(crate) struct Log<K: Kv> {
    kv: Arc<K>,
    limits: Limits,
    /// The next position after the last durable record. Readers never look past it.
    head: watch::Sender<Position>,
    requests: Mutex<Option<mpsc::Sender<Request>>>,
    /// The writer and the syncer, joined on close (writer first).
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Set once a write or flush fails; from then on every append is refused.
    poison: Arc<Mutex<Option<String>>>,
    #[cfg_attr(not(feature = "failpoints"), allow(dead_code))]
    fail_next_flush: Arc<AtomicBool>,
}

impl<K: Kv> Log<K> {
    /// Opens a log over `kv`: checks the format, finds the head and starts the writer thread.
    pub(crate) fn open(kv: K, limits: Limits) -> Result<Self, StoreError> {
        let kv = Arc::new(kv);
        match kv.get(kv::FORMAT_KEY)? {
            Some(bytes) => {
                let found =
                    <[u8; 4]>::try_from(&bytes[..])
                        .map(u32::from_be_bytes)
                        .map_err(|_| StoreError::Corrupted {
                            position: 0,
                            reason: "the format version record is damaged".to_owned(),
                        })?;
                if found != FORMAT_VERSION {
                    return Err(StoreError::UnsupportedFormat {
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
            }
            None if kv.is_empty()? => {
                kv.apply(vec![(kv::FORMAT_KEY.to_vec(), FORMAT_VERSION.to_be_bytes().to_vec())])?;
                kv.write_out()?;
                kv.sync()?;
            }
            None => {
                return Err(StoreError::Corrupted {
                    position: 0,
                    reason: "the database holds data but no hoso format version: it was not written by hoso".to_owned(),
                });
            }
        }

        // The last record tells where the log ends and the latest recorded_at. Every append
        // is one atomic batch, so whatever the engine recovered is a prefix of whole appends.
        let mut last: Option<RecordedEvent> = None;
        kv.scan(&kv::event_key(0), &kv::event_key(u64::MAX), true, |key, value| {
            let position = kv::parse_u64(&key[1..]).unwrap_or(u64::MAX);
            last = Some(record::decode(position, value)?);
            Ok(false)
        })?;
        let next_position = last.as_ref().map_or(0, |r| r.position + 1);
        let last_recorded_at = last.map(|r| r.recorded_at);

        let (head, _) = watch::channel(next_position);
        let (tx, rx) = mpsc::channel();
        let (to_syncer, synced) = mpsc::channel();
        let poison = Arc::new(Mutex::new(None));
        let fail_next_flush = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            kv: Arc::clone(&kv),
            poison: Arc::clone(&poison),
            next_position,
            last_recorded_at,
            to_syncer,
        };
        let syncer = Syncer {
            kv: Arc::clone(&kv),
            head: head.clone(),
            poison: Arc::clone(&poison),
            fail_next_flush: Arc::clone(&fail_next_flush),
        };
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(f)
                .map_err(|err| StoreError::Io(format!("cannot start the {name} thread: {err}")))
        };
        let syncer = spawn("hoso-store-sync", Box::new(move || syncer.run(synced)))?;
        let writer = spawn("hoso-store-writer", Box::new(move || writer.run(rx)))?;
        Ok(Log {
            kv,
            limits,
            head,
            requests: Mutex::new(Some(tx)),
            threads: Mutex::new(vec![writer, syncer]),
            poison,
            fail_next_flush,
        })
    }

    pub(crate) fn head(&self) -> Position {
        *self.head.borrow()
    }

    pub(crate) fn watch_head(&self) -> watch::Receiver<Position> {
        self.head.subscribe()
    }

    /// Why appends are refused (the first write or fsync failure), `None` while they are accepted.
    pub(crate) fn write_refusal(&self) -> Option<String> {
        match self.poison.lock() {
            Ok(poison) => poison.clone(),
            Err(_) => Some(lock_poisoned().to_string()),
        }
    }

    /// Makes the next flush fail, as a disk would.
    #[cfg(feature = "failpoints")]
    pub(crate) fn fail_next_flush(&self) {
        self.fail_next_flush.store(true, Ordering::SeqCst);
    }

    pub(crate) async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        if let Some(first_failure) = self.poison.lock().map_err(|_| lock_poisoned())?.clone() {
            return Err(StoreError::WritesRefused { first_failure });
        }
        check_name(stream_id).map_err(|reason| StoreError::InvalidStreamId { reason })?;
        let events = self.prepare(events)?;
        let (reply, answer) = oneshot::channel();
        let request = Request {
            stream_id: stream_id.to_owned(),
            expected,
            events,
            reply,
        };
        {
            let requests = self.requests.lock().map_err(|_| lock_poisoned())?;
            let sender = requests.as_ref().ok_or(StoreError::Closed)?;
            sender.send(request).map_err(|_| StoreError::Closed)?;
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Validates events and renders their JSON, on the caller's task rather than the writer's.
    fn prepare(&self, events: Vec<NewEvent>) -> Result<Vec<PreparedEvent>, StoreError> {
        if events.len() > self.limits.max_events_per_append {
            return Err(StoreError::TooManyEvents {
                count: events.len(),
                max: self.limits.max_events_per_append,
            });
        }
        let mut prepared: Vec<PreparedEvent> = Vec::with_capacity(events.len());
        for event in events {
            if prepared.iter().any(|p| p.event_id == event.event_id) {
                return Err(StoreError::DuplicateEventInAppend {
                    event_id: event.event_id,
                });
            }
            check_name(&event.event_type).map_err(|reason| StoreError::InvalidEventType {
                event_id: event.event_id,
                reason,
            })?;
            let data = serde_json::to_vec(&event.data).map_err(|err| StoreError::Io(err.to_string()))?;
            let metadata = serde_json::to_vec(&event.metadata).map_err(|err| StoreError::Io(err.to_string()))?;
            let size = data.len() + metadata.len();
            if size > self.limits.max_event_bytes {
                return Err(StoreError::EventTooLarge {
                    event_id: event.event_id,
                    size,
                    max: self.limits.max_event_bytes,
                });
            }
            prepared.push(PreparedEvent {
                event_id: event.event_id,
                event_type: event.event_type,
                schema_version: event.schema_version,
                data,
                metadata,
                occurred_at: truncate_to_micros(event.occurred_at),
            });
        }
        Ok(prepared)
    }

    pub(crate) fn read_stream(&self, stream_id: &str, read: &StreamRead) -> Result<Vec<RecordedEvent>, StoreError> {
        check_name(stream_id).map_err(|reason| StoreError::InvalidStreamId { reason })?;
        let head = self.head();
        let prefix = kv::stream_prefix(stream_id);
        let (start, end, reverse) = match read.direction {
            Direction::Forward => (
                kv::stream_key(&prefix, read.from),
                kv::stream_key(&prefix, u64::MAX),
                false,
            ),
            Direction::Backward => (
                kv::stream_key(&prefix, 0),
                kv::stream_key(&prefix, read.from.saturating_add(1)),
                true,
            ),
        };
        // With an "as of" cut-off the count applies after filtering, so index entries are read
        // in chunks until enough records are found. Records are fetched between chunks, never
        // while the engine is being scanned.
        let mut out = Vec::new();
        if read.max_count == 0 {
            return Ok(out);
        }
        let (mut start, mut end) = (start, end);
        loop {
            let mut positions = Vec::with_capacity(CHUNK);
            let mut visited = 0;
            let mut last_version = None;
            self.kv.scan(&start, &end, reverse, |key, value| {
                let (position, _) = kv::parse_stream_entry(value).ok_or_else(|| damaged_stream_entry(stream_id))?;
                visited += 1;
                last_version = kv::version_of_stream_key(key);
                if position < head {
                    positions.push(position);
                }
                Ok(visited < CHUNK)
            })?;
            for position in positions {
                let bytes = self
                    .kv
                    .get(&kv::event_key(position))?
                    .ok_or_else(|| StoreError::Corrupted {
                        position,
                        reason: format!("stream {stream_id} points to a record that is missing"),
                    })?;
                if let Some(cutoff) = read.as_of {
                    let recorded_at = record::peek_recorded_at(&bytes).ok_or_else(|| StoreError::Corrupted {
                        position,
                        reason: "record is truncated".to_owned(),
                    })?;
                    if recorded_at > cutoff {
                        // Forward, every later record is later still; backward, keep looking.
                        if reverse {
                            continue;
                        }
                        return Ok(out);
                    }
                }
                out.push(record::decode(position, &bytes)?);
                if out.len() >= read.max_count {
                    return Ok(out);
                }
            }
            match last_version {
                Some(version) if visited == CHUNK => {
                    if reverse {
                        end = kv::stream_key(&prefix, version);
                    } else {
                        start = kv::stream_key(&prefix, version.saturating_add(1));
                    }
                }
                _ => return Ok(out),
            }
        }
    }

    pub(crate) fn stream_version(&self, stream_id: &str) -> Result<Option<Version>, StoreError> {
        check_name(stream_id).map_err(|reason| StoreError::InvalidStreamId { reason })?;
        let head = self.head();
        Ok(stream_head(&*self.kv, stream_id, Some(head))?.map(|(version, _)| version))
    }

    pub(crate) fn read_all(&self, from: Position, max_count: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let head = self.head();
        let end = from.saturating_add(max_count as u64).min(head);
        let mut out = Vec::with_capacity(end.saturating_sub(from) as usize);
        if from >= end {
            return Ok(out);
        }
        self.kv
            .scan(&kv::event_key(from), &kv::event_key(end), false, |key, value| {
                let position = kv::parse_u64(&key[1..]).unwrap_or(u64::MAX);
                out.push(record::decode(position, value)?);
                Ok(true)
            })?;
        Ok(out)
    }

    pub(crate) fn event_by_id(&self, event_id: Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        let Some(bytes) = self.kv.get(&kv::event_id_key(event_id))? else {
            return Ok(None);
        };
        let position = kv::parse_u64(&bytes).ok_or_else(|| StoreError::Corrupted {
            position: 0,
            reason: format!("event id index entry of {event_id} is damaged"),
        })?;
        if position >= self.head() {
            return Ok(None);
        }
        let bytes = self
            .kv
            .get(&kv::event_key(position))?
            .ok_or_else(|| StoreError::Corrupted {
                position,
                reason: format!("event id {event_id} points to a record that is missing"),
            })?;
        record::decode(position, &bytes).map(Some)
    }

    pub(crate) fn verify(&self, scope: &VerifyScope) -> Result<VerifyReport, StoreError> {
        let head = self.head();
        match scope {
            VerifyScope::All => verify_all(&*self.kv, head),
            VerifyScope::Stream(stream_id) => {
                check_name(stream_id).map_err(|reason| StoreError::InvalidStreamId { reason })?;
                verify_stream(&*self.kv, stream_id, head)
            }
        }
    }

    /// Stops the writer after it has answered every queued append.
    pub(crate) fn close(&self) {
        if let Ok(mut requests) = self.requests.lock() {
            requests.take();
        }
        let threads = self
            .threads
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for handle in threads {
            let _ = handle.join();
        }
    }
}

impl<K: Kv> Drop for Log<K> {
    fn drop(&mut self) {
        self.close();
    }
}

fn damaged_stream_entry(stream_id: &str) -> StoreError {
    StoreError::Corrupted {
        position: 0,
        reason: format!("a stream index entry of {stream_id} is damaged"),
    }
}

fn lock_poisoned() -> StoreError {
    StoreError::Io("a store lock was poisoned by a panic".to_owned())
}

fn truncate_to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

/// Checks a stream id or event type: 1 to 255 bytes of UTF-8 without control characters.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".to_owned());
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "it is {} bytes long; at most {MAX_NAME_BYTES} are allowed",
            name.len()
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("it contains a control character".to_owned());
    }
    Ok(())
}

/// The version and hash of a stream's last record, ignoring records at or past `head`.
fn stream_head<K: Kv>(
    kv: &K,
    stream_id: &str,
    head: Option<Position>,
) -> Result<Option<(Version, [u8; 32])>, StoreError> {
    let prefix = kv::stream_prefix(stream_id);
    let mut found = None;
    kv.scan(
        &kv::stream_key(&prefix, 0),
        &kv::stream_key(&prefix, u64::MAX),
        true,
        |key, value| {
            let (position, hash) = kv::parse_stream_entry(value).ok_or_else(|| damaged_stream_entry(stream_id))?;
            if head.is_some_and(|head| position >= head) {
                return Ok(true);
            }
            found = Some((kv::version_of_stream_key(key).unwrap_or(0), hash));
            Ok(false)
        },
    )?;
    Ok(found)
}

/// The single writer: drains queued appends, applies each as one atomic batch (visible to
/// later appends at once), hands the group's writes to the operating system and passes the
/// group on to the syncer, then goes on with the next group while the syncer fsyncs.
struct Writer<K: Kv> {
    kv: Arc<K>,
    poison: Arc<Mutex<Option<String>>>,
    next_position: Position,
    last_recorded_at: Option<DateTime<Utc>>,
    to_syncer: mpsc::Sender<Group>,
}

type Answer = (
    oneshot::Sender<Result<AppendResult, StoreError>>,
    Result<AppendResult, StoreError>,
);

/// A group of answered appends waiting for its writes to become durable.
struct Group {
    /// The durable head once this group is synced.
    next_position: Position,
    /// Whether the group wrote anything (else no fsync is needed for it).
    wrote: bool,
    answers: Vec<Answer>,
}

enum Outcome {
    /// Nothing to write: an empty append, or a retry of events already stored.
    Unchanged(AppendResult),
    Write(Vec<(Vec<u8>, Vec<u8>)>, AppendResult),
}

fn refused(poison: &Mutex<Option<String>>) -> Option<StoreError> {
    let guard = poison.lock().ok()?;
    guard.as_ref().map(|first_failure| StoreError::WritesRefused {
        first_failure: first_failure.clone(),
    })
}

fn set_poison(poison: &Mutex<Option<String>>, err: &StoreError) {
    if let Ok(mut poison) = poison.lock()
        && poison.is_none()
    {
        *poison = Some(err.to_string());
    }
}

impl<K: Kv> Writer<K> {
    fn run(mut self, requests: mpsc::Receiver<Request>) {
        let mut group = Vec::with_capacity(MAX_GROUP);
        while let Ok(first) = requests.recv() {
            group.push(first);
            group.extend(requests.try_iter().take(MAX_GROUP - 1));
            let done = self.commit_group(&mut group);
            if self.to_syncer.send(done).is_err() {
                return;
            }
        }
    }

    fn commit_group(&mut self, group: &mut Vec<Request>) -> Group {
        let mut answers = Vec::with_capacity(group.len());
        let mut wrote = false;
        for request in group.drain(..) {
            let answer = match refused(&self.poison) {
                Some(err) => Err(err),
                None => match self.plan(&request) {
                    Ok(Outcome::Unchanged(result)) => Ok(result),
                    Ok(Outcome::Write(writes, result)) => match self.kv.apply(writes) {
                        Ok(()) => {
                            wrote = true;
                            self.next_position = result.positions.map_or(self.next_position, |(_, last)| last + 1);
                            Ok(result)
                        }
                        Err(err) => {
                            set_poison(&self.poison, &err);
                            Err(err)
                        }
                    },
                    Err(err) => Err(err),
                },
            };
            answers.push((request.reply, answer));
        }
        if wrote && let Err(err) = self.kv.write_out() {
            set_poison(&self.poison, &err);
        }
        Group {
            next_position: self.next_position,
            wrote,
            answers,
        }
    }

    fn plan(&mut self, request: &Request) -> Result<Outcome, StoreError> {
        let kv = &*self.kv;
        // A retry of an append that was already stored gets the original answer.
        if let Some(result) = self.find_retry(request)? {
            return Ok(Outcome::Unchanged(result));
        }
        let current = stream_head(kv, &request.stream_id, None)?;
        let actual = current.map(|(version, _)| version);
        let matches = match request.expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual.is_none(),
            ExpectedVersion::StreamExists => actual.is_some(),
            ExpectedVersion::Exact(v) => actual == Some(v),
        };
        if !matches {
            return Err(StoreError::Conflict {
                stream: request.stream_id.clone(),
                expected: request.expected,
                actual,
            });
        }
        if request.events.is_empty() {
            return Ok(Outcome::Unchanged(AppendResult {
                current_version: actual,
                positions: None,
            }));
        }

        let now = truncate_to_micros(Utc::now());
        let recorded_at = match self.last_recorded_at {
            Some(last) if now <= last => last + TimeDelta::microseconds(1),
            _ => now,
        };
        self.last_recorded_at = Some(recorded_at);

        let prefix = kv::stream_prefix(&request.stream_id);
        let mut prev_hash = current.map_or(GENESIS_HASH, |(_, hash)| hash);
        let mut version = actual.map_or(0, |v| v + 1);
        let first_position = self.next_position;
        let mut position = first_position;
        let mut writes = Vec::with_capacity(request.events.len() * 3);
        for event in &request.events {
            let (bytes, hash) = record::encode(
                &RecordFields {
                    position,
                    version,
                    event_id: event.event_id,
                    recorded_at,
                    occurred_at: event.occurred_at,
                    schema_version: event.schema_version,
                    stream_id: &request.stream_id,
                    event_type: &event.event_type,
                    data: &event.data,
                    metadata: &event.metadata,
                },
                &prev_hash,
            );
            writes.push((kv::event_key(position).to_vec(), bytes));
            writes.push((kv::stream_key(&prefix, version), kv::stream_entry(position, &hash)));
            writes.push((
                kv::event_id_key(event.event_id).to_vec(),
                position.to_be_bytes().to_vec(),
            ));
            prev_hash = hash;
            version += 1;
            position += 1;
        }
        Ok(Outcome::Write(
            writes,
            AppendResult {
                current_version: Some(version - 1),
                positions: Some((first_position, position - 1)),
            },
        ))
    }

    /// If the request's event ids are already stored, checks that it is an exact retry and
    /// returns what the original append returned.
    fn find_retry(&self, request: &Request) -> Result<Option<AppendResult>, StoreError> {
        let kv = &*self.kv;
        let mut stored = Vec::new();
        for event in &request.events {
            if let Some(bytes) = kv.get(&kv::event_id_key(event.event_id))? {
                let position = kv::parse_u64(&bytes).ok_or_else(|| StoreError::Corrupted {
                    position: 0,
                    reason: format!("event id index entry of {} is damaged", event.event_id),
                })?;
                stored.push((event, position));
            }
        }
        let Some(&(first_event, first_position)) = stored.first() else {
            return Ok(None);
        };
        if stored.len() != request.events.len() {
            return Err(StoreError::EventIdReused {
                event_id: first_event.event_id,
                reason: "the append mixes events already stored with new ones".to_owned(),
            });
        }
        let mut last = None;
        for (i, (event, position)) in stored.into_iter().enumerate() {
            let bytes = kv.get(&kv::event_key(position))?.ok_or_else(|| StoreError::Corrupted {
                position,
                reason: format!("event id {} points to a record that is missing", event.event_id),
            })?;
            let record = record::decode(position, &bytes)?;
            let differs = |what: &str| {
                Err(StoreError::EventIdReused {
                    event_id: event.event_id,
                    reason: what.to_owned(),
                })
            };
            if record.stream_id != request.stream_id {
                return differs(&format!("it is stored in stream {}", record.stream_id));
            }
            if position != first_position + i as u64 {
                return differs("it was stored by a different append");
            }
            if record.event_type != event.event_type {
                return differs(&format!("it is stored with event type {}", record.event_type));
            }
            if record.schema_version != event.schema_version {
                return differs(&format!("it is stored with schema version {}", record.schema_version));
            }
            if record.data != event.data {
                return differs("its data differs from the stored event");
            }
            if record.metadata != event.metadata {
                return differs("its metadata differs from the stored event");
            }
            if record.occurred_at != event.occurred_at {
                return differs("its occurred_at differs from the stored event");
            }
            last = Some(record);
        }
        // The original append may have carried more events than this retry: then it is not
        // the same append. Every append has its own recorded_at, so a neighbour of the same
        // stream with the same recorded_at was written by the same append.
        let last = last.expect("stored is not empty");
        let neighbours = [first_position.checked_sub(1), last.position.checked_add(1)];
        for position in neighbours.into_iter().flatten() {
            let Some(bytes) = kv.get(&kv::event_key(position))? else {
                continue;
            };
            let neighbour = record::decode(position, &bytes)?;
            if neighbour.stream_id == last.stream_id && neighbour.recorded_at == last.recorded_at {
                return Err(StoreError::EventIdReused {
                    event_id: first_event.event_id,
                    reason: "it was stored by an append with more events".to_owned(),
                });
            }
        }
        Ok(Some(AppendResult {
            current_version: Some(last.version),
            positions: Some((first_position, last.position)),
        }))
    }
}

/// The syncer: fsyncs once for every group that arrived while the previous fsync ran, then
/// moves the durable head and answers the callers, in order. Answers that wrote nothing wait
/// too, because they may rest on earlier appends that are not durable yet.
struct Syncer<K: Kv> {
    kv: Arc<K>,
    head: watch::Sender<Position>,
    poison: Arc<Mutex<Option<String>>>,
    fail_next_flush: Arc<AtomicBool>,
}

impl<K: Kv> Syncer<K> {
    fn run(self, groups: mpsc::Receiver<Group>) {
        while let Ok(first) = groups.recv() {
            let mut ready = vec![first];
            ready.extend(groups.try_iter());
            let wrote = ready.iter().any(|g| g.wrote);
            // A group that was handed out after a failure must not be acknowledged either.
            let synced = if let Some(err) = refused(&self.poison).filter(|_| wrote) {
                Err(err)
            } else if !wrote {
                Ok(())
            } else if self.fail_next_flush.swap(false, Ordering::SeqCst) {
                Err(StoreError::Io("injected fsync failure".to_owned()))
            } else {
                self.kv.sync()
            };
            let failure = match synced {
                Ok(()) => {
                    let next_position = ready.last().map_or(0, |g| g.next_position);
                    if next_position > *self.head.borrow() {
                        self.head.send_replace(next_position);
                    }
                    None
                }
                Err(err) => {
                    set_poison(&self.poison, &err);
                    refused(&self.poison)
                }
            };
            for group in ready {
                for (reply, mut answer) in group.answers {
                    if let Some(err) = &failure
                        && group.wrote
                        && answer.is_ok()
                    {
                        answer = Err(match err {
                            StoreError::WritesRefused { first_failure } => StoreError::WritesRefused {
                                first_failure: first_failure.clone(),
                            },
                            other => StoreError::Io(other.to_string()),
                        });
                    }
                    // A caller that gave up waiting is not an error: its append stands.
                    let _ = reply.send(answer);
                }
            }
        }
    }
}

fn problem(
    position: Position,
    stream_id: Option<&str>,
    version: Option<Version>,
    reason: impl Into<String>,
) -> Problem {
    Problem {
        position,
        stream_id: stream_id.map(str::to_owned),
        version,
        reason: reason.into(),
    }
}

/// Walks `$all` in order: positions gap-free, each record intact, each stream's versions
/// consecutive and chained, and both indexes pointing at the record.
fn verify_all<K: Kv>(kv: &K, head: Position) -> Result<VerifyReport, StoreError> {
    let mut streams: HashMap<String, (Version, [u8; 32])> = HashMap::new();
    let mut expected = 0;
    while expected < head {
        // Records are copied out a chunk at a time so that the index checks never run while
        // the engine is being scanned.
        let end = expected.saturating_add(CHUNK as u64).min(head);
        let mut chunk = Vec::with_capacity(CHUNK);
        kv.scan(&kv::event_key(expected), &kv::event_key(end), false, |key, value| {
            chunk.push((kv::parse_u64(&key[1..]).unwrap_or(u64::MAX), value.to_vec()));
            Ok(true)
        })?;
        for (position, bytes) in chunk {
            if position != expected {
                let reason = format!("no record at this position (the next one is at {position})");
                return Ok(report(expected, &streams, problem(expected, None, None, reason)));
            }
            let chain = |stream_id: &str| streams.get(stream_id).copied().unwrap_or((0, GENESIS_HASH));
            match check_record(kv, position, &bytes, chain)? {
                Ok(record) => {
                    streams.insert(record.stream_id, (record.version + 1, record.hash));
                }
                Err(p) => return Ok(report(expected, &streams, p)),
            }
            expected += 1;
        }
        if expected < end {
            let reason = "record missing before the end of the log";
            return Ok(report(expected, &streams, problem(expected, None, None, reason)));
        }
    }
    Ok(VerifyReport {
        records_checked: expected,
        streams_checked: streams.len() as u64,
        first_problem: None,
    })
}

fn report<V>(checked: u64, streams: &HashMap<String, V>, p: Problem) -> VerifyReport {
    VerifyReport {
        records_checked: checked,
        streams_checked: streams.len() as u64,
        first_problem: Some(p),
    }
}

/// Walks one stream through its index.
fn verify_stream<K: Kv>(kv: &K, stream_id: &str, head: Position) -> Result<VerifyReport, StoreError> {
    let prefix = kv::stream_prefix(stream_id);
    let mut entries = Vec::new();
    kv.scan(
        &kv::stream_key(&prefix, 0),
        &kv::stream_key(&prefix, u64::MAX),
        false,
        |key, value| {
            entries.push((kv::version_of_stream_key(key), kv::parse_stream_entry(value)));
            Ok(true)
        },
    )?;
    let mut next = (0, GENESIS_HASH);
    let mut checked = 0;
    for (version, entry) in entries {
        let Some((position, _)) = entry else {
            let p = problem(0, Some(stream_id), version, "stream index entry is damaged");
            return Ok(VerifyReport {
                records_checked: checked,
                streams_checked: 1,
                first_problem: Some(p),
            });
        };
        if position >= head {
            break;
        }
        let Some(bytes) = kv.get(&kv::event_key(position))? else {
            let p = problem(
                position,
                Some(stream_id),
                version,
                "the stream index points to a missing record",
            );
            return Ok(VerifyReport {
                records_checked: checked,
                streams_checked: 1,
                first_problem: Some(p),
            });
        };
        match check_record(kv, position, &bytes, |_| next)? {
            Ok(record) if record.stream_id == stream_id => {
                next = (record.version + 1, record.hash);
                checked += 1;
            }
            Ok(record) => {
                let p = problem(
                    position,
                    Some(stream_id),
                    version,
                    format!("the record belongs to stream {}", record.stream_id),
                );
                return Ok(VerifyReport {
                    records_checked: checked,
                    streams_checked: 1,
                    first_problem: Some(p),
                });
            }
            Err(p) => {
                return Ok(VerifyReport {
                    records_checked: checked,
                    streams_checked: 1,
                    first_problem: Some(p),
                });
            }
        }
    }
    Ok(VerifyReport {
        records_checked: checked,
        streams_checked: u64::from(checked > 0),
        first_problem: None,
    })
}

/// Checks one stored record against the chain state of its stream (`chain` gives the
/// expected version and the previous hash) and against both indexes.
fn check_record<K: Kv>(
    kv: &K,
    position: Position,
    bytes: &[u8],
    chain: impl FnOnce(&str) -> (Version, [u8; 32]),
) -> Result<Result<RecordedEvent, Problem>, StoreError> {
    let record = match record::decode(position, bytes) {
        Ok(record) => record,
        Err(StoreError::Corrupted { reason, .. }) => return Ok(Err(problem(position, None, None, reason))),
        Err(other) => return Err(other),
    };
    let stream = Some(record.stream_id.as_str());
    let (expected_version, prev_hash) = chain(&record.stream_id);
    if record.version != expected_version {
        let reason = format!(
            "version {} follows version {} of its stream",
            record.version,
            expected_version as i128 - 1
        );
        return Ok(Err(problem(position, stream, Some(record.version), reason)));
    }
    let (body, stored_hash) = record::split_hash(bytes).expect("decoded records hold a hash");
    if record::chain_hash(&prev_hash, body) != stored_hash {
        let reason = "the record's bytes do not match its hash (altered or damaged)";
        return Ok(Err(problem(position, stream, Some(record.version), reason)));
    }
    let prefix = kv::stream_prefix(&record.stream_id);
    let index = kv.get(&kv::stream_key(&prefix, record.version))?;
    if index.as_deref().and_then(kv::parse_stream_entry) != Some((position, stored_hash)) {
        let reason = "the stream index does not point to this record";
        return Ok(Err(problem(position, stream, Some(record.version), reason)));
    }
    let by_id = kv.get(&kv::event_id_key(record.event_id))?;
    if by_id.as_deref().and_then(kv::parse_u64) != Some(position) {
        let reason = "the event id index does not point to this record";
        return Ok(Err(problem(position, stream, Some(record.version), reason)));
    }
    Ok(Ok(record))
}
