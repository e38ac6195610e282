//! Reporting periods: half-open intervals of local (UTC+7) dates.

use std::fmt;

use chrono::{DateTime, Datelike, Months, NaiveDate, NaiveTime, Utc};
use hoso_domain::calendar::from_local;

/// A half-open interval `[start, end)` of local dates, from 00:00 of `start` to 00:00 of `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    /// First day.
    pub start: NaiveDate,
    /// The day after the last.
    pub end: NaiveDate,
}

/// A period that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeriodError {
    /// The text is not a month like `2025-09`.
    #[error("{0:?} is not a month like 2025-09")]
    NotAMonth(String),
    /// The end is not after the start.
    #[error("the period ends ({end}) before it starts ({start})")]
    Empty {
        /// First day.
        start: NaiveDate,
        /// Day after the last.
        end: NaiveDate,
    },
}

impl Period {
    /// `[start, end)`.
    pub fn new(start: NaiveDate, end: NaiveDate) -> Result<Period, PeriodError> {
        if end <= start {
            return Err(PeriodError::Empty { start, end });
        }
        Ok(Period { start, end })
    }

    /// A calendar month, from `YYYY-MM`.
    pub fn month(text: &str) -> Result<Period, PeriodError> {
        let start = NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d")
            .map_err(|_| PeriodError::NotAMonth(text.to_owned()))?;
        let end = start + Months::new(1);
        Ok(Period { start, end })
    }

    /// The period of the same length just before this one (the previous month for a month).
    pub fn previous(&self) -> Period {
        if self.start.day() == 1 && self.end.day() == 1 && self.start + Months::new(1) == self.end {
            let start = self.start - Months::new(1);
            return Period { start, end: self.start };
        }
        let length = self.end - self.start;
        Period {
            start: self.start - length,
            end: self.start,
        }
    }

    /// The instant the period starts.
    pub fn start_instant(&self) -> DateTime<Utc> {
        from_local(self.start.and_time(NaiveTime::MIN))
    }

    /// The instant the period ends (excluded).
    pub fn end_instant(&self) -> DateTime<Utc> {
        from_local(self.end.and_time(NaiveTime::MIN))
    }

    /// Whether an instant falls in the period.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start_instant() <= at && at < self.end_instant()
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} to {} (excluded)", self.start, self.end)
    }
}
