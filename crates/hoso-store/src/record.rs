//! The record envelope: how one event is laid out in bytes and chained to its predecessor.
//!
//! Layout of the record in format versions 1 and 2 (all integers big-endian); format 2 moved
//! records out of the key-value engine into segment files but kept their bytes:
//!
//! | field | bytes |
//! |---|---|
//! | record layout tag (`1`) | 1 |
//! | global position | 8 |
//! | stream version | 8 |
//! | event id | 16 |
//! | `recorded_at`, microseconds since the Unix epoch | 8 (signed) |
//! | `occurred_at`, microseconds since the Unix epoch | 8 (signed) |
//! | schema version | 4 |
//! | stream id length, stream id (UTF-8) | 2 + n |
//! | event type length, event type (UTF-8) | 2 + n |
//! | data length, data (JSON text) | 4 + n |
//! | metadata length, metadata (JSON text) | 4 + n |
//! | SHA-256 of (previous record's hash in the stream, or 32 zero bytes) ‖ all bytes above | 32 |

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{Position, RecordedEvent, StoreError, Version};

const LAYOUT_TAG: u8 = 1;
const HASH_LEN: usize = 32;
/// The hash that stands before the first record of every stream.
pub const GENESIS_HASH: [u8; HASH_LEN] = [0; HASH_LEN];

/// The fields of a record that is about to be written.
pub(crate) struct RecordFields<'a> {
    pub(crate) position: Position,
    pub(crate) version: Version,
    pub(crate) event_id: Uuid,
    pub(crate) recorded_at: DateTime<Utc>,
    pub(crate) occurred_at: DateTime<Utc>,
    pub(crate) schema_version: u32,
    pub(crate) stream_id: &'a str,
    pub(crate) event_type: &'a str,
    pub(crate) data: &'a [u8],
    pub(crate) metadata: &'a [u8],
}

/// Appends a record's encoding to `out` and returns its chain hash.
pub(crate) fn encode_into(fields: &RecordFields<'_>, prev_hash: &[u8; HASH_LEN], out: &mut Vec<u8>) -> [u8; HASH_LEN] {
    let start = out.len();
    out.reserve(encoded_len(fields));
    out.push(LAYOUT_TAG);
    out.extend_from_slice(&fields.position.to_be_bytes());
    out.extend_from_slice(&fields.version.to_be_bytes());
    out.extend_from_slice(fields.event_id.as_bytes());
    out.extend_from_slice(&fields.recorded_at.timestamp_micros().to_be_bytes());
    out.extend_from_slice(&fields.occurred_at.timestamp_micros().to_be_bytes());
    out.extend_from_slice(&fields.schema_version.to_be_bytes());
    // Lengths were checked against the limits before encoding, so these casts do not truncate.
    out.extend_from_slice(&(fields.stream_id.len() as u16).to_be_bytes());
    out.extend_from_slice(fields.stream_id.as_bytes());
    out.extend_from_slice(&(fields.event_type.len() as u16).to_be_bytes());
    out.extend_from_slice(fields.event_type.as_bytes());
    out.extend_from_slice(&(fields.data.len() as u32).to_be_bytes());
    out.extend_from_slice(fields.data);
    out.extend_from_slice(&(fields.metadata.len() as u32).to_be_bytes());
    out.extend_from_slice(fields.metadata);
    let hash = chain_hash(prev_hash, &out[start..]);
    out.extend_from_slice(&hash);
    debug_assert_eq!(out.len() - start, encoded_len(fields));
    hash
}

/// The chain hash of `event` (its `hash` field aside) after `prev_hash`, the hash of the
/// previous event of its stream or [`GENESIS_HASH`]: the hash every store keeps and `verify`
/// checks, over the record layout above. The event's names, data and metadata must be within
/// the limits ([`crate::Limits::check_append`]) and its times whole microseconds.
pub fn record_hash(prev_hash: &[u8; HASH_LEN], event: &RecordedEvent) -> [u8; HASH_LEN] {
    let fields = RecordFields {
        position: event.position,
        version: event.version,
        event_id: event.event_id,
        recorded_at: event.recorded_at,
        occurred_at: event.occurred_at,
        schema_version: event.schema_version,
        stream_id: &event.stream_id,
        event_type: &event.event_type,
        data: &event.data,
        metadata: &event.metadata,
    };
    let mut bytes = Vec::with_capacity(encoded_len(&fields));
    encode_into(&fields, prev_hash, &mut bytes)
}

/// The length of a record's encoding.
pub(crate) fn encoded_len(fields: &RecordFields<'_>) -> usize {
    1 + 8 * 4
        + 16
        + 4
        + 2
        + fields.stream_id.len()
        + 2
        + fields.event_type.len()
        + 4
        + fields.data.len()
        + 4
        + fields.metadata.len()
        + HASH_LEN
}

/// The chain hash of a record body given its predecessor's hash.
pub(crate) fn chain_hash(prev_hash: &[u8; HASH_LEN], body: &[u8]) -> [u8; HASH_LEN] {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash);
    hasher.update(body);
    hasher.finalize().into()
}

/// Splits stored bytes into the hashed body and the stored hash.
pub(crate) fn split_hash(bytes: &[u8]) -> Option<(&[u8], [u8; HASH_LEN])> {
    let body_len = bytes.len().checked_sub(HASH_LEN)?;
    let (body, hash) = bytes.split_at(body_len);
    Some((body, hash.try_into().ok()?))
}

/// Decodes stored bytes into a record. `position` is where the bytes were found, for errors.
pub(crate) fn decode(position: Position, bytes: &[u8]) -> Result<RecordedEvent, StoreError> {
    let corrupted = |reason: &str| StoreError::Corrupted {
        position,
        reason: reason.to_owned(),
    };
    let mut r = Reader { bytes, at: 0 };
    let tag = r.take(1).ok_or_else(|| corrupted("empty record"))?[0];
    if tag != LAYOUT_TAG {
        return Err(corrupted(&format!("unknown record layout tag {tag}")));
    }
    let truncated = || corrupted("record is truncated");
    let stored_position = r.u64().ok_or_else(truncated)?;
    let version = r.u64().ok_or_else(truncated)?;
    let event_id = Uuid::from_slice(r.take(16).ok_or_else(truncated)?).map_err(|_| truncated())?;
    let recorded_at = micros(r.i64().ok_or_else(truncated)?).ok_or_else(|| corrupted("recorded_at out of range"))?;
    let occurred_at = micros(r.i64().ok_or_else(truncated)?).ok_or_else(|| corrupted("occurred_at out of range"))?;
    let schema_version = r.u32().ok_or_else(truncated)?;
    let stream_len = r.u16().ok_or_else(truncated)? as usize;
    let stream_id = r
        .str(stream_len)
        .ok_or_else(|| corrupted("stream id is truncated or not UTF-8"))?;
    let type_len = r.u16().ok_or_else(truncated)? as usize;
    let event_type = r
        .str(type_len)
        .ok_or_else(|| corrupted("event type is truncated or not UTF-8"))?;
    let data_len = r.u32().ok_or_else(truncated)? as usize;
    let data = r.take(data_len).ok_or_else(truncated)?.to_vec();
    let meta_len = r.u32().ok_or_else(truncated)? as usize;
    let metadata = r.take(meta_len).ok_or_else(truncated)?.to_vec();
    let hash: [u8; HASH_LEN] = r
        .take(HASH_LEN)
        .ok_or_else(truncated)?
        .try_into()
        .map_err(|_| truncated())?;
    if r.at != bytes.len() {
        return Err(corrupted("record has trailing bytes"));
    }
    if stored_position != position {
        return Err(corrupted(&format!("record says position {stored_position}")));
    }
    Ok(RecordedEvent {
        stream_id,
        version,
        position,
        event_id,
        event_type,
        schema_version,
        data,
        metadata,
        occurred_at,
        recorded_at,
        hash,
    })
}

/// Reads only the `recorded_at` of stored bytes, for "as of" reads that skip most records.
pub(crate) fn peek_recorded_at(bytes: &[u8]) -> Option<DateTime<Utc>> {
    let at = 1 + 8 + 8 + 16;
    micros(i64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

fn micros(us: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let slice = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(slice)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn str(&mut self, n: usize) -> Option<String> {
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `record_hash` is the hash the writer stores: what another store computes from the fields
    /// matches the bytes the embedded store wrote.
    #[test]
    fn record_hash_matches_the_encoding() {
        let at = DateTime::from_timestamp_micros(1_750_000_000_123_456).unwrap();
        let fields = RecordFields {
            position: 7,
            version: 2,
            event_id: Uuid::from_u128(42),
            recorded_at: at,
            occurred_at: at,
            schema_version: 3,
            stream_id: "hồ-sơ/1",
            event_type: "DossierReceived",
            data: br#"{"a":1}"#,
            metadata: b"{}",
        };
        let prev = [9; HASH_LEN];
        let mut bytes = Vec::new();
        let hash = encode_into(&fields, &prev, &mut bytes);
        let event = decode(7, &bytes).unwrap();
        assert_eq!(record_hash(&prev, &event), hash);
        assert_eq!(event.hash, hash);
    }
}
