//! The ordered key-value space the log is kept in, and the two engines behind it.
//!
//! The log, its indexes and its metadata share one ordered key space, each under a one-byte
//! prefix, so that one append is one atomic batch of writes whatever the engine:
//!
//! | key | value |
//! |---|---|
//! | `m` ‖ name | store metadata (`mformat`: the format version, u32) |
//! | `e` ‖ position (u64) | the encoded record (see `record`) |
//! | `s` ‖ stream id length (u16) ‖ stream id ‖ version (u64) | position (u64) ‖ record hash (32 bytes) |
//! | `i` ‖ event id (16 bytes) | position (u64) |
//!
//! Integers are big-endian so that byte order is numeric order.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::RwLock;

use uuid::Uuid;

use crate::{Position, StoreError, Version};

pub(crate) const FORMAT_KEY: &[u8] = b"mformat";

pub(crate) fn event_key(position: Position) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = b'e';
    key[1..].copy_from_slice(&position.to_be_bytes());
    key
}

pub(crate) fn event_id_key(event_id: Uuid) -> [u8; 17] {
    let mut key = [0u8; 17];
    key[0] = b'i';
    key[1..].copy_from_slice(event_id.as_bytes());
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

/// The value of a stream index entry: where the record is and its hash.
pub(crate) fn stream_entry(position: Position, hash: &[u8; 32]) -> Vec<u8> {
    let mut value = Vec::with_capacity(40);
    value.extend_from_slice(&position.to_be_bytes());
    value.extend_from_slice(hash);
    value
}

pub(crate) fn parse_stream_entry(value: &[u8]) -> Option<(Position, [u8; 32])> {
    if value.len() != 40 {
        return None;
    }
    let position = u64::from_be_bytes(value[..8].try_into().ok()?);
    Some((position, value[8..].try_into().ok()?))
}

pub(crate) fn parse_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// Reads the version back out of a stream index key.
pub(crate) fn version_of_stream_key(key: &[u8]) -> Option<Version> {
    parse_u64(key.get(key.len().checked_sub(8)?..)?)
}

/// An ordered key-value engine with atomic batches and an explicit flush to stable storage.
pub(crate) trait Kv: Send + Sync + 'static {
    /// The value stored under `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Visits the entries whose keys lie in `[start, end)`, in key order or reversed, until
    /// `visit` returns `false`. `visit` must not call back into the engine.
    fn scan<F>(&self, start: &[u8], end: &[u8], reverse: bool, visit: F) -> Result<(), StoreError>
    where
        F: FnMut(&[u8], &[u8]) -> Result<bool, StoreError>;
    /// Applies all writes atomically: after a crash either all of them are there or none.
    /// They are visible to `get` and `scan` at once, but not yet durable.
    fn apply(&self, writes: Vec<(Vec<u8>, Vec<u8>)>) -> Result<(), StoreError>;
    /// Hands every write applied so far to the operating system (no fsync yet).
    fn write_out(&self) -> Result<(), StoreError>;
    /// Makes every write handed out by `write_out` before this call durable (fsync). May run
    /// on another thread while `apply` and `write_out` go on.
    fn sync(&self) -> Result<(), StoreError>;
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

    fn write_out(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.map.read().map_err(|_| poisoned())?.is_empty())
    }
}
