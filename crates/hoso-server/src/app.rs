//! The server's core, independent of gRPC plumbing: load a dossier, run a desk command through
//! the domain and append its events idempotently, replay a history.
//!
//! A dossier's stream is `dossier-<receipt code>`; its id is the event id of its
//! `DossierReceived` event. Event ids derive from the client's command id (UUID v5 of the command
//! id and the event's index), so a retried command finds its events already stored and gets the
//! original outcome back, even across a restart; the store's own idempotency covers two retries
//! racing each other, and tells us which of them wrote. The first event's metadata keeps a
//! fingerprint of the request (`request_sha256`), so that a command id sent again with another
//! request is refused rather than answered with the first request's outcome.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use hoso_api::convert::{DeskCommand, DossierKey};
use hoso_domain::{
    CalendarRef, Command, Context, DossierEvent, DossierState, GreenLane, ProcedurePolicy, ReceiptCode, STREAM_PREFIX,
    decide,
};
use hoso_store::{EventStore, ExpectedVersion, Json, NewEvent, RecordedEvent, StoreError, StreamRead};
use sha2::{Digest, Sha256};
use tracing::Instrument as _;
use tracing::field::Empty;
use uuid::Uuid;

use crate::auth::{Action, Caller, authorize};
use crate::error::ServiceError;
use crate::metadata::EventMetadata;
use crate::reference::ReferenceData;

/// How often a command without an expected version is decided again when another desk wrote to
/// the dossier in between.
const MAX_ATTEMPTS: usize = 5;

/// Names the encoding [`request_fingerprint`] hashes; change it whenever a command's fields
/// change, so that fingerprints of the old encoding are compared no longer (the test
/// `request_fingerprints_are_pinned` fails until then).
const FINGERPRINT_SCHEME: &str = "hoso-command-debug-v1";

/// `<scheme>:<SHA-256>` of a domain command as the desk sent it: the hash, in lowercase
/// hexadecimal, of its canonical text (the derived `Debug` form, which lists every field in
/// declaration order) without the officer, which the server fills in from the token.
pub fn request_fingerprint(command: &Command) -> String {
    let mut command = command.clone();
    command.set_officer("");
    let hash: String = Sha256::digest(format!("{command:?}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{FINGERPRINT_SCHEME}:{hash}")
}

/// Whether a recorded fingerprint shows another request: only fingerprints of the current
/// scheme can be compared; none (recorded before fingerprints) or another scheme's pass.
fn other_request(recorded: Option<&str>, fingerprint: &str) -> bool {
    let scheme = |f: &str| f.split_once(':').map(|(scheme, _)| scheme.to_owned());
    recorded.is_some_and(|recorded| scheme(recorded) == scheme(fingerprint) && recorded != fingerprint)
}

/// The id of the `index`-th event written by command `command_id`.
pub fn event_id(command_id: Uuid, index: usize) -> Uuid {
    Uuid::new_v5(&command_id, format!("event-{index}").as_bytes())
}

/// The `index`-th event a command decided, as the store takes it: its id derived from the
/// command's, its data serialized straight to JSON text, the command's metadata.
pub(crate) fn new_event(
    command_id: Uuid,
    index: usize,
    event: &DossierEvent,
    metadata: &EventMetadata,
) -> Result<NewEvent, ServiceError> {
    let json = |what: &str, value: Result<Json, serde_json::Error>| {
        value.map_err(|err| ServiceError::Internal(format!("cannot write an event's {what} as JSON: {err}")))
    };
    Ok(NewEvent {
        event_id: event_id(command_id, index),
        event_type: event.event_type().to_owned(),
        schema_version: event.schema_version(),
        data: json("data", Json::of(&event.data()))?,
        metadata: json("metadata", Json::of(metadata))?,
        occurred_at: event.occurred_at(),
    })
}

/// A dossier as loaded from its stream.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Its stream.
    pub stream_id: String,
    /// Its id (the receipt event's id); `None` before receipt.
    pub dossier_id: Option<Uuid>,
    /// Its events, oldest first.
    pub records: Vec<RecordedEvent>,
    /// The events decoded, in the same order.
    pub events: Vec<DossierEvent>,
    /// The state folded from them.
    pub state: DossierState,
}

impl Loaded {
    /// The dossier's version (the last event's), `None` before receipt.
    pub fn version(&self) -> Option<u64> {
        self.records.last().map(|r| r.version)
    }
}

/// What a desk command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The dossier's id.
    pub dossier_id: Uuid,
    /// Its receipt code.
    pub receipt_code: String,
    /// Its version after the command.
    pub version: u64,
    /// The global position of the command's last event.
    pub position: u64,
    /// The due date after the command.
    pub due_at: Option<DateTime<Utc>>,
    /// The portal status code after the command.
    pub status: u8,
    /// Whether the command had been recorded before (a retry).
    pub replayed: bool,
    /// The holiday tables the due date was computed with.
    pub due_at_calendars: Vec<CalendarRef>,
}

/// The server's state shared by every service.
pub struct App<S> {
    /// The event store.
    pub store: S,
    /// The working-day calendar and the procedure catalogue in force, kept in the log.
    pub reference: ReferenceData,
    /// Green-lane procedures of the configuration (deprecated: the catalogue holds the green
    /// lane); a catalogue entry's own green-lane time comes first.
    pub green_lane: GreenLane,
    /// Whether desks may receive procedures the catalogue lacks (flagged in the receipt).
    pub allow_procedures_outside_catalogue: bool,
    /// Tolerated desk clock skew.
    pub max_clock_skew: TimeDelta,
    /// When the server started.
    pub started_at: DateTime<Utc>,
    /// The store backend's name.
    pub backend: &'static str,
    /// The states the latest commands left their dossiers in.
    pub decided: DecidedStates,
}

/// How many dossiers' latest states the server keeps for the next command on them: a desk
/// works on a few dossiers at a time, so a province's desks fit many times over.
const DECIDED_STATES: usize = 16_384;

/// The state each of the latest commands left its dossier in, with the stream version it holds:
/// the next command on that dossier decides on it, once the store confirms that the stream is
/// still at that version, instead of reading and decoding the whole stream again (the largest
/// part of a command's own CPU: BENCHMARKS.md, "Where the service's CPU goes"). A state is used
/// only for the exact version it was folded to, and streams only grow, so it is the state a
/// fresh read would fold.
pub struct DecidedStates(quick_cache::sync::Cache<String, Arc<Decided>>);

impl Default for DecidedStates {
    fn default() -> Self {
        DecidedStates(quick_cache::sync::Cache::new(DECIDED_STATES))
    }
}

/// A dossier's state at one version of its stream.
pub struct Decided {
    version: u64,
    dossier_id: Uuid,
    state: DossierState,
}

/// What a command decides on: the dossier's state, its version and its id.
struct Current {
    version: Option<u64>,
    dossier_id: Option<Uuid>,
    state: DossierState,
}

#[cfg(test)]
impl<S> App<S> {
    /// What the unit tests serve: `store`, the built-in calendar, an empty catalogue that lets
    /// any procedure in, and five minutes of clock skew.
    pub(crate) fn for_tests(store: S) -> App<S> {
        App {
            store,
            reference: ReferenceData::fixed(hoso_domain::BusinessCalendar::vietnam(), hoso_domain::Catalogue::new()),
            green_lane: GreenLane::new(),
            allow_procedures_outside_catalogue: true,
            max_clock_skew: TimeDelta::minutes(5),
            started_at: Utc::now(),
            backend: "memory",
            decided: DecidedStates::default(),
        }
    }
}

/// Decodes one stored record into a domain event.
pub fn decode(record: &RecordedEvent) -> Result<DossierEvent, ServiceError> {
    Ok(DossierEvent::from_stored_json(
        &record.event_type,
        record.schema_version,
        &record.data,
    )?)
}

/// The stream of the dossier with this receipt code, after checking the code's shape.
pub fn stream_for_receipt(field: &'static str, code: &str) -> Result<String, ServiceError> {
    Ok(ReceiptCode::parse(field, code)?.stream_id())
}

impl<S: EventStore> App<S> {
    /// Finds the stream of a dossier named by id or receipt code; `NotFound` if it was never
    /// received.
    pub async fn resolve(&self, key: &DossierKey) -> Result<String, ServiceError> {
        match key {
            DossierKey::ReceiptCode(code) => {
                let stream_id = stream_for_receipt("dossier.receipt_code", code)?;
                if self.store.stream_version(&stream_id).await?.is_none() {
                    return Err(ServiceError::NotFound(format!("no dossier has receipt code {code}")));
                }
                Ok(stream_id)
            }
            DossierKey::Id(id) => match self.store.event_by_id(*id).await? {
                Some(record)
                    if record.version == 0
                        && record.event_type == hoso_domain::event::DossierReceived::EVENT_TYPE
                        && record.stream_id.starts_with(STREAM_PREFIX) =>
                {
                    Ok(record.stream_id)
                }
                _ => Err(ServiceError::NotFound(format!("no dossier has id {id}"))),
            },
        }
    }

    /// Loads a dossier's stream, as it stands now or as of a recorded-at cut-off.
    pub async fn load(&self, stream_id: &str, as_of: Option<DateTime<Utc>>) -> Result<Loaded, ServiceError> {
        let span = tracing::debug_span!("load_stream", stream_id, events = Empty);
        async {
            let mut read = StreamRead::forward();
            if let Some(cutoff) = as_of {
                read = read.as_of(cutoff);
            }
            let records = self.store.read_stream(stream_id, read).await?;
            let events = records.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
            let state = DossierState::fold(&events);
            tracing::Span::current().record("events", events.len());
            Ok(Loaded {
                stream_id: stream_id.to_owned(),
                dossier_id: records.first().map(|r| r.event_id),
                records,
                events,
                state,
            })
        }
        .instrument(span)
        .await
    }

    /// The dossier's state now, to decide a command on: the one the last command left if the
    /// stream has not moved since, else folded from the stream.
    async fn current(&self, stream_id: &str) -> Result<Current, ServiceError> {
        if let Some(kept) = self.decided.0.get(stream_id) {
            let span = tracing::debug_span!("load_stream", stream_id, events = Empty, kept = true);
            if self.store.stream_version(stream_id).instrument(span).await? == Some(kept.version) {
                return Ok(Current {
                    version: Some(kept.version),
                    dossier_id: Some(kept.dossier_id),
                    state: kept.state.clone(),
                });
            }
        }
        let loaded = self.load(stream_id, None).await?;
        Ok(Current {
            version: loaded.version(),
            dossier_id: loaded.dossier_id,
            state: loaded.state,
        })
    }

    /// Runs a desk command for `caller`: decides, appends, and answers; a retry of a recorded
    /// command answers as the first time and writes nothing.
    pub async fn execute(&self, caller: &Caller, desk: DeskCommand) -> Result<Outcome, ServiceError> {
        let DeskCommand {
            header,
            dossier,
            mut command,
        } = desk;
        let fingerprint = request_fingerprint(&command);
        command.set_officer(&caller.subject);
        let first_id = event_id(header.command_id, 0);
        for _ in 0..MAX_ATTEMPTS {
            if let Some(outcome) = self
                .recorded_outcome(
                    caller,
                    first_id,
                    header.command_id,
                    &command,
                    &fingerprint,
                    dossier.as_ref(),
                )
                .await?
            {
                return Ok(outcome);
            }
            let stream_id = match (&dossier, &command) {
                (None, Command::ReceiveDossier(receive)) => stream_for_receipt("receipt_code", &receive.receipt_code)?,
                (Some(key), _) => self.resolve(key).await?,
                (None, _) => return Err(ServiceError::NotFound("the command names no dossier".to_owned())),
            };
            let current = self.current(&stream_id).await?;
            let version = current.version;
            if let Some(expected) = header.expected_version
                && version != Some(expected)
            {
                return Err(ServiceError::Conflict {
                    expected,
                    actual: version,
                });
            }
            let handling_agency = current.state.received.as_ref().map(|r| r.handling_agency.as_str());
            authorize(caller, Action::record(command.kind(), handling_agency))?;
            let reference = self.reference.current();
            let context = Context {
                max_clock_skew: self.max_clock_skew,
                catalogue: &reference.catalogue,
                procedures: ProcedurePolicy::Catalogue {
                    allow_outside: self.allow_procedures_outside_catalogue,
                },
                ..Context::new(Utc::now(), &reference.calendar, &self.green_lane)
            };
            let events = tracing::debug_span!("decide", command = command.kind().name())
                .in_scope(|| decide(&current.state, &command, &context))?;
            let metadata = EventMetadata {
                causation_id: Some(header.command_id.to_string()),
                command_id: Some(header.command_id.to_string()),
                correlation_id: Some(header.correlation_id.clone()),
                request_fingerprint: Some(fingerprint.clone()),
                ..EventMetadata::of(caller)
            };
            let new_events = events
                .iter()
                .enumerate()
                .map(|(i, event)| new_event(header.command_id, i, event, &metadata))
                .collect::<Result<Vec<NewEvent>, ServiceError>>()?;
            let expected = version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
            let span = tracing::debug_span!("append", stream_id = stream_id.as_str(), events = new_events.len());
            match self
                .store
                .append(&stream_id, expected, new_events)
                .instrument(span)
                .await
            {
                // A copy of this command raced ours and wrote first: answer as a retry.
                Ok(result) if result.already_stored => {}
                Ok(result) => {
                    let state = events.iter().fold(current.state, hoso_domain::evolve);
                    let (_, last) = result.positions.ok_or_else(|| {
                        ServiceError::Internal("the store reported no position for an append of events".to_owned())
                    })?;
                    let dossier_id = current.dossier_id.unwrap_or(first_id);
                    let answer = outcome(dossier_id, &state, result.current_version.unwrap_or(0), last, false);
                    if let Some(version) = result.current_version {
                        self.decided.0.insert(
                            stream_id.clone(),
                            Arc::new(Decided {
                                version,
                                dossier_id,
                                state,
                            }),
                        );
                    }
                    return Ok(answer);
                }
                // Another desk wrote first: decide again on the new state, unless the client asked
                // for a version check (it must see the new state itself).
                Err(StoreError::Conflict { actual, .. }) => {
                    if let Some(expected) = header.expected_version
                        && self.store.event_by_id(first_id).await?.is_none()
                    {
                        return Err(ServiceError::Conflict { expected, actual });
                    }
                }
                // Another request under this command id raced ours and wrote first: the next
                // attempt finds it recorded and compares the requests.
                Err(StoreError::EventIdReused { .. }) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Err(ServiceError::Contention(format!(
            "the dossier kept changing while the command was decided ({MAX_ATTEMPTS} attempts); send the command again with the same command id"
        )))
    }

    /// The original outcome of a command already recorded, if it was.
    async fn recorded_outcome(
        &self,
        caller: &Caller,
        first_id: Uuid,
        command_id: Uuid,
        command: &Command,
        fingerprint: &str,
        dossier: Option<&DossierKey>,
    ) -> Result<Option<Outcome>, ServiceError> {
        let Some(first) = self.store.event_by_id(first_id).await? else {
            return Ok(None);
        };
        let same_dossier = match (dossier, command) {
            (None, Command::ReceiveDossier(receive)) => {
                stream_for_receipt("receipt_code", &receive.receipt_code)? == first.stream_id
            }
            (Some(key), _) => match self.resolve(key).await {
                Ok(stream) => stream == first.stream_id,
                Err(ServiceError::NotFound(_)) => false,
                Err(err) => return Err(err),
            },
            (None, _) => false,
        };
        if !same_dossier || first.event_type != command.kind().first_event_type() {
            return Err(ServiceError::CommandIdReused(format!(
                "{command_id} was already used for a {} on another dossier or of another kind; \
                 a new command needs a new UUID",
                first.event_type
            )));
        }
        let recorded = EventMetadata::read(&first.metadata).and_then(|m| m.request_fingerprint);
        if other_request(recorded.as_deref(), fingerprint) {
            return Err(ServiceError::CommandIdReused(format!(
                "{command_id} was already used for a {} on this dossier with other values; a retry \
                 must repeat the request exactly, and a new command needs a new UUID",
                first.event_type
            )));
        }
        let loaded = self.load(&first.stream_id, None).await?;
        let handling_agency = loaded.state.received.as_ref().map(|r| r.handling_agency.as_str());
        authorize(caller, Action::record(command.kind(), handling_agency))?;
        let mine: Vec<&RecordedEvent> = loaded.records[first.version as usize..]
            .iter()
            .enumerate()
            .take_while(|(i, r)| r.event_id == event_id(command_id, *i))
            .map(|(_, r)| r)
            .collect();
        let last = mine.last().copied().unwrap_or(&first);
        let state = DossierState::fold(&loaded.events[..=last.version as usize]);
        let dossier_id = loaded.dossier_id.unwrap_or(first_id);
        Ok(Some(outcome(dossier_id, &state, last.version, last.position, true)))
    }
}

fn outcome(dossier_id: Uuid, state: &DossierState, version: u64, position: u64, replayed: bool) -> Outcome {
    Outcome {
        dossier_id,
        receipt_code: state
            .received
            .as_ref()
            .map(|r| r.receipt_code.as_str().to_owned())
            .unwrap_or_default(),
        version,
        position,
        due_at: state.due_at,
        status: state.status.map_or(0, |s| s.code()),
        replayed,
        due_at_calendars: hoso_api::convert::due_at_calendars(state).to_vec(),
    }
}
