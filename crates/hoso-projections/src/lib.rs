//! `hoso-projections`: read models folded from the event log, and the figures the province
//! publishes, computed exactly as `docs/domain.md` defines them.
//!
//! **What it is.** [`Dossiers`] holds every dossier's history as lean facts (per event only what
//! the figures, lists and boards read, with its `recorded_at`; see [`model`]), folded in `$all` order from the store (live, through a subscription, or
//! rebuilt from position 0: the same code, so the same figures). [`figures`] computes, for a
//! [`Period`] and a recorded-at cut-off, the on-time rate and overdue counts per handling agency,
//! per procedure and for the province (with the dossiers behind every count), the index 766
//! indicators with numerators and denominators, and the apology-letter figures.
//!
//! [`Dossiers::encode_snapshot`] and [`Dossiers::decode_snapshot`] turn the model and its
//! checkpoint into bytes and back ([`snapshot`]), so a restart need not replay the whole log.
//!
//! **What it is not.** No rules of its own: whether a dossier is on time, its due date and its
//! finish time come from `hoso-domain` (`DossierState::judge_on_time`, `finished_at`). No I/O
//! beyond reading the store (a snapshot is bytes; the server writes the file), no wire types,
//! no rendering.
//!
//! **Determinism.** A figure depends only on the events recorded at or before the cut-off and
//! on the period: the same log and cut-off give the same figures on any machine, and a report
//! re-run later with the same cut-off is unchanged by back-dated events recorded since. Groups
//! are ordered by code, dossiers by receipt code.

pub mod figures;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod list;
pub mod model;
mod period;
pub mod snapshot;

pub use crate::model::{Dossiers, ProjectionError};
pub use crate::period::{Period, PeriodError};
pub use crate::snapshot::SnapshotError;

#[cfg(test)]
mod lean_tests;
#[cfg(test)]
mod tests;
