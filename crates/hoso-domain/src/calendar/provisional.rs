//! The provisional holiday table of a year for which no notice is loaded, built from the Labour
//! Code 2019 (Law 45/2019/QH14) art. 112, detailed by Decree 145/2020/NĐ-CP:
//!
//! - cl. 1: New Year's Day (1/1); Tết, five days; Hùng Kings' Commemoration (10/3 lunar);
//!   Reunification Day (30/4); International Labour Day (1/5); National Day (2/9) and one day
//!   before or after it;
//! - cl. 3: a holiday falling on a weekly rest day (Saturday or Sunday for civil servants) gives a
//!   day off in lieu on the next working day.
//!
//! Choices where the Code leaves the date to the yearly notice (the crate's CHOICES.md):
//! - Tết is the last day of the lunar year (29 or 30 tháng Chạp) and 1/1 to 4/1 lunar, as the
//!   2026 notice has it;
//! - the day adjacent to National Day is 1/9 when that is Monday to Friday, else 3/9;
//! - a day off in lieu is the next Monday to Friday that is not already a day off, holidays taken
//!   in date order so that two weekend holidays in a row give two days in lieu;
//! - no bridging days and no swapped Saturdays: those are the notice's decisions.
//!
//! A table holds only dates of its own year: the holidays of the year before are walked too, so a
//! day in lieu spilling over the year end lands in the right table (none does with today's list,
//! whose last holiday is early September).

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate};

use super::lunar::{lunar_to_solar, solar_to_lunar};
use super::{CalendarError, HolidayTable, PROVISIONAL_VERSION, is_weekend};

/// The `source` of every provisional table.
pub(super) const SOURCE: &str = "provisional: Labour Code 2019 art. 112 (no notice loaded)";

/// One public holiday of art. 112 cl. 1 (or two on the same date).
struct Holiday {
    date: NaiveDate,
    name: String,
}

/// The holidays of a year (weekend ones included), in date order, one per date: holidays falling
/// on the same date (Hùng Kings' day on 30/4: in 1900-2199 only in 1947) give one day off, and one
/// day in lieu if on a weekend, since art. 112 cl. 3 gives days in lieu for weekly rest days only.
fn holidays(year: i32) -> Result<Vec<Holiday>, CalendarError> {
    let unavailable = CalendarError::YearNotLoaded { year };
    let solar = |month, day| NaiveDate::from_ymd_opt(year, month, day).ok_or(unavailable.clone());
    let lunar = |month, day| lunar_to_solar(year, month, day, false).ok_or(unavailable.clone());
    let tet = lunar(1, 1)?;
    let new_years_eve = tet.pred_opt().ok_or(unavailable.clone())?;
    // 29 or 30 tháng Chạp (month 12), as the notes tell.
    let (eve_day, eve_month, ..) = solar_to_lunar(new_years_eve).ok_or(unavailable.clone())?;
    let national_day = solar(9, 2)?;
    let sep_1 = solar(9, 1)?;
    let adjacent = if is_weekend(sep_1) { solar(9, 3)? } else { sep_1 };
    let mut holidays = vec![
        Holiday {
            date: solar(1, 1)?,
            name: "New Year's Day".into(),
        },
        Holiday {
            date: new_years_eve,
            name: format!("Tết, {eve_day}/{eve_month} lunar, last day of the lunar year"),
        },
        Holiday {
            date: tet,
            name: "Tết, 1/1 lunar".into(),
        },
        Holiday {
            date: lunar(1, 2)?,
            name: "Tết, 2/1 lunar".into(),
        },
        Holiday {
            date: lunar(1, 3)?,
            name: "Tết, 3/1 lunar".into(),
        },
        Holiday {
            date: lunar(1, 4)?,
            name: "Tết, 4/1 lunar".into(),
        },
        Holiday {
            date: lunar(3, 10)?,
            name: "Hùng Kings' Commemoration, 10/3 lunar".into(),
        },
        Holiday {
            date: solar(4, 30)?,
            name: "Reunification Day".into(),
        },
        Holiday {
            date: solar(5, 1)?,
            name: "International Labour Day".into(),
        },
        Holiday {
            date: national_day,
            name: "National Day".into(),
        },
        Holiday {
            date: adjacent,
            name: "the day adjacent to National Day".into(),
        },
    ];
    holidays.sort_by_key(|holiday| holiday.date);
    let mut merged: Vec<Holiday> = Vec::with_capacity(holidays.len());
    for holiday in holidays {
        match merged.last_mut() {
            Some(last) if last.date == holiday.date => {
                last.name = format!("{} and {}", last.name, holiday.name);
            }
            _ => merged.push(holiday),
        }
    }
    Ok(merged)
}

/// Builds the provisional table of `year` (no memo: see `HolidayTable::provisional`).
pub(super) fn build(year: i32) -> Result<HolidayTable, CalendarError> {
    let mut all = holidays(year - 1)?;
    all.extend(holidays(year)?);
    let mut off: BTreeSet<NaiveDate> = all.iter().map(|holiday| holiday.date).collect();
    let mut notes: Vec<(NaiveDate, String)> = Vec::new();
    for holiday in &all {
        if !is_weekend(holiday.date) {
            notes.push((holiday.date, holiday.name.clone()));
            continue;
        }
        let mut in_lieu = holiday.date;
        while is_weekend(in_lieu) || off.contains(&in_lieu) {
            in_lieu = in_lieu.succ_opt().ok_or(CalendarError::YearNotLoaded { year })?;
        }
        off.insert(in_lieu);
        let weekday = holiday.date.format("%A");
        notes.push((
            holiday.date,
            format!("{} ({weekday}, off in lieu {in_lieu})", holiday.name),
        ));
        notes.push((
            in_lieu,
            format!("in lieu of {} on {weekday} {}", holiday.name, holiday.date),
        ));
    }
    notes.retain(|(date, _)| date.year() == year);
    notes.sort_by_key(|(date, _)| *date);
    let days_off = off
        .into_iter()
        .filter(|date| date.year() == year && !is_weekend(*date))
        .collect();
    let notes = notes
        .iter()
        .map(|(date, what)| format!("{date}: {what}"))
        .collect::<Vec<_>>()
        .join("; ");
    let table = HolidayTable {
        year,
        version: PROVISIONAL_VERSION,
        source: SOURCE.to_string(),
        days_off,
        working_saturdays: BTreeSet::new(),
        notes,
    };
    table.check()?;
    Ok(table)
}
