//! The dossier's state as folded from its events: the national portal status, the deadline state
//! and the facts the index figures need. [`evolve`] is total and trusts its input: rules are checked
//! once, by [`crate::decide()`], before an event is written.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::calendar::CalendarRef;
use crate::event::{DossierEvent, DossierReceived, ProcessingStep, Satisfaction};
pub use crate::portal::{Channel, PortalStatus};

/// Everything the rules, the deadline view and the figures need to know about one dossier.
///
/// Cheap to clone: the receipt snapshot is shared. Build it only with [`evolve`] /
/// [`DossierState::fold`]; the fields are public for reading.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DossierState {
    /// The receipt, once received.
    pub received: Option<Arc<DossierReceived>>,
    /// The portal status (none before receipt).
    pub status: Option<PortalStatus>,
    /// Business time of the latest event.
    pub last_occurred_at: Option<DateTime<Utc>>,
    /// The current due date: the receipt's, moved by every supplement pause that has ended.
    pub due_at: Option<DateTime<Utc>>,
    /// The holiday tables of the current due date when a supplement moved it (`None`: the
    /// receipt's, in [`DossierReceived::calendars`]).
    pub due_at_calendars: Option<Vec<CalendarRef>>,
    /// How many supplement requests were made (more than one makes the dossier overdue).
    pub n_supplement_requests: u32,
    /// The components the open supplement request asks for, while waiting for the applicant.
    pub missing_components: Vec<String>,
    /// When the open supplement request was made, while waiting for the applicant.
    pub supplement_requested_at: Option<DateTime<Utc>>,
    /// How many processing steps were recorded.
    pub n_processing_steps: u32,
    /// When the dossier was approved.
    pub approved_at: Option<DateTime<Utc>>,
    /// When processing was stopped.
    pub stopped_at: Option<DateTime<Utc>>,
    /// When the result was returned.
    pub returned_at: Option<DateTime<Utc>>,
    /// When the applicant withdrew.
    pub withdrawn_at: Option<DateTime<Utc>>,
    /// When the supplement request open at the withdrawal was made, if the dossier was waiting
    /// for the applicant when it was withdrawn: it is judged as still waiting at that instant.
    pub withdrawn_while_waiting_since: Option<DateTime<Utc>>,
    /// When the desk refused at intake.
    pub refused_at: Option<DateTime<Utc>>,
    /// When the e-result was issued.
    pub e_result_issued_at: Option<DateTime<Utc>>,
    /// Total paid online, VND.
    pub paid_online_vnd: i64,
    /// How many digitization records there are.
    pub n_digitizations: u32,
    /// Whether any component was reused from digitized data.
    pub reused_component: bool,
    /// Whether the result was digitized.
    pub result_digitized: bool,
    /// How many apology letters were sent.
    pub n_apologies: u32,
    /// The latest apology letter's appointment.
    pub promised_at: Option<DateTime<Utc>>,
    /// The applicant's rating.
    pub rating: Option<Satisfaction>,
    /// How many sync records there are.
    pub n_syncs: u32,
    /// The latest status the national portal acknowledged.
    pub synced_status: Option<PortalStatus>,
}

impl DossierState {
    /// The state of a dossier with no events.
    pub fn new() -> DossierState {
        DossierState::default()
    }

    /// Folds events, in stream order, into a state.
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a DossierEvent>) -> DossierState {
        events.into_iter().fold(DossierState::new(), evolve)
    }

    /// Whether the dossier has been received.
    pub fn is_received(&self) -> bool {
        self.received.is_some()
    }

    /// Whether the dossier is closed (returned, withdrawn or refused).
    pub fn is_closed(&self) -> bool {
        self.status.is_some_and(PortalStatus::is_closed)
    }

    /// Whether processing ended (approved or stopped).
    pub fn is_processing_finished(&self) -> bool {
        self.approved_at.is_some() || self.stopped_at.is_some()
    }

    /// Whether the dossier is waiting for the applicant's supplement.
    pub fn is_waiting_for_supplement(&self) -> bool {
        self.supplement_requested_at.is_some()
    }

    /// The instant the on-time rule compares with the due date for a dossier finished at
    /// `finished`: the finish itself, or the request's time when it was withdrawn while waiting
    /// for the applicant (it is judged as one still waiting at that instant).
    pub fn finish_compared(&self, finished: DateTime<Utc>) -> DateTime<Utc> {
        match self.withdrawn_while_waiting_since {
            Some(requested) if self.withdrawn_at == Some(finished) => requested,
            _ => finished,
        }
    }

    /// The finish time of the on-time rule: the first of approved, stopped, result returned and
    /// withdrawn (none for a refused or unfinished dossier).
    pub fn finished_at(&self) -> Option<DateTime<Utc>> {
        [self.approved_at, self.stopped_at, self.returned_at, self.withdrawn_at]
            .into_iter()
            .flatten()
            .min()
    }
}

/// Applies one event to a state.
pub fn evolve(mut state: DossierState, event: &DossierEvent) -> DossierState {
    let at = event.occurred_at();
    state.last_occurred_at = Some(state.last_occurred_at.map_or(at, |last| last.max(at)));
    match event {
        DossierEvent::DossierReceived(event) => {
            state.due_at = Some(event.due_at);
            state.received = Some(Arc::clone(event));
            state.status = Some(PortalStatus::Received);
        }
        DossierEvent::DossierDigitized(event) => {
            state.n_digitizations += 1;
            state.reused_component |= !event.reused.is_empty();
            state.result_digitized |= event.result_digitized;
        }
        DossierEvent::DossierProcessed(event) => {
            state.n_processing_steps += 1;
            match event.step {
                ProcessingStep::Transferred | ProcessingStep::Appraised => {
                    state.status = Some(PortalStatus::InProgress);
                }
                ProcessingStep::Approved => {
                    state.approved_at.get_or_insert(at);
                    state.status = Some(PortalStatus::Processed);
                }
                ProcessingStep::Stopped => {
                    state.stopped_at.get_or_insert(at);
                    state.status = Some(PortalStatus::Stopped);
                }
            }
        }
        DossierEvent::EResultIssued(_) => {
            state.e_result_issued_at.get_or_insert(at);
        }
        DossierEvent::PaidOnline(event) => {
            state.paid_online_vnd = state.paid_online_vnd.saturating_add(event.amount_vnd);
        }
        DossierEvent::ApologySent(event) => {
            state.n_apologies += 1;
            state.promised_at = Some(event.new_appointment_at);
        }
        DossierEvent::SupplementRequested(event) => {
            state.n_supplement_requests += 1;
            state.missing_components.clone_from(&event.missing_components);
            state.supplement_requested_at = Some(at);
            state.status = Some(PortalStatus::SupplementRequested);
        }
        DossierEvent::SupplementReceived(event) => {
            state.supplement_requested_at = None;
            state.missing_components.clear();
            if state.due_at.is_none_or(|due| event.due_at >= due) {
                state.due_at = Some(event.due_at);
                state.due_at_calendars = Some(event.calendars.clone());
            }
            state.status = Some(PortalStatus::InProgress);
        }
        DossierEvent::ResultReturned(_) => {
            state.returned_at.get_or_insert(at);
            state.status = Some(PortalStatus::ResultReturned);
        }
        DossierEvent::SatisfactionRated(event) => {
            state.rating.get_or_insert(event.rating);
        }
        DossierEvent::Withdrawn(_) => {
            if state.withdrawn_at.is_none() {
                state.withdrawn_at = Some(at);
                state.withdrawn_while_waiting_since = state.supplement_requested_at;
            }
            state.supplement_requested_at = None;
            state.missing_components.clear();
            state.status = Some(PortalStatus::Withdrawn);
        }
        DossierEvent::RefusedAtIntake(_) => {
            state.refused_at.get_or_insert(at);
            state.supplement_requested_at = None;
            state.missing_components.clear();
            state.status = Some(PortalStatus::RefusedAtIntake);
        }
        DossierEvent::SyncedToNationalPortal(event) => {
            state.n_syncs += 1;
            state.synced_status = Some(event.status);
        }
    }
    state
}

#[cfg(test)]
mod tests;
