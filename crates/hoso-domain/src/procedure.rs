//! Procedures' statutory processing time, the due-date rules computed from it, and the green-lane
//! configuration that shortens it.
//!
//! Due dates (the same rules everywhere in the product; our choice, see the crate docs):
//! - N working days: the close ("17:00") of the N-th working day counted from the first working
//!   day strictly after the local date of receipt;
//! - N working hours: N hours of office time from the receipt instant (from the next opening when
//!   received outside office hours);
//! - N calendar days: the close of the date of receipt + N days, or of the next working day when
//!   that date is not one.
//!
//! A supplement pause moves the due date later: by k working days for day-based times (k = working
//! days d with request date <= d < supplement date), by the office time spent waiting for
//! hour-based ones.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::calendar::{BusinessCalendar, to_local};
use crate::codes::ProcedureCode;
use crate::error::CalendarError;

/// The unit a statutory processing time is expressed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeUnit {
    /// Working days of the business calendar.
    WorkingDays,
    /// Hours of office time.
    WorkingHours,
    /// Calendar days; a deadline ending on a day off moves to the next working day.
    CalendarDays,
}

/// A statutory processing time: an amount and its unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StatutoryTime {
    /// How many units; at least 1.
    pub amount: u32,
    /// The unit.
    pub unit: TimeUnit,
}

impl StatutoryTime {
    /// `amount` working days.
    pub fn working_days(amount: u32) -> StatutoryTime {
        StatutoryTime {
            amount,
            unit: TimeUnit::WorkingDays,
        }
    }

    /// `amount` working hours.
    pub fn working_hours(amount: u32) -> StatutoryTime {
        StatutoryTime {
            amount,
            unit: TimeUnit::WorkingHours,
        }
    }

    /// `amount` calendar days.
    pub fn calendar_days(amount: u32) -> StatutoryTime {
        StatutoryTime {
            amount,
            unit: TimeUnit::CalendarDays,
        }
    }

    /// The due date of a dossier received at `received_at`.
    pub fn due_at(
        &self,
        received_at: DateTime<Utc>,
        calendar: &BusinessCalendar,
    ) -> Result<DateTime<Utc>, CalendarError> {
        let received_on = to_local(received_at).date();
        match self.unit {
            TimeUnit::WorkingDays => {
                let day = calendar.nth_working_day_after(received_on, self.amount)?;
                Ok(calendar.close_of(day))
            }
            TimeUnit::WorkingHours => calendar.add_office_time(received_at, TimeDelta::hours(i64::from(self.amount))),
            TimeUnit::CalendarDays => {
                // Past chrono's last date no calendar exists (found by the `due_date` fuzz target).
                let mut day = received_on
                    .checked_add_days(chrono::Days::new(u64::from(self.amount)))
                    .ok_or(CalendarError::YearNotLoaded {
                        year: chrono::NaiveDate::MAX.year(),
                    })?;
                if !calendar.is_working_day(day)? {
                    day = calendar.next_working_day(day)?;
                }
                Ok(calendar.close_of(day))
            }
        }
    }
}

impl std::fmt::Display for StatutoryTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.unit {
            TimeUnit::WorkingDays => "working days",
            TimeUnit::WorkingHours => "working hours",
            TimeUnit::CalendarDays => "calendar days",
        };
        write!(f, "{} {unit}", self.amount)
    }
}

impl TimeUnit {
    /// The due date after a supplement pause from `requested_at` to `supplied_at`; never earlier
    /// than `due_at`.
    pub fn extend_for_pause(
        self,
        due_at: DateTime<Utc>,
        requested_at: DateTime<Utc>,
        supplied_at: DateTime<Utc>,
        calendar: &BusinessCalendar,
    ) -> Result<DateTime<Utc>, CalendarError> {
        match self {
            TimeUnit::WorkingDays | TimeUnit::CalendarDays => {
                let k = calendar.working_days_between(to_local(requested_at).date(), to_local(supplied_at).date())?;
                if k == 0 {
                    return Ok(due_at);
                }
                let day = calendar.nth_working_day_after(to_local(due_at).date(), k)?;
                Ok(calendar.close_of(day).max(due_at))
            }
            TimeUnit::WorkingHours => {
                let waited = calendar.office_time_between(requested_at, supplied_at)?;
                calendar.add_office_time(due_at, waited)
            }
        }
    }
}

/// The green lane ("Luồng xanh"): procedures the province prioritises, each with its shortened
/// statutory time. Green-lane dossiers use that time for their due date and every figure.
///
/// Configuration, not data of the regulations: the province's decision text was not found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GreenLane {
    procedures: BTreeMap<ProcedureCode, StatutoryTime>,
}

impl GreenLane {
    /// An empty green lane.
    pub fn new() -> GreenLane {
        GreenLane::default()
    }

    /// Adds (or replaces) a procedure with its shortened time.
    pub fn with(mut self, procedure: ProcedureCode, shortened: StatutoryTime) -> GreenLane {
        self.procedures.insert(procedure, shortened);
        self
    }

    /// The shortened time of a procedure in the green lane.
    pub fn shortened_time(&self, procedure: &ProcedureCode) -> Option<StatutoryTime> {
        self.procedures.get(procedure).copied()
    }
}

#[cfg(test)]
mod tests;
