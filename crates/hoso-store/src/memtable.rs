//! The memtable: index entries of the records the background indexer has not yet put into
//! the index engine, and the event ids of the records no id table holds yet.
//!
//! The writer adds the entries of every append as soon as it has encoded it (so later appends
//! see it at once); readers look here first and then in the engine or the id tables, ignoring
//! entries at or past the durable head. The indexer writes the oldest entries to the engine
//! (or the oldest ids to a table) and only then removes them from here, so a lookup that
//! misses here finds the entry there.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use foldhash::fast::RandomState;
use uuid::Uuid;

use crate::kv::StreamEntry;
use crate::segment::Location;
use crate::{Position, Version};

/// One record's index entries.
#[derive(Debug, Clone)]
pub(crate) struct Recent {
    pub(crate) stream_id: Arc<str>,
    pub(crate) version: Version,
    pub(crate) event_id: Uuid,
    pub(crate) loc: Location,
    pub(crate) hash: [u8; 32],
    pub(crate) recorded_at: DateTime<Utc>,
}

/// Index entries of the positions `first..first + recent.len()`, in position order, and the
/// event ids of the positions from `ids_from` on.
pub(crate) struct Memtable {
    first: Position,
    recent: VecDeque<Recent>,
    streams: HashMap<Arc<str>, Versions, RandomState>,
    ids_from: Position,
    ids: HashMap<Uuid, Position, RandomState>,
}

/// The positions of one stream's versions held here: consecutive versions from `first`
/// (versions are assigned in position order, and entries leave in position order).
#[derive(Debug)]
struct Versions {
    first: Version,
    positions: VecDeque<Position>,
}

impl Versions {
    fn get(&self, version: Version) -> Option<Position> {
        let at = usize::try_from(version.checked_sub(self.first)?).ok()?;
        self.positions.get(at).copied()
    }
}

impl Memtable {
    /// An empty memtable whose first entry will be that of `first`, and whose first id will be
    /// that of `ids_from` (the end of the id tables).
    pub(crate) fn new(first: Position, ids_from: Position) -> Self {
        Memtable {
            first,
            recent: VecDeque::new(),
            streams: HashMap::default(),
            ids_from,
            ids: HashMap::default(),
        }
    }

    /// Adds the event id of a position below `first` that no id table holds yet (recovery).
    pub(crate) fn push_id(&mut self, event_id: Uuid, position: Position) {
        self.ids.insert(event_id, position);
    }

    /// The first position whose id is held here (everything before it is in the id tables).
    pub(crate) fn ids_from(&self) -> Position {
        self.ids_from
    }

    /// The ids of the positions `ids_from..end`, for an id table, into `out` (emptied first).
    pub(crate) fn ids_below_into(&self, end: Position, out: &mut Vec<(Uuid, Position)>) {
        out.clear();
        out.extend(self.ids.iter().filter(|&(_, &p)| p < end).map(|(&id, &p)| (id, p)));
    }

    /// Forgets these ids, which an id table now holds.
    pub(crate) fn forget_ids(&mut self, ids: &[(Uuid, Position)]) {
        for (id, _) in ids {
            self.ids.remove(id);
        }
    }

    /// Records that id tables hold the ids of every position below `end` (forgotten here with
    /// `forget_ids`).
    pub(crate) fn ids_filed_below(&mut self, end: Position) {
        self.ids_from = self.ids_from.max(end);
    }

    /// The first position held (everything before it is in the engine).
    pub(crate) fn first(&self) -> Position {
        self.first
    }

    /// How many positions' entries it holds.
    pub(crate) fn len(&self) -> usize {
        self.recent.len()
    }

    /// Adds the entries of the next position.
    pub(crate) fn push(&mut self, recent: Recent) {
        let position = self.first + self.recent.len() as u64;
        // Looked up before it is inserted: an append's events are in one stream, and each
        // clone (and drop) of its id is a locked instruction, which waits for every store
        // before it to reach the cache, so the misses of the last pushes stop overlapping.
        if !self.streams.contains_key(&*recent.stream_id) {
            self.streams.insert(
                Arc::clone(&recent.stream_id),
                Versions {
                    first: recent.version,
                    positions: VecDeque::new(),
                },
            );
        }
        let versions = self
            .streams
            .get_mut(&*recent.stream_id)
            .expect("the stream's versions were just looked up or inserted");
        debug_assert_eq!(
            versions.first + versions.positions.len() as u64,
            recent.version,
            "a stream's versions reach the memtable in order"
        );
        versions.positions.push_back(position);
        if position >= self.ids_from {
            self.ids.insert(recent.event_id, position);
        }
        self.recent.push_back(recent);
    }

    fn get(&self, position: Position) -> Option<&Recent> {
        self.recent
            .get(usize::try_from(position.checked_sub(self.first)?).ok()?)
    }

    fn entry(&self, position: Position) -> Option<StreamEntry> {
        self.get(position).map(|r| StreamEntry {
            position,
            loc: r.loc,
            hash: Some(r.hash),
        })
    }

    /// The location of the record at `position`, if held here.
    pub(crate) fn location(&self, position: Position) -> Option<Location> {
        self.get(position).map(|r| r.loc)
    }

    /// The last entry of a stream below `below`.
    pub(crate) fn stream_last(&self, stream_id: &str, below: Position) -> Option<(Version, StreamEntry)> {
        let versions = self.streams.get(stream_id)?;
        let at = versions.positions.iter().rposition(|&p| p < below)?;
        let position = versions.positions[at];
        Some((versions.first + at as u64, self.entry(position)?))
    }

    /// The entry of one stream version, below `below`.
    pub(crate) fn stream_entry(&self, stream_id: &str, version: Version, below: Position) -> Option<StreamEntry> {
        let position = self.streams.get(stream_id)?.get(version)?;
        if position >= below {
            return None;
        }
        self.entry(position)
    }

    /// The entries of a stream's versions in `[lo, hi)` below `below`, in version order.
    pub(crate) fn stream_range(
        &self,
        stream_id: &str,
        lo: Version,
        hi: Version,
        below: Position,
    ) -> Vec<(Version, StreamEntry)> {
        let Some(versions) = self.streams.get(stream_id) else {
            return Vec::new();
        };
        if lo >= hi {
            return Vec::new();
        }
        (lo.max(versions.first)..hi)
            .map_while(|v| Some((v, versions.get(v)?)))
            .filter(|&(_, p)| p < below)
            .filter_map(|(v, p)| Some((v, self.entry(p)?)))
            .collect()
    }

    /// Whether the id of a position from `ids_from` on is held here.
    pub(crate) fn holds_id(&self, event_id: Uuid) -> bool {
        self.ids.contains_key(&event_id)
    }

    /// The position of an event id below `below`, with its location if held here.
    pub(crate) fn event(&self, event_id: Uuid, below: Position) -> Option<(Position, Option<Location>)> {
        let position = *self.ids.get(&event_id)?;
        if position >= below {
            return None;
        }
        Some((position, self.location(position)))
    }

    /// The stream ids of the entries held.
    pub(crate) fn stream_ids(&self) -> impl Iterator<Item = &str> + '_ {
        self.streams.keys().map(|s| &**s)
    }

    /// Copies of the `n` entries after the first `skip`, for the indexer, added to `out`.
    pub(crate) fn oldest_into(&self, skip: usize, n: usize, out: &mut Vec<Recent>) {
        let start = skip.min(self.recent.len());
        let end = skip.saturating_add(n).min(self.recent.len());
        out.extend(self.recent.range(start..end).cloned());
    }

    /// Forgets the entries of every position from `end` on: records written after the last
    /// durable one, dropped when the writer resumes after a failed write.
    pub(crate) fn truncate_from(&mut self, end: Position) {
        while self.first + self.recent.len() as u64 > end.max(self.first) {
            let Some(recent) = self.recent.pop_back() else {
                break;
            };
            let position = self.first + self.recent.len() as u64;
            if let Some(versions) = self.streams.get_mut(&recent.stream_id) {
                if versions.positions.back() == Some(&position) {
                    versions.positions.pop_back();
                }
                if versions.positions.is_empty() {
                    self.streams.remove(&recent.stream_id);
                }
            }
            if self.ids.get(&recent.event_id) == Some(&position) {
                self.ids.remove(&recent.event_id);
            }
        }
    }

    /// Forgets the first `n` entries, which the engine now holds.
    pub(crate) fn drop_oldest(&mut self, n: usize) {
        for _ in 0..n {
            let Some(recent) = self.recent.pop_front() else {
                break;
            };
            let position = self.first;
            self.first += 1;
            if let Some(versions) = self.streams.get_mut(&recent.stream_id) {
                if versions.first == recent.version && versions.positions.front() == Some(&position) {
                    versions.positions.pop_front();
                    versions.first += 1;
                }
                if versions.positions.is_empty() {
                    self.streams.remove(&recent.stream_id);
                }
            }
        }
    }
}
