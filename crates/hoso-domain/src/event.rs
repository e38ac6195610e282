//! The events of a dossier's life: past-tense facts, each a versioned type with a stable persisted
//! name, and the codec the store's caller uses to write and read them.
//!
//! The store keeps `(event type, schema version, data)`; the data is the JSON of one of the structs
//! below (the enum itself is never serialized, so its variant names are not part of the format).
//! Renaming a field or changing its meaning is a schema change: bump the struct's
//! `SCHEMA_VERSION` and add an upcaster in [`crate::upcast`] from the old version. Unknown fields are
//! rejected so that such a change cannot slip through unversioned. Every event carries the
//! business time `occurred_at` supplied by the desk; the store records it in its envelope too.
//!
//! No event holds personal data: the applicant appears only as an [`ApplicantRef`]; officers
//! appear by account identifier. Free-text fields (reasons) must not name the applicant.

use std::borrow::Borrow;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::CalendarRef;
use crate::catalogue::{CatalogueRef, ProcedureSource};
use crate::codes::{AgencyCode, ApplicantRef, ContentHash, ProcedureCode, ReceiptCode};
use crate::error::DecodeError;
use crate::portal::{Channel, PortalStatus};
use crate::procedure::StatutoryTime;
use crate::upcast;

/// The procedure as published when the dossier was received (a snapshot: later edits of the
/// procedure catalogue do not change history).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcedureSnapshot {
    /// Procedure code, e.g. `1.001234`.
    pub code: ProcedureCode,
    /// Published name.
    pub name: String,
    /// Published statutory processing time.
    pub statutory_time: StatutoryTime,
    /// Whether the procedure is eligible for full-online service.
    pub full_online_eligible: bool,
    /// Whether the result is a paper document (the e-result figure's denominator).
    pub paper_result: bool,
    /// Fee in VND (0 when free).
    pub fee_vnd: i64,
}

/// The dossier was received; the clock starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DossierReceived {
    /// Business time of receipt.
    pub occurred_at: DateTime<Utc>,
    /// Code printed on the receipt.
    pub receipt_code: ReceiptCode,
    /// The procedure applied for.
    pub procedure: ProcedureSnapshot,
    /// The one-stop desk that received the dossier.
    pub receiving_desk: AgencyCode,
    /// The agency that decides.
    pub handling_agency: AgencyCode,
    /// How the dossier was submitted.
    pub channel: Channel,
    /// Whether the procedure was in the green lane at receipt.
    pub green_lane: bool,
    /// The statutory time the due date was computed from (the green-lane time when in the green
    /// lane, else the published one).
    pub effective_time: StatutoryTime,
    /// Pseudonymous applicant reference.
    pub applicant: ApplicantRef,
    /// The computed due date.
    pub due_at: DateTime<Utc>,
    /// Where the procedure's values came from.
    pub procedure_source: ProcedureSource,
    /// The catalogue decision the values were taken from (with `procedure_source` `catalogue`).
    pub catalogue: Option<CatalogueRef>,
    /// The holiday tables the due date was computed with, one per year it spans (a provisional
    /// one when no notice was loaded for that year); empty in version 1 events.
    pub calendars: Vec<CalendarRef>,
}

/// A file attached to a dossier component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentFile {
    /// The component (paper) name as listed by the procedure.
    pub component: String,
    /// SHA-256 of the file.
    pub content_hash: ContentHash,
}

/// A component taken from already-digitized data instead of paper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReusedComponent {
    /// The component name.
    pub component: String,
    /// Where it came from (e.g. the citizen's data store, a national database).
    pub source: String,
}

/// Components (and possibly the result) were digitized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DossierDigitized {
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// Components that got files.
    pub files: Vec<ComponentFile>,
    /// Components reused from digitized data.
    pub reused: Vec<ReusedComponent>,
    /// Whether the result was digitized.
    pub result_digitized: bool,
}

/// One processing step's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessingStep {
    /// Handed to another unit.
    Transferred,
    /// Appraised (checked, site visit, opinion).
    Appraised,
    /// Approved: processing ends with a result.
    Approved,
    /// Rejected or stopped: processing ends without a result.
    Stopped,
}

/// A processing step was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DossierProcessed {
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// The step.
    pub step: ProcessingStep,
    /// Account identifier of the officer who took it.
    pub officer: String,
    /// The unit the dossier went to (required for a transfer).
    pub to_unit: Option<AgencyCode>,
    /// Why processing stopped (required for a stop).
    pub reason: Option<String>,
}

/// A digitally signed electronic result was issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EResultIssued {
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// Identifier of the result document.
    pub result_id: String,
    /// SHA-256 of the signed document.
    pub content_hash: ContentHash,
    /// Who signed (account or certificate identifier).
    pub signer: String,
}

/// Where an online payment went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentGateway {
    /// The national portal's payment platform.
    NationalPortal,
    /// The province's gateway.
    Provincial,
}

/// A fee was paid online.
///
/// Version 2 renamed `amount` to `amount_vnd` (see [`crate::upcast`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaidOnline {
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// Amount in VND, positive.
    pub amount_vnd: i64,
    /// The payment platform.
    pub gateway: PaymentGateway,
    /// The gateway's transaction reference.
    pub transaction_ref: String,
}

/// An apology letter with a new appointment date was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApologySent {
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// Why the dossier is late.
    pub reason: String,
    /// The new appointment; does not move the due date of the on-time figure.
    pub new_appointment_at: DateTime<Utc>,
    /// The letter's number.
    pub letter_number: String,
}

/// The applicant was asked for missing papers; the clock pauses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupplementRequested {
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// The components asked for, all at once ("hướng dẫn một lần").
    pub missing_components: Vec<String>,
    /// Account identifier of the officer.
    pub officer: String,
}

/// The applicant supplied the missing papers; the clock resumes with a later due date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupplementReceived {
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// The due date moved by the pause.
    pub due_at: DateTime<Utc>,
    /// The holiday tables the new due date was computed with, one per year; empty in version 1
    /// events.
    pub calendars: Vec<CalendarRef>,
}

/// How a result was handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnMethod {
    /// At the desk.
    AtDesk,
    /// By the public postal service.
    ByPost,
    /// Online.
    Online,
}

/// The result was returned; the dossier is closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultReturned {
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// How.
    pub method: ReturnMethod,
}

/// An applicant's satisfaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Satisfaction {
    /// Satisfied.
    Satisfied,
    /// Not satisfied.
    Unsatisfied,
}

/// The applicant rated the service after the result was returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SatisfactionRated {
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// The rating.
    pub rating: Satisfaction,
}

/// The applicant withdrew the dossier; it is closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Withdrawn {
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// The reason given.
    pub reason: String,
}

/// The desk refused the dossier at intake; it is closed and left out of every figure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefusedAtIntake {
    /// Business time.
    pub occurred_at: DateTime<Utc>,
    /// Why.
    pub reason: String,
    /// Account identifier of the officer.
    pub officer: String,
}

/// The dossier's state was synced to the national portal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncedToNationalPortal {
    /// Business time of the sync.
    pub occurred_at: DateTime<Utc>,
    /// The status the portal acknowledged.
    pub status: PortalStatus,
}

/// Every event a dossier stream may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DossierEvent {
    /// See [`DossierReceived`]. Shared: it is by far the largest event, and every state folded
    /// from it keeps it, so folding a history never copies it.
    DossierReceived(Arc<DossierReceived>),
    /// See [`DossierDigitized`].
    DossierDigitized(DossierDigitized),
    /// See [`DossierProcessed`].
    DossierProcessed(DossierProcessed),
    /// See [`EResultIssued`].
    EResultIssued(EResultIssued),
    /// See [`PaidOnline`].
    PaidOnline(PaidOnline),
    /// See [`ApologySent`].
    ApologySent(ApologySent),
    /// See [`SupplementRequested`].
    SupplementRequested(SupplementRequested),
    /// See [`SupplementReceived`].
    SupplementReceived(SupplementReceived),
    /// See [`ResultReturned`].
    ResultReturned(ResultReturned),
    /// See [`SatisfactionRated`].
    SatisfactionRated(SatisfactionRated),
    /// See [`Withdrawn`].
    Withdrawn(Withdrawn),
    /// See [`RefusedAtIntake`].
    RefusedAtIntake(RefusedAtIntake),
    /// See [`SyncedToNationalPortal`].
    SyncedToNationalPortal(SyncedToNationalPortal),
}

/// An event's persisted data, without its type name: see [`DossierEvent::data`].
#[derive(Debug, Clone, Copy)]
pub struct EventData<'a>(&'a DossierEvent);

/// Declares each event's persisted name and current schema version, and the codec over all of
/// them, in one table so that a new event cannot be half-registered.
macro_rules! event_schemas {
    ($($ty:ident => $name:literal, version $version:literal;)*) => {
        $(
            impl $ty {
                /// Persisted event type name; never changes.
                pub const EVENT_TYPE: &'static str = $name;
                /// Current schema version of the persisted data.
                pub const SCHEMA_VERSION: u32 = $version;
            }
            impl From<$ty> for DossierEvent {
                fn from(event: $ty) -> DossierEvent {
                    DossierEvent::$ty(event.into())
                }
            }
        )*

        /// Every persisted event type name with its current schema version.
        pub const EVENT_TYPES: &[(&str, u32)] = &[$(($name, $version)),*];

        impl DossierEvent {
            /// The persisted event type name, e.g. `"DossierReceived"`.
            pub fn event_type(&self) -> &'static str {
                match self { $(DossierEvent::$ty(_) => $ty::EVENT_TYPE,)* }
            }

            /// The schema version [`DossierEvent::to_json`] writes.
            pub fn schema_version(&self) -> u32 {
                match self { $(DossierEvent::$ty(_) => $ty::SCHEMA_VERSION,)* }
            }

            /// The business time the event occurred at, as supplied by the desk.
            pub fn occurred_at(&self) -> DateTime<Utc> {
                match self { $(DossierEvent::$ty(event) => event.occurred_at,)* }
            }

            /// The persisted data, at the current schema version, as a value.
            pub fn to_json(&self) -> serde_json::Value {
                serde_json::to_value(self.data())
                    .expect("event structs have string keys only and always serialize")
            }

            /// The persisted data, at the current schema version, to serialize straight to text
            /// (what an append stores, with no intermediate value).
            pub fn data(&self) -> EventData<'_> {
                EventData(self)
            }
        }

        impl Serialize for EventData<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self.0 {
                    $(DossierEvent::$ty(event) => Borrow::<$ty>::borrow(event).serialize(serializer),)*
                }
            }
        }

        impl DossierEvent {

            /// Reads stored data, upcasting it from an older schema version first.
            pub fn from_stored(
                event_type: &str,
                schema_version: u32,
                data: serde_json::Value,
            ) -> Result<DossierEvent, DecodeError> {
                match event_type {
                    $($name => {
                        let data = upcast::to_current(event_type, schema_version, $version, data)?;
                        serde_json::from_value::<$ty>(data)
                            .map(DossierEvent::from)
                            .map_err(|source| DecodeError::Malformed {
                                event_type: event_type.to_owned(),
                                version: $version,
                                source,
                            })
                    })*
                    _ => Err(DecodeError::UnknownEventType { event_type: event_type.to_owned() }),
                }
            }

            /// Reads stored data from its JSON text: straight into the event when it is at the
            /// current schema version (the common case, and twice as fast as going through a
            /// `serde_json::Value`), through [`DossierEvent::from_stored`]'s upcasters otherwise.
            pub fn from_stored_json(
                event_type: &str,
                schema_version: u32,
                data: &[u8],
            ) -> Result<DossierEvent, DecodeError> {
                match event_type {
                    $($name if schema_version == $version => {
                        serde_json::from_slice::<$ty>(data)
                            .map(DossierEvent::from)
                            .map_err(|source| DecodeError::Malformed {
                                event_type: event_type.to_owned(),
                                version: $version,
                                source,
                            })
                    })*
                    _ => {
                        let value = serde_json::from_slice(data).map_err(|source| DecodeError::Malformed {
                            event_type: event_type.to_owned(),
                            version: schema_version,
                            source,
                        })?;
                        DossierEvent::from_stored(event_type, schema_version, value)
                    }
                }
            }
        }
    };
}

event_schemas! {
    DossierReceived => "DossierReceived", version 2;
    DossierDigitized => "DossierDigitized", version 1;
    DossierProcessed => "DossierProcessed", version 1;
    EResultIssued => "EResultIssued", version 1;
    PaidOnline => "PaidOnline", version 2;
    ApologySent => "ApologySent", version 1;
    SupplementRequested => "SupplementRequested", version 1;
    SupplementReceived => "SupplementReceived", version 2;
    ResultReturned => "ResultReturned", version 1;
    SatisfactionRated => "SatisfactionRated", version 1;
    Withdrawn => "Withdrawn", version 1;
    RefusedAtIntake => "RefusedAtIntake", version 1;
    SyncedToNationalPortal => "SyncedToNationalPortal", version 1;
}

#[cfg(test)]
mod tests;
