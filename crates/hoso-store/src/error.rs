//! The one error type of the store, grouped by how a caller reacts to it.

use uuid::Uuid;

use crate::{ExpectedVersion, Position, Version};

/// Everything that can go wrong in the store.
///
/// Callers react in four ways: fix the request (`InvalidStreamId`, `InvalidEventType`,
/// `EventTooLarge`, `TooManyEvents`, `DuplicateEventInAppend`, `EventIdReused`), reload and retry
/// (`Conflict`), retry the same request later (`Unavailable`), or stop and call an operator
/// (`Corrupted`, `Io`, `WritesRefused`, `UnsupportedFormat`, `Closed`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The expected version did not match the stream; nothing was written.
    #[error("version conflict on stream {stream}: expected {expected}, but the stream {}", describe_actual(*.actual))]
    Conflict {
        /// The stream appended to.
        stream: String,
        /// What the caller expected.
        expected: ExpectedVersion,
        /// The stream's actual version (`None`: the stream has no events).
        actual: Option<Version>,
    },
    /// An event id already stored is being appended again with different content or at a
    /// different place; a retry must resend exactly the same events.
    #[error("event id {event_id} was already used for a different event ({reason})")]
    EventIdReused {
        /// The reused event id.
        event_id: Uuid,
        /// What differs from the stored event.
        reason: String,
    },
    /// The same event id appears twice in one append.
    #[error("event id {event_id} appears more than once in this append")]
    DuplicateEventInAppend {
        /// The repeated event id.
        event_id: Uuid,
    },
    /// An event's data plus metadata is larger than the configured limit.
    #[error("event {event_id} is {size} bytes of data and metadata; the limit is {max} bytes")]
    EventTooLarge {
        /// The oversized event.
        event_id: Uuid,
        /// Its size in bytes.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// One append carries more events than the configured limit.
    #[error("an append may carry at most {max} events; this one has {count}")]
    TooManyEvents {
        /// Events in the append.
        count: usize,
        /// The configured limit.
        max: usize,
    },
    /// The stream id is empty, too long or contains control characters.
    #[error("invalid stream id: {reason}")]
    InvalidStreamId {
        /// Which rule the id breaks.
        reason: String,
    },
    /// The event type is empty, too long or contains control characters.
    #[error("invalid event type for event {event_id}: {reason}")]
    InvalidEventType {
        /// The event with the bad type.
        event_id: Uuid,
        /// Which rule the type breaks.
        reason: String,
    },
    /// Stored bytes do not decode or do not match their hash chain.
    #[error("store corrupted at position {position}: {reason}")]
    Corrupted {
        /// Global position of the damaged record (or of the index entry pointing to it).
        position: Position,
        /// What does not match.
        reason: String,
    },
    /// The store was written by a format this build does not know.
    #[error("the store on disk has format version {found}; this build reads format version {supported} only")]
    UnsupportedFormat {
        /// Format version found on disk.
        found: u32,
        /// Format version this build writes and reads.
        supported: u32,
    },
    /// A write or flush failed earlier; the store refuses writes until space is back (after a
    /// write that failed for lack of space) or until it is reopened (after any other failure,
    /// because it cannot tell what reached the disk).
    #[error("the store refuses writes after a disk failure: {first_failure}")]
    WritesRefused {
        /// The failure that poisoned the store and what the operator must do about it.
        first_failure: String,
    },
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
    /// The disk or the storage engine failed.
    #[error("storage I/O failed: {0}")]
    Io(String),
    /// The database the log is kept in cannot be reached or lost the connection (a restart, a
    /// failover): the same request may succeed later. An append that failed so may or may not
    /// have been committed; retried with the same event ids it is written at most once.
    #[error("the store's database is unavailable: {0}")]
    Unavailable(String),
    /// An operator's request on store files that is refused as given (a backup into another
    /// store's backup, a restore over a store); the message says what to give instead. Nothing
    /// was changed.
    #[error("{0}")]
    Refused(String),
}

fn describe_actual(actual: Option<Version>) -> String {
    match actual {
        None => "does not exist".to_owned(),
        Some(v) => format!("is at version {v}"),
    }
}
