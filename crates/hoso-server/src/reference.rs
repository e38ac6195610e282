//! The province's reference data as the server holds it: the working-day calendar and the
//! procedure catalogue, each kept in the log in a stream of its own and folded into memory.
//!
//! - `reference-calendar`: one `HolidayNoticeLoaded` event per holiday notice brought into force
//!   (a year's table, or its reissue with a higher version). At start the calendar is the shipped
//!   tables and `calendar_files` of the configuration, then every notice of the stream in order;
//!   a year with neither has a provisional table (see `hoso_domain::calendar`).
//! - `reference-catalogue`: one publishing decision per load, as one atomic append of
//!   `CatalogueDecisionPublished` events of at most [`ENTRIES_PER_EVENT`] entries each (an event
//!   is at most 1 MiB); the catalogue is every decision in load order.
//!
//! Loads happen while serving: a load appends, then swaps the data in force, so a desk command
//! decides on the data before or after it, never a mix. Nothing already decided changes: each
//! receipt records the catalogue decision and the holiday tables it used.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use hoso_domain::calendar::to_local;
use hoso_domain::{
    BusinessCalendar, CalendarError, Catalogue, CatalogueRef, Decision, HolidayTable, ProcedureCode, ProcedureEntry,
};
use hoso_store::{EventStore, ExpectedVersion, Json, NewEvent, StreamRead};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ServiceError;

/// The stream of holiday notices.
pub const CALENDAR_STREAM: &str = "reference-calendar";
/// The stream of catalogue decisions.
pub const CATALOGUE_STREAM: &str = "reference-catalogue";
/// Catalogue entries per event: 500 entries of a few hundred bytes stay far below the store's
/// 1 MiB event limit, and 1,000 events per append allow 500,000 entries per decision.
pub const ENTRIES_PER_EVENT: usize = 500;

/// The namespace of reference events' ids.
const REFERENCE_NAMESPACE: Uuid = Uuid::from_u128(0x2b8e_33c4_9d1a_4f6e_8c07_5a1d_e4f2_9b60);

/// A holiday notice brought into force (event `HolidayNoticeLoaded`, version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HolidayNoticeLoaded {
    /// The table, in the documented JSON format.
    table: HolidayTable,
}

/// One part of a published catalogue decision (event `CatalogueDecisionPublished`, version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueDecisionPublished {
    /// The client's id of the load: a retry writes nothing.
    load_id: Uuid,
    /// The decision's number.
    decision: String,
    /// The local date it is in force from.
    effective_from: NaiveDate,
    /// This part's index, from 0.
    part: u32,
    /// How many parts the decision has.
    parts: u32,
    /// The entries in this part.
    entries: Vec<ProcedureEntry>,
    /// The codes it abolishes (in the first part only).
    abolished: Vec<ProcedureCode>,
}

pub(crate) const HOLIDAY_NOTICE_LOADED: &str = "HolidayNoticeLoaded";
pub(crate) const CATALOGUE_DECISION_PUBLISHED: &str = "CatalogueDecisionPublished";

/// Who brought a notice into force, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedBy {
    /// The operator's account.
    pub actor: String,
    /// When it was recorded.
    pub at: DateTime<Utc>,
}

/// The reference data in force at one moment.
#[derive(Debug, Clone)]
pub struct Reference {
    /// The working-day calendar.
    pub calendar: BusinessCalendar,
    /// The procedure catalogue.
    pub catalogue: Catalogue,
    /// Who loaded each year's notice through the log (years from the configuration or the
    /// shipped tables are absent).
    pub notices: BTreeMap<i32, LoadedBy>,
}

impl Reference {
    /// Warnings an operator must act on at `now`: from 1 October, a missing notice for next year
    /// (receipts due then use a provisional calendar); at any time, a missing notice for this year.
    pub fn warnings(&self, now: DateTime<Utc>) -> Vec<String> {
        let this_year = to_local(now).date().year();
        self.notices_watched(now)
            .into_iter()
            .filter(|(_, missing)| *missing)
            .map(|(year, _)| {
                if year == this_year {
                    format!(
                        "no holiday notice is loaded for {year}: due dates this year use a provisional calendar; load the notice with `hoso calendar load FILE`"
                    )
                } else {
                    format!(
                        "no holiday notice is loaded for {year}: due dates in {year} use a provisional calendar until it is; load the notice with `hoso calendar load FILE` once it is published"
                    )
                }
            })
            .collect()
    }

    /// The years whose notice is watched at `now` (this one and, from 1 October, the next), each
    /// with whether its notice is missing.
    pub fn notices_watched(&self, now: DateTime<Utc>) -> Vec<(i32, bool)> {
        let today = to_local(now).date();
        let mut years = vec![today.year()];
        if today.month() >= 10 {
            years.push(today.year() + 1);
        }
        years
            .into_iter()
            .map(|year| (year, self.calendar.table(year).is_none()))
            .collect()
    }
}

/// The reference data in force, swapped whole by each load.
#[derive(Debug)]
pub struct ReferenceData {
    current: RwLock<Arc<Reference>>,
    /// Loads run one at a time, so that each checks against the data it replaces.
    loading: tokio::sync::Mutex<()>,
}

impl ReferenceData {
    /// Reference data that is not kept in a log (tests, tools).
    pub fn fixed(calendar: BusinessCalendar, catalogue: Catalogue) -> ReferenceData {
        ReferenceData::new(Reference {
            calendar,
            catalogue,
            notices: BTreeMap::new(),
        })
    }

    fn new(reference: Reference) -> ReferenceData {
        ReferenceData {
            current: RwLock::new(Arc::new(reference)),
            loading: tokio::sync::Mutex::new(()),
        }
    }

    /// The data in force now.
    pub fn current(&self) -> Arc<Reference> {
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn replace(&self, reference: Reference) {
        let reference = Arc::new(reference);
        match self.current.write() {
            Ok(mut guard) => *guard = reference,
            Err(poisoned) => *poisoned.into_inner() = reference,
        }
    }

    /// Reads both streams of `store` over the configured `calendar`.
    pub async fn open<S: EventStore>(store: &S, calendar: BusinessCalendar) -> Result<ReferenceData, ServiceError> {
        let mut reference = Reference {
            calendar,
            catalogue: Catalogue::new(),
            notices: BTreeMap::new(),
        };
        for record in store.read_stream(CALENDAR_STREAM, StreamRead::forward()).await? {
            let notice: HolidayNoticeLoaded = decode(&record.event_type, HOLIDAY_NOTICE_LOADED, &record.data)?;
            let year = notice.table.year;
            let version = notice.table.version;
            match reference.calendar.clone().with_year(notice.table) {
                Ok(calendar) => {
                    reference.calendar = calendar;
                    reference.notices.insert(
                        year,
                        LoadedBy {
                            actor: actor(&record.metadata),
                            at: record.recorded_at,
                        },
                    );
                }
                // The configuration may hold a later reissue than the log: it stays in force.
                Err(err) => tracing::warn!(
                    year,
                    version,
                    position = record.position,
                    error = %err,
                    "a holiday notice of the log is not applied"
                ),
            }
        }
        let records = store.read_stream(CATALOGUE_STREAM, StreamRead::forward()).await?;
        let mut parts: Vec<CatalogueDecisionPublished> = Vec::new();
        for record in records {
            let part: CatalogueDecisionPublished =
                decode(&record.event_type, CATALOGUE_DECISION_PUBLISHED, &record.data)?;
            let last = part.part + 1 == part.parts;
            parts.push(part);
            if last {
                let decision = assemble(std::mem::take(&mut parts));
                reference.catalogue.publish(decision).map_err(|problem| {
                    ServiceError::Internal(format!(
                        "the catalogue decision at position {} cannot be applied: {problem}",
                        record.position
                    ))
                })?;
            }
        }
        Ok(ReferenceData::new(reference))
    }

    /// Brings a holiday notice into force, kept in the log; loading the same notice again is a
    /// retry and writes nothing.
    pub async fn load_calendar<S: EventStore>(
        &self,
        store: &S,
        caller: &Caller,
        table: HolidayTable,
    ) -> Result<CalendarLoaded, ServiceError> {
        let _one_at_a_time = self.loading.lock().await;
        let current = self.current();
        let year = table.year;
        let replaced = current.calendar.table(year).map(|t| t.version);
        let event_id = Uuid::new_v5(
            &REFERENCE_NAMESPACE,
            format!("calendar-{year}-v{}", table.version).as_bytes(),
        );
        if current.calendar.table(year) == Some(&table) {
            let stored = store.event_by_id(event_id).await?;
            return Ok(CalendarLoaded {
                year,
                version: table.version,
                replaced_version: table.version,
                position: stored.map_or(0, |record| record.position),
                replayed: true,
            });
        }
        let calendar = current
            .calendar
            .clone()
            .with_year(table.clone())
            .map_err(|err| match err {
                CalendarError::StaleTable { .. } => ServiceError::Precondition {
                    reason: "calendar-version-higher",
                    message: format!("table_json: {err}; a reissued notice needs a higher version"),
                },
                other => ServiceError::invalid("table_json".to_owned(), other.to_string()),
            })?;
        let version = table.version;
        let event = new_event(event_id, HOLIDAY_NOTICE_LOADED, &HolidayNoticeLoaded { table }, caller)?;
        let expected = expected(store, CALENDAR_STREAM).await?;
        let result = store.append(CALENDAR_STREAM, expected, vec![event]).await?;
        let mut next = (*current).clone();
        next.calendar = calendar;
        next.notices.insert(
            year,
            LoadedBy {
                actor: caller.subject.clone(),
                at: Utc::now(),
            },
        );
        self.replace(next);
        Ok(CalendarLoaded {
            year,
            version,
            replaced_version: replaced.unwrap_or(0),
            position: result.positions.map_or(0, |(_, last)| last),
            replayed: false,
        })
    }

    /// Publishes a catalogue decision, kept in the log; the same `load_id` again is a retry and
    /// writes nothing.
    pub async fn load_catalogue<S: EventStore>(
        &self,
        store: &S,
        caller: &Caller,
        load_id: Uuid,
        decision: Decision,
    ) -> Result<CatalogueLoaded, ServiceError> {
        let _one_at_a_time = self.loading.lock().await;
        let current = self.current();
        let first_id = part_id(load_id, 0);
        if let Some(first) = store.event_by_id(first_id).await? {
            let published: CatalogueDecisionPublished =
                decode(&first.event_type, CATALOGUE_DECISION_PUBLISHED, &first.data)?;
            let reference = current
                .catalogue
                .decisions()
                .find(|d| {
                    d.decision.number == published.decision && d.decision.effective_from == published.effective_from
                })
                .map(|d| d.reference());
            return Ok(CatalogueLoaded {
                catalogue: reference.unwrap_or(CatalogueRef {
                    version: 0,
                    decision: published.decision,
                    effective_from: published.effective_from,
                }),
                entries: decision.entries.len() as u32,
                abolished: decision.abolished.len() as u32,
                position: first.position,
                replayed: true,
            });
        }
        let mut catalogue = current.catalogue.clone();
        let reference = catalogue
            .publish(decision.clone())
            .map_err(|problem| ServiceError::invalid("entries".to_owned(), problem))?;
        let chunks: Vec<&[ProcedureEntry]> = if decision.entries.is_empty() {
            vec![&[]]
        } else {
            decision.entries.chunks(ENTRIES_PER_EVENT).collect()
        };
        let parts = chunks.len() as u32;
        let events = chunks
            .into_iter()
            .enumerate()
            .map(|(i, entries)| {
                new_event(
                    part_id(load_id, i),
                    CATALOGUE_DECISION_PUBLISHED,
                    &CatalogueDecisionPublished {
                        load_id,
                        decision: decision.number.clone(),
                        effective_from: decision.effective_from,
                        part: i as u32,
                        parts,
                        entries: entries.to_vec(),
                        abolished: if i == 0 { decision.abolished.clone() } else { Vec::new() },
                    },
                    caller,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let expected = expected(store, CATALOGUE_STREAM).await?;
        let result = store.append(CATALOGUE_STREAM, expected, events).await?;
        let mut next = (*current).clone();
        next.catalogue = catalogue;
        self.replace(next);
        Ok(CatalogueLoaded {
            catalogue: reference,
            entries: decision.entries.len() as u32,
            abolished: decision.abolished.len() as u32,
            position: result.positions.map_or(0, |(first, _)| first),
            replayed: false,
        })
    }
}

/// What a calendar load did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarLoaded {
    /// The year.
    pub year: i32,
    /// Its version now.
    pub version: u32,
    /// The version it replaced (0: provisional).
    pub replaced_version: u32,
    /// Its position in the log.
    pub position: u64,
    /// Whether it was in force already: nothing was written.
    pub replayed: bool,
}

/// What a catalogue load did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueLoaded {
    /// The decision as receipts will name it.
    pub catalogue: CatalogueRef,
    /// Entries published.
    pub entries: u32,
    /// Codes abolished.
    pub abolished: u32,
    /// The position of its first event.
    pub position: u64,
    /// Whether this load had been done before: nothing was written.
    pub replayed: bool,
}

fn part_id(load_id: Uuid, part: usize) -> Uuid {
    Uuid::new_v5(&load_id, format!("catalogue-part-{part}").as_bytes())
}

/// Joins the parts of one decision, in order.
fn assemble(parts: Vec<CatalogueDecisionPublished>) -> Decision {
    let mut decision = Decision {
        number: String::new(),
        effective_from: NaiveDate::MIN,
        entries: Vec::new(),
        abolished: Vec::new(),
    };
    for part in parts {
        decision.number = part.decision;
        decision.effective_from = part.effective_from;
        decision.entries.extend(part.entries);
        decision.abolished.extend(part.abolished);
    }
    decision
}

async fn expected<S: EventStore>(store: &S, stream: &str) -> Result<ExpectedVersion, ServiceError> {
    Ok(store
        .stream_version(stream)
        .await?
        .map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact))
}

fn new_event<T: Serialize>(
    event_id: Uuid,
    event_type: &str,
    data: &T,
    caller: &Caller,
) -> Result<NewEvent, ServiceError> {
    let json = |value: Result<Json, serde_json::Error>| {
        value.map_err(|err| ServiceError::Internal(format!("cannot encode a reference event: {err}")))
    };
    Ok(NewEvent {
        event_id,
        event_type: event_type.to_owned(),
        schema_version: 1,
        data: json(Json::of(data))?,
        metadata: json(Json::of(&crate::metadata::EventMetadata::of(caller)))?,
        occurred_at: Utc::now(),
    })
}

fn decode<T: for<'de> Deserialize<'de>>(event_type: &str, wanted: &str, data: &[u8]) -> Result<T, ServiceError> {
    if event_type != wanted {
        return Err(ServiceError::Decode(hoso_domain::DecodeError::UnknownEventType {
            event_type: event_type.to_owned(),
        }));
    }
    serde_json::from_slice(data).map_err(|source| {
        ServiceError::Decode(hoso_domain::DecodeError::Malformed {
            event_type: event_type.to_owned(),
            version: 1,
            source,
        })
    })
}

fn actor(metadata: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(metadata)
        .ok()
        .and_then(|value| value.get("actor").and_then(|a| a.as_str()).map(str::to_owned))
        .unwrap_or_default()
}
