//! Opening a log: the format check, and recovery of the log's end from the segments beyond
//! what the indexes hold, in named phases (see `recover`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::core::{FORMAT_VERSION, INDEX_DAMAGED, SCAN_BUFFER, damaged_ids};
use crate::filter::KeyFilter;
use crate::idtable::IdTable;
use crate::kv::{self, Indexed, Kv};
use crate::memtable::{Memtable, Recent};
use crate::record;
use crate::segment::{Next, SegmentReader, Segments};
use crate::{Position, StoreError};

/// Checks the format version, or writes it into a new store.
pub(crate) fn check_format<K: Kv>(kv: &K) -> Result<(), StoreError> {
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

/// A filter of the stream ids in the index engine (one pass over its stream index, on open);
/// [`add_recovered_streams`] adds those recovery found beyond it.
pub(crate) fn indexed_streams<K: Kv>(kv: &K) -> Result<KeyFilter, StoreError> {
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
    Ok(streams)
}

/// Adds to the filter of [`indexed_streams`] the stream ids recovery found beyond the index.
pub(crate) fn add_recovered_streams(streams: &mut KeyFilter, memtable: &Memtable) {
    for stream_id in memtable.stream_ids() {
        streams.insert(stream_id);
    }
}

/// What recovery found: the end of the log and the index entries the engine lacks.
pub(crate) struct Recovered {
    pub(crate) memtable: Memtable,
    pub(crate) next_position: Position,
    pub(crate) last_recorded_at: Option<DateTime<Utc>>,
    /// The segment the writer goes on in, and its length.
    pub(crate) segment: u32,
    pub(crate) segment_len: u64,
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
/// anywhere else refuses the open. In phases: the index's end, the segments' list, the ids
/// the id tables lack, where the scan starts, the scan, the cut of the tail and its fsync.
pub(crate) fn recover<S: Segments, K: Kv>(
    segments: &S,
    kv: &K,
    tables: &[IdTable],
    unfiled: Vec<(Position, Vec<Uuid>)>,
) -> Result<Recovered, StoreError> {
    let indexed = index_end(kv)?;
    let list = segment_list(segments, indexed.as_ref())?;
    let (indexed_end, indexed_resume, last_recorded_at) = match indexed {
        Some(i) => (i.next_position, i.resume, i.last_recorded_at),
        None => (0, (list[0], 0), None),
    };
    let (ids_end, ids_resume) = tables.last().map_or((0, (list[0], 0)), |t| (t.end(), t.resume));
    let (batch_ids, covered) = unfiled_ids(kv, unfiled, ids_end, indexed_end)?;
    // The scan starts at the end of the engine's index, or earlier if some ids between the
    // last id table and it are missing (a table that was damaged and dropped on open): then
    // records before `indexed_end` give their ids only.
    let (position, (segment, offset)) = if covered < indexed_end && ids_end < indexed_end {
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
    let start = ScanStart {
        position,
        segment,
        offset,
        indexed_end,
        ids_end,
        last_recorded_at,
    };
    let scanned = scan(segments, &list, start, &mut memtable)?;
    let (segment_now, segment_len) = cut_tail(segments, &list, &scanned)?;
    // The tail found may never have been fsync'd (the process died before its group was):
    // make it durable before anything is read or acknowledged on top of it.
    for &s in list.iter().filter(|&&s| s >= segment) {
        segments.sync(s)?;
    }
    Ok(Recovered {
        memtable,
        next_position: scanned.next_position,
        last_recorded_at: scanned.last_recorded_at,
        segment: segment_now,
        segment_len,
    })
}

/// Phase 1: the end of the index engine's index, as its last batch recorded it.
fn index_end<K: Kv>(kv: &K) -> Result<Option<Indexed>, StoreError> {
    match kv.get(kv::INDEXED_KEY)? {
        Some(bytes) => Ok(Some(Indexed::decode(&bytes).ok_or_else(|| StoreError::Corrupted {
            position: 0,
            reason: format!("{INDEX_DAMAGED}the index end record is damaged"),
        })?)),
        None => Ok(None),
    }
}

/// Phase 2: the segments, checked to follow each other without a gap; a new log gets its first.
fn segment_list<S: Segments>(segments: &S, indexed: Option<&Indexed>) -> Result<Vec<u32>, StoreError> {
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
    Ok(list)
}

/// Phase 3: the ids of `ids_end..indexed_end`, which no id table holds, from the unfiled-id
/// files, one frame per indexer batch (stores written before those files have them in the
/// engine, one entry per batch; frames that a table already holds may be left from before a
/// crash), and the position up to which they cover that range without a gap.
fn unfiled_ids<K: Kv>(
    kv: &K,
    unfiled: Vec<(Position, Vec<Uuid>)>,
    ids_end: Position,
    indexed_end: Position,
) -> Result<(Vec<(Uuid, Position)>, Position), StoreError> {
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
    Ok((batch_ids, covered))
}

/// Where the scan starts and what the indexes already hold.
struct ScanStart {
    position: Position,
    segment: u32,
    offset: u64,
    indexed_end: Position,
    ids_end: Position,
    last_recorded_at: Option<DateTime<Utc>>,
}

/// What the scan found: the end of the intact log and what lies past it.
struct Scanned {
    next_position: Position,
    last_recorded_at: Option<DateTime<Utc>>,
    /// The segment and offset where the intact log ends.
    end: (u32, u64),
    /// The damaged entry the end was found at, if any: whether it is whole, and where it ends.
    entry: Option<(bool, u64)>,
}

/// Phase 4: reads every entry from `start` to the end of the log, putting the index entries of
/// records past the engine's index into the memtable (and the ids of records past the id
/// tables), and finds where the intact log ends.
fn scan<S: Segments>(
    segments: &S,
    list: &[u32],
    start: ScanStart,
    memtable: &mut Memtable,
) -> Result<Scanned, StoreError> {
    let last = *list.last().ok_or_else(|| StoreError::Corrupted {
        position: start.position,
        reason: "the log has no segment".to_owned(),
    })?;
    let ScanStart {
        mut position,
        segment,
        offset,
        indexed_end,
        ids_end,
        mut last_recorded_at,
    } = start;
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
    let (end_segment, end_offset, entry) = cut.unwrap_or_else(|| {
        let (segment, offset) = reader.at();
        (segment, offset, None)
    });
    Ok(Scanned {
        next_position: position,
        last_recorded_at,
        end: (end_segment, end_offset),
        entry,
    })
}

/// Phase 5: cuts off whatever lies past the end of the intact log (zeros written ahead of the
/// writer, or a torn write), after keeping what is not zeros in quarantine, so that nothing
/// stale can ever be read as an entry after new ones. Segments after a torn tail hold nothing
/// intact (the scan checked): they are emptied, and the writer goes on in the last one.
/// Returns the segment the writer goes on in and its length.
fn cut_tail<S: Segments>(segments: &S, list: &[u32], scanned: &Scanned) -> Result<(u32, u64), StoreError> {
    let (end_segment, end_offset) = scanned.end;
    let later: Vec<u32> = list.iter().copied().filter(|&s| s > end_segment).collect();
    quarantine_tail(
        segments,
        scanned.next_position,
        (end_segment, end_offset),
        scanned.entry,
        &later,
    )?;
    if segments.len(end_segment)? > end_offset {
        segments.truncate(end_segment, end_offset)?;
    }
    for &s in &later {
        segments.truncate(s, 0)?;
    }
    Ok(match later.last() {
        Some(&last) => (last, 0),
        None => (end_segment, end_offset),
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
