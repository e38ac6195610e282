//! The log itself, generic over where segments and indexes are kept: opening and recovery,
//! validation, reads capped at the durable head, and the lookups that consult the memtable
//! first and the index engine second. The writer, syncer and indexer threads are in `writer`,
//! verification in `verify`.

use std::path::PathBuf;
#[cfg(feature = "failpoints")]
use std::sync::atomic::Ordering;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard, mpsc};
use std::thread::JoinHandle;

use chrono::{DateTime, Utc};
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

use crate::filter::KeyFilter;
use crate::idtable::{self, IdTable};
use crate::kv::{self, Indexed, Kv, RunView, StreamEntry};
use crate::memtable::{Memtable, Recent};
use crate::record;
use crate::segment::{self, Location, Next, SegmentReader, Segments};
use crate::writer::{Indexer, LogEnd, Refusal, Syncer, Writer};
use crate::{
    AppendResult, Direction, ExpectedVersion, Json, Limits, NewEvent, Position, RecordedEvent, StoreError, StreamRead,
    VerifyReport, VerifyScope, Version,
};

/// The on-disk format this build writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 3;
/// How the reason of a `Corrupted` error begins when the damage is in the indexes (sled's files
/// or its records), which can be rebuilt from the segments, rather than in the log.
pub(crate) const INDEX_DAMAGED: &str = "the index is damaged: ";
/// Stream ids and event types are at most this many bytes.
pub(crate) const MAX_NAME_BYTES: usize = 255;
/// Stream index entries are read in chunks of this many.
pub(crate) const CHUNK: usize = 256;
/// Sequential reads of the segments go through a buffer of this size.
pub(crate) const SCAN_BUFFER: usize = 1 << 20;

/// How a log is laid out.
#[derive(Debug, Clone)]
pub(crate) struct LogOptions {
    pub(crate) limits: Limits,
    /// A segment is closed and the next one started once it holds this many bytes.
    pub(crate) segment_bytes: u64,
    /// Where event-id tables go and how many ids each holds; `None` keeps every id in memory.
    pub(crate) id_tables: Option<(PathBuf, u64)>,
}

/// An event that passed validation, with its JSON already rendered to bytes.
pub(crate) struct PreparedEvent {
    pub(crate) event_id: Uuid,
    pub(crate) event_type: String,
    pub(crate) schema_version: u32,
    pub(crate) data: Json,
    pub(crate) metadata: Json,
    pub(crate) occurred_at: DateTime<Utc>,
}

pub(crate) struct Request {
    pub(crate) stream_id: String,
    pub(crate) expected: ExpectedVersion,
    pub(crate) events: Vec<PreparedEvent>,
    pub(crate) reply: oneshot::Sender<Result<AppendResult, StoreError>>,
}

/// What the log's threads and readers share.
pub(crate) struct Core<S: Segments, K: Kv> {
    pub(crate) segments: S,
    pub(crate) kv: K,
    pub(crate) memtable: RwLock<Memtable>,
    /// The next position after the last durable record. Readers never look past it.
    pub(crate) head: watch::Sender<Position>,
    /// The next position the index engine does not hold yet.
    pub(crate) indexed: watch::Sender<Position>,
    /// Set once a write or flush fails; every append is refused while it is set.
    pub(crate) poison: Mutex<Option<Refusal>>,
    /// The segment and offset where the last synced group's writes end.
    pub(crate) durable_end: Mutex<(u32, u64)>,
    /// Failures the tests inject (set only through the `failpoints` feature).
    pub(crate) faults: Faults,
    /// The indexer indexes no record at or past this position (a test hook; `u64::MAX`).
    pub(crate) hold_index_at: AtomicU64,
    /// Signalled whenever the indexer shrinks the memtable or stops.
    pub(crate) indexer_progress: (Mutex<bool>, std::sync::Condvar),
    /// The event-id tables, covering positions `0..` the memtable's `ids_from`.
    pub(crate) id_tables: RwLock<Vec<IdTable>>,
    /// A filter of every id in the tables: a fresh id (almost every one) is ruled out by one
    /// filter whatever the number of tables, instead of one filter per table. Ids enter it
    /// before their table is listed, so it never rules out an id a table holds.
    pub(crate) id_filter: RwLock<KeyFilter>,
    /// Where id tables are written, and how many ids each holds (`None`: ids stay in memory).
    pub(crate) id_table_dir: Option<(PathBuf, u64)>,
}

/// Failures a test can inject, each as the disk would cause it.
#[derive(Default)]
pub(crate) struct Faults {
    /// The next fsync of the log fails.
    pub(crate) fail_next_flush: AtomicBool,
    /// Every write of the log fails for lack of space (after writing half its bytes).
    pub(crate) disk_full: AtomicBool,
    /// The indexer's next batch fails, as the index engine's flush on a full disk does.
    pub(crate) fail_next_index: AtomicBool,
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

pub(crate) fn lock_poisoned() -> StoreError {
    StoreError::Io("a store lock was poisoned by a panic".to_owned())
}

impl<S: Segments, K: Kv> Core<S, K> {
    pub(crate) fn memtable(&self) -> Result<RwLockReadGuard<'_, Memtable>, StoreError> {
        self.memtable.read().map_err(|_| lock_poisoned())
    }

    pub(crate) fn memtable_mut(&self) -> Result<RwLockWriteGuard<'_, Memtable>, StoreError> {
        self.memtable.write().map_err(|_| lock_poisoned())
    }

    pub(crate) fn head(&self) -> Position {
        *self.head.borrow()
    }

    /// Visits a stream's runs in the engine that hold versions in `[lo, hi)`, in version order
    /// (descending if `reverse`), until `visit` returns `false`.
    fn stream_runs(
        &self,
        stream_id: &str,
        lo: Version,
        hi: Version,
        reverse: bool,
        mut visit: impl FnMut(Version, RunView<'_>) -> bool,
    ) -> Result<(), StoreError> {
        if lo >= hi {
            return Ok(());
        }
        let prefix = kv::stream_prefix(stream_id);
        // The run that holds `lo` may start before it: start from that run's key.
        let mut start = lo;
        if lo > 0 {
            self.kv.scan(
                &kv::stream_key(&prefix, 0),
                &kv::stream_key(&prefix, lo.saturating_add(1)),
                true,
                |key, _| {
                    start = kv::version_of_stream_key(key).unwrap_or(lo);
                    Ok(false)
                },
            )?;
        }
        self.kv.scan(
            &kv::stream_key(&prefix, start),
            &kv::stream_key(&prefix, hi),
            reverse,
            |key, value| {
                let first = kv::version_of_stream_key(key).unwrap_or(0);
                let run = RunView::new(value).ok_or_else(|| damaged_stream_entry(stream_id))?;
                Ok(visit(first, run))
            },
        )
    }

    /// The version and index entry of a stream's last record below `below`. The memtable is
    /// consulted first: the indexer removes entries from it only after the engine has them.
    pub(crate) fn stream_last(
        &self,
        stream_id: &str,
        below: Position,
    ) -> Result<Option<(Version, StreamEntry)>, StoreError> {
        if let Some(found) = self.memtable()?.stream_last(stream_id, below) {
            return Ok(Some(found));
        }
        let mut found = None;
        self.stream_runs(stream_id, 0, u64::MAX, true, |first, run| {
            for i in (0..run.len()).rev() {
                let version = first + i;
                if let Some(entry) = run.entry(first, version).filter(|e| e.position < below) {
                    found = Some((version, entry));
                    return false;
                }
            }
            true
        })?;
        Ok(found)
    }

    /// The index entry of one stream version below `below`.
    pub(crate) fn stream_entry(
        &self,
        stream_id: &str,
        version: Version,
        below: Position,
    ) -> Result<Option<StreamEntry>, StoreError> {
        if let Some(found) = self.memtable()?.stream_entry(stream_id, version, below) {
            return Ok(Some(found));
        }
        let mut found = None;
        self.stream_runs(stream_id, version, version.saturating_add(1), false, |first, run| {
            found = run.entry(first, version).filter(|e| e.position < below);
            false
        })?;
        Ok(found)
    }

    /// Up to `limit` index entries of a stream's versions in `[lo, hi)` below `below`, in
    /// version order (descending if `reverse`). Fewer than `limit` means there are no more.
    pub(crate) fn stream_entries(
        &self,
        stream_id: &str,
        lo: Version,
        hi: Version,
        reverse: bool,
        limit: usize,
        below: Position,
    ) -> Result<Vec<(Version, StreamEntry)>, StoreError> {
        // The memtable first, all of the range: an entry the indexer moves meanwhile is found
        // in the engine, and one found in both is the same entry.
        let recent = self.memtable()?.stream_range(stream_id, lo, hi, below);
        let mut merged = std::collections::BTreeMap::new();
        let mut kept = 0;
        self.stream_runs(stream_id, lo, hi, reverse, |first, run| {
            // Only the versions of the run in the range: a long run is not walked whole.
            let from = lo.max(first);
            let mut versions = from..hi.min(first + run.len()).max(from);
            let mut keep = |version: Version| {
                if (lo..hi).contains(&version)
                    && let Some(entry) = run.entry(first, version).filter(|e| e.position < below)
                {
                    merged.insert(version, entry);
                    kept += 1;
                }
                kept < limit
            };
            if reverse {
                versions.rev().all(&mut keep)
            } else {
                versions.all(&mut keep)
            }
        })?;
        merged.extend(recent);
        let out: Vec<_> = if reverse {
            merged.into_iter().rev().take(limit).collect()
        } else {
            merged.into_iter().take(limit).collect()
        };
        Ok(out)
    }

    /// The position and location of an event id below `below`: the memtable first, then the
    /// id tables, newest first (the indexer adds a table before it drops its ids from the
    /// memtable).
    pub(crate) fn event(&self, event_id: Uuid, below: Position) -> Result<Option<(Position, Location)>, StoreError> {
        match self.event_position(event_id, below)? {
            (Some(position), Some(loc)) => Ok(Some((position, loc))),
            (Some(position), None) => Ok(Some((position, self.locate(position)?))),
            (None, _) => Ok(None),
        }
    }

    /// Whether none of these event ids is stored: the memtable holds none of them and the id
    /// filter rules each out. The writer's first look at an append, whose ids are almost always
    /// fresh: each lock is taken once for the whole append rather than once per event, and the
    /// lookups, independent of each other, overlap their memory accesses. (The indexer puts
    /// ids in the filter before it forgets them here, so looking here first misses none.)
    pub(crate) fn certainly_new<I>(&self, ids: I) -> Result<bool, StoreError>
    where
        I: Iterator<Item = Uuid> + Clone,
    {
        {
            let memtable = self.memtable()?;
            if ids.clone().any(|id| memtable.holds_id(id)) {
                return Ok(false);
            }
        }
        let filter = self.id_filter.read().map_err(|_| lock_poisoned())?;
        Ok(!ids.into_iter().any(|id| filter.may_contain(&id)))
    }

    /// The position of an event id below `below`, with its location if the memtable has it.
    pub(crate) fn event_position(
        &self,
        event_id: Uuid,
        below: Position,
    ) -> Result<(Option<Position>, Option<Location>), StoreError> {
        if let Some((position, loc)) = self.memtable()?.event(event_id, below) {
            return Ok((Some(position), loc));
        }
        if !self
            .id_filter
            .read()
            .map_err(|_| lock_poisoned())?
            .may_contain(&event_id)
        {
            return Ok((None, None));
        }
        let tables = self.id_tables.read().map_err(|_| lock_poisoned())?;
        for table in tables.iter().rev() {
            if let Some(position) = table.lookup(event_id)? {
                return Ok(((position < below).then_some(position), None));
            }
        }
        Ok((None, None))
    }

    /// The location of the record at `position` (below the durable head).
    pub(crate) fn locate(&self, position: Position) -> Result<Location, StoreError> {
        let (mut at, segment, offset) = self.start_of(position)?;
        // At most `SPARSE` entries to read: a few KiB at a time.
        let mut reader = SegmentReader::new(&self.segments, segment, offset, 16 << 10);
        loop {
            match reader.next()? {
                Next::Entry { loc, .. } if at == position => return Ok(loc),
                Next::Entry { .. } => at += 1,
                _ => {
                    return Err(StoreError::Corrupted {
                        position,
                        reason: "the log ends before this indexed position".to_owned(),
                    });
                }
            }
        }
    }

    /// Whether `err` is the index engine failing after a write failed: sled keeps the error of
    /// its failed background flush (a full disk) and fails every later read of a page it has
    /// not made durable, until it is reopened. Reads then scan the segments instead.
    fn index_failed(&self, err: &StoreError) -> bool {
        matches!(err, StoreError::Io(_)) && self.poison.lock().map_or(true, |p| p.is_some())
    }

    /// Where to start reading to reach `from`: a position at or before it and the segment
    /// and offset of its entry.
    fn start_of(&self, from: Position) -> Result<(Position, u32, u64), StoreError> {
        if let Some(loc) = self.memtable()?.location(from) {
            return Ok((from, loc.segment, loc.offset));
        }
        let mut found = None;
        let scanned = self
            .kv
            .scan(&kv::sparse_key(0), &kv::sparse_key(from + 1), true, |key, value| {
                let position = kv::parse_u64(&key[1..]).unwrap_or(u64::MAX);
                found = Some((position, Location::decode(value)));
                Ok(false)
            });
        if let Err(err) = scanned {
            if !self.index_failed(&err) {
                return Err(err);
            }
            // The log itself is intact: read it from its start.
            let first = self.segments.list()?.first().copied().unwrap_or(1);
            return Ok((0, first, 0));
        }
        match found {
            Some((position, Some(loc))) if position <= from => Ok((position, loc.segment, loc.offset)),
            _ => Err(StoreError::Corrupted {
                position: from,
                reason: "the sparse position index has no entry at or before this position".to_owned(),
            }),
        }
    }
}

fn damaged_ids() -> StoreError {
    StoreError::Corrupted {
        position: 0,
        reason: format!("{INDEX_DAMAGED}an event id entry is damaged"),
    }
}

fn damaged_stream_entry(stream_id: &str) -> StoreError {
    StoreError::Corrupted {
        position: 0,
        reason: format!("{INDEX_DAMAGED}a stream index entry of {stream_id} is damaged"),
    }
}

/// Checks the format version, or writes it into a new store.
fn check_format<K: Kv>(kv: &K) -> Result<(), StoreError> {
    match kv.get(kv::FORMAT_KEY)? {
        Some(bytes) => {
            let found = <[u8; 4]>::try_from(&bytes[..])
                .map(u32::from_be_bytes)
                .map_err(|_| StoreError::Corrupted {
                    position: 0,
                    reason: format!("{INDEX_DAMAGED}the format version record is damaged"),
                })?;
            if found != FORMAT_VERSION {
                return Err(StoreError::UnsupportedFormat {
                    found,
                    supported: FORMAT_VERSION,
                });
            }
            Ok(())
        }
        // A new store, or one whose index was lost: the index is rebuilt from the segments.
        None if kv.is_empty()? => {
            kv.apply(vec![(kv::FORMAT_KEY.to_vec(), FORMAT_VERSION.to_be_bytes().to_vec())])?;
            kv.flush()
        }
        None => Err(StoreError::Corrupted {
            position: 0,
            reason: "the database holds data but no hoso format version: it was not written by hoso".to_owned(),
        }),
    }
}

/// A filter of every stored stream id: those in the index engine (one pass over its stream
/// index, on open) and those recovery found beyond it.
fn stored_streams<K: Kv>(kv: &K, memtable: &Memtable) -> Result<KeyFilter, StoreError> {
    let mut streams = KeyFilter::new();
    let mut previous = Vec::new();
    kv.scan(b"s", b"t", false, |key, _| {
        // `s` ‖ length ‖ stream id ‖ first version: one insert per stream, not per run.
        let name = &key[..key.len().saturating_sub(8)];
        if name != previous.as_slice() {
            if let Ok(stream_id) = std::str::from_utf8(name.get(3..).unwrap_or_default()) {
                streams.insert(stream_id);
            }
            previous = name.to_vec();
        }
        Ok(true)
    })?;
    for stream_id in memtable.stream_ids() {
        streams.insert(stream_id);
    }
    Ok(streams)
}

/// What recovery found: the end of the log and the index entries the engine lacks.
struct Recovered {
    memtable: Memtable,
    next_position: Position,
    last_recorded_at: Option<DateTime<Utc>>,
    segment: u32,
    segment_len: u64,
}

fn damaged<S: Segments>(segments: &S, position: Position, segment: u32, offset: u64, what: &str) -> StoreError {
    StoreError::Corrupted {
        position,
        reason: format!(
            "{what} at byte {offset} of {}, before the end of the log",
            segments.name(segment)
        ),
    }
}

/// Scans the segments from where the index ends (the engine's or the id tables', whichever is
/// earlier) to the end of the log, CRC-checking every entry. A torn or zero entry at the end
/// of the last segment is an append that was never acknowledged and is cut off; damage
/// anywhere else refuses the open.
fn recover<S: Segments, K: Kv>(
    segments: &S,
    kv: &K,
    tables: &[IdTable],
    unfiled: Vec<(Position, Vec<Uuid>)>,
) -> Result<Recovered, StoreError> {
    let indexed = match kv.get(kv::INDEXED_KEY)? {
        Some(bytes) => Some(Indexed::decode(&bytes).ok_or_else(|| StoreError::Corrupted {
            position: 0,
            reason: format!("{INDEX_DAMAGED}the index end record is damaged"),
        })?),
        None => None,
    };
    let mut list = segments.list()?;
    for pair in list.windows(2) {
        if pair[1] != pair[0] + 1 {
            return Err(StoreError::Corrupted {
                position: 0,
                reason: format!("segment {} is missing from the log", segments.name(pair[0] + 1)),
            });
        }
    }
    if list.is_empty() {
        if let Some(indexed) = indexed.filter(|i| i.next_position > 0) {
            return Err(StoreError::Corrupted {
                position: 0,
                reason: format!(
                    "the index holds {} records but the log has no segment",
                    indexed.next_position
                ),
            });
        }
        segments.create(1)?;
        list.push(1);
    }
    let last = *list.last().expect("not empty");
    let (indexed_end, indexed_resume, mut last_recorded_at) = match indexed {
        Some(i) => (i.next_position, i.resume, i.last_recorded_at),
        None => (0, (list[0], 0), None),
    };
    let (ids_end, ids_resume) = tables.last().map_or((0, (list[0], 0)), |t| (t.end(), t.resume));
    // The ids of `ids_end..indexed_end` are in the unfiled-id files, one frame per indexer
    // batch (stores written before those files have them in the engine, one entry per batch);
    // frames that a table already holds may be left from before a crash.
    let mut frames = unfiled;
    kv.scan(
        &kv::batch_ids_key(0),
        &kv::batch_ids_key(u64::MAX),
        false,
        |key, value| {
            let first = kv::parse_u64(&key[1..]).unwrap_or(u64::MAX);
            let ids = value
                .chunks_exact(16)
                .map(|id| Uuid::from_slice(id).map_err(|_| damaged_ids()))
                .collect::<Result<Vec<_>, _>>()?;
            frames.push((first, ids));
            Ok(true)
        },
    )?;
    frames.sort_by_key(|&(first, _)| first);
    let mut batch_ids = Vec::new();
    let mut covered = ids_end;
    for (first, ids) in frames {
        let end = first.saturating_add(ids.len() as u64);
        if first <= covered && end > covered {
            covered = end;
        }
        for (i, id) in ids.into_iter().enumerate() {
            let position = first + i as u64;
            if (ids_end..indexed_end).contains(&position) {
                batch_ids.push((id, position));
            }
        }
    }
    // The scan starts at the end of the engine's index, or earlier if some ids between the
    // last id table and it are missing (a table that was damaged and dropped on open): then
    // records before `indexed_end` give their ids only.
    let (mut position, (segment, offset)) = if covered < indexed_end && ids_end < indexed_end {
        (ids_end, ids_resume)
    } else {
        (indexed_end, indexed_resume)
    };
    if !list.contains(&segment) || offset > segments.len(segment)? {
        return Err(StoreError::Corrupted {
            position,
            reason: format!(
                "the index ends at byte {offset} of {}, past the end of the log",
                segments.name(segment)
            ),
        });
    }
    let mut memtable = Memtable::new(indexed_end, ids_end);
    for (id, position) in batch_ids {
        memtable.push_id(id, position);
    }
    let mut reader = SegmentReader::new(segments, segment, offset, SCAN_BUFFER);
    let cut = loop {
        match reader.next()? {
            Next::End => break None,
            Next::Entry {
                loc,
                record,
                crc_ok: true,
            } => {
                let record = record::decode(position, record).map_err(|err| {
                    let what = match err {
                        StoreError::Corrupted { reason, .. } => {
                            format!("an intact entry that is not a record ({reason})")
                        }
                        other => other.to_string(),
                    };
                    damaged(segments, position, loc.segment, loc.offset, &what)
                })?;
                last_recorded_at = Some(record.recorded_at);
                if position >= indexed_end {
                    memtable.push(Recent {
                        stream_id: Arc::from(record.stream_id.as_str()),
                        version: record.version,
                        event_id: record.event_id,
                        loc,
                        hash: record.hash,
                        recorded_at: record.recorded_at,
                    });
                }
                if (ids_end..indexed_end).contains(&position) {
                    memtable.push_id(record.event_id, position);
                }
                position += 1;
            }
            Next::Entry {
                loc,
                record,
                crc_ok: false,
            } => {
                // A write that stopped mid-entry left zeros (written ahead) where the entry's
                // last bytes, its hash, belong; a whole entry has them.
                let whole = record.len() < 32 || record[record.len() - 32..].iter().any(|&b| b != 0);
                // A write cut short by a crash leaves nothing intact behind it.
                if let Next::Entry { crc_ok: true, .. } = reader.next()? {
                    let what = "an entry whose CRC does not match, followed by intact entries,";
                    return Err(damaged(segments, position, loc.segment, loc.offset, what));
                }
                break Some((loc.segment, loc.offset, Some((whole, loc.end()))));
            }
            Next::Incomplete {
                segment,
                offset,
                reason,
            } => {
                if segment != last {
                    return Err(damaged(segments, position, segment, offset, reason));
                }
                break Some((segment, offset, None));
            }
        }
    };
    if position < indexed_end.max(ids_end) {
        return Err(StoreError::Corrupted {
            position,
            reason: format!(
                "the log ends here but its index holds {} records",
                indexed_end.max(ids_end)
            ),
        });
    }
    // Whatever lies past the end (zeros written ahead of the writer, or a torn write) is cut
    // off, so that nothing stale can ever be read as an entry after new ones.
    let (end_segment, end_offset, entry) = cut.unwrap_or_else(|| {
        let (segment, offset) = reader.at();
        (segment, offset, None)
    });
    drop(reader);
    let later: Vec<u32> = list.iter().copied().filter(|&s| s > end_segment).collect();
    quarantine_tail(segments, position, (end_segment, end_offset), entry, &later)?;
    if segments.len(end_segment)? > end_offset {
        segments.truncate(end_segment, end_offset)?;
    }
    // Segments after a torn tail hold nothing intact (checked above): empty them, and write on
    // in the last one.
    for &s in &later {
        segments.truncate(s, 0)?;
    }
    let (segment_now, segment_len) = match later.last() {
        Some(&last) => (last, 0),
        None => (end_segment, end_offset),
    };
    // The tail found may never have been fsync'd (the process died before its group was):
    // make it durable before anything is read or acknowledged on top of it.
    for &s in list.iter().filter(|&&s| s >= segment) {
        segments.sync(s)?;
    }
    Ok(Recovered {
        memtable,
        next_position: position,
        last_recorded_at,
        segment: segment_now,
        segment_len,
    })
}

/// Keeps whatever is not zeros past the end of the log in quarantine files before recovery
/// cuts it, and says so: a WARN for a torn write (it stopped mid-entry, so it was never
/// acknowledged), an ERROR for a whole entry that does not match its CRC or is followed by more
/// data (it may have been acknowledged). `entry` is the damaged entry the end was found at, if
/// any: whether it is whole, and where it ends.
fn quarantine_tail<S: Segments>(
    segments: &S,
    position: Position,
    (segment, offset): (u32, u64),
    entry: Option<(bool, u64)>,
    later: &[u32],
) -> Result<(), StoreError> {
    let mut pieces = Vec::new();
    for (s, from) in std::iter::once((segment, offset)).chain(later.iter().map(|&s| (s, 0))) {
        let len = segments.len(s)?;
        if len <= from {
            continue;
        }
        let mut bytes = vec![0; (len - from) as usize];
        let n = segments.read_at(s, from, &mut bytes)?;
        bytes.truncate(n);
        // Zeros are what the log holds past its end (written ahead): nothing to keep.
        let Some(last) = bytes.iter().rposition(|&b| b != 0) else {
            continue;
        };
        bytes.truncate(last + 1);
        pieces.push((s, from, bytes));
    }
    let Some((_, _, first)) = pieces.first() else {
        return Ok(());
    };
    let acknowledged = match entry {
        Some((whole, end)) => whole || pieces.len() > 1 || offset + first.len() as u64 > end,
        None => false,
    };
    for (s, from, bytes) in &pieces {
        let name = segments.name(*s);
        // The segment's file name, without its directory: the quarantine file is named after it.
        let short = std::path::Path::new(&name)
            .file_name()
            .map_or(name.clone(), |n| n.to_string_lossy().into_owned());
        let file = crate::Quarantined::file_name(&short, *from, position, acknowledged);
        let path = segments.quarantine(&file, bytes)?;
        if acknowledged {
            tracing::error!(
                position,
                segment = %name,
                offset = from,
                bytes = bytes.len(),
                quarantine = %path,
                "the log ended in a whole entry that does not match its CRC (or one followed by more data): it may be an acknowledged append, now lost from the log; its bytes are cut off and kept in quarantine (docs/operations.md: damaged last record)"
            );
        } else {
            tracing::warn!(
                position,
                segment = %name,
                offset = from,
                bytes = bytes.len(),
                quarantine = %path,
                "the log ended in a torn write (an append that stopped mid-entry, never acknowledged): its bytes are cut off and kept in quarantine"
            );
        }
    }
    Ok(())
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
        segments.writing_at(recovered.segment, recovered.segment_len);
        let streams = stored_streams(&kv, &recovered.memtable)?;
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
        let writer = Writer::new(Arc::clone(&core), end, options.segment_bytes, to_syncer, streams);
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

pub(crate) fn truncate_to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
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
