//! What the log's threads and readers share: the durable head, the memtable, the id tables and
//! filter, the refusal of appends after a disk failure, and the lookups that consult the
//! memtable first and the index engine second. `recovery`, `writer` and `verify` build on it,
//! and `log` on all of them.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

use crate::filter::KeyFilter;
use crate::idtable::IdTable;
use crate::kv::{self, Kv, RunView, StreamEntry};
use crate::memtable::Memtable;
use crate::segment::{Location, Next, SegmentReader, Segments};
use crate::{AppendResult, ExpectedVersion, Json, Position, RecordedEvent, StoreError, Version};

/// The on-disk format this build writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 3;
/// How the reason of a `Corrupted` error begins when the damage is in the indexes (sled's files
/// or its records), which can be rebuilt from the segments, rather than in the log.
pub(crate) const INDEX_DAMAGED: &str = "the index is damaged: ";
/// Stream index entries are read in chunks of this many.
pub(crate) const CHUNK: usize = 256;
/// Sequential reads of the segments go through a buffer of this size.
pub(crate) const SCAN_BUFFER: usize = 1 << 20;

/// An event that passed validation, with its JSON already rendered to bytes.
pub(crate) struct PreparedEvent {
    pub(crate) event_id: Uuid,
    pub(crate) event_type: String,
    pub(crate) schema_version: u32,
    pub(crate) data: Json,
    pub(crate) metadata: Json,
    pub(crate) occurred_at: DateTime<Utc>,
}

/// An append to one stream, validated.
pub(crate) struct Append {
    pub(crate) stream_id: String,
    pub(crate) expected: ExpectedVersion,
    pub(crate) events: Vec<PreparedEvent>,
}

/// What the writer is asked to do: an append, or an import of events recorded elsewhere
/// ([`crate::ImportStore`]), answered with the positions written.
pub(crate) enum Work {
    Append(Append),
    Import(Vec<RecordedEvent>),
}

pub(crate) struct Request {
    pub(crate) work: Work,
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
    /// What the syncer measures, one observation per fsync.
    pub(crate) write_metrics: crate::WriteMetrics,
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

/// How long the writer waits after a write failed for lack of space before it tries again.
pub(crate) const PROBE_BACKOFF: Duration = Duration::from_millis(500);

/// What the operator must do after a write that failed for lack of space.
pub(crate) const RESUMES: &str = "writes resume by themselves once space is freed on the store's disk (the store tries again with an append, at most every 500 ms)";
/// What the operator must do after a failed fsync.
pub(crate) const REOPEN_AFTER_FSYNC: &str = "restart the server (reopen the store) once the disk is healthy: after a failed fsync the store cannot tell what reached the disk";
/// What the operator must do after any other failure of the log or of its index.
pub(crate) const REOPEN: &str = "restart the server (reopen the store) once the disk is healthy: the restart recovers the log's end and re-indexes it";

/// Why appends are refused.
pub(crate) struct Refusal {
    /// The failure, in words.
    failure: String,
    /// What the operator must do: one of `RESUMES`, `REOPEN_AFTER_FSYNC` and `REOPEN`.
    remedy: &'static str,
    /// When the writer may next try to resume (`None`: only a reopen clears the refusal).
    next_probe: Option<Instant>,
}

impl Refusal {
    /// The refusal as the operator reads it: the failure, then what to do.
    pub(crate) fn describe(&self) -> String {
        format!("{}; {}", self.failure, self.remedy)
    }

    /// Puts the next probe off by `PROBE_BACKOFF`, after a probe that found no space yet.
    pub(crate) fn back_off(&mut self) {
        if self.next_probe.is_some() {
            self.next_probe = Some(Instant::now() + PROBE_BACKOFF);
        }
    }

    /// Whether the writer may clear it (after a write that failed for lack of space).
    pub(crate) fn resumable(&self) -> bool {
        self.next_probe.is_some()
    }

    /// Whether an append should reach the writer to try to resume.
    pub(crate) fn probe_due(&self) -> bool {
        self.next_probe.is_some_and(|at| Instant::now() >= at)
    }
}

/// The error every refused append gets.
pub(crate) fn refused(poison: &Mutex<Option<Refusal>>) -> Option<StoreError> {
    let guard = poison.lock().ok()?;
    guard.as_ref().map(|refusal| StoreError::WritesRefused {
        first_failure: refusal.describe(),
    })
}

/// Refuses appends after `err`, with `remedy`: a write that failed for lack of space may be
/// tried again (`RESUMES`), and every later failure that needs a reopen replaces it; a refusal
/// that needs a reopen is never replaced.
pub(crate) fn set_poison(poison: &Mutex<Option<Refusal>>, err: &StoreError, remedy: &'static str) {
    let Ok(mut poison) = poison.lock() else {
        return;
    };
    let resumable = remedy == RESUMES;
    if poison.as_ref().is_none_or(|r| r.next_probe.is_some() && !resumable) {
        *poison = Some(Refusal {
            failure: err.to_string(),
            remedy,
            next_probe: resumable.then(|| Instant::now() + PROBE_BACKOFF),
        });
    }
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
    pub(crate) fn index_failed(&self, err: &StoreError) -> bool {
        matches!(err, StoreError::Io(_)) && self.poison.lock().map_or(true, |p| p.is_some())
    }

    /// Where to start reading to reach `from`: a position at or before it and the segment
    /// and offset of its entry.
    pub(crate) fn start_of(&self, from: Position) -> Result<(Position, u32, u64), StoreError> {
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

pub(crate) fn damaged_ids() -> StoreError {
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

pub(crate) fn truncate_to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}
