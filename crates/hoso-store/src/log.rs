//! The log's API, generic over where segments and indexes are kept: opening (recovery, then
//! the writer, syncer and indexer threads), validation, and reads capped at the durable head.
//! The shared state and lookups are in `core`, recovery in `recovery`, the threads in
//! `writer`, verification in `verify`.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
#[cfg(feature = "failpoints")]
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::thread::JoinHandle;

use tokio::sync::{oneshot, watch};
use uuid::Uuid;

use crate::core::{
    Append, CHUNK, Core, Faults, PreparedEvent, Refusal, Request, SCAN_BUFFER, Work, lock_poisoned, truncate_to_micros,
};
use crate::filter::KeyFilter;
use crate::idtable::{self, IdTable};
use crate::kv::Kv;
use crate::record;
use crate::recovery::{add_recovered_streams, check_format, indexed_streams, recover};
use crate::segment::{self, Next, SegmentReader, Segments};
use crate::writer::{Indexer, LogEnd, Syncer, Writer};
use crate::{
    AppendResult, Direction, ExpectedVersion, Limits, NewEvent, Position, RecordedEvent, StoreError, StreamRead,
    VerifyReport, VerifyScope, Version,
};

/// Stream ids and event types are at most this many bytes.
pub(crate) const MAX_NAME_BYTES: usize = 255;

/// How a log is laid out.
#[derive(Debug, Clone)]
pub(crate) struct LogOptions {
    pub(crate) limits: Limits,
    /// A segment is closed and the next one started once it holds this many bytes.
    pub(crate) segment_bytes: u64,
    /// Where event-id tables go and how many ids each holds; `None` keeps every id in memory.
    pub(crate) id_tables: Option<(PathBuf, u64)>,
}

/// The shared state of one open log.
pub(crate) struct Log<S: Segments, K: Kv> {
    core: Arc<Core<S, K>>,
    limits: Limits,
    requests: Mutex<Option<mpsc::Sender<Request>>>,
    /// The writer, the syncer and the indexer, joined on close in that order.
    threads: Mutex<Vec<JoinHandle<()>>>,
    wake_indexer: Mutex<Option<mpsc::Sender<()>>>,
}

impl<S: Segments, K: Kv> Log<S, K> {
    /// What recovery has cut off and kept in quarantine, as the quarantine files now say.
    pub(crate) fn quarantined(&self) -> Vec<crate::Quarantined> {
        match self.core.segments.quarantined() {
            Ok(files) => files
                .into_iter()
                .filter_map(|(file, bytes)| crate::Quarantined::parse(&file, bytes))
                .collect(),
            Err(err) => {
                tracing::warn!(error = %err, "cannot list the quarantine files");
                Vec::new()
            }
        }
    }

    /// Opens a log: checks the format, recovers the end of the log and starts the writer,
    /// syncer and indexer threads.
    pub(crate) fn open(segments: S, kv: K, options: LogOptions) -> Result<Self, StoreError> {
        check_format(&kv)?;
        // The pass over the engine's stream index and that over the id tables (then recovery,
        // which only reads the engine) are independent, and each is proportional to the log:
        // side by side, a start on two cores waits for the longer one only.
        let (opened, streams) = std::thread::scope(|scope| {
            let streams = scope.spawn(|| indexed_streams(&kv));
            let opened = (|| {
                let mut id_filter = KeyFilter::new();
                let (tables, unfiled) = match &options.id_tables {
                    Some((dir, _)) => {
                        let tables = idtable::open_all(dir, &mut id_filter)?;
                        let unfiled = idtable::read_unfiled(dir, tables.last().map_or(0, IdTable::end))?;
                        (tables, unfiled)
                    }
                    None => (Vec::new(), Vec::new()),
                };
                let recovered = recover(&segments, &kv, &tables, unfiled)?;
                Ok::<_, StoreError>((id_filter, tables, recovered))
            })();
            let streams = streams.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (opened, streams)
        });
        let (id_filter, tables, recovered) = opened?;
        let mut streams = streams?;
        add_recovered_streams(&mut streams, &recovered.memtable);
        segments.writing_at(recovered.segment, recovered.segment_len);
        let indexed_through = recovered.memtable.first();
        let (head, _) = watch::channel(recovered.next_position);
        let (indexed, _) = watch::channel(indexed_through);
        let core = Arc::new(Core {
            segments,
            kv,
            memtable: RwLock::new(recovered.memtable),
            head,
            indexed,
            poison: Mutex::new(None),
            durable_end: Mutex::new((recovered.segment, recovered.segment_len)),
            faults: Faults::default(),
            hold_index_at: AtomicU64::new(u64::MAX),
            indexer_progress: (Mutex::new(false), std::sync::Condvar::new()),
            id_tables: RwLock::new(tables),
            id_filter: RwLock::new(id_filter),
            id_table_dir: options.id_tables,
            write_metrics: crate::WriteMetrics::default(),
        });
        let (tx, rx) = mpsc::channel();
        let (to_syncer, synced) = mpsc::channel();
        let (wake, woken) = mpsc::channel();
        let end = LogEnd {
            next_position: recovered.next_position,
            last_recorded_at: recovered.last_recorded_at,
            segment: recovered.segment,
            offset: recovered.segment_len,
        };
        let writer = Writer::new(
            Arc::clone(&core),
            end,
            options.segment_bytes,
            to_syncer,
            streams,
            options.limits,
        );
        let syncer = Syncer::new(Arc::clone(&core), wake.clone());
        let indexer = Indexer::new(Arc::clone(&core), indexed_through);
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(f)
                .map_err(|err| StoreError::Io(format!("cannot start the {name} thread: {err}")))
        };
        let syncer = spawn("hoso-store-sync", Box::new(move || syncer.run(synced)))?;
        let writer = spawn("hoso-store-writer", Box::new(move || writer.run(rx)))?;
        let indexer = spawn("hoso-store-index", Box::new(move || indexer.run(woken)))?;
        // Index whatever recovery found in the segments beyond the index.
        let _ = wake.send(());
        Ok(Log {
            core,
            limits: options.limits,
            requests: Mutex::new(Some(tx)),
            threads: Mutex::new(vec![writer, syncer, indexer]),
            wake_indexer: Mutex::new(Some(wake)),
        })
    }

    pub(crate) fn head(&self) -> Position {
        self.core.head()
    }

    pub(crate) fn watch_head(&self) -> watch::Receiver<Position> {
        self.core.head.subscribe()
    }

    pub(crate) fn write_metrics(&self) -> crate::WriteMetrics {
        self.core.write_metrics.clone()
    }

    /// Durable records the indexer has not moved to the engine yet.
    pub(crate) fn index_backlog(&self) -> u64 {
        self.core.head().saturating_sub(*self.core.indexed.borrow())
    }

    /// Why appends are refused and what the operator must do, `None` while they are accepted.
    pub(crate) fn write_refusal(&self) -> Option<String> {
        match self.core.poison.lock() {
            Ok(poison) => poison.as_ref().map(Refusal::describe),
            Err(_) => Some(lock_poisoned().to_string()),
        }
    }

    /// The failures a test injects.
    #[cfg(feature = "failpoints")]
    pub(crate) fn faults(&self) -> &Faults {
        &self.core.faults
    }

    /// Keeps the indexer from indexing any record at or past `position` (`u64::MAX`: none).
    #[cfg(feature = "failpoints")]
    pub(crate) fn hold_indexer_at(&self, position: Position) {
        self.core.hold_index_at.store(position, Ordering::SeqCst);
        if let Ok(wake) = self.wake_indexer.lock()
            && let Some(wake) = wake.as_ref()
        {
            let _ = wake.send(());
        }
    }

    /// A watch of the next position the index engine does not hold yet.
    #[cfg(feature = "failpoints")]
    pub(crate) fn watch_indexed(&self) -> watch::Receiver<Position> {
        self.core.indexed.subscribe()
    }

    pub(crate) async fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        // A refusal the writer may clear lets an append through once a probe is due.
        if let Some(refusal) = self.core.poison.lock().map_err(|_| lock_poisoned())?.as_ref()
            && !refusal.probe_due()
        {
            return Err(StoreError::WritesRefused {
                first_failure: refusal.describe(),
            });
        }
        check_name(stream_id).map_err(|reason| StoreError::InvalidStreamId { reason })?;
        let events = self.prepare(events)?;
        let (reply, answer) = oneshot::channel();
        let work = Work::Append(Append {
            stream_id: stream_id.to_owned(),
            expected,
            events,
        });
        self.send(Request { work, reply })?;
        // The writer answers once the group holding this append is written and fsynced.
        let waited = tracing::debug_span!("fsync_wait");
        tracing::Instrument::instrument(answer, waited)
            .await
            .map_err(|_| StoreError::Closed)?
    }

    /// Hands `request` to the writer.
    fn send(&self, request: Request) -> Result<(), StoreError> {
        let requests = self.requests.lock().map_err(|_| lock_poisoned())?;
        let sender = requests.as_ref().ok_or(StoreError::Closed)?;
        sender.send(request).map_err(|_| StoreError::Closed)
    }

    /// Writes events recorded by another store at the end of the log, verbatim, once the writer
    /// has checked them (see `Writer::plan_import`); returns the new head.
    pub(crate) async fn import(&self, events: Vec<RecordedEvent>) -> Result<Position, StoreError> {
        if let Some(refusal) = self.core.poison.lock().map_err(|_| lock_poisoned())?.as_ref()
            && !refusal.probe_due()
        {
            return Err(StoreError::WritesRefused {
                first_failure: refusal.describe(),
            });
        }
        if events.is_empty() {
            return Ok(self.head());
        }
        let (reply, answer) = oneshot::channel();
        self.send(Request {
            work: Work::Import(events),
            reply,
        })?;
        let written = answer.await.map_err(|_| StoreError::Closed)??;
        Ok(written.positions.map_or(self.head(), |(_, last)| last + 1))
    }

    /// Validates events and renders their JSON, on the caller's task rather than the writer's.
    fn prepare(&self, events: Vec<NewEvent>) -> Result<Vec<PreparedEvent>, StoreError> {
        check_events(&self.limits, &events)?;
        Ok(events
            .into_iter()
            .map(|event| PreparedEvent {
                event_id: event.event_id,
                event_type: event.event_type,
                schema_version: event.schema_version,
                data: event.data,
                metadata: event.metadata,
                occurred_at: truncate_to_micros(event.occurred_at),
            })
            .collect())
    }

    pub(crate) fn read_stream(&self, stream_id: &str, read: &StreamRead) -> Result<Vec<RecordedEvent>, StoreError> {
        check_name(stream_id).map_err(|reason| StoreError::InvalidStreamId { reason })?;
        let head = self.head();
        let reverse = read.direction == Direction::Backward;
        let (mut lo, mut hi) = match read.direction {
            Direction::Forward => (read.from, u64::MAX),
            Direction::Backward => (0, read.from.saturating_add(1)),
        };
        // With an "as of" cut-off the count applies after filtering, so index entries are read
        // in chunks until enough records are found.
        let mut out = Vec::new();
        if read.max_count == 0 {
            return Ok(out);
        }
        loop {
            let entries = match self.core.stream_entries(stream_id, lo, hi, reverse, CHUNK, head) {
                Ok(entries) => entries,
                Err(err) if self.core.index_failed(&err) => return self.read_stream_by_scan(stream_id, read, head),
                Err(err) => return Err(err),
            };
            for &(_, entry) in &entries {
                let bytes = segment::read_record(&self.core.segments, entry.position, entry.loc)?;
                if let Some(cutoff) = read.as_of {
                    let recorded_at = record::peek_recorded_at(&bytes).ok_or_else(|| StoreError::Corrupted {
                        position: entry.position,
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
                out.push(record::decode(entry.position, &bytes)?);
                if out.len() >= read.max_count {
                    return Ok(out);
                }
            }
            match entries.last() {
                Some(&(version, _)) if entries.len() == CHUNK => {
                    if reverse {
                        hi = version;
                    } else {
                        lo = version.saturating_add(1);
                    }
                }
                _ => return Ok(out),
            }
        }
    }

    /// Reads a stream by scanning the log up to `head`: slow (the whole log), but it needs no
    /// index, for while the index engine fails after a disk error (see `Core::index_failed`).
    fn read_stream_by_scan(
        &self,
        stream_id: &str,
        read: &StreamRead,
        head: Position,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let first = self.core.segments.list()?.first().copied().unwrap_or(1);
        let mut reader = SegmentReader::new(&self.core.segments, first, 0, SCAN_BUFFER);
        let mut records = Vec::new();
        let mut position = 0;
        while position < head {
            match reader.next()? {
                Next::Entry {
                    record, crc_ok: true, ..
                } => {
                    let record = record::decode(position, record)?;
                    if record.stream_id == stream_id {
                        records.push(record);
                    }
                    position += 1;
                }
                Next::Entry { loc, .. } => {
                    return Err(StoreError::Corrupted {
                        position,
                        reason: format!(
                            "the entry at byte {} of {} does not match its CRC",
                            loc.offset,
                            self.core.segments.name(loc.segment)
                        ),
                    });
                }
                _ => {
                    return Err(StoreError::Corrupted {
                        position,
                        reason: "the log ends before its durable head".to_owned(),
                    });
                }
            }
        }
        let reverse = read.direction == Direction::Backward;
        let mut out: Vec<RecordedEvent> = records
            .into_iter()
            .filter(|r| {
                if reverse {
                    r.version <= read.from
                } else {
                    r.version >= read.from
                }
            })
            .filter(|r| read.as_of.is_none_or(|cutoff| r.recorded_at <= cutoff))
            .collect();
        if reverse {
            out.reverse();
        }
        out.truncate(read.max_count);
        Ok(out)
    }

    pub(crate) fn stream_version(&self, stream_id: &str) -> Result<Option<Version>, StoreError> {
        check_name(stream_id).map_err(|reason| StoreError::InvalidStreamId { reason })?;
        let head = self.head();
        Ok(self.core.stream_last(stream_id, head)?.map(|(version, _)| version))
    }

    /// Streams the segments from the nearest indexed position at or before `from`.
    pub(crate) fn read_all(&self, from: Position, max_count: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let head = self.head();
        let end = from.saturating_add(max_count as u64).min(head);
        let mut out = Vec::with_capacity(end.saturating_sub(from) as usize);
        if from >= end {
            return Ok(out);
        }
        let (mut position, segment, offset) = self.core.start_of(from)?;
        let buffer = ((end - position) as usize)
            .saturating_mul(1024)
            .clamp(64 << 10, SCAN_BUFFER);
        let mut reader = SegmentReader::new(&self.core.segments, segment, offset, buffer);
        while position < end {
            match reader.next()? {
                Next::Entry { loc, record, crc_ok } => {
                    if position >= from {
                        if !crc_ok {
                            return Err(StoreError::Corrupted {
                                position,
                                reason: format!(
                                    "the entry at byte {} of {} does not match its CRC",
                                    loc.offset,
                                    self.core.segments.name(loc.segment)
                                ),
                            });
                        }
                        out.push(record::decode(position, record)?);
                    }
                    position += 1;
                }
                Next::Incomplete {
                    segment,
                    offset,
                    reason,
                } => {
                    return Err(StoreError::Corrupted {
                        position,
                        reason: format!("{reason} at byte {offset} of {}", self.core.segments.name(segment)),
                    });
                }
                Next::End => {
                    return Err(StoreError::Corrupted {
                        position,
                        reason: "the log ends before its durable head".to_owned(),
                    });
                }
            }
        }
        Ok(out)
    }

    pub(crate) fn event_by_id(&self, event_id: Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        let Some((position, loc)) = self.core.event(event_id, self.head())? else {
            return Ok(None);
        };
        let bytes = segment::read_record(&self.core.segments, position, loc)?;
        record::decode(position, &bytes).map(Some)
    }

    pub(crate) fn verify(&self, scope: &VerifyScope) -> Result<VerifyReport, StoreError> {
        let head = self.head();
        match scope {
            VerifyScope::All => crate::verify::verify_all(&self.core, head),
            VerifyScope::Stream(stream_id) => {
                check_name(stream_id).map_err(|reason| StoreError::InvalidStreamId { reason })?;
                crate::verify::verify_stream(&self.core, stream_id, head)
            }
        }
    }

    /// Stops the writer after it has answered every queued append, lets the indexer index
    /// everything durable, and flushes the index engine.
    pub(crate) fn close(&self) {
        if let Ok(mut requests) = self.requests.lock() {
            requests.take();
        }
        let threads = self
            .threads
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        if threads.is_empty() {
            return;
        }
        let mut threads = threads.into_iter();
        // The writer, then the syncer: every queued append is answered.
        for handle in threads.by_ref().take(2) {
            let _ = handle.join();
        }
        // The indexer ends once the last wake-up sender is gone, after a last batch.
        if let Ok(mut wake) = self.wake_indexer.lock() {
            wake.take();
        }
        for handle in threads {
            let _ = handle.join();
        }
        let _ = self.core.kv.flush();
    }
}

impl<S: Segments, K: Kv> Drop for Log<S, K> {
    fn drop(&mut self) {
        self.close();
    }
}

/// Checks the events of an append against `limits` and the naming rules, in the order every
/// store reports them: the count, then each event's id (not twice), type and size.
pub(crate) fn check_events(limits: &Limits, events: &[NewEvent]) -> Result<(), StoreError> {
    if events.len() > limits.max_events_per_append {
        return Err(StoreError::TooManyEvents {
            count: events.len(),
            max: limits.max_events_per_append,
        });
    }
    for (i, event) in events.iter().enumerate() {
        if events[..i].iter().any(|e| e.event_id == event.event_id) {
            return Err(StoreError::DuplicateEventInAppend {
                event_id: event.event_id,
            });
        }
        check_name(&event.event_type).map_err(|reason| StoreError::InvalidEventType {
            event_id: event.event_id,
            reason,
        })?;
        let size = event.data.as_str().len() + event.metadata.as_str().len();
        if size > limits.max_event_bytes {
            return Err(StoreError::EventTooLarge {
                event_id: event.event_id,
                size,
                max: limits.max_event_bytes,
            });
        }
    }
    Ok(())
}

/// Checks a stream id or event type: 1 to 255 bytes of UTF-8 without control characters.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
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
