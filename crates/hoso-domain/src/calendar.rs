//! The business calendar of Vietnam (Asia/Ho_Chi_Minh, fixed UTC+7, no DST): which local dates are
//! working days, the office hours on those days, and arithmetic in office time.
//!
//! Holidays are data: one [`HolidayTable`] per year, versioned, parsed from the JSON format below.
//! 2025 and 2026 ship inside the crate; a province adds next year's notice at run time with
//! [`BusinessCalendar::with_year_json`] (the server reads the file; this crate does no IO).
//!
//! A year without a loaded notice gets a *provisional* table ([`HolidayTable::provisional`],
//! version [`PROVISIONAL_VERSION`]): the holidays of the Labour Code 2019 art. 112 with their
//! lunar dates computed (the `lunar` submodule), the days off in lieu the Code gives, no bridging
//! days, no swapped Saturdays. It is computed once per year and process. Only a year outside
//! [`PROVISIONAL_YEARS`] without a notice is an error ([`CalendarError::YearNotLoaded`]). Due
//! dates record the tables they were computed with ([`CalendarRef`],
//! [`BusinessCalendar::refs_between`]), so a notice loaded later changes no due date already
//! decided.
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
use std::ops::RangeInclusive;
use std::sync::OnceLock;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc, Weekday};
use serde::{Deserialize, Serialize};

mod lunar;
mod provisional;

/// Calendar data or office hours are missing or inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CalendarError {
    /// No holiday notice is loaded for the year and the year is outside the years a provisional
    /// table is computed for ([`crate::calendar::PROVISIONAL_YEARS`], 1900 to 2199); working days
    /// there are unknown. (Within those years a missing notice is no error: the provisional table
    /// is used.)
    #[error(
        "no holiday notice is loaded for {year} and provisional calendars cover only 1900 to 2199; check the date, or load that year's holiday notice"
    )]
    YearNotLoaded {
        /// The year without a table.
        year: i32,
    },
    /// A holiday table is not valid JSON or does not have the documented fields.
    #[error("holiday table is not in the documented format: {0}")]
    Format(String),
    /// A holiday table contradicts itself (a date outside its year, a "working Saturday" that is
    /// not a weekend day or is also a day off).
    #[error("holiday table for {year}: {problem}")]
    InvalidTable {
        /// The table's year.
        year: i32,
        /// What is inconsistent.
        problem: String,
    },
    /// A table for a year already loaded does not have a higher version.
    #[error("holiday table for {year} version {version} does not supersede the loaded version {loaded}")]
    StaleTable {
        /// The table's year.
        year: i32,
        /// The rejected table's version.
        version: u32,
        /// The loaded table's version.
        loaded: u32,
    },
    /// Office hours are empty, unordered or overlapping.
    #[error("office hours: {0}")]
    InvalidOfficeHours(String),
}

/// The version of every provisional table; a notice's version is 1 or more.
pub const PROVISIONAL_VERSION: u32 = 0;

/// The years a provisional table can be computed for (those of the lunar calendar's published
/// tables); outside them a year needs a loaded notice.
pub const PROVISIONAL_YEARS: RangeInclusive<i32> = 1900..=2199;

/// How many years [`PROVISIONAL_YEARS`] holds: the memo has a slot for each.
const N_PROVISIONAL_YEARS: usize = 300;
// The memo's size and the range agree (checked at compile time).
const _: () = assert!(*PROVISIONAL_YEARS.end() - *PROVISIONAL_YEARS.start() + 1 == N_PROVISIONAL_YEARS as i32);

/// Offset of Asia/Ho_Chi_Minh from UTC, in seconds (UTC+7, no daylight saving time).
pub const VIETNAM_UTC_OFFSET_SECS: i32 = 7 * 3600;

/// The fixed offset of Asia/Ho_Chi_Minh.
pub fn vietnam_offset() -> FixedOffset {
    FixedOffset::east_opt(VIETNAM_UTC_OFFSET_SECS).expect("UTC+7 is a valid offset")
}

/// The Vietnam local wall-clock time of an instant.
pub fn to_local(instant: DateTime<Utc>) -> NaiveDateTime {
    // Within seven hours of the end of chrono's range the local time does not exist: it stays at
    // the last one rather than panic (found by the `due_date` fuzz target).
    instant
        .naive_utc()
        .checked_add_signed(TimeDelta::seconds(i64::from(VIETNAM_UTC_OFFSET_SECS)))
        .unwrap_or(NaiveDateTime::MAX)
}

/// The instant of a Vietnam local wall-clock time (always unique: no DST).
pub fn from_local(local: NaiveDateTime) -> DateTime<Utc> {
    // Likewise at the start of chrono's range.
    local
        .checked_sub_signed(TimeDelta::seconds(i64::from(VIETNAM_UTC_OFFSET_SECS)))
        .unwrap_or(NaiveDateTime::MIN)
        .and_utc()
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
    ///
    /// The JSON format is for notices: version 0 ([`PROVISIONAL_VERSION`]) is refused.
    pub fn from_json(json: &str) -> Result<HolidayTable, CalendarError> {
        let table: HolidayTable = serde_json::from_str(json).map_err(|err| CalendarError::Format(err.to_string()))?;
        table.check_notice()?;
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
    ///
    /// Computed once per year and process (a memo every working-day question reads); this returns
    /// a copy. Only for [`PROVISIONAL_YEARS`]; other years are [`CalendarError::YearNotLoaded`].
    pub fn provisional(year: i32) -> Result<HolidayTable, CalendarError> {
        HolidayTable::provisional_memo(year).cloned()
    }

    /// The provisional table of a year, computed on first use and kept for the life of the
    /// process: every working-day question about a year without a notice reads it.
    fn provisional_memo(year: i32) -> Result<&'static HolidayTable, CalendarError> {
        static TABLES: [OnceLock<HolidayTable>; N_PROVISIONAL_YEARS] = [const { OnceLock::new() }; N_PROVISIONAL_YEARS];
        let slot = year
            .checked_sub(*PROVISIONAL_YEARS.start())
            .and_then(|index| usize::try_from(index).ok())
            .and_then(|index| TABLES.get(index))
            .ok_or(CalendarError::YearNotLoaded { year })?;
        if let Some(table) = slot.get() {
            return Ok(table);
        }
        // Two threads asking first may both build it; the first stored is kept (they are equal).
        let table = provisional::build(year)?;
        Ok(slot.get_or_init(|| table))
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

    /// Checks a notice: [`HolidayTable::check`], and a version other than the provisional one.
    fn check_notice(&self) -> Result<(), CalendarError> {
        if self.is_provisional() {
            return Err(CalendarError::InvalidTable {
                year: self.year,
                problem: format!(
                    "version {PROVISIONAL_VERSION} is reserved for provisional tables; a notice's version is 1 or more"
                ),
            });
        }
        self.check()
    }

    /// Checks that the table is consistent: every date in its year, swapped Saturdays on weekends
    /// and not also off.
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

    /// Adds a year's notice, or replaces a loaded one by a higher version. A provisional table
    /// (version 0) is refused: it is what a year without a notice gets anyway.
    pub fn with_year(mut self, table: HolidayTable) -> Result<BusinessCalendar, CalendarError> {
        table.check_notice()?;
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

    /// The table in force for a year: the loaded notice, or else the provisional table (an error
    /// only for a year outside [`PROVISIONAL_YEARS`] without a notice).
    pub fn table_in_force(&self, year: i32) -> Result<Cow<'_, HolidayTable>, CalendarError> {
        self.table_ref(year).map(Cow::Borrowed)
    }

    /// [`BusinessCalendar::table_in_force`], borrowed: the loaded notice or the memoized
    /// provisional table.
    fn table_ref(&self, year: i32) -> Result<&HolidayTable, CalendarError> {
        match self.tables.get(&year) {
            Some(table) => Ok(table),
            None => HolidayTable::provisional_memo(year),
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

    /// Whether a local date is a working day, by the table in force for its year.
    pub fn is_working_day(&self, date: NaiveDate) -> Result<bool, CalendarError> {
        Ok(self.table_ref(date.year())?.is_working_day(date))
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
