//! The rules an event recorded by another store must keep to be written verbatim at the end of
//! this one ([`crate::ImportStore`]): every store checks them the same way, with the same words.
//! Why importing is not the desk's append path is in `docs/design.md`, "Copying between stores".

use chrono::{DateTime, Utc};

use crate::log::check_name;
use crate::{GENESIS_HASH, Limits, Position, RecordedEvent, StoreError, Version};

/// The refusal of an imported event: which event, and the rule it breaks.
pub(crate) fn refused(event: &RecordedEvent, rule: impl std::fmt::Display) -> StoreError {
    StoreError::Refused(format!(
        "the event at position {} (stream {}, version {}, id {}) cannot be imported: {rule}; nothing of its batch was written",
        event.position, event.stream_id, event.version, event.event_id
    ))
}

fn whole_micros(at: DateTime<Utc>) -> bool {
    at.timestamp_subsec_nanos().is_multiple_of(1_000)
}

/// Checks `event` against the end of the log it is imported into: `next_position` and the last
/// `recorded_at` there, and `stream_head`, the version and hash of its stream's last event
/// (`None`: the stream has none). Returns the hash its chain continues from. The event's own
/// hash is checked by the caller ([`check_imported_hash`]), which computes it while encoding the event.
pub fn check_imported(
    event: &RecordedEvent,
    next_position: Position,
    last_recorded_at: Option<DateTime<Utc>>,
    stream_head: Option<(Version, [u8; 32])>,
    limits: &Limits,
) -> Result<[u8; 32], StoreError> {
    if event.position != next_position {
        return Err(refused(
            event,
            format_args!("the log ends at position {next_position}, and imported events continue it without a gap"),
        ));
    }
    check_name(&event.stream_id)
        .map_err(|reason| refused(event, format_args!("its stream id is invalid: {reason}")))?;
    check_name(&event.event_type)
        .map_err(|reason| refused(event, format_args!("its event type is invalid: {reason}")))?;
    let size = event.data.len() + event.metadata.len();
    if size > limits.max_event_bytes {
        return Err(refused(
            event,
            format_args!(
                "it holds {size} bytes of data and metadata, over this store's limit of {}",
                limits.max_event_bytes
            ),
        ));
    }
    for (what, text) in [("data", &event.data), ("metadata", &event.metadata)] {
        if serde_json::from_slice::<&serde_json::value::RawValue>(text).is_err() {
            return Err(refused(event, format_args!("its {what} is not JSON text")));
        }
    }
    for (what, at) in [("recorded_at", event.recorded_at), ("occurred_at", event.occurred_at)] {
        if !whole_micros(at) {
            return Err(refused(
                event,
                format_args!("its {what} ({at}) is not a whole microsecond, as every store keeps it"),
            ));
        }
    }
    if let Some(last) = last_recorded_at.filter(|&last| event.recorded_at < last) {
        return Err(refused(
            event,
            format_args!(
                "its recorded_at ({}) is earlier than the last one in the log ({last}), and recorded_at never decreases along the log",
                event.recorded_at
            ),
        ));
    }
    let (expected_version, prev_hash) = match stream_head {
        Some((version, hash)) => (version + 1, hash),
        None => (0, GENESIS_HASH),
    };
    if event.version != expected_version {
        return Err(refused(
            event,
            format_args!("its stream's next version here is {expected_version}"),
        ));
    }
    Ok(prev_hash)
}

/// Checks that `computed`, the chain hash of `event` over its fields after its predecessor's
/// hash, is the hash it carries.
pub fn check_imported_hash(event: &RecordedEvent, computed: &[u8; 32]) -> Result<(), StoreError> {
    if *computed != event.hash {
        return Err(refused(
            event,
            "its hash does not match its fields and its stream's previous hash (altered, or not the successor of the event before it)",
        ));
    }
    Ok(())
}
