//! The ordered key-value space the indexes and the metadata are kept in, and the in-memory
//! engine behind it (the durable one is sled, in `sled_kv`).
//!
//! The records themselves are not here: they live in the segments (`segment`). Each key
//! starts with a one-byte prefix:
//!
//! | key | value |
//! |---|---|
//! | `m` ‖ `format` | the format version, u32 |
//! | `m` ‖ `indexed` | next position not indexed (u64) ‖ where its entry starts: segment (u32) ‖ offset (u64) ‖ `recorded_at` of the last indexed record, µs (i64, `i64::MIN` if none) |
//! | `s` ‖ stream id length (u16) ‖ stream id ‖ first version of a run (u64) | count (u32) ‖ count × (position (u64) ‖ location (16)) ‖ hash of the run's last record (32) |
//! | `p` ‖ position (u64), every `SPARSE`th position | location (16) |
//! | `i` ‖ first position of an indexer batch (u64) | the event ids of the batch's positions, 16 bytes each, in position order |
//!
//! A run is the consecutive versions of one stream that the indexer indexed in one batch. A
//! location is segment (u32) ‖ entry offset (u64) ‖ record length (u32). Integers are
//! big-endian so that byte order is numeric order. The event-id index itself is in the id
//! tables (`idtable`); the `i` entries keep the ids that no table holds yet across a restart,
//! and are removed once a table holds them.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::RwLock;

use chrono::{DateTime, Utc};

use crate::segment::Location;
use crate::{Position, StoreError, Version};

pub(crate) const FORMAT_KEY: &[u8] = b"mformat";
pub(crate) const INDEXED_KEY: &[u8] = b"mindexed";
/// Every this many positions, the sparse position index holds the record's location. Finding
/// a record by position reads at most this many entries forward (about 60 KiB); every entry is
/// one more sled insert for the indexer (at 32, as many inserts as the stream index at 16
/// appenders of 10 events). Readers take the nearest entry at or before a position, so stores
/// written with another spacing read the same.
pub(crate) const SPARSE: u64 = 128;

/// Where the record of one stream version is. `hash` is the record's chain hash when the
/// index holds it: the memtable holds every record's, the engine only the last of each run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamEntry {
    pub(crate) position: Position,
    pub(crate) loc: Location,
    pub(crate) hash: Option<[u8; 32]>,
}

/// One stream index value: the locations of a run of consecutive versions of one stream that
/// the indexer indexed together, and the chain hash of the run's last record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamRun {
    /// Position and location of each version, from the run's first version on.
    pub(crate) entries: Vec<(Position, Location)>,
    pub(crate) last_hash: [u8; 32],
}

/// Bytes of one version in a run: position (u64) ‖ location.
const RUN_ENTRY: usize = 8 + Location::BYTES;

impl StreamRun {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut value = Vec::with_capacity(4 + self.entries.len() * RUN_ENTRY + 32);
        // A run holds at most one indexer batch of records, far below 4 billion.
        value.extend_from_slice(&(self.entries.len() as u32).to_be_bytes());
        for (position, loc) in &self.entries {
            value.extend_from_slice(&position.to_be_bytes());
            loc.encode_into(&mut value);
        }
        value.extend_from_slice(&self.last_hash);
        value
    }
}

/// A stream index value as stored, read in place: looking up one version costs the same
/// however long the run is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunView<'a> {
    entries: &'a [u8],
    last_hash: &'a [u8],
}

impl<'a> RunView<'a> {
    pub(crate) fn new(value: &'a [u8]) -> Option<RunView<'a>> {
        let count = u32::from_be_bytes(value.get(..4)?.try_into().ok()?) as usize;
        if count == 0 || value.len() != 4 + count * RUN_ENTRY + 32 {
            return None;
        }
        let (entries, last_hash) = value[4..].split_at(count * RUN_ENTRY);
        Some(RunView { entries, last_hash })
    }

    /// How many versions the run holds.
    pub(crate) fn len(&self) -> u64 {
        (self.entries.len() / RUN_ENTRY) as u64
    }

    /// The entry of version `version` of the run, whose first version is `first`.
    pub(crate) fn entry(&self, first: Version, version: Version) -> Option<StreamEntry> {
        let i = usize::try_from(version.checked_sub(first)?).ok()?;
        let bytes = self.entries.get(i * RUN_ENTRY..(i + 1) * RUN_ENTRY)?;
        let hash = if (i + 1) * RUN_ENTRY == self.entries.len() {
            Some(self.last_hash.try_into().ok()?)
        } else {
            None
        };
        Some(StreamEntry {
            position: parse_u64(&bytes[..8])?,
            loc: Location::decode(&bytes[8..])?,
            hash,
        })
    }
}

/// Where the indexes end: everything before `next_position` is in the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Indexed {
    pub(crate) next_position: Position,
    /// Segment and offset where the entry of `next_position` starts.
    pub(crate) resume: (u32, u64),
    pub(crate) last_recorded_at: Option<DateTime<Utc>>,
}

impl Indexed {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut value = Vec::with_capacity(28);
        value.extend_from_slice(&self.next_position.to_be_bytes());
        value.extend_from_slice(&self.resume.0.to_be_bytes());
        value.extend_from_slice(&self.resume.1.to_be_bytes());
        let micros = self.last_recorded_at.map_or(i64::MIN, |t| t.timestamp_micros());
        value.extend_from_slice(&micros.to_be_bytes());
        value
    }

    pub(crate) fn decode(value: &[u8]) -> Option<Indexed> {
        if value.len() != 28 {
            return None;
        }
        let micros = i64::from_be_bytes(value[20..28].try_into().ok()?);
        Some(Indexed {
            next_position: parse_u64(&value[0..8])?,
            resume: (
                u32::from_be_bytes(value[8..12].try_into().ok()?),
                parse_u64(&value[12..20])?,
            ),
            last_recorded_at: if micros == i64::MIN {
                None
            } else {
                Some(DateTime::from_timestamp_micros(micros)?)
            },
        })
    }
}

/// The key of the event ids of one indexer batch, by the batch's first position.
pub(crate) fn batch_ids_key(first: Position) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = b'i';
    key[1..].copy_from_slice(&first.to_be_bytes());
    key
}

pub(crate) fn sparse_key(position: Position) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = b'p';
    key[1..].copy_from_slice(&position.to_be_bytes());
    key
}

/// The prefix all index entries of one stream share.
pub(crate) fn stream_prefix(stream_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(3 + stream_id.len() + 8);
    key.push(b's');
    // Stream ids are at most `MAX_NAME_BYTES` long, checked before any key is built.
    key.extend_from_slice(&(stream_id.len() as u16).to_be_bytes());
    key.extend_from_slice(stream_id.as_bytes());
    key
}

pub(crate) fn stream_key(prefix: &[u8], version: Version) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 8);
    key.extend_from_slice(prefix);
    key.extend_from_slice(&version.to_be_bytes());
    key
}

pub(crate) fn parse_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// Reads the version back out of a stream index key.
pub(crate) fn version_of_stream_key(key: &[u8]) -> Option<Version> {
    parse_u64(key.get(key.len().checked_sub(8)?..)?)
}

/// An ordered key-value engine with atomic batches.
pub(crate) trait Kv: Send + Sync + 'static {
    /// The value stored under `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Visits the entries whose keys lie in `[start, end)`, in key order or reversed, until
    /// `visit` returns `false`. `visit` must not call back into the engine.
    fn scan<F>(&self, start: &[u8], end: &[u8], reverse: bool, visit: F) -> Result<(), StoreError>
    where
        F: FnMut(&[u8], &[u8]) -> Result<bool, StoreError>;
    /// Applies all writes atomically: after a crash either all of them are there or none, and
    /// the engine keeps a prefix of the batches applied, in order.
    fn apply(&self, writes: Vec<(Vec<u8>, Vec<u8>)>) -> Result<(), StoreError>;
    /// Removes the keys, atomically.
    fn remove(&self, keys: Vec<Vec<u8>>) -> Result<(), StoreError>;
    /// Makes every batch applied so far durable.
    fn flush(&self) -> Result<(), StoreError>;
    /// True if the engine holds no key at all.
    fn is_empty(&self) -> Result<bool, StoreError>;
}

/// An in-memory engine: a `BTreeMap` behind a lock. Nothing survives the process.
#[derive(Default)]
pub(crate) struct MemKv {
    map: RwLock<BTreeMap<Vec<u8>, Vec<u8>>>,
}

fn poisoned() -> StoreError {
    StoreError::Io("in-memory engine lock poisoned by a panic".to_owned())
}

impl Kv for MemKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map.read().map_err(|_| poisoned())?.get(key).cloned())
    }

    fn scan<F>(&self, start: &[u8], end: &[u8], reverse: bool, mut visit: F) -> Result<(), StoreError>
    where
        F: FnMut(&[u8], &[u8]) -> Result<bool, StoreError>,
    {
        let map = self.map.read().map_err(|_| poisoned())?;
        let range = map.range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)));
        if reverse {
            for (k, v) in range.rev() {
                if !visit(k, v)? {
                    break;
                }
            }
        } else {
            for (k, v) in range {
                if !visit(k, v)? {
                    break;
                }
            }
        }
        Ok(())
    }

    fn apply(&self, writes: Vec<(Vec<u8>, Vec<u8>)>) -> Result<(), StoreError> {
        let mut map = self.map.write().map_err(|_| poisoned())?;
        map.extend(writes);
        Ok(())
    }

    fn remove(&self, keys: Vec<Vec<u8>>) -> Result<(), StoreError> {
        let mut map = self.map.write().map_err(|_| poisoned())?;
        for key in keys {
            map.remove(&key);
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.map.read().map_err(|_| poisoned())?.is_empty())
    }
}
