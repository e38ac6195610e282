//! hoso-store: the append-only event log that every dossier's history is kept in.
//!
//! What it is: streams of events (one per dossier), each appended atomically with an
//! expected-version check, idempotent by event id, ordered by a gap-free global position
//! (`$all`), chained by SHA-256 per stream, acknowledged only once fsync'd, and readable
//! forward, backward, "as of" a recorded-at cut-off, or as a catch-up-then-live subscription.
//! The [`EventStore`] trait is what the rest of hoso uses; [`MemoryStore`] and [`SledStore`]
//! implement it, and `conformance` (feature `conformance`) is the one test suite every implementation must pass.
//! [`backup`] and [`restore`] copy a [`SledStore`]'s directory while a server appends to it;
//! [`copy`] copies the log of any store into an [`ImportStore`] (another kind of store), event
//! by event, verbatim.
//!
//! What it is not: it knows nothing of dossiers, commands or gRPC. Event data and metadata are
//! opaque JSON to it; their schema, versions and upcasters belong to `hoso-domain`.
//!
//! The on-disk layout, the commit and fsync protocol, and what recovery assumes are in
//! `docs/design.md` at the root of the repository.

mod background;
mod backup;
mod copy;
mod core;
mod error;
mod filter;
mod head;
mod idtable;
mod import;
mod kv;
mod log;
mod memtable;
mod metrics;
mod record;
mod recovery;
mod segment;
mod sled_kv;
mod store;
mod subscription;
mod verify;
mod writer;

#[cfg(feature = "conformance")]
pub mod conformance;

use std::fmt;
use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use backup::{BackupReport, MANIFEST, RestoreReport, backup, restore};
pub use copy::{CopyReport, CopyStep, copy};
pub use error::StoreError;
pub use head::{EMPTY_HEAD_HASH, head_hash, next_head_hash, position_at};
pub use import::{check_imported, check_imported_hash};
pub use metrics::WriteMetrics;
pub use record::{GENESIS_HASH, record_hash};
pub use store::{MemoryStore, SledOptions, SledStore};
pub use subscription::Subscription;

/// A gap-free global position in `$all`, starting at 0.
pub type Position = u64;
/// A stream's version: the index of an event within its stream, starting at 0.
pub type Version = u64;

/// The stream state an append expects; a mismatch fails the append and writes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the stream's state.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream's last event must have exactly this version.
    Exact(Version),
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any version"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::StreamExists => f.write_str("an existing stream"),
            ExpectedVersion::Exact(v) => write!(f, "version {v}"),
        }
    }
}

/// JSON text, already serialized: the data or metadata of an event to append.
///
/// Callers serialize their own types straight to text ([`Json::of`]), so an append costs no
/// intermediate `serde_json::Value`; the text is known to be valid JSON and is stored as is.
/// Two `Json` are equal when their texts are.
#[derive(Debug, Clone)]
pub struct Json(Box<serde_json::value::RawValue>);

impl Json {
    /// Serializes `value`. Fails only for what JSON cannot express, such as a map with
    /// non-string keys.
    pub fn of<T: serde::Serialize + ?Sized>(value: &T) -> Result<Json, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(Json)
    }

    /// Takes JSON text as it is, after checking that it is JSON.
    pub fn parse(text: String) -> Result<Json, serde_json::Error> {
        serde_json::value::RawValue::from_string(text).map(Json)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// Whether `stored` JSON text is the same JSON as this: the same text, or a text that parses
    /// to an equal value (another version of a caller may order an object's keys differently or
    /// space them out). What a retry of a stored event is compared by.
    pub fn is_stored_as(&self, stored: &[u8]) -> bool {
        let text = self.as_str().as_bytes();
        stored == text
            || matches!(
                (serde_json::from_slice::<serde_json::Value>(stored), serde_json::from_slice::<serde_json::Value>(text)),
                (Ok(a), Ok(b)) if a == b
            )
    }

    /// The text parsed into a value.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_str(self.as_str()).expect("a Json holds valid JSON text")
    }
}

impl PartialEq for Json {
    fn eq(&self, other: &Json) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Json {}

impl From<serde_json::Value> for Json {
    fn from(value: serde_json::Value) -> Json {
        Json::of(&value).expect("a serde_json::Value always serializes")
    }
}

/// An event to append. Its id makes retries idempotent: appending the same events again
/// returns the original result and writes nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Unique id of the event, chosen by the caller (derived from a command id for retries).
    pub event_id: Uuid,
    /// The persisted type name, e.g. `DossierReceived`.
    pub event_type: String,
    /// Version of the data's schema, for upcasting old events.
    pub schema_version: u32,
    /// The event's data.
    pub data: Json,
    /// Who, where and why: actor, desk, correlation and causation ids.
    pub metadata: Json,
    /// Business time, supplied by the caller; stored to the microsecond.
    pub occurred_at: DateTime<Utc>,
}

/// An event as stored, with its full envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// The stream it belongs to.
    pub stream_id: String,
    /// Its version within the stream.
    pub version: Version,
    /// Its position in `$all`.
    pub position: Position,
    /// The caller's event id.
    pub event_id: Uuid,
    /// The persisted type name.
    pub event_type: String,
    /// Version of the data's schema.
    pub schema_version: u32,
    /// The data, as the JSON text that was stored.
    pub data: Vec<u8>,
    /// The metadata, as the JSON text that was stored.
    pub metadata: Vec<u8>,
    /// Business time, as supplied.
    pub occurred_at: DateTime<Utc>,
    /// When the store committed it: assigned by the store, strictly increasing per append.
    pub recorded_at: DateTime<Utc>,
    /// SHA-256 over the previous record's hash in the stream and this record's bytes.
    pub hash: [u8; 32],
}

impl RecordedEvent {
    /// The data parsed as JSON.
    pub fn data_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.data)
    }

    /// The metadata parsed as JSON.
    pub fn metadata_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.metadata)
    }

    /// The chain hash in lowercase hexadecimal.
    pub fn hash_hex(&self) -> String {
        self.hash.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What an append did: the same versions and positions for the first attempt and for every
/// retry of it, and whether this call wrote them or found them already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    /// The stream's version after the append: the version of its last event, `None` if the
    /// stream still has none (an empty append to a new stream).
    pub current_version: Option<Version>,
    /// Positions of the first and last appended events in `$all`; `None` for an empty append.
    pub positions: Option<(Position, Position)>,
    /// True when every event was already stored by an earlier identical append and this call
    /// wrote nothing; false for the one call that wrote them (and for an empty append). Of
    /// identical appends racing each other, exactly one is answered with false.
    pub already_stored: bool,
}

/// Which way a stream is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first, from `from` upwards.
    Forward,
    /// Newest first, from `from` downwards.
    Backward,
}

/// How to read one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRead {
    /// First version to return (forward: lowest, backward: highest).
    pub from: Version,
    /// Reading direction.
    pub direction: Direction,
    /// At most this many events.
    pub max_count: usize,
    /// Only events recorded at or before this instant: the stream as it stood then.
    pub as_of: Option<DateTime<Utc>>,
}

impl StreamRead {
    /// The whole stream, oldest first.
    pub fn forward() -> Self {
        StreamRead {
            from: 0,
            direction: Direction::Forward,
            max_count: usize::MAX,
            as_of: None,
        }
    }

    /// The whole stream, newest first.
    pub fn backward() -> Self {
        StreamRead {
            from: Version::MAX,
            direction: Direction::Backward,
            max_count: usize::MAX,
            as_of: None,
        }
    }

    /// Starts at `version`.
    pub fn from(mut self, version: Version) -> Self {
        self.from = version;
        self
    }

    /// Returns at most `n` events.
    pub fn max_count(mut self, n: usize) -> Self {
        self.max_count = n;
        self
    }

    /// Reads the stream as it stood at `cutoff` (by `recorded_at`).
    pub fn as_of(mut self, cutoff: DateTime<Utc>) -> Self {
        self.as_of = Some(cutoff);
        self
    }
}

/// What `verify` walks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyScope {
    /// Every record in `$all` order, with both indexes.
    All,
    /// One stream, through its index.
    Stream(String),
}

/// The outcome of `verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records found intact before the first problem (or in all).
    pub records_checked: u64,
    /// Streams seen.
    pub streams_checked: u64,
    /// The first record whose bytes, chain or indexes do not match; `None` if all is well.
    pub first_problem: Option<Problem>,
}

/// A record that failed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Its global position.
    pub position: Position,
    /// Its stream, when the record could be decoded.
    pub stream_id: Option<String>,
    /// Its version, when known.
    pub version: Option<Version>,
    /// What does not match.
    pub reason: String,
}

impl VerifyReport {
    /// A report of `records_checked` records in `streams_checked` streams.
    pub fn new(records_checked: u64, streams_checked: u64, first_problem: Option<Problem>) -> VerifyReport {
        VerifyReport {
            records_checked,
            streams_checked,
            first_problem,
        }
    }
}

impl Problem {
    /// A problem at `position`, in a stream and at a version where they are known.
    pub fn new(
        position: Position,
        stream_id: Option<&str>,
        version: Option<Version>,
        reason: impl Into<String>,
    ) -> Problem {
        Problem {
            position,
            stream_id: stream_id.map(str::to_owned),
            version,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record at position {}", self.position)?;
        if let Some(stream) = &self.stream_id {
            write!(f, " (stream {stream}")?;
            if let Some(v) = self.version {
                write!(f, ", version {v}")?;
            }
            f.write_str(")")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// Bytes that recovery cut off the end of the log because they were not a whole, intact entry,
/// kept in a quarantine file beside the log (`<store>/quarantine/`) until an operator removes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// The quarantine file's name.
    pub file: String,
    /// The position the first cut entry would have had: the log's head after the cut.
    pub position: Position,
    /// The segment file the bytes were cut from.
    pub segment: String,
    /// Their byte offset in that segment.
    pub offset: u64,
    /// How many bytes were cut (up to the last byte that was not zero).
    pub bytes: u64,
    /// `false`: a torn write, which stopped mid-entry and was therefore never acknowledged;
    /// `true`: a whole entry that does not match its CRC (or one followed by more data), which
    /// may have been acknowledged, so an acknowledged append may be lost (docs/design.md,
    /// "Recovery", tells them apart).
    pub may_have_been_acknowledged: bool,
}

impl Quarantined {
    /// The file name recovery gives the bytes it cuts: everything [`Quarantined`] says, so that
    /// a later open (and an operator's `ls`) reads it back from the name.
    pub(crate) fn file_name(segment: &str, offset: u64, position: Position, acknowledged: bool) -> String {
        let kind = if acknowledged { "damaged" } else { "torn" };
        format!("{segment}.at-{offset}.position-{position}.{kind}")
    }

    /// Reads a quarantine file's name back (`None` for a file recovery did not name).
    pub(crate) fn parse(file: &str, bytes: u64) -> Option<Quarantined> {
        let (rest, kind) = file.rsplit_once('.')?;
        let (rest, position) = rest.rsplit_once(".position-")?;
        let (segment, offset) = rest.rsplit_once(".at-")?;
        Some(Quarantined {
            file: file.to_owned(),
            position: position.parse().ok()?,
            segment: segment.to_owned(),
            offset: offset.parse().ok()?,
            bytes,
            may_have_been_acknowledged: match kind {
                "damaged" => true,
                "torn" => false,
                _ => return None,
            },
        })
    }
}

impl fmt::Display for Quarantined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.may_have_been_acknowledged {
            "a damaged whole entry that may have been acknowledged"
        } else {
            "a torn write that was never acknowledged"
        };
        write!(
            f,
            "{} bytes cut from byte {} of {} at position {} ({what}), kept in quarantine/{}",
            self.bytes, self.offset, self.segment, self.position, self.file
        )
    }
}

/// Limits that protect the store from oversized requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest event, data plus metadata as JSON text, in bytes. Default 1 MiB.
    pub max_event_bytes: usize,
    /// Most events in one append. Default 1,000.
    pub max_events_per_append: usize,
}

impl Limits {
    /// Checks an append's stream id and events against these limits and the naming rules: what
    /// every store refuses before it looks at the stream, with the same errors in the same order.
    pub fn check_append(&self, stream_id: &str, events: &[NewEvent]) -> Result<(), StoreError> {
        check_stream_id(stream_id)?;
        log::check_events(self, events)
    }
}

/// Checks a stream id: 1 to 255 bytes of UTF-8 without control characters.
pub fn check_stream_id(stream_id: &str) -> Result<(), StoreError> {
    log::check_name(stream_id).map_err(|reason| StoreError::InvalidStreamId { reason })
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_event_bytes: 1 << 20,
            max_events_per_append: 1_000,
        }
    }
}

/// An append-only log of event streams. Implementations are cheap to clone (a shared handle).
///
/// Every read sees only durable events: an event is visible once its append was acknowledged.
pub trait EventStore: Clone + Send + Sync + 'static {
    /// Appends `events` to `stream_id` atomically if the stream is at `expected`.
    ///
    /// Returns once the events are on stable storage. If every event id is already stored by
    /// one earlier append with the same content (JSON compared as values, so key order and
    /// spacing do not matter), returns that append's versions and positions with
    /// [`AppendResult::already_stored`] set and writes nothing, whatever the stream's version is
    /// now.
    fn append(
        &self,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = Result<AppendResult, StoreError>> + Send;

    /// Reads one stream; an unknown stream reads as empty.
    fn read_stream(
        &self,
        stream_id: &str,
        read: StreamRead,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// Reads up to `max_count` events of `$all` from position `from` on.
    fn read_all(
        &self,
        from: Position,
        max_count: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, StoreError>> + Send;

    /// The event with this id, if stored.
    fn event_by_id(&self, event_id: Uuid) -> impl Future<Output = Result<Option<RecordedEvent>, StoreError>> + Send;

    /// The version of the stream's last event, `None` if it has none.
    fn stream_version(&self, stream_id: &str) -> impl Future<Output = Result<Option<Version>, StoreError>> + Send;

    /// The position after the last durable event: the number of events in `$all`.
    fn head(&self) -> Position;

    /// The store's id, made when it was created and kept with it (`<store>/store-id`): what a
    /// projection snapshot names to say which log it was folded from.
    fn store_id(&self) -> Uuid;

    /// A watch of [`EventStore::head`] that changes after every durable append.
    fn watch_head(&self) -> tokio::sync::watch::Receiver<Position>;

    /// Why appends are refused and what the operator must do, `None` while they are accepted:
    /// after a write or fsync failure the store refuses appends, until space is back (a write
    /// that failed for lack of space) or until it is reopened (any other failure).
    fn write_refusal(&self) -> Option<String>;

    /// What recovery has cut off the end of the log and kept in quarantine, oldest first; empty
    /// while no quarantine file is left.
    fn quarantined(&self) -> Vec<Quarantined>;

    /// The writer's batch-size and fsync-time histograms, for `/metrics`; `None` for a store
    /// that does not measure them.
    fn write_metrics(&self) -> Option<WriteMetrics> {
        None
    }

    /// Durable events whose index entries are not written yet (the background indexer's
    /// backlog), `None` for a store without one.
    fn index_backlog(&self) -> Option<u64> {
        None
    }

    /// Checks records, chains and indexes, and reports the first record that does not match.
    fn verify(&self, scope: VerifyScope) -> impl Future<Output = Result<VerifyReport, StoreError>> + Send;

    /// Every event from `from` on, first those already stored, then live ones as they become
    /// durable, in `$all` order with no gap and no duplicate.
    fn subscribe_all(&self, from: Position) -> Subscription<Self> {
        Subscription::new(self.clone(), from)
    }
}

/// A store that can take events recorded by another store verbatim: what [`copy`] writes with,
/// to move a log between kinds of store (`hoso copy`). Not the desk's append path: an import
/// keeps the source's positions, versions, ids, `recorded_at` and hashes instead of assigning
/// them, and is meant for a store no server is using (docs/design.md, "Copying between stores").
pub trait ImportStore: EventStore {
    /// Writes `events`, which continue this log from its head in position order, exactly as
    /// they are, once each has passed [`check_imported`] and [`check_imported_hash`] against
    /// the log and the events of the batch before it and its id is stored nowhere yet. All of
    /// the batch is written or none of it (a refusal is [`StoreError::Refused`] naming the
    /// event and the rule); once this returns, it is durable. Returns the new head.
    fn import(&self, events: Vec<RecordedEvent>) -> impl Future<Output = Result<Position, StoreError>> + Send;
}
