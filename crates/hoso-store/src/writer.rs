//! The three threads of an open log.
//!
//! - The **writer** drains queued appends, checks each (retry, expected version), encodes and
//!   chains its records into one buffer for the whole group, adds their index entries to the
//!   memtable (so later appends see them at once), writes the buffer to the current segment
//!   with one `write`, and hands the group to the syncer.
//! - The **syncer** fdatasyncs once for every group that arrived while its previous fsync ran
//!   (waiting briefly for the callers its last fsync answered), moves the durable head,
//!   answers the callers in order, and wakes the indexer once a batch has gathered.
//! - The **indexer** writes the index entries of durable records to the index engine in large
//!   atomic batches (one run per stream), with the new end of the index, and then drops them
//!   from the memtable; it writes an id table whenever enough durable ids have gathered.
//!   Nothing on the acknowledgement path waits for it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::core::{
    Append, Core, PreparedEvent, REOPEN, REOPEN_AFTER_FSYNC, RESUMES, Refusal, Request, Work, lock_poisoned, refused,
    set_poison, truncate_to_micros,
};
use crate::filter::KeyFilter;
use crate::idtable::{IdTable, Unfiled};
use crate::kv::{self, Indexed, Kv, StreamRun};
use crate::memtable::Recent;
use crate::record::{self, GENESIS_HASH, RecordFields};
use crate::segment::{self, ENTRY_HEADER, Location, Segments};
use crate::{AppendResult, ExpectedVersion, Position, RecordedEvent, StoreError, Version, import};

/// At most this many appends share one write and one fsync.
const MAX_GROUP: usize = 512;
/// The indexer writes at most this many records' entries in one engine batch.
const INDEX_BATCH_MAX: usize = 16_384;
/// The syncer wakes the indexer once this many durable records wait to be indexed (the
/// indexer also looks by itself every `INDEX_WAIT`): few, large batches, because each sled
/// batch wakes all of sled's I/O threads and a stream split over two batches costs a second
/// entry (BENCHMARKS.md, "Store tuning constants").
const INDEX_BATCH_MIN: u64 = 8_192;
const INDEX_WAIT: Duration = Duration::from_millis(20);
/// The indexer holds the memtable's and the id filter's locks for at most this many entries
/// at a time (the writer needs them for every append; filing an id table's 262,144 ids at once
/// kept it waiting for milliseconds).
const LOCKED_PIECE: usize = 4_096;
/// The writer takes no new appends while the memtable holds this many records' entries: the
/// indexer's pace bounds the sustained append rate and the memory the backlog takes. Several
/// times `INDEX_BATCH_MIN`, so that appends go on while a batch is being indexed.
const MAX_BACKLOG: usize = 65_536;
/// How long the writer waits at most between two looks at the backlog.
const BACKLOG_RECHECK: Duration = Duration::from_millis(50);

/// How long the writer and the syncer look for more work, yielding the CPU in between, before
/// they sleep on their channel: under load the next append comes within an fsync, and waking a
/// sleeping thread costs a system call and a reschedule on the acknowledgement path (figures
/// in BENCHMARKS.md, "Store tuning constants").
const LOOK_BEFORE_SLEEP: Duration = Duration::from_micros(300);

/// The next message of `rx`, looked for during `LOOK_BEFORE_SLEEP` before sleeping on it.
fn recv_soon<T>(rx: &mpsc::Receiver<T>) -> Result<T, mpsc::RecvError> {
    let started = Instant::now();
    loop {
        match rx.try_recv() {
            Ok(message) => return Ok(message),
            Err(mpsc::TryRecvError::Disconnected) => return Err(mpsc::RecvError),
            Err(mpsc::TryRecvError::Empty) if started.elapsed() < LOOK_BEFORE_SLEEP => std::thread::yield_now(),
            Err(mpsc::TryRecvError::Empty) => return rx.recv(),
        }
    }
}

/// The writer checks that space is back by writing and syncing this many zeros past the end.
const PROBE_BYTES: usize = 64 << 10;

/// Refuses appends after a failed write: resumable if it failed for lack of space.
fn set_write_failed(poison: &Mutex<Option<Refusal>>, err: &StoreError) {
    let remedy = if segment::is_no_space(err) { RESUMES } else { REOPEN };
    set_poison(poison, err, remedy);
}

type Answer = (
    oneshot::Sender<Result<AppendResult, StoreError>>,
    Result<AppendResult, StoreError>,
);

/// A group of answered appends waiting for its writes to become durable.
pub(crate) struct Group {
    /// The durable head once this group is synced.
    next_position: Position,
    /// Whether the group wrote anything (else no fsync is needed for it).
    wrote: bool,
    /// The segments it wrote to (two when it started a new segment).
    segments: Vec<u32>,
    /// The segment and offset where its writes end: the log's durable end once it is synced.
    end: (u32, u64),
    answers: Vec<Answer>,
    /// Told once the syncer has answered this group and every group before it.
    barrier: Option<mpsc::Sender<()>>,
}

enum Outcome {
    /// Nothing to write: an empty append, or a retry of events already stored.
    Unchanged(AppendResult),
    /// Encoded into the group's buffer.
    Written(AppendResult),
}

pub(crate) struct Writer<S: Segments, K: Kv> {
    core: Arc<Core<S, K>>,
    next_position: Position,
    last_recorded_at: Option<DateTime<Utc>>,
    /// The segment being written and how many bytes of it are written out.
    segment: u32,
    written: u64,
    /// The group's entries, to be written at `written`.
    buffer: Vec<u8>,
    segment_bytes: u64,
    to_syncer: mpsc::Sender<Group>,
    /// Every stream id stored: only those it may hold are looked up.
    streams: KeyFilter,
    /// The store's limits, which imported events are held to as appended ones are.
    limits: crate::Limits,
}

/// Where the log ends, as recovery found it: where the writer starts.
pub(crate) struct LogEnd {
    pub(crate) next_position: Position,
    pub(crate) last_recorded_at: Option<DateTime<Utc>>,
    pub(crate) segment: u32,
    pub(crate) offset: u64,
}

impl<S: Segments, K: Kv> Writer<S, K> {
    pub(crate) fn new(
        core: Arc<Core<S, K>>,
        end: LogEnd,
        segment_bytes: u64,
        to_syncer: mpsc::Sender<Group>,
        streams: KeyFilter,
        limits: crate::Limits,
    ) -> Self {
        Writer {
            core,
            next_position: end.next_position,
            last_recorded_at: end.last_recorded_at,
            segment: end.segment,
            written: end.offset,
            buffer: Vec::with_capacity(1 << 20),
            segment_bytes,
            to_syncer,
            streams,
            limits,
        }
    }

    pub(crate) fn run(mut self, requests: mpsc::Receiver<Request>) {
        let mut group = Vec::with_capacity(MAX_GROUP);
        while let Ok(first) = recv_soon(&requests) {
            self.wait_for_indexer();
            group.push(first);
            group.extend(requests.try_iter().take(MAX_GROUP - 1));
            let done = self.commit_group(&mut group);
            if self.to_syncer.send(done).is_err() {
                return;
            }
        }
    }

    /// Waits while the indexer is `MAX_BACKLOG` records behind (unless it stopped).
    fn wait_for_indexer(&self) {
        let (stopped, progress) = &self.core.indexer_progress;
        loop {
            let backlog = self.core.memtable().map_or(0, |m| m.len());
            if backlog < MAX_BACKLOG || refused(&self.core.poison).is_some() {
                return;
            }
            let Ok(guard) = stopped.lock() else {
                return;
            };
            if *guard {
                return;
            }
            // A wake-up between the look above and this wait is caught by the timeout.
            let _ = progress.wait_timeout(guard, BACKLOG_RECHECK);
        }
    }

    fn commit_group(&mut self, group: &mut Vec<Request>) -> Group {
        let mut answers = Vec::with_capacity(group.len());
        let mut wrote = false;
        let mut segments = vec![self.segment];
        for request in group.drain(..) {
            let answer = match self.refusal(wrote || segments.len() > 1) {
                Some(err) => Err(err),
                None => match match &request.work {
                    Work::Append(append) => self.plan(append, &mut segments),
                    Work::Import(events) => self.plan_import(events, &mut segments),
                } {
                    Ok(Outcome::Unchanged(result)) => Ok(result),
                    Ok(Outcome::Written(result)) => {
                        wrote = true;
                        Ok(result)
                    }
                    Err(err) => Err(err),
                },
            };
            answers.push((request.reply, answer));
        }
        if let Err(err) = self.write_out() {
            set_write_failed(&self.core.poison, &err);
        }
        Group {
            next_position: self.next_position,
            wrote,
            segments,
            end: (self.segment, self.written),
            answers,
            barrier: None,
        }
    }

    /// The error an append gets while appends are refused, `None` if it may go on. A refusal
    /// after a write that failed for lack of space is cleared here once space is back (see
    /// `resume`), but only before the group being built has written anything.
    fn refusal(&mut self, group_wrote: bool) -> Option<StoreError> {
        let due = match self.core.poison.lock() {
            Ok(poison) => poison.as_ref().map(Refusal::probe_due)?,
            Err(_) => return Some(lock_poisoned()),
        };
        if !due || group_wrote {
            return refused(&self.core.poison);
        }
        match self.resume() {
            Ok(()) => {
                // A failure that needs a reopen (the indexer's, meanwhile) is never cleared here.
                let cleared = self.core.poison.lock().is_ok_and(|mut poison| {
                    let resumable = poison.as_ref().is_some_and(Refusal::resumable);
                    if resumable {
                        *poison = None;
                    }
                    resumable
                });
                if !cleared {
                    return refused(&self.core.poison);
                }
                tracing::warn!(
                    position = self.next_position,
                    "the store takes writes again: there is space on its disk again"
                );
                None
            }
            Err(err) if segment::is_no_space(&err) => {
                if let Ok(mut poison) = self.core.poison.lock()
                    && let Some(refusal) = poison.as_mut()
                {
                    refusal.back_off();
                }
                refused(&self.core.poison)
            }
            Err(err) => {
                let err = StoreError::Io(format!("the store could not resume writing after a full disk: {err}"));
                set_poison(&self.core.poison, &err, REOPEN);
                refused(&self.core.poison)
            }
        }
    }

    /// Makes the log take appends again after a write that failed for lack of space, if there
    /// is space again. Nothing written after the durable end was acknowledged (its callers were
    /// told the write failed), so it is dropped: the syncer answers every group handed to it,
    /// then the writer forgets the memtable's entries from the durable head on, cuts the
    /// segments back to the durable end, and checks that space is back by writing and syncing
    /// `PROBE_BYTES` past it. The next append then takes the durable head's position: no gap.
    fn resume(&mut self) -> Result<(), StoreError> {
        let (told, answered) = mpsc::channel();
        let barrier = Group {
            next_position: 0,
            wrote: false,
            segments: Vec::new(),
            end: (self.segment, self.written),
            answers: Vec::new(),
            barrier: Some(told),
        };
        self.to_syncer.send(barrier).map_err(|_| StoreError::Closed)?;
        answered.recv().map_err(|_| StoreError::Closed)?;
        // Only this thread writes, and the syncer has nothing left to sync: both are final.
        let head = self.core.head();
        let (segment, offset) = *self.core.durable_end.lock().map_err(|_| lock_poisoned())?;
        self.core.memtable_mut()?.truncate_from(head);
        self.buffer.clear();
        let segments = &self.core.segments;
        // Segments started after the durable end hold nothing acknowledged: emptied, as
        // recovery does, and the writer goes on in the last of them.
        let later: Vec<u32> = (segment + 1..=self.segment.max(segment)).collect();
        segments.truncate(segment, offset)?;
        for &s in &later {
            segments.truncate(s, 0)?;
        }
        let (at_segment, at_offset) = later.last().map_or((segment, offset), |&s| (s, 0));
        let probe = self
            .write_at(at_segment, at_offset, &[0; PROBE_BYTES])
            .and_then(|()| segments.sync(at_segment));
        // The zeros are cut again whatever the probe found: the log ends where it did.
        segments.truncate(at_segment, at_offset)?;
        probe?;
        segments.writing_at(at_segment, at_offset);
        self.segment = at_segment;
        self.written = at_offset;
        self.next_position = head;
        Ok(())
    }

    /// Writes `bytes` at `offset` of `segment`, or fails as a full disk would when told to.
    fn write_at(&self, segment: u32, offset: u64, bytes: &[u8]) -> Result<(), StoreError> {
        if self.core.faults.disk_full.load(Ordering::SeqCst) {
            // Half of it reaches the file, as a write cut short by a full disk leaves it.
            let half = &bytes[..bytes.len() / 2];
            self.core.segments.write_at(segment, offset, half)?;
            return Err(StoreError::Io(format!(
                "{}cannot write segment {}: injected: no space left on device",
                segment::NO_SPACE,
                self.core.segments.name(segment)
            )));
        }
        self.core.segments.write_at(segment, offset, bytes)
    }

    /// Writes the buffered entries at the end of the current segment (no fsync yet).
    fn write_out(&mut self) -> Result<(), StoreError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let result = self.write_at(self.segment, self.written, &self.buffer);
        self.written += self.buffer.len() as u64;
        self.buffer.clear();
        result
    }

    /// Closes the current segment and starts the next one. The closed one is made durable
    /// first, so that no entry of the next one can be on disk while one before it is not:
    /// recovery relies on that to tell a torn tail from damage.
    fn roll(&mut self, segments: &mut Vec<u32>) -> Result<(), StoreError> {
        if let Err(err) = self.write_out() {
            set_write_failed(&self.core.poison, &err);
            return Err(err);
        }
        if let Err(err) = self.core.segments.sync(self.segment) {
            set_poison(&self.core.poison, &err, REOPEN_AFTER_FSYNC);
            return Err(err);
        }
        if let Err(err) = self.core.segments.create(self.segment + 1) {
            set_write_failed(&self.core.poison, &err);
            return Err(err);
        }
        self.segment += 1;
        self.written = 0;
        segments.push(self.segment);
        Ok(())
    }

    fn plan(&mut self, request: &Append, segments: &mut Vec<u32>) -> Result<Outcome, StoreError> {
        // A retry of an append that was already stored gets the original answer.
        if let Some(result) = self.find_retry(request)? {
            return Ok(Outcome::Unchanged(result));
        }
        let current = if self.streams.may_contain(request.stream_id.as_str()) {
            self.core.stream_last(&request.stream_id, Position::MAX)?
        } else {
            None
        };
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
                already_stored: false,
            }));
        }
        if self.written + self.buffer.len() as u64 >= self.segment_bytes {
            self.roll(segments)?;
        }

        let now = truncate_to_micros(Utc::now());
        let recorded_at = match self.last_recorded_at {
            Some(last) if now <= last => last + TimeDelta::microseconds(1),
            _ => now,
        };
        self.last_recorded_at = Some(recorded_at);

        if current.is_none() {
            self.streams.insert(request.stream_id.as_str());
        }
        let stream_id: Arc<str> = Arc::from(request.stream_id.as_str());
        let mut prev_hash = match current {
            None => GENESIS_HASH,
            Some((_, entry)) => entry.hash.ok_or_else(|| StoreError::Corrupted {
                position: entry.position,
                reason: format!("the stream index of {} lacks its last hash", request.stream_id),
            })?,
        };
        let mut version = actual.map_or(0, |v| v + 1);
        let first_position = self.next_position;
        let mut position = first_position;
        let mut recents = Vec::with_capacity(request.events.len());
        for event in &request.events {
            let offset = self.written + self.buffer.len() as u64;
            let header_at = self.buffer.len();
            self.buffer.extend_from_slice(&[0; ENTRY_HEADER]);
            let hash = record::encode_into(
                &RecordFields {
                    position,
                    version,
                    event_id: event.event_id,
                    recorded_at,
                    occurred_at: event.occurred_at,
                    schema_version: event.schema_version,
                    stream_id: &request.stream_id,
                    event_type: &event.event_type,
                    data: event.data.as_str().as_bytes(),
                    metadata: event.metadata.as_str().as_bytes(),
                },
                &prev_hash,
                &mut self.buffer,
            );
            let record = &self.buffer[header_at + ENTRY_HEADER..];
            // Records are limited to a few MiB by `Limits`, far below 4 GiB.
            let len = record.len() as u32;
            let crc = crc32fast::hash(record);
            self.buffer[header_at..header_at + 4].copy_from_slice(&len.to_be_bytes());
            self.buffer[header_at + 4..header_at + 8].copy_from_slice(&crc.to_be_bytes());
            recents.push(Recent {
                stream_id: Arc::clone(&stream_id),
                version,
                event_id: event.event_id,
                loc: Location {
                    segment: self.segment,
                    offset,
                    len,
                },
                hash,
                recorded_at,
            });
            prev_hash = hash;
            version += 1;
            position += 1;
        }
        {
            let mut memtable = self.core.memtable_mut()?;
            for recent in recents {
                memtable.push(recent);
            }
        }
        self.next_position = position;
        Ok(Outcome::Written(AppendResult {
            current_version: Some(version - 1),
            positions: Some((first_position, position - 1)),
            already_stored: false,
        }))
    }

    /// Encodes events recorded by another store into the group's buffer exactly as they are,
    /// after checking each against the log's end, its stream's chain and the event ids stored
    /// (`import::check_imported`): all of them, or none if one is refused.
    fn plan_import(&mut self, events: &[RecordedEvent], segments: &mut Vec<u32>) -> Result<Outcome, StoreError> {
        let Some(first) = events.first() else {
            return Ok(Outcome::Unchanged(AppendResult {
                current_version: None,
                positions: None,
                already_stored: false,
            }));
        };
        let mut ids = HashSet::with_capacity(events.len());
        for event in events {
            if !ids.insert(event.event_id) {
                return Err(import::refused(event, "its event id appears earlier in the same batch"));
            }
        }
        if !self.core.certainly_new(events.iter().map(|e| e.event_id))? {
            for event in events {
                if let Some((position, _)) = self.core.event(event.event_id, Position::MAX)? {
                    return Err(import::refused(
                        event,
                        format_args!("its event id is already stored, at position {position}"),
                    ));
                }
            }
        }
        if self.written + self.buffer.len() as u64 >= self.segment_bytes {
            self.roll(segments)?;
        }
        let start = self.buffer.len();
        let planned = self.encode_imported(events);
        let (recents, heads) = match planned {
            Ok(planned) => planned,
            Err(err) => {
                self.buffer.truncate(start);
                return Err(err);
            }
        };
        for stream_id in heads.keys() {
            self.streams.insert(*stream_id);
        }
        {
            let mut memtable = self.core.memtable_mut()?;
            for recent in recents {
                memtable.push(recent);
            }
        }
        let last = events.last().unwrap_or(first);
        self.next_position = last.position + 1;
        self.last_recorded_at = Some(last.recorded_at);
        Ok(Outcome::Written(AppendResult {
            current_version: None,
            positions: Some((first.position, last.position)),
            already_stored: false,
        }))
    }

    /// Checks and encodes imported events into the buffer; returns their index entries and the
    /// last version and hash of each of their streams.
    #[allow(clippy::type_complexity)]
    fn encode_imported<'e>(
        &mut self,
        events: &'e [RecordedEvent],
    ) -> Result<(Vec<Recent>, HashMap<&'e str, (Version, [u8; 32])>), StoreError> {
        let limits = self.limits;
        let mut heads: HashMap<&str, (Version, [u8; 32])> = HashMap::new();
        let mut names: HashMap<&str, Arc<str>> = HashMap::new();
        let mut last_recorded_at = self.last_recorded_at;
        let mut recents = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            let stream = event.stream_id.as_str();
            let head = match heads.get(stream) {
                Some(&head) => Some(head),
                None if self.streams.may_contain(stream) => match self.core.stream_last(stream, Position::MAX)? {
                    Some((version, entry)) => Some((
                        version,
                        entry.hash.ok_or_else(|| StoreError::Corrupted {
                            position: entry.position,
                            reason: format!("the stream index of {stream} lacks its last hash"),
                        })?,
                    )),
                    None => None,
                },
                None => None,
            };
            let prev_hash =
                import::check_imported(event, self.next_position + i as u64, last_recorded_at, head, &limits)?;
            let offset = self.written + self.buffer.len() as u64;
            let header_at = self.buffer.len();
            self.buffer.extend_from_slice(&[0; ENTRY_HEADER]);
            let hash = record::encode_into(
                &RecordFields {
                    position: event.position,
                    version: event.version,
                    event_id: event.event_id,
                    recorded_at: event.recorded_at,
                    occurred_at: event.occurred_at,
                    schema_version: event.schema_version,
                    stream_id: stream,
                    event_type: &event.event_type,
                    data: &event.data,
                    metadata: &event.metadata,
                },
                &prev_hash,
                &mut self.buffer,
            );
            import::check_imported_hash(event, &hash)?;
            let record = &self.buffer[header_at + ENTRY_HEADER..];
            // Names are at most 255 bytes and JSON within the limits: far below 4 GiB.
            let len = record.len() as u32;
            let crc = crc32fast::hash(record);
            self.buffer[header_at..header_at + 4].copy_from_slice(&len.to_be_bytes());
            self.buffer[header_at + 4..header_at + 8].copy_from_slice(&crc.to_be_bytes());
            let name = names.entry(stream).or_insert_with(|| Arc::from(stream));
            recents.push(Recent {
                stream_id: Arc::clone(name),
                version: event.version,
                event_id: event.event_id,
                loc: Location {
                    segment: self.segment,
                    offset,
                    len,
                },
                hash,
                recorded_at: event.recorded_at,
            });
            heads.insert(stream, (event.version, hash));
            last_recorded_at = Some(event.recorded_at);
        }
        Ok((recents, heads))
    }

    /// A stored record's bytes: from the group's buffer if not written out yet.
    fn record_bytes(&self, position: Position, loc: Location) -> Result<Vec<u8>, StoreError> {
        if loc.segment == self.segment && loc.offset >= self.written {
            let start = (loc.offset - self.written) as usize + ENTRY_HEADER;
            return Ok(self.buffer[start..start + loc.len as usize].to_vec());
        }
        segment::read_record(&self.core.segments, position, loc)
    }

    /// If the request's event ids are already stored, checks that it is an exact retry and
    /// returns what the original append returned.
    fn find_retry(&self, request: &Append) -> Result<Option<AppendResult>, StoreError> {
        if self.core.certainly_new(request.events.iter().map(|e| e.event_id))? {
            return Ok(None);
        }
        let mut stored: Vec<(&PreparedEvent, Position, Location)> = Vec::new();
        for event in &request.events {
            if let Some((position, loc)) = self.core.event(event.event_id, Position::MAX)? {
                stored.push((event, position, loc));
            }
        }
        let Some(&(first_event, first_position, _)) = stored.first() else {
            return Ok(None);
        };
        if stored.len() != request.events.len() {
            return Err(StoreError::EventIdReused {
                event_id: first_event.event_id,
                reason: "the append mixes events already stored with new ones".to_owned(),
            });
        }
        let mut records = Vec::with_capacity(stored.len());
        for (i, (event, position, loc)) in stored.into_iter().enumerate() {
            let record = record::decode(position, &self.record_bytes(position, loc)?)?;
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
            if !event.data.is_stored_as(&record.data) {
                return differs("its data differs from the stored event");
            }
            if !event.metadata.is_stored_as(&record.metadata) {
                return differs("its metadata differs from the stored event");
            }
            if record.occurred_at != event.occurred_at {
                return differs("its occurred_at differs from the stored event");
            }
            records.push(record);
        }
        // The original append may have carried more events than this retry: then it is not
        // the same append. Every append has its own recorded_at, so the stream's neighbouring
        // version at the neighbouring position with the same recorded_at was written by it.
        let first = records.first().expect("stored is not empty");
        let last = records.last().expect("stored is not empty");
        let neighbours = [
            first.version.checked_sub(1).zip(first.position.checked_sub(1)),
            last.version.checked_add(1).zip(last.position.checked_add(1)),
        ];
        for (version, position) in neighbours.into_iter().flatten() {
            let Some(entry) = self.core.stream_entry(&last.stream_id, version, Position::MAX)? else {
                continue;
            };
            if entry.position != position {
                continue;
            }
            let neighbour = record::decode(position, &self.record_bytes(position, entry.loc)?)?;
            if neighbour.recorded_at == last.recorded_at {
                return Err(StoreError::EventIdReused {
                    event_id: first_event.event_id,
                    reason: "it was stored by an append with more events".to_owned(),
                });
            }
        }
        Ok(Some(AppendResult {
            current_version: Some(last.version),
            positions: Some((first.position, last.position)),
            already_stored: true,
        }))
    }
}

/// The syncer waits at most this long for the callers it just answered to append again.
const MAX_CALLER_WAIT: Duration = Duration::from_micros(500);

/// Before an fsync, gives the callers the last fsync answered a short time to send their next
/// appends, so that they share this fsync rather than wait for the next one.
///
/// Without it, callers who append one after the other split into two groups that take turns:
/// the first returning caller starts an fsync alone and those just behind it wait for that
/// fsync and then their own, two fsyncs per append. The wait ends as soon as `expected` appends
/// are ready (the callers the last fsync answered and those whose appends came while it ran;
/// so a lone appender never waits), and after at most the time the last fsync took (no longer
/// than the turn it saves) or `MAX_CALLER_WAIT`. This is PostgreSQL's `commit_delay` with
/// `commit_siblings`, sized by what the last fsync saw.
fn wait_for_callers(groups: &mpsc::Receiver<Group>, ready: &mut Vec<Group>, expected: usize, last_sync: Duration) {
    let count = |ready: &[Group]| ready.iter().map(|g| g.answers.len()).sum::<usize>();
    let deadline = Instant::now() + last_sync.min(MAX_CALLER_WAIT);
    while count(ready) < expected {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        // Sleeping rather than polling: the callers need the CPU to send their appends.
        match groups.recv_timeout(left) {
            Ok(group) => ready.push(group),
            // The writer is gone: what is ready is synced and answered all the same.
            Err(mpsc::RecvTimeoutError::Timeout | mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
}

/// The syncer: fsyncs once for every group that arrived while the previous fsync ran, then
/// moves the durable head and answers the callers, in order. Answers that wrote nothing wait
/// too, because they may rest on earlier appends that are not durable yet.
pub(crate) struct Syncer<S: Segments, K: Kv> {
    core: Arc<Core<S, K>>,
    wake_indexer: mpsc::Sender<()>,
}

impl<S: Segments, K: Kv> Syncer<S, K> {
    pub(crate) fn new(core: Arc<Core<S, K>>, wake_indexer: mpsc::Sender<()>) -> Self {
        Syncer { core, wake_indexer }
    }

    fn sync(&self, ready: &[Group]) -> Result<(), StoreError> {
        let mut segments: Vec<u32> = ready.iter().flat_map(|g| g.segments.iter().copied()).collect();
        segments.sort_unstable();
        segments.dedup();
        for segment in segments {
            self.core.segments.sync(segment)?;
        }
        Ok(())
    }

    pub(crate) fn run(self, groups: mpsc::Receiver<Group>) {
        // How many callers the next fsync can expect (those the last one answered and those
        // whose appends came while it ran), and how long the last fsync took.
        let mut expected = 0;
        let mut last_sync = Duration::ZERO;
        // The groups that came while the last fsync ran: the next fsync's first.
        let mut came_meanwhile: Vec<Group> = Vec::new();
        // The durable head when the indexer was last woken.
        let mut announced = self.core.head();
        loop {
            let mut ready = if came_meanwhile.is_empty() {
                match recv_soon(&groups) {
                    Ok(first) => vec![first],
                    Err(mpsc::RecvError) => return,
                }
            } else {
                std::mem::take(&mut came_meanwhile)
            };
            ready.extend(groups.try_iter());
            wait_for_callers(&groups, &mut ready, expected, last_sync);
            let wrote = ready.iter().any(|g| g.wrote);
            let started = Instant::now();
            // A group that was handed out after a failure must not be acknowledged either.
            let synced = if let Some(err) = refused(&self.core.poison).filter(|_| wrote) {
                Err(err)
            } else if !wrote {
                Ok(())
            } else if self.core.faults.fail_next_flush.swap(false, Ordering::SeqCst) {
                Err(StoreError::Io("injected fsync failure".to_owned()))
            } else {
                self.sync(&ready)
            };
            if wrote {
                last_sync = started.elapsed();
                self.core.write_metrics.fsync_seconds.observe(last_sync.as_secs_f64());
            }
            // Appends that came during the fsync are from callers it is not answering: they
            // and the callers about to be answered are the next fsync's (without counting
            // them, the one or two callers that missed an fsync kept missing the next ones).
            came_meanwhile.extend(groups.try_iter());
            expected = ready.iter().chain(&came_meanwhile).map(|g| g.answers.len()).sum();
            let failure = match synced {
                Ok(()) => {
                    // Only groups that wrote move the head: one that did not may have been
                    // built after a failed write, past records that are not durable.
                    if let Some(last) = ready.iter().rev().find(|g| g.wrote) {
                        let head = self.core.head();
                        if last.next_position > head {
                            self.core.head.send_replace(last.next_position);
                            let events = last.next_position - head;
                            self.core.write_metrics.batch_events.observe(events as f64);
                        }
                        if let Ok(mut durable_end) = self.core.durable_end.lock() {
                            *durable_end = last.end;
                        }
                    }
                    None
                }
                Err(StoreError::WritesRefused { .. }) => refused(&self.core.poison),
                Err(err) => {
                    set_poison(&self.core.poison, &err, REOPEN_AFTER_FSYNC);
                    refused(&self.core.poison)
                }
            };
            for group in ready {
                if let Some(barrier) = group.barrier {
                    let _ = barrier.send(());
                }
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
            // The indexer is woken once a batch worth indexing has gathered (it looks by
            // itself every `INDEX_WAIT`): a wake-up per fsync costs a system call each time.
            if failure.is_none() && wrote && self.core.head().saturating_sub(announced) >= INDEX_BATCH_MIN {
                announced = self.core.head();
                let _ = self.wake_indexer.send(());
            }
        }
    }
}

/// The indexer: moves the index entries of durable records from the memtable to the engine.
pub(crate) struct Indexer<S: Segments, K: Kv> {
    core: Arc<Core<S, K>>,
    indexed: Position,
    /// The entries of the batch being indexed (kept between batches).
    batch: Vec<Recent>,
    /// The ids of the id table being written and its bytes (both kept between tables: a fresh
    /// buffer of this size, about 6 MiB, is fresh pages to fault in and clear each time).
    ids: Vec<(Uuid, Position)>,
    table_bytes: Vec<u8>,
    /// The ids of the indexed positions from the end of the id tables on, in position order:
    /// the next tables' ids, gathered batch by batch rather than looked for in the memtable.
    unfiled: Vec<(Uuid, Position)>,
    /// Their copies on disk, for a reopen (`None` without id tables, or after a write failed).
    unfiled_files: Option<Unfiled>,
}

impl<S: Segments, K: Kv> Indexer<S, K> {
    pub(crate) fn new(core: Arc<Core<S, K>>, indexed: Position) -> Self {
        let unfiled_files = core.id_table_dir.as_ref().map(|(dir, _)| Unfiled::new(dir));
        Indexer {
            core,
            indexed,
            batch: Vec::new(),
            ids: Vec::new(),
            table_bytes: Vec::new(),
            unfiled: Vec::new(),
            unfiled_files,
        }
    }

    /// The first position it may not index yet: the durable head, or the test hold.
    fn target(&self) -> Position {
        self.core.head().min(self.core.hold_index_at.load(Ordering::SeqCst))
    }

    pub(crate) fn run(mut self, wake: mpsc::Receiver<()>) {
        crate::background::lower_this_thread();
        let core = Arc::clone(&self.core);
        // The ids recovery put in the memtable for indexed positions no table holds yet.
        if let Ok(memtable) = core.memtable() {
            memtable.ids_below_into(self.indexed, &mut self.unfiled);
            self.unfiled.sort_unstable_by_key(|&(_, position)| position);
        }
        self.index_until_closed(wake);
        // Let a writer waiting for the backlog to shrink go on (its appends are refused if the
        // indexer failed).
        let (stopped, progress) = &core.indexer_progress;
        if let Ok(mut stopped) = stopped.lock() {
            *stopped = true;
        }
        progress.notify_all();
    }

    fn index_until_closed(mut self, wake: mpsc::Receiver<()>) {
        loop {
            // Woken when a batch has gathered (or to look again at the test hold); otherwise it
            // looks every `INDEX_WAIT` and indexes what is durable.
            let woken = wake.recv_timeout(INDEX_WAIT);
            let mut closed = matches!(woken, Err(mpsc::RecvTimeoutError::Disconnected));
            // While appends flow, let a larger batch build up (bounded by `INDEX_WAIT`).
            let deadline = Instant::now() + INDEX_WAIT;
            while woken.is_ok() && !closed && self.target().saturating_sub(self.indexed) < INDEX_BATCH_MIN {
                let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                    break;
                };
                match wake.recv_timeout(left) {
                    Ok(()) => {}
                    Err(mpsc::RecvTimeoutError::Timeout) => break,
                    Err(mpsc::RecvTimeoutError::Disconnected) => closed = true,
                }
            }
            while wake.try_recv().is_ok() {}
            if let Err(err) = self.index_durable().and_then(|()| self.write_id_tables()) {
                // The log is intact and reads go on from the memtable, but it would grow
                // without bound: refuse writes until a reopen re-indexes from the segments.
                let err = StoreError::Io(format!("the indexer failed: {err}"));
                set_poison(&self.core.poison, &err, REOPEN);
                return;
            }
            if closed {
                return;
            }
        }
    }

    fn index_durable(&mut self) -> Result<(), StoreError> {
        loop {
            if self.indexed >= self.target() {
                return Ok(());
            }
            // Each batch starts while an fsync is in flight (see `background`).
            self.core.segments.background_turn();
            let target = self.target();
            let n = ((target - self.indexed) as usize).min(INDEX_BATCH_MAX);
            // Into the same buffer each time: a fresh one of this size is fresh pages to fault
            // in and clear, batch after batch.
            let mut batch = std::mem::take(&mut self.batch);
            // A piece at a time, so the writer never waits long for the memtable's lock.
            for skip in (0..n).step_by(LOCKED_PIECE) {
                self.core
                    .memtable()?
                    .oldest_into(skip, LOCKED_PIECE.min(n - skip), &mut batch);
            }
            let n = batch.len();
            let Some(last) = batch.last() else {
                return Ok(());
            };
            let end = Indexed {
                next_position: self.indexed + n as u64,
                resume: (last.loc.segment, last.loc.end()),
                last_recorded_at: Some(last.recorded_at),
            };
            // One stream index entry per stream: the run of its versions in this batch, which
            // are consecutive (a stream's versions are assigned in position order).
            let mut runs: HashMap<&str, (Version, StreamRun), foldhash::fast::RandomState> = HashMap::default();
            let mut writes = Vec::new();
            for (i, recent) in batch.iter().enumerate() {
                let position = self.indexed + i as u64;
                // The ids wait here for their id table.
                if self.core.id_table_dir.is_some() {
                    self.unfiled.push((recent.event_id, position));
                }
                let (_, run) = runs.entry(&recent.stream_id).or_insert_with(|| {
                    (
                        recent.version,
                        StreamRun {
                            entries: Vec::new(),
                            last_hash: recent.hash,
                        },
                    )
                });
                run.entries.push((position, recent.loc));
                run.last_hash = recent.hash;
                if position.is_multiple_of(kv::SPARSE) {
                    let mut loc = Vec::with_capacity(Location::BYTES);
                    recent.loc.encode_into(&mut loc);
                    writes.push((kv::sparse_key(position).to_vec(), loc));
                }
            }
            for (stream_id, (first, run)) in runs {
                writes.push((kv::stream_key(&kv::stream_prefix(stream_id), first), run.encode()));
            }
            self.file_unfiled(n);
            // Keys in order: neighbouring inserts touch the same leaves.
            writes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            // The new end of the index in the same atomic batch: whatever sled recovers after a
            // crash, `indexed_through` claims exactly the entries it holds.
            writes.push((kv::INDEXED_KEY.to_vec(), end.encode()));
            if self.core.faults.fail_next_index.swap(false, Ordering::SeqCst) {
                return Err(StoreError::Io(
                    "injected: the index engine could not flush: no space left on device".to_owned(),
                ));
            }
            self.core.kv.apply(writes)?;
            batch.clear();
            self.batch = batch;
            for skip in (0..n).step_by(LOCKED_PIECE) {
                self.core.memtable_mut()?.drop_oldest(LOCKED_PIECE.min(n - skip));
            }
            self.indexed += n as u64;
            self.core.indexed.send_replace(self.indexed);
            self.core.indexer_progress.1.notify_all();
        }
    }

    /// Appends the ids of the batch's `n` positions (the last `n` unfiled ones) to the
    /// unfiled-id files, before the batch's index end is written: a reopen then finds them
    /// there rather than in the records. (sled used to hold them, one value per batch, and
    /// rewrote the leaf holding the last few such values with every batch.) The files only
    /// save work, so a failure to write them stops their use and nothing else.
    fn file_unfiled(&mut self, n: usize) {
        let (Some((_, table_events)), Some(files)) = (&self.core.id_table_dir, &mut self.unfiled_files) else {
            return;
        };
        let Ok(ids_from) = self.core.memtable().map(|m| m.ids_from()) else {
            return;
        };
        let mut rest = &self.unfiled[self.unfiled.len().saturating_sub(n)..];
        while let Some(&(_, position)) = rest.first() {
            // The range of the table that will hold this position.
            let range = ids_from + (position.saturating_sub(ids_from)) / table_events * table_events;
            let k = usize::try_from(range + table_events - position).map_or(rest.len(), |k| k.min(rest.len()));
            if files.append(range, position, &rest[..k]).is_err() {
                self.unfiled_files = None;
                return;
            }
            rest = &rest[k..];
        }
    }

    /// Writes an id table for every full range of `table_events` indexed positions whose ids
    /// are still in the memtable.
    fn write_id_tables(&mut self) -> Result<(), StoreError> {
        let Some((dir, table_events)) = &self.core.id_table_dir else {
            return Ok(());
        };
        loop {
            let first = self.core.memtable()?.ids_from();
            let end = first + table_events;
            if end > self.indexed {
                return Ok(());
            }
            self.core.segments.background_turn();
            let gathered = self.unfiled.first().map(|&(_, p)| p) == Some(first)
                && self.unfiled.get((*table_events - 1) as usize).map(|&(_, p)| p) == Some(end - 1);
            if !gathered {
                return Err(StoreError::Io(format!(
                    "the indexer holds the ids of {} positions from {:?}, not those of {first}..{end}",
                    self.unfiled.len(),
                    self.unfiled.first().map(|&(_, p)| p)
                )));
            }
            // Into the same buffer each time: a fresh one of this size (about 6 MiB) is
            // fresh pages to fault in and clear, table after table.
            self.ids.clear();
            self.ids.extend(self.unfiled.drain(..*table_events as usize));
            let ids = &mut self.ids;
            let last = self.core.locate(end - 1)?;
            // The filter learns the ids before the table is listed (an id it holds is never
            // ruled out); if the write fails, they are only false positives.
            // A piece at a time, so the writer's lookups never wait long for the lock.
            for piece in ids.chunks(LOCKED_PIECE) {
                let mut filter = self.core.id_filter.write().map_err(|_| lock_poisoned())?;
                for (id, _) in piece {
                    filter.insert(id);
                }
            }
            let table = IdTable::write(dir, first, ids, (last.segment, last.end()), &mut self.table_bytes)?;
            // The table first, then the memtable forgets: a lookup that misses in the memtable
            // finds the id in the table.
            self.core.id_tables.write().map_err(|_| lock_poisoned())?.push(table);
            for piece in ids.chunks(LOCKED_PIECE) {
                self.core.memtable_mut()?.forget_ids(piece);
            }
            self.core.memtable_mut()?.ids_filed_below(end);
            if let Some(files) = &mut self.unfiled_files
                && files.filed(first).is_err()
            {
                self.unfiled_files = None;
            }
            // The engine's copies of ids that the table now holds are no longer needed.
            let mut held = Vec::new();
            self.core
                .kv
                .scan(&kv::batch_ids_key(0), &kv::batch_ids_key(end), false, |key, value| {
                    let first = kv::parse_u64(&key[1..]).unwrap_or(u64::MAX);
                    if first.saturating_add(value.len() as u64 / 16) <= end {
                        held.push(key.to_vec());
                    }
                    Ok(true)
                })?;
            self.core.kv.remove(held)?;
        }
    }
}
