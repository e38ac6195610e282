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
//! | `s` ‖ stream id length (u16) ‖ stream id ‖ version (u64) | position (u64) ‖ location (16) ‖ record hash (32) |
//! | `i` ‖ event id (16 bytes) | position (u64) ‖ location (16) |
//! | `p` ‖ position (u64), every `SPARSE`th position | location (16) |
//!
//! A location is segment (u32) ‖ entry offset (u64) ‖ record length (u32). Integers are
//! big-endian so that byte order is numeric order.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::RwLock;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::segment::Location;
use crate::{Position, StoreError, Version};

pub(crate) const FORMAT_KEY: &[u8] = b"mformat";
pub(crate) const INDEXED_KEY: &[u8] = b"mindexed";
/// Every this many positions, the sparse position index holds the record's location.
pub(crate) const SPARSE: u64 = 32;

/// A stream index entry: where the record of one stream version is, and its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamEntry {
    pub(crate) position: Position,
    pub(crate) loc: Location,
    pub(crate) hash: [u8; 32],
}

impl StreamEntry {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut value = Vec::with_capacity(8 + Location::BYTES + 32);
        value.extend_from_slice(&self.position.to_be_bytes());
        self.loc.encode_into(&mut value);
        value.extend_from_slice(&self.hash);
        value
    }

    pub(crate) fn decode(value: &[u8]) -> Option<StreamEntry> {
        if value.len() != 8 + Location::BYTES + 32 {
            return None;
        }
        Some(StreamEntry {
            position: parse_u64(&value[..8])?,
            loc: Location::decode(&value[8..8 + Location::BYTES])?,
            hash: value[8 + Location::BYTES..].try_into().ok()?,
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

pub(crate) fn event_id_key(event_id: Uuid) -> [u8; 17] {
    let mut key = [0u8; 17];
    key[0] = b'i';
    key[1..].copy_from_slice(event_id.as_bytes());
    key
}

pub(crate) fn id_entry(position: Position, loc: Location) -> Vec<u8> {
    let mut value = Vec::with_capacity(8 + Location::BYTES);
    value.extend_from_slice(&position.to_be_bytes());
    loc.encode_into(&mut value);
    value
}

pub(crate) fn parse_id_entry(value: &[u8]) -> Option<(Position, Location)> {
    if value.len() != 8 + Location::BYTES {
        return None;
    }
    Some((parse_u64(&value[..8])?, Location::decode(&value[8..])?))
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
    /// Applies the writes one after the other, not atomically: readers may see some before
    /// others, and after a crash the engine keeps a prefix of them (sled logs every write in
    /// order and recovers a prefix of its log). Unlike `apply`, it does not block readers.
    fn insert_in_order(&self, writes: Vec<(Vec<u8>, Vec<u8>)>) -> Result<(), StoreError>;
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

    fn insert_in_order(&self, writes: Vec<(Vec<u8>, Vec<u8>)>) -> Result<(), StoreError> {
        self.apply(writes)
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.map.read().map_err(|_| poisoned())?.is_empty())
    }
}
