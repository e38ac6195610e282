//! Where a dossier stands against its due date: the deadline view shown to officers at any
//! instant, and the on-time judgement of index 766 that the projections count.
//!
//! Both read the same facts: the due date after supplement pauses ([`DossierState::due_at`]), the
//! finish time ([`DossierState::finished_at`]), and the number of supplement requests (more than one
//! makes the dossier overdue whatever the dates say). An apology letter never moves the due date
//! used here; whether its promise was kept is reported on its own ([`DossierState::apology_kept`]).

use chrono::{DateTime, TimeDelta, Utc};

use crate::calendar::{BusinessCalendar, to_local};
use crate::dossier::DossierState;
use crate::error::CalendarError;

/// The deadline state of a dossier at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeadlineState {
    /// Not finished, due later than the close of the next working day (or waiting for the
    /// applicant after a request made on time: the clock is paused).
    OnTime,
    /// Not finished, due at or before the close of the next working day.
    DueSoon,
    /// Not finished and past the due date, or asked for a supplement more than once.
    Overdue,
    /// Finished at or before the due date.
    FinishedOnTime,
    /// Finished after the due date, or asked for a supplement more than once.
    FinishedLate,
}

/// The deadline view at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeadlineView {
    /// The state.
    pub state: DeadlineState,
    /// The due date compared against.
    pub due_at: DateTime<Utc>,
    /// Office time left until the due date, negative when overdue (office time since the due
    /// date). Frozen at the request while waiting for a supplement; `None` once finished.
    pub remaining_working_time: Option<TimeDelta>,
}

/// The on-time judgement of index 766's "Tiến độ, kết quả giải quyết" group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Judgement {
    /// Counts as on time.
    OnTime,
    /// Counts as overdue.
    Overdue,
}

impl DossierState {
    /// The on-time judgement at `judging_instant` (the period's end for a dossier not finished by
    /// then), or `None` for a dossier never received or refused at intake (left out of every
    /// figure).
    ///
    /// The state must be folded from the events that occurred at or before the judging instant
    /// (the dossier "as it stood"); a finish later than the instant is ignored.
    ///
    /// Rules: more than one supplement request is overdue; a finished dossier is on time when it
    /// finished at or before its due date, except that one withdrawn while waiting for the
    /// applicant is judged as still waiting at its withdrawal; a dossier waiting for the applicant
    /// is on time when the request was made at or before the due date; any other unfinished
    /// dossier is on time when the judging instant is at or before the due date.
    pub fn judge_on_time(&self, judging_instant: DateTime<Utc>) -> Option<Judgement> {
        let due = self.due_at?;
        if self.refused_at.is_some() {
            return None;
        }
        if self.n_supplement_requests > 1 {
            return Some(Judgement::Overdue);
        }
        let compared = match (self.finished_at(), self.supplement_requested_at) {
            (Some(finished), _) if finished <= judging_instant => self.finish_compared(finished),
            (_, Some(requested)) => requested,
            _ => judging_instant,
        };
        Some(if compared <= due {
            Judgement::OnTime
        } else {
            Judgement::Overdue
        })
    }

    /// Whether the latest apology letter's promise was kept: the dossier finished by the new
    /// appointment. `None` without an apology or before the dossier finished.
    pub fn apology_kept(&self) -> Option<bool> {
        Some(self.finished_at()? <= self.promised_at?)
    }

    /// The deadline view at `at`; `None` for a dossier never received or refused at intake.
    pub fn deadline_at(
        &self,
        at: DateTime<Utc>,
        calendar: &BusinessCalendar,
    ) -> Result<Option<DeadlineView>, CalendarError> {
        let Some(due_at) = self.due_at else { return Ok(None) };
        if self.refused_at.is_some() {
            return Ok(None);
        }
        let late_by_supplements = self.n_supplement_requests > 1;
        if let Some(finished) = self.finished_at() {
            let state = if self.finish_compared(finished) <= due_at && !late_by_supplements {
                DeadlineState::FinishedOnTime
            } else {
                DeadlineState::FinishedLate
            };
            return Ok(Some(DeadlineView {
                state,
                due_at,
                remaining_working_time: None,
            }));
        }
        // While waiting for the applicant the clock is paused at the request.
        let now = self.supplement_requested_at.unwrap_or(at);
        let remaining = if now <= due_at {
            calendar.office_time_between(now, due_at)?
        } else {
            -calendar.office_time_between(due_at, now)?
        };
        let state = if late_by_supplements || now > due_at {
            DeadlineState::Overdue
        } else if self.supplement_requested_at.is_none()
            && due_at <= calendar.close_of(calendar.next_working_day(to_local(at).date())?)
        {
            DeadlineState::DueSoon
        } else {
            DeadlineState::OnTime
        };
        Ok(Some(DeadlineView {
            state,
            due_at,
            remaining_working_time: Some(remaining),
        }))
    }
}

#[cfg(test)]
mod tests;
