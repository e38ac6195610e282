//! The business calendar of Vietnam (Asia/Ho_Chi_Minh, fixed UTC+7, no DST): which local dates are
//! working days, the office hours on those days, and arithmetic in office time.
//!
//! Holidays are data, never a formula: one [`HolidayTable`] per year, versioned, parsed from the
//! JSON format below. 2025 and 2026 ship inside the crate; a province adds next year's notice at
//! run time with [`BusinessCalendar::with_year_json`] (the server reads the file; this crate does no
//! IO). Asking about a date in a year without a table is an error
//! ([`CalendarError::YearNotLoaded`]), never a guess.
//!
//! Table format (unknown fields are rejected):
//!
//! ```text
//! {
//!   "year": 2026,                       // the calendar year the table covers
//!   "version": 1,                       // bumped when the province reissues the table
//!   "source": "TB 9441/TB-BNV ...",     // the notice the dates come from
//!   "days_off": ["2026-01-01", ...],    // dates off (holidays, bridging days); weekends optional
//!   "working_saturdays": ["2026-01-10"],// weekend days swapped in as working days
//!   "notes": "..."                      // optional free text
//! }
//! ```

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc, Weekday};
use serde::{Deserialize, Serialize};

use crate::error::CalendarError;

/// The version of every provisional table; a notice's version is 1 or more.
pub const PROVISIONAL_VERSION: u32 = 0;

/// Offset of Asia/Ho_Chi_Minh from UTC, in seconds (UTC+7, no daylight saving time).
pub const VIETNAM_UTC_OFFSET_SECS: i32 = 7 * 3600;

/// The fixed offset of Asia/Ho_Chi_Minh.
pub fn vietnam_offset() -> FixedOffset {
    FixedOffset::east_opt(VIETNAM_UTC_OFFSET_SECS).expect("UTC+7 is a valid offset")
}

/// The Vietnam local wall-clock time of an instant.
pub fn to_local(instant: DateTime<Utc>) -> NaiveDateTime {
    instant.naive_utc() + TimeDelta::seconds(i64::from(VIETNAM_UTC_OFFSET_SECS))
}

/// The instant of a Vietnam local wall-clock time (always unique: no DST).
pub fn from_local(local: NaiveDateTime) -> DateTime<Utc> {
    (local - TimeDelta::seconds(i64::from(VIETNAM_UTC_OFFSET_SECS))).and_utc()
}

/// Which holiday table a due date was computed with: recorded in the event that holds the due
/// date, so that loading a notice later changes nothing already decided.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarRef {
    /// The year the table covers.
    pub year: i32,
    /// The table's version (0 for a provisional table); the notice it stands for is in the
    /// calendar's own history.
    pub version: u32,
    /// Whether the table is provisional (built from the Labour Code because no notice was loaded).
    pub provisional: bool,
}

/// The holiday table of one year, as published in the yearly notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolidayTable {
    /// The calendar year covered.
    pub year: i32,
    /// Version of this year's table; a reissued table must have a higher one.
    pub version: u32,
    /// The notice the dates come from.
    pub source: String,
    /// Dates off: public holidays and bridging days (weekend dates may be listed; they change
    /// nothing).
    pub days_off: BTreeSet<NaiveDate>,
    /// Weekend dates worked in exchange for a bridging day.
    pub working_saturdays: BTreeSet<NaiveDate>,
    /// Free-text remarks.
    #[serde(default)]
    pub notes: String,
}

impl HolidayTable {
    /// Parses and checks a table in the documented JSON format.
    pub fn from_json(json: &str) -> Result<HolidayTable, CalendarError> {
        let table: HolidayTable = serde_json::from_str(json).map_err(|err| CalendarError::Format(err.to_string()))?;
        table.check()?;
        Ok(table)
    }

    /// The shipped 2025 table (TB 6150/TB-BLĐTBXH).
    pub fn shipped_2025() -> HolidayTable {
        HolidayTable::from_json(include_str!("../calendar/2025.json"))
            .expect("the shipped 2025 table is valid (tested)")
    }

    /// The shipped 2026 table (TB 9441/TB-BNV).
    pub fn shipped_2026() -> HolidayTable {
        HolidayTable::from_json(include_str!("../calendar/2026.json"))
            .expect("the shipped 2026 table is valid (tested)")
    }

    /// The provisional table of a year for which no notice is loaded: the fixed holidays of the
    /// Labour Code 2019 art. 112 (lunar dates computed), the days off in lieu it gives, no swapped
    /// Saturdays; version 0, which no notice may use.
    pub fn provisional(year: i32) -> Result<HolidayTable, CalendarError> {
        Err(CalendarError::YearNotLoaded { year })
    }

    /// Whether this is a provisional table (version 0).
    pub fn is_provisional(&self) -> bool {
        self.version == PROVISIONAL_VERSION
    }

    /// How a due date computed with this table is recorded.
    pub fn reference(&self) -> CalendarRef {
        CalendarRef {
            year: self.year,
            version: self.version,
            provisional: self.is_provisional(),
        }
    }

    fn check(&self) -> Result<(), CalendarError> {
        let invalid = |problem: String| CalendarError::InvalidTable {
            year: self.year,
            problem,
        };
        for date in self.days_off.iter().chain(&self.working_saturdays) {
            if date.year() != self.year {
                return Err(invalid(format!("{date} is not in {}", self.year)));
            }
        }
        for date in &self.working_saturdays {
            if !is_weekend(*date) {
                return Err(invalid(format!("working Saturday {date} is not a weekend day")));
            }
            if self.days_off.contains(date) {
                return Err(invalid(format!("{date} is both a day off and a working Saturday")));
            }
        }
        Ok(())
    }

    fn is_working_day(&self, date: NaiveDate) -> bool {
        if self.working_saturdays.contains(&date) {
            return true;
        }
        !is_weekend(date) && !self.days_off.contains(&date)
    }
}

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Office hours on every working day: ordered, non-overlapping local-time intervals.
///
/// Default 08:00–12:00 and 13:00–17:00. The end of the last interval is the *close* of the day, the
/// "17:00" of the due-date rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficeHours {
    intervals: Vec<(NaiveTime, NaiveTime)>,
}

impl OfficeHours {
    /// Checks and builds office hours from `(opening, closing)` intervals.
    pub fn new(intervals: Vec<(NaiveTime, NaiveTime)>) -> Result<OfficeHours, CalendarError> {
        if intervals.is_empty() {
            return Err(CalendarError::InvalidOfficeHours(
                "at least one interval is needed".into(),
            ));
        }
        let mut previous_end: Option<NaiveTime> = None;
        for (start, end) in &intervals {
            if start >= end {
                return Err(CalendarError::InvalidOfficeHours(format!(
                    "interval {start}-{end} does not end after it starts"
                )));
            }
            if previous_end.is_some_and(|previous| *start < previous) {
                return Err(CalendarError::InvalidOfficeHours(format!(
                    "interval {start}-{end} overlaps or precedes the previous one"
                )));
            }
            previous_end = Some(*end);
        }
        Ok(OfficeHours { intervals })
    }

    /// The intervals, in order.
    pub fn intervals(&self) -> &[(NaiveTime, NaiveTime)] {
        &self.intervals
    }

    /// The close of a working day (end of the last interval).
    pub fn close(&self) -> NaiveTime {
        self.intervals.last().expect("office hours are never empty").1
    }

    /// Office time in one working day.
    pub fn per_day(&self) -> TimeDelta {
        self.intervals.iter().map(|(start, end)| *end - *start).sum()
    }
}

impl Default for OfficeHours {
    fn default() -> OfficeHours {
        let hm = |h, m| NaiveTime::from_hms_opt(h, m, 0).expect("valid time");
        OfficeHours {
            intervals: vec![(hm(8, 0), hm(12, 0)), (hm(13, 0), hm(17, 0))],
        }
    }
}

/// Working days and office hours: the clock every due date is computed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessCalendar {
    tables: BTreeMap<i32, HolidayTable>,
    office_hours: OfficeHours,
}

impl BusinessCalendar {
    /// A calendar with the given office hours and no holiday table yet.
    pub fn new(office_hours: OfficeHours) -> BusinessCalendar {
        BusinessCalendar {
            tables: BTreeMap::new(),
            office_hours,
        }
    }

    /// The shipped calendar: the 2025 and 2026 tables and default office hours.
    pub fn vietnam() -> BusinessCalendar {
        let mut calendar = BusinessCalendar::new(OfficeHours::default());
        for table in [HolidayTable::shipped_2025(), HolidayTable::shipped_2026()] {
            calendar.tables.insert(table.year, table);
        }
        calendar
    }

    /// Adds a year's table, or replaces a loaded one by a higher version.
    pub fn with_year(mut self, table: HolidayTable) -> Result<BusinessCalendar, CalendarError> {
        table.check()?;
        if let Some(loaded) = self.tables.get(&table.year)
            && loaded.version >= table.version
        {
            return Err(CalendarError::StaleTable {
                year: table.year,
                version: table.version,
                loaded: loaded.version,
            });
        }
        self.tables.insert(table.year, table);
        Ok(self)
    }

    /// Adds a year's table from the documented JSON format (e.g. a file the server read).
    pub fn with_year_json(self, json: &str) -> Result<BusinessCalendar, CalendarError> {
        self.with_year(HolidayTable::from_json(json)?)
    }

    /// The table loaded for a year.
    pub fn table(&self, year: i32) -> Option<&HolidayTable> {
        self.tables.get(&year)
    }

    /// The table in force for a year: the loaded notice, or else the provisional table.
    pub fn table_in_force(&self, year: i32) -> Result<Cow<'_, HolidayTable>, CalendarError> {
        match self.tables.get(&year) {
            Some(table) => Ok(Cow::Borrowed(table)),
            None => HolidayTable::provisional(year).map(Cow::Owned),
        }
    }

    /// The tables a computation over the local dates `from..=until` used, one per year.
    pub fn refs_between(&self, from: NaiveDate, until: NaiveDate) -> Result<Vec<CalendarRef>, CalendarError> {
        (from.year().min(until.year())..=until.year().max(from.year()))
            .map(|year| Ok(self.table_in_force(year)?.reference()))
            .collect()
    }

    /// The years with a loaded notice.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.tables.keys().copied()
    }

    /// The office hours.
    pub fn office_hours(&self) -> &OfficeHours {
        &self.office_hours
    }

    /// Whether a local date is a working day.
    pub fn is_working_day(&self, date: NaiveDate) -> Result<bool, CalendarError> {
        let table = self
            .tables
            .get(&date.year())
            .ok_or(CalendarError::YearNotLoaded { year: date.year() })?;
        Ok(table.is_working_day(date))
    }

    /// The first working day strictly after `date`.
    pub fn next_working_day(&self, date: NaiveDate) -> Result<NaiveDate, CalendarError> {
        self.nth_working_day_after(date, 1)
    }

    /// The `n`-th working day strictly after `date` (`date` itself when `n` is 0).
    pub fn nth_working_day_after(&self, date: NaiveDate, n: u32) -> Result<NaiveDate, CalendarError> {
        let mut day = date;
        let mut left = n;
        while left > 0 {
            day = succ(day)?;
            if self.is_working_day(day)? {
                left -= 1;
            }
        }
        Ok(day)
    }

    /// Number of working days `d` with `from <= d < until`.
    pub fn working_days_between(&self, from: NaiveDate, until: NaiveDate) -> Result<u32, CalendarError> {
        let mut n = 0;
        let mut day = from;
        while day < until {
            if self.is_working_day(day)? {
                n += 1;
            }
            day = succ(day)?;
        }
        Ok(n)
    }

    /// The instant the office closes on a local date ("17:00" by default).
    pub fn close_of(&self, date: NaiveDate) -> DateTime<Utc> {
        from_local(date.and_time(self.office_hours.close()))
    }

    /// The instant `duration` of office time after `from`; starts at the next opening when `from`
    /// is outside office hours, and lands on a closing time rather than the next opening when the
    /// time runs out exactly there.
    pub fn add_office_time(&self, from: DateTime<Utc>, duration: TimeDelta) -> Result<DateTime<Utc>, CalendarError> {
        if duration <= TimeDelta::zero() {
            return Ok(from);
        }
        let from = to_local(from);
        let mut left = duration;
        let mut day = from.date();
        loop {
            if self.is_working_day(day)? {
                for (open, close) in &self.office_hours.intervals {
                    let close = day.and_time(*close);
                    if from >= close {
                        continue;
                    }
                    let start = from.max(day.and_time(*open));
                    let available = close - start;
                    if left <= available {
                        return Ok(from_local(start + left));
                    }
                    left -= available;
                }
            }
            day = succ(day)?;
        }
    }

    /// Office time between two instants (zero when `until` is not after `from`).
    pub fn office_time_between(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> Result<TimeDelta, CalendarError> {
        if until <= from {
            return Ok(TimeDelta::zero());
        }
        let (from, until) = (to_local(from), to_local(until));
        let mut total = TimeDelta::zero();
        let mut day = from.date();
        while day <= until.date() {
            if self.is_working_day(day)? {
                for (open, close) in &self.office_hours.intervals {
                    let start = from.max(day.and_time(*open));
                    let end = until.min(day.and_time(*close));
                    if end > start {
                        total += end - start;
                    }
                }
            }
            day = succ(day)?;
        }
        Ok(total)
    }
}

fn succ(date: NaiveDate) -> Result<NaiveDate, CalendarError> {
    date.succ_opt()
        .ok_or(CalendarError::YearNotLoaded { year: date.year() + 1 })
}

#[cfg(test)]
mod tests;
