//! Verification: walks the segments (or one stream through its index) and checks every
//! entry's CRC, every record's bytes against its hash chain, and that the indexes point at
//! the right records.

use std::collections::HashMap;

use crate::core::{CHUNK, Core, SCAN_BUFFER};
use crate::kv::{self, Indexed, Kv, StreamEntry};
use crate::record::{self, GENESIS_HASH};
use crate::segment::{self, ENTRY_HEADER, Location, Next, SegmentReader, Segments};
use crate::{Position, Problem, RecordedEvent, StoreError, VerifyReport, Version};

/// Walks `$all` in order through the segments: positions gap-free, each entry and record
/// intact, each stream's versions consecutive and chained, and every index pointing at it.
pub(crate) fn verify_all<S: Segments, K: Kv>(core: &Core<S, K>, head: Position) -> Result<VerifyReport, StoreError> {
    let indexed = match core.kv.get(kv::INDEXED_KEY)? {
        Some(bytes) => Indexed::decode(&bytes).map_or(0, |i| i.next_position),
        None => 0,
    };
    let mut streams: HashMap<String, (Version, [u8; 32])> = HashMap::new();
    let Some(&first) = core.segments.list()?.first() else {
        return Ok(VerifyReport::new(0, 0, None));
    };
    let mut reader = SegmentReader::new(&core.segments, first, 0, SCAN_BUFFER);
    let mut expected = 0;
    while expected < head {
        let checked = match reader.next()? {
            Next::Entry { loc, record, crc_ok } => {
                let chain = |stream_id: &str| streams.get(stream_id).copied().unwrap_or((0, GENESIS_HASH));
                check_record(core, expected, loc, record, crc_ok, indexed, chain)?
            }
            Next::Incomplete {
                segment,
                offset,
                reason,
            } => {
                let reason = format!("{reason} at byte {offset} of {}", core.segments.name(segment));
                Err(Problem::new(expected, None, None, reason))
            }
            Next::End => Err(Problem::new(
                expected,
                None,
                None,
                "the log ends before its durable head",
            )),
        };
        match checked {
            Ok(record) => {
                streams.insert(record.stream_id, (record.version + 1, record.hash));
            }
            Err(p) => return Ok(VerifyReport::new(expected, streams.len() as u64, Some(p))),
        }
        expected += 1;
    }
    Ok(VerifyReport::new(expected, streams.len() as u64, None))
}

/// Walks one stream through its index.
pub(crate) fn verify_stream<S: Segments, K: Kv>(
    core: &Core<S, K>,
    stream_id: &str,
    head: Position,
) -> Result<VerifyReport, StoreError> {
    let indexed = match core.kv.get(kv::INDEXED_KEY)? {
        Some(bytes) => Indexed::decode(&bytes).map_or(0, |i| i.next_position),
        None => 0,
    };
    let mut next = (0, GENESIS_HASH);
    let mut checked = 0;
    let mut lo = 0;
    loop {
        let entries = core.stream_entries(stream_id, lo, u64::MAX, false, CHUNK, head)?;
        for &(version, entry) in &entries {
            let StreamEntry { position, loc, .. } = entry;
            let (bytes, crc_ok) = match segment::read_entry(&core.segments, position, loc) {
                Ok(read) => read,
                Err(StoreError::Corrupted { reason, .. }) => {
                    let p = Problem::new(position, Some(stream_id), Some(version), reason);
                    return Ok(VerifyReport::new(checked, 1, Some(p)));
                }
                Err(other) => return Err(other),
            };
            match check_record(core, position, loc, &bytes[ENTRY_HEADER..], crc_ok, indexed, |_| next)? {
                Ok(record) if record.stream_id == stream_id => {
                    next = (record.version + 1, record.hash);
                    checked += 1;
                }
                Ok(record) => {
                    let reason = format!("the record belongs to stream {}", record.stream_id);
                    let p = Problem::new(position, Some(stream_id), Some(version), reason);
                    return Ok(VerifyReport::new(checked, 1, Some(p)));
                }
                Err(p) => return Ok(VerifyReport::new(checked, 1, Some(p))),
            }
        }
        match entries.last() {
            Some(&(version, _)) if entries.len() == CHUNK => lo = version + 1,
            _ => break,
        }
    }
    Ok(VerifyReport::new(checked, u64::from(checked > 0), None))
}

/// Checks one stored record against the chain state of its stream (`chain` gives the
/// expected version and the previous hash) and against the indexes.
fn check_record<S: Segments, K: Kv>(
    core: &Core<S, K>,
    position: Position,
    loc: Location,
    bytes: &[u8],
    crc_ok: bool,
    indexed: Position,
    chain: impl FnOnce(&str) -> (Version, [u8; 32]),
) -> Result<Result<RecordedEvent, Problem>, StoreError> {
    let record = match record::decode(position, bytes) {
        Ok(record) => record,
        Err(StoreError::Corrupted { reason, .. }) => return Ok(Err(Problem::new(position, None, None, reason))),
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
        return Ok(Err(Problem::new(position, stream, Some(record.version), reason)));
    }
    let (body, stored_hash) = record::split_hash(bytes).expect("decoded records hold a hash");
    if record::chain_hash(&prev_hash, body) != stored_hash {
        let reason = "the record's bytes do not match its hash (altered or damaged)";
        return Ok(Err(Problem::new(position, stream, Some(record.version), reason)));
    }
    if !crc_ok {
        let reason = format!(
            "the entry at byte {} of {} does not match its CRC",
            loc.offset,
            core.segments.name(loc.segment)
        );
        return Ok(Err(Problem::new(position, stream, Some(record.version), reason)));
    }
    // The engine keeps the hash of the last record of each run only.
    let indexed_here = |entry: StreamEntry| {
        entry.position == position && entry.loc == loc && entry.hash.is_none_or(|h| h == stored_hash)
    };
    if !core
        .stream_entry(&record.stream_id, record.version, Position::MAX)?
        .is_some_and(indexed_here)
    {
        let reason = "the stream index does not point to this record";
        return Ok(Err(Problem::new(position, stream, Some(record.version), reason)));
    }
    // The walk checks where each position is; the id index need only give the position.
    if core.event_position(record.event_id, Position::MAX)?.0 != Some(position) {
        let reason = "the event id index does not point to this record";
        return Ok(Err(Problem::new(position, stream, Some(record.version), reason)));
    }
    if position.is_multiple_of(kv::SPARSE) && position < indexed {
        let sparse = core.kv.get(&kv::sparse_key(position))?;
        if sparse.as_deref().and_then(Location::decode) != Some(loc) {
            let reason = "the sparse position index does not point to this record";
            return Ok(Err(Problem::new(position, stream, Some(record.version), reason)));
        }
    }
    Ok(Ok(record))
}
