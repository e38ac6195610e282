//! `hoso-domain`: the pure core of hoso. What a dossier (hồ sơ) is, which events can happen to it
//! in which order, when it is due, and whether it finished on time.
//!
//! **What it is.** Events ([`event`]) with stable persisted names, schema versions and upcasters
//! ([`upcast`]); commands ([`command`]); the decision function [`decide()`] (state, command, context
//! → events or a [`DomainError`] naming the broken rule) and the fold [`evolve`] (state, event →
//! state); the business calendar of Vietnam with holiday tables as data ([`calendar`]); due dates
//! from statutory times and the green lane ([`procedure`]); the deadline view and the on-time
//! judgement of index 766 ([`deadline`]).
//!
//! **What it is not.** No IO, no async, no clock of its own (the caller passes `now`), no storage
//! envelope (event ids, positions, `recorded_at`, idempotency and ordering belong to the store), no
//! wire types (protobuf lives in the api crate), and no personal data (applicants appear only as
//! a pseudonymous [`ApplicantRef`]). It does not compute period figures: projections fold these
//! events and use [`DossierState::judge_on_time`].
//!
//! **Entry points.** `decide(&state, &command, &Context::new(now, &calendar, &green_lane))`, then
//! append `event.event_type()`, `event.schema_version()`, `event.occurred_at()` and
//! `event.data()` (serialized straight to JSON text); on read, `DossierEvent::from_stored(type, version, data)` and
//! `DossierState::fold(&events)`.
//!
#![doc = include_str!("../CHOICES.md")]

pub mod calendar;
pub mod catalogue;
pub mod codes;
pub mod command;
pub mod deadline;
pub mod decide;
pub mod dossier;
pub mod error;
pub mod event;
pub mod portal;
pub mod procedure;
pub mod upcast;

pub use crate::calendar::{BusinessCalendar, CalendarRef, HolidayTable, OfficeHours};
pub use crate::catalogue::{Catalogue, CatalogueRef, Decision, ProcedureEntry, ProcedurePolicy, ProcedureSource};
pub use crate::codes::{AgencyCode, ApplicantRef, ContentHash, ProcedureCode, ReceiptCode, STREAM_PREFIX};
pub use crate::command::{Command, CommandKind};
pub use crate::deadline::{DeadlineState, DeadlineView, Judgement};
pub use crate::decide::{Context, decide};
pub use crate::dossier::{Channel, DossierState, PortalStatus, evolve};
pub use crate::error::{CalendarError, DecodeError, DomainError};
pub use crate::event::{DossierEvent, EventData};
pub use crate::procedure::{GreenLane, StatutoryTime, TimeUnit};

#[cfg(test)]
mod tests;
