//! Tests for the business calendar: the shipped holiday tables, the provisional tables of years
//! without a notice, table loading, office-time arithmetic.

use chrono::{NaiveDate, NaiveTime, TimeDelta};
use proptest::prelude::*;

use super::*;
use crate::procedure::{StatutoryTime, TimeUnit};
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
fn a_year_without_a_notice_gets_the_provisional_table() {
    let calendar = BusinessCalendar::vietnam();
    // 2027: 1/1 Friday; Tết 5/2 (Fri, last day of Bính Ngọ) and 6-9/2 (1-4/1 lunar, Sat-Tue), the
    // weekend two in lieu on Wed 10/2 and Thu 11/2; Hùng Kings Fri 16/4; 30/4 Fri; 1/5 Sat, in
    // lieu Mon 3/5; 2/9 Thu with Wed 1/9.
    #[rustfmt::skip]
    let cases = [
        ("2027-01-01", false), ("2027-01-04", true), ("2027-02-04", true), ("2027-02-05", false),
        ("2027-02-08", false), ("2027-02-09", false), ("2027-02-10", false), ("2027-02-11", false),
        ("2027-02-12", true), ("2027-04-16", false), ("2027-04-30", false), ("2027-05-03", false),
        ("2027-05-04", true), ("2027-09-01", false), ("2027-09-02", false), ("2027-09-03", true),
        ("2024-12-31", true), ("2024-09-02", false), ("2024-09-03", false),
    ];
    for (day, working) in cases {
        assert_eq!(calendar.is_working_day(date(day)), Ok(working), "{day}");
    }
    // 31/12/2026 (1), 1/1/2027 off, weekend, Mon 4/1 (2), ... Thu 7/1 (5).
    assert_eq!(
        calendar.nth_working_day_after(date("2026-12-30"), 5),
        Ok(date("2027-01-07"))
    );
    let t2027 = calendar.table_in_force(2027).unwrap();
    assert!(t2027.is_provisional());
    assert_eq!(
        t2027
            .days_off
            .iter()
            .map(|d| d.format("%d/%m").to_string())
            .collect::<Vec<_>>(),
        [
            "01/01", "05/02", "08/02", "09/02", "10/02", "11/02", "16/04", "30/04", "03/05", "01/09", "02/09"
        ]
    );
    assert!(t2027.working_saturdays.is_empty());
    assert_eq!(
        t2027.notes.split("; ").take(2).collect::<Vec<_>>(),
        [
            "2027-01-01: New Year's Day",
            "2027-02-05: Tết, 29/12 lunar, last day of the lunar year"
        ]
    );
    assert!(
        t2027
            .notes
            .contains("2027-02-06: Tết, 1/1 lunar (Saturday, off in lieu 2027-02-10)"),
        "{}",
        t2027.notes
    );
    assert!(
        t2027
            .notes
            .contains("2027-05-03: in lieu of International Labour Day on Saturday 2027-05-01"),
        "{}",
        t2027.notes
    );
}

#[test]
fn provisional_days_in_lieu_chain_in_date_order() {
    // days_off per year, as day/month in date order.
    // 2022: 1/1 Sat (in lieu Mon 3/1); Hùng Kings Sun 10/4 (Mon 11/4); 30/4 Sat and 1/5 Sun (Mon
    // 2/5 and Tue 3/5). As the 2022 notice had them, but for its bridging days around Tết.
    // 2023: 1/1 Sun (Mon 2/1); Tết Sat 21/1 to Wed 25/1 (Thu 26/1, Fri 27/1); Hùng Kings Sat 29/4
    // and 30/4 Sun before 1/5 Mon (Tue 2/5, Wed 3/5: as the 2023 notice); 2/9 Sat with Fri 1/9
    // (Mon 4/9).
    // 2028: 1/1 Sat (Mon 3/1); Tết Tue 25/1 to Sat 29/1 (Mon 31/1); 30/4 Sun before 1/5 Mon (Tue
    // 2/5); 2/9 Sat with Fri 1/9 (Mon 4/9).
    // 2029: 1/9 Sat, so the adjacent day is Mon 3/9; 2/9 Sun, in lieu Tue 4/9 (3/9 is already off).
    #[rustfmt::skip]
    let cases = [
        (2022, "03/01 31/01 01/02 02/02 03/02 04/02 11/04 02/05 03/05 01/09 02/09"),
        (2023, "02/01 23/01 24/01 25/01 26/01 27/01 01/05 02/05 03/05 01/09 04/09"),
        (2028, "03/01 25/01 26/01 27/01 28/01 31/01 04/04 01/05 02/05 01/09 04/09"),
        (2029, "01/01 12/02 13/02 14/02 15/02 16/02 23/04 30/04 01/05 03/09 04/09"),
    ];
    for (year, expected) in cases {
        let table = HolidayTable::provisional(year).unwrap();
        let got: Vec<String> = table.days_off.iter().map(|d| d.format("%d/%m").to_string()).collect();
        assert_eq!(got.join(" "), expected, "{year}: {}", table.notes);
    }
}

#[test]
fn every_provisional_table_is_consistent_and_computed_once() {
    for year in PROVISIONAL_YEARS {
        let table = HolidayTable::provisional(year).unwrap();
        assert_eq!(table.check(), Ok(()), "{year}");
        assert_eq!((table.year, table.version), (year, PROVISIONAL_VERSION));
        assert_eq!(
            table.source,
            "provisional: Labour Code 2019 art. 112 (no notice loaded)"
        );
        assert!(table.working_saturdays.is_empty(), "{year}");
        // Eleven holidays, each a weekday off or a weekend day with a weekday in lieu: 11 days off
        // (no day in lieu crosses a year end with these holidays); 10 in 1947, the one year where
        // Hùng Kings' day is 30/4.
        let expected = if year == 1947 { 10 } else { 11 };
        assert_eq!(table.days_off.len(), expected, "{year}: {}", table.notes);
        assert!(table.days_off.iter().all(|day| !is_weekend(*day)), "{year}");
        assert!(std::ptr::eq(
            HolidayTable::provisional_memo(year).unwrap(),
            HolidayTable::provisional_memo(year).unwrap()
        ));
    }
    let t1947 = HolidayTable::provisional(1947).unwrap();
    assert!(
        t1947
            .notes
            .contains("1947-04-30: Hùng Kings' Commemoration, 10/3 lunar and Reunification Day; "),
        "{}",
        t1947.notes
    );
}

/// Found by the `due_date` fuzz target: an instant within seven hours of the end of chrono's
/// range made `to_local` overflow and panic; now a due date there is refused like any year
/// without a calendar.
#[test]
fn due_dates_at_the_ends_of_time_are_refused_not_a_panic() {
    let calendar = BusinessCalendar::vietnam();
    for instant in [DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC] {
        for time in [
            StatutoryTime::working_days(1),
            StatutoryTime::working_hours(8),
            StatutoryTime::calendar_days(1),
        ] {
            assert!(
                matches!(
                    time.due_at(instant, &calendar),
                    Err(CalendarError::YearNotLoaded { .. })
                ),
                "{time} from {instant}"
            );
        }
    }
    // More calendar days than chrono has dates.
    assert!(matches!(
        StatutoryTime::calendar_days(u32::MAX).due_at(vn("2026-06-01 09:00"), &calendar),
        Err(CalendarError::YearNotLoaded { .. })
    ));
    assert_eq!(to_local(DateTime::<Utc>::MAX_UTC), NaiveDateTime::MAX);
    assert_eq!(from_local(NaiveDateTime::MIN), DateTime::<Utc>::MIN_UTC);
}

#[test]
fn a_year_outside_the_provisional_range_needs_a_notice() {
    let calendar = BusinessCalendar::vietnam();
    for day in ["1899-12-31", "2200-01-01"] {
        let year = date(day).year();
        assert_eq!(
            calendar.is_working_day(date(day)),
            Err(CalendarError::YearNotLoaded { year })
        );
        assert_eq!(
            HolidayTable::provisional(year),
            Err(CalendarError::YearNotLoaded { year })
        );
    }
    assert_eq!(
        calendar.nth_working_day_after(date("2199-12-30"), 5),
        Err(CalendarError::YearNotLoaded { year: 2200 })
    );
    assert_eq!(
        CalendarError::YearNotLoaded { year: 2200 }.to_string(),
        "no holiday notice is loaded for 2200 and provisional calendars cover only 1900 to 2199; \
         check the date, or load that year's holiday notice"
    );
    // A notice makes such a year usable.
    let calendar = calendar
        .with_year_json(r#"{"year": 2200, "version": 1, "source": "x", "days_off": [], "working_saturdays": []}"#)
        .unwrap();
    assert_eq!(calendar.is_working_day(date("2200-01-01")), Ok(true));
}

#[test]
fn due_dates_record_the_tables_they_used() {
    let calendar = BusinessCalendar::vietnam();
    let refs = calendar.refs_between(date("2026-12-30"), date("2027-01-07")).unwrap();
    assert_eq!(
        refs,
        [
            CalendarRef {
                year: 2026,
                version: 1,
                provisional: false
            },
            CalendarRef {
                year: 2027,
                version: 0,
                provisional: true
            },
        ]
    );
    // Once a notice is loaded it is the table in force; what was recorded before stays as it was.
    let calendar = calendar.with_year_json(TABLE_2027).unwrap();
    let refs = calendar.refs_between(date("2027-01-07"), date("2026-12-30")).unwrap();
    assert_eq!(
        refs.iter()
            .map(|r| (r.year, r.version, r.provisional))
            .collect::<Vec<_>>(),
        [(2026, 1, false), (2027, 1, false)]
    );
}

#[test]
fn a_provisional_table_cannot_be_loaded_as_a_notice() {
    let calendar = BusinessCalendar::vietnam();
    let expected = Err(CalendarError::InvalidTable {
        year: 2027,
        problem: "version 0 is reserved for provisional tables; a notice's version is 1 or more".into(),
    });
    assert_eq!(
        calendar.clone().with_year(HolidayTable::provisional(2027).unwrap()),
        expected
    );
    let json = TABLE_2027.replace(r#""version": 1"#, r#""version": 0"#);
    assert_eq!(calendar.with_year_json(&json), expected);
}

/// Days that are off in one table and worked in the other, as `day/month` sorted by date.
fn differences(notice: &HolidayTable, provisional: &HolidayTable) -> (Vec<String>, Vec<String>) {
    let mut off_in_notice_only = Vec::new();
    let mut off_in_provisional_only = Vec::new();
    let mut day = NaiveDate::from_ymd_opt(notice.year, 1, 1).unwrap();
    while day.year() == notice.year {
        match (notice.is_working_day(day), provisional.is_working_day(day)) {
            (false, true) => off_in_notice_only.push(day.format("%a %d/%m").to_string()),
            (true, false) => off_in_provisional_only.push(day.format("%a %d/%m").to_string()),
            _ => {}
        }
        day = day.succ_opt().unwrap();
    }
    (off_in_notice_only, off_in_provisional_only)
}

#[test]
fn provisional_tables_compared_with_the_2025_and_2026_notices() {
    #[rustfmt::skip]
    let cases = [
        // 2025: the notice bridges Mon 27/1 before Tết and Fri 2/5 (against Sat 26/4); the
        // provisional table gives Mon 3/2 in lieu of Sat 1/2 (4/1 lunar).
        (HolidayTable::shipped_2025(), vec!["Mon 27/01", "Fri 02/05"], vec!["Sat 26/04"], vec!["Mon 03/02"]),
        // 2026: the notice bridges Fri 2/1 (against Sat 10/1) and Mon 31/8 (against Sat 22/8);
        // Tết (16-20/2) and Hùng Kings' day in lieu (Mon 27/4) are the same.
        (HolidayTable::shipped_2026(), vec!["Fri 02/01", "Mon 31/08"], vec!["Sat 10/01", "Sat 22/08"], vec![]),
    ];
    for (notice, notice_off, notice_worked_weekend, provisional_off) in cases {
        let provisional = HolidayTable::provisional(notice.year).unwrap();
        let (off_in_notice_only, off_in_provisional_only) = differences(&notice, &provisional);
        let (weekdays, weekends): (Vec<String>, Vec<String>) =
            off_in_provisional_only.into_iter().partition(|d| !d.starts_with('S'));
        println!(
            "{}: off in the notice, worked in the provisional table: {off_in_notice_only:?}; \
             weekend days the notice has worked: {weekends:?}; off in the provisional table only: \
             {weekdays:?}",
            notice.year
        );
        assert_eq!(off_in_notice_only, notice_off, "{}", notice.year);
        assert_eq!(weekends, notice_worked_weekend, "{}", notice.year);
        assert_eq!(weekdays, provisional_off, "{}", notice.year);
    }
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
        (r#"{"year": 2027, "version": 0, "source": "x", "days_off": [], "working_saturdays": []}"#,
         "holiday table for 2027: version 0 is reserved for provisional tables; a notice's version is 1 or more"),
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

fn statutory_time() -> impl Strategy<Value = StatutoryTime> {
    (
        prop_oneof![1u32..=30, 1u32..=3650],
        prop_oneof![
            Just(TimeUnit::WorkingDays),
            Just(TimeUnit::WorkingHours),
            Just(TimeUnit::CalendarDays)
        ],
    )
        .prop_map(|(amount, unit)| StatutoryTime { amount, unit })
}

/// A local instant from 2024-01-01 to 2040-12-31, at minute resolution.
fn instant_2024_to_2040() -> impl Strategy<Value = DateTime<Utc>> {
    let start = date("2024-01-01").and_hms_opt(0, 0, 0).unwrap();
    let minutes = (date("2041-01-01") - date("2024-01-01")).num_minutes();
    (0..minutes).prop_map(move |minute| from_local(start + TimeDelta::minutes(minute)))
}

proptest! {
    #[test]
    fn due_dates_fall_on_working_days_of_the_table_in_force(
        received in instant_2024_to_2040(),
        time in statutory_time(),
    ) {
        let calendar = BusinessCalendar::vietnam();
        let due = time.due_at(received, &calendar).unwrap();
        prop_assert!(due > received);
        let due_on = to_local(due).date();
        let table = calendar.table_in_force(due_on.year()).unwrap();
        prop_assert!(table.is_working_day(due_on), "{} for {time} from {}", show(due), show(received));
        prop_assert_eq!(table.is_provisional(), !(2025..=2026).contains(&due_on.year()));
        if time.unit == TimeUnit::WorkingHours {
            let intervals = calendar.office_hours().intervals();
            prop_assert!(intervals.iter().any(|(open, close)| (*open..=*close).contains(&to_local(due).time())));
        } else {
            prop_assert_eq!(due, calendar.close_of(due_on));
        }
        let refs = calendar.refs_between(to_local(received).date(), due_on).unwrap();
        prop_assert_eq!(refs.last().map(|r| r.year), Some(due_on.year()));
    }
}
