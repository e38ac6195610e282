//! Tests for the business calendar: the shipped holiday tables, table loading, office-time
//! arithmetic.

use chrono::{NaiveDate, NaiveTime, TimeDelta};

use super::*;
use crate::tests::{show, vn};

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

#[test]
fn working_days_across_2025_and_2026_holidays_and_swaps() {
    let calendar = BusinessCalendar::vietnam();
    #[rustfmt::skip]
    let cases = [
        // 2025: New Year, Tết, Hùng Kings, 30/4-1/5 bridged against Saturday 26/4, National Day.
        ("2025-01-01", false), ("2025-01-02", true), ("2025-01-24", true), ("2025-01-25", false),
        ("2025-01-27", false), ("2025-01-29", false), ("2025-01-31", false), ("2025-02-03", true),
        ("2025-04-07", false), ("2025-04-08", true), ("2025-04-26", true), ("2025-04-27", false),
        ("2025-04-30", false), ("2025-05-01", false), ("2025-05-02", false), ("2025-05-03", false),
        ("2025-05-05", true), ("2025-08-30", false), ("2025-09-01", false), ("2025-09-02", false),
        ("2025-09-03", true), ("2025-12-31", true),
        // 2026: New Year bridged against Saturday 10/1, Tết, Hùng Kings moved from Sunday,
        // 30/4-1/5, 31/8 bridged against Saturday 22/8, National Day; 24/11 not (unverified).
        ("2026-01-01", false), ("2026-01-02", false), ("2026-01-05", true), ("2026-01-10", true),
        ("2026-01-17", false), ("2026-02-13", true), ("2026-02-16", false), ("2026-02-20", false),
        ("2026-02-23", true), ("2026-04-26", false), ("2026-04-27", false), ("2026-04-28", true),
        ("2026-04-30", false), ("2026-05-01", false), ("2026-05-04", true), ("2026-08-22", true),
        ("2026-08-29", false), ("2026-08-31", false), ("2026-09-01", false), ("2026-09-02", false),
        ("2026-09-03", true), ("2026-11-24", true), ("2026-12-31", true),
    ];
    for (day, working) in cases {
        assert_eq!(calendar.is_working_day(date(day)), Ok(working), "{day}");
    }
}

#[test]
fn shipped_tables_match_their_notices() {
    let t2025 = HolidayTable::shipped_2025();
    assert_eq!((t2025.year, t2025.version, t2025.days_off.len()), (2025, 1, 12));
    assert_eq!(
        t2025.working_saturdays.iter().copied().collect::<Vec<_>>(),
        [date("2025-04-26")]
    );
    let t2026 = HolidayTable::shipped_2026();
    assert_eq!((t2026.year, t2026.version, t2026.days_off.len()), (2026, 1, 13));
    assert_eq!(
        t2026.working_saturdays.iter().copied().collect::<Vec<_>>(),
        [date("2026-01-10"), date("2026-08-22")]
    );
    // Every day off listed is a weekday: the notices list weekdays off.
    for day in t2025.days_off.iter().chain(&t2026.days_off) {
        assert!(!is_weekend(*day), "{day}");
    }
}

#[test]
fn working_day_counting_across_years_and_months() {
    let calendar = BusinessCalendar::vietnam();
    #[rustfmt::skip]
    let cases = [
        ("2025-12-31", 1, "2026-01-05"), // 1-2/1 off, then a weekend.
        ("2026-07-31", 1, "2026-08-03"), // Month end on a Friday.
        ("2026-01-09", 1, "2026-01-10"), // The swapped Saturday is worked.
        ("2026-02-13", 3, "2026-02-25"), // Tết week.
        ("2026-08-28", 1, "2026-09-03"), // 31/8 to 2/9.
        ("2026-06-10", 0, "2026-06-10"),
    ];
    for (from, n, expected) in cases {
        assert_eq!(
            calendar.nth_working_day_after(date(from), n),
            Ok(date(expected)),
            "{from} + {n}"
        );
    }
    assert_eq!(
        calendar.working_days_between(date("2026-02-13"), date("2026-02-24")),
        Ok(2)
    );
    assert_eq!(
        calendar.working_days_between(date("2026-02-24"), date("2026-02-13")),
        Ok(0)
    );
}

#[test]
fn a_year_without_a_table_is_an_error_not_a_guess() {
    let calendar = BusinessCalendar::vietnam();
    assert_eq!(
        calendar.is_working_day(date("2027-01-04")),
        Err(CalendarError::YearNotLoaded { year: 2027 })
    );
    assert_eq!(
        calendar.nth_working_day_after(date("2026-12-30"), 5),
        Err(CalendarError::YearNotLoaded { year: 2027 })
    );
    assert_eq!(
        calendar.is_working_day(date("2024-12-31")),
        Err(CalendarError::YearNotLoaded { year: 2024 })
    );
}

const TABLE_2027: &str = r#"{
    "year": 2027, "version": 1, "source": "a test notice",
    "days_off": ["2027-01-01"], "working_saturdays": []
}"#;

#[test]
fn a_province_loads_next_year_without_a_rebuild() {
    let calendar = BusinessCalendar::vietnam().with_year_json(TABLE_2027).unwrap();
    assert_eq!(calendar.years().collect::<Vec<_>>(), [2025, 2026, 2027]);
    // 31/12/2026 (1), 1/1/2027 off, weekend, Mon 4/1 (2), ... Thu 7/1 (5).
    assert_eq!(
        calendar.nth_working_day_after(date("2026-12-30"), 5),
        Ok(date("2027-01-07"))
    );
}

#[test]
fn a_reissued_table_needs_a_higher_version() {
    let calendar = BusinessCalendar::vietnam().with_year_json(TABLE_2027).unwrap();
    let stale = calendar.clone().with_year_json(TABLE_2027);
    assert_eq!(
        stale,
        Err(CalendarError::StaleTable {
            year: 2027,
            version: 1,
            loaded: 1
        })
    );
    let reissued = TABLE_2027
        .replace(r#""version": 1"#, r#""version": 2"#)
        .replace(r#"["2027-01-01"]"#, r#"["2027-01-01", "2027-01-04"]"#);
    let calendar = calendar.with_year_json(&reissued).unwrap();
    assert_eq!(calendar.table(2027).map(|t| t.version), Some(2));
    assert_eq!(calendar.is_working_day(date("2027-01-04")), Ok(false));
}

#[test]
fn malformed_tables_are_rejected_with_the_reason() {
    #[rustfmt::skip]
    let cases = [
        (r#"{"year": 2027, "version": 1, "source": "x", "days_off": ["2028-01-01"], "working_saturdays": []}"#,
         "holiday table for 2027: 2028-01-01 is not in 2027"),
        (r#"{"year": 2027, "version": 1, "source": "x", "days_off": [], "working_saturdays": ["2027-01-04"]}"#,
         "holiday table for 2027: working Saturday 2027-01-04 is not a weekend day"),
        (r#"{"year": 2027, "version": 1, "source": "x", "days_off": ["2027-01-02"], "working_saturdays": ["2027-01-02"]}"#,
         "holiday table for 2027: 2027-01-02 is both a day off and a working Saturday"),
        (r#"{"year": 2027, "version": 1, "source": "x", "days_off": ["2027-02-30"], "working_saturdays": []}"#,
         "holiday table is not in the documented format: input is out of range at line 1 column 69"),
        (r#"{"year": 2027, "version": 1, "source": "x", "days_off": [], "working_saturdays": [], "holidays": []}"#,
         "holiday table is not in the documented format: unknown field `holidays`, expected one of `year`, `version`, `source`, `days_off`, `working_saturdays`, `notes` at line 1 column 95"),
    ];
    for (json, expected) in cases {
        assert_eq!(HolidayTable::from_json(json).unwrap_err().to_string(), expected);
    }
}

#[test]
fn office_hours_are_checked() {
    let hm = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap();
    assert!(OfficeHours::new(vec![]).is_err());
    assert!(OfficeHours::new(vec![(hm(9), hm(8))]).is_err());
    assert!(OfficeHours::new(vec![(hm(8), hm(12)), (hm(11), hm(17))]).is_err());
    let hours = OfficeHours::new(vec![(hm(7), hm(11)), (hm(13), hm(16))]).unwrap();
    assert_eq!((hours.close(), hours.per_day()), (hm(16), TimeDelta::hours(7)));
    assert_eq!(OfficeHours::default().per_day(), TimeDelta::hours(8));
}

#[test]
fn office_time_arithmetic_crosses_lunch_nights_and_holidays() {
    let calendar = BusinessCalendar::vietnam();
    #[rustfmt::skip]
    let adds = [
        ("2026-06-08 10:00", 4 * 60, "2026-06-08 Mon 15:00"), // Across lunch.
        ("2026-06-08 11:30", 60,     "2026-06-08 Mon 13:30"),
        ("2026-06-08 12:30", 120,    "2026-06-08 Mon 15:00"), // Received at lunch.
        ("2026-06-08 07:00", 4 * 60, "2026-06-08 Mon 12:00"), // Ends on a closing, not at 13:00.
        ("2026-06-08 18:00", 120,    "2026-06-09 Tue 10:00"), // After hours.
        ("2026-06-08 16:00", 8 * 60, "2026-06-09 Tue 16:00"), // Overnight.
        ("2026-06-12 16:00", 60,     "2026-06-12 Fri 17:00"), // Exactly at close.
        ("2026-06-13 09:00", 60,     "2026-06-15 Mon 09:00"), // Weekend.
        ("2026-08-22 09:00", 60,     "2026-08-22 Sat 10:00"), // Swapped Saturday.
        ("2026-02-13 15:00", 4 * 60, "2026-02-23 Mon 10:00"), // Tết.
        ("2025-12-31 16:30", 60,     "2026-01-05 Mon 08:30"), // Year end.
        ("2026-06-08 18:00", 0,      "2026-06-08 Mon 18:00"), // Nothing to add.
    ];
    for (from, minutes, expected) in adds {
        let got = calendar.add_office_time(vn(from), TimeDelta::minutes(minutes)).unwrap();
        assert_eq!(show(got), expected, "{from} + {minutes} min");
    }
    #[rustfmt::skip]
    let betweens = [
        ("2026-06-08 10:00", "2026-06-09 10:00", 8 * 60),
        ("2026-06-12 16:00", "2026-06-15 09:00", 2 * 60),  // Over a weekend.
        ("2026-06-08 12:10", "2026-06-08 12:50", 0),       // Lunch only.
        ("2026-02-13 16:00", "2026-02-23 08:30", 90),      // Over Tết.
        ("2026-06-09 10:00", "2026-06-08 10:00", 0),       // Reversed.
    ];
    for (from, until, minutes) in betweens {
        let got = calendar.office_time_between(vn(from), vn(until)).unwrap();
        assert_eq!(got, TimeDelta::minutes(minutes), "{from} .. {until}");
    }
}

#[test]
fn local_time_is_utc_plus_seven() {
    let instant = vn("2026-06-09 07:30");
    assert_eq!(instant.to_rfc3339(), "2026-06-09T00:30:00+00:00");
    assert_eq!(
        instant.with_timezone(&vietnam_offset()).to_rfc3339(),
        "2026-06-09T07:30:00+07:00"
    );
    assert_eq!(
        BusinessCalendar::vietnam().close_of(date("2026-06-09")),
        vn("2026-06-09 17:00")
    );
}
