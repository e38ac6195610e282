//! Tests for due dates and supplement pauses, table-driven over the 2025 and 2026 calendars, plus
//! property tests: due dates never fall outside working time and never move earlier.

use chrono::TimeDelta;
use proptest::prelude::*;

use super::*;
use crate::calendar::BusinessCalendar;
use crate::tests::{instant_from_2025, show, vn};

#[test]
fn due_dates_follow_the_documented_rules() {
    let calendar = BusinessCalendar::vietnam();
    let wd = StatutoryTime::working_days;
    let wh = StatutoryTime::working_hours;
    let cd = StatutoryTime::calendar_days;
    #[rustfmt::skip]
    let cases = [
        // N working days: close of the N-th working day after the day of receipt.
        ("2026-06-08 10:00", wd(3),  "2026-06-11 Thu 17:00"), // domain.md: Monday + 3 = Thursday.
        ("2026-06-13 10:00", wd(3),  "2026-06-17 Wed 17:00"), // domain.md: Saturday online.
        ("2026-06-08 19:30", wd(3),  "2026-06-11 Thu 17:00"), // After hours changes nothing.
        ("2026-06-08 07:00", wd(1),  "2026-06-09 Tue 17:00"), // Before opening neither.
        ("2026-02-13 09:00", wd(3),  "2026-02-25 Wed 17:00"), // Tết 2026.
        ("2025-01-24 09:00", wd(2),  "2025-02-04 Tue 17:00"), // Tết 2025.
        ("2025-04-25 09:00", wd(2),  "2025-04-28 Mon 17:00"), // Saturday 26/4/2025 worked.
        ("2025-04-29 09:00", wd(1),  "2025-05-05 Mon 17:00"), // 30/4-2/5/2025.
        ("2025-08-29 09:00", wd(1),  "2025-09-03 Wed 17:00"), // 1-2/9/2025.
        ("2026-01-09 09:00", wd(1),  "2026-01-10 Sat 17:00"), // Saturday 10/1/2026 worked.
        ("2026-08-21 09:00", wd(2),  "2026-08-24 Mon 17:00"), // Saturday 22/8/2026 worked.
        ("2026-08-28 09:00", wd(1),  "2026-09-03 Thu 17:00"), // 31/8-2/9/2026.
        ("2026-04-30 09:00", wd(1),  "2026-05-04 Mon 17:00"), // Received online on a holiday.
        ("2025-12-31 09:00", wd(1),  "2026-01-05 Mon 17:00"), // Year end.
        ("2026-07-31 09:00", wd(1),  "2026-08-03 Mon 17:00"), // Month end.
        ("2026-06-01 09:00", wd(20), "2026-06-29 Mon 17:00"),
        // N working hours: office time from the receipt instant.
        ("2026-06-08 10:00", wh(4),  "2026-06-08 Mon 15:00"), // Across lunch.
        ("2026-06-08 11:00", wh(1),  "2026-06-08 Mon 12:00"),
        ("2026-06-08 16:00", wh(8),  "2026-06-09 Tue 16:00"), // Across a night.
        ("2026-06-08 12:15", wh(2),  "2026-06-08 Mon 15:00"), // Received at lunch.
        ("2026-06-13 10:00", wh(4),  "2026-06-15 Mon 12:00"), // Received on a Saturday.
        ("2026-06-12 17:30", wh(1),  "2026-06-15 Mon 09:00"), // After hours on a Friday.
        ("2026-02-13 15:00", wh(16), "2026-02-24 Tue 15:00"), // Tết.
        ("2026-12-31 16:00", wh(1),  "2026-12-31 Thu 17:00"),
        // N calendar days: close of receipt + N, moved to the next working day if off.
        ("2026-06-08 10:00", cd(7),  "2026-06-15 Mon 17:00"),
        ("2026-06-08 10:00", cd(5),  "2026-06-15 Mon 17:00"), // Lands on Saturday.
        ("2026-04-22 10:00", cd(8),  "2026-05-04 Mon 17:00"), // Lands on 30/4.
        ("2026-02-09 10:00", cd(10), "2026-02-23 Mon 17:00"), // Lands in Tết.
        ("2026-08-15 10:00", cd(7),  "2026-08-22 Sat 17:00"), // Lands on a worked Saturday.
        ("2025-12-26 10:00", cd(10), "2026-01-05 Mon 17:00"), // Across the year end.
        ("2026-06-30 20:00", cd(1),  "2026-07-01 Wed 17:00"),
    ];
    for (received, time, expected) in cases {
        let due = time.due_at(vn(received), &calendar).unwrap();
        assert_eq!(show(due), expected, "{received} {time:?}");
    }
}

#[test]
fn due_dates_past_the_last_loaded_year_use_the_provisional_table() {
    let calendar = BusinessCalendar::vietnam();
    // 2027 has no notice: its provisional table has 1/1 (Friday) off.
    for (time, expected) in [
        (StatutoryTime::working_days(2), "2027-01-05 Tue 17:00"),
        (StatutoryTime::calendar_days(3), "2027-01-04 Mon 17:00"), // Sunday 3/1 moves to Monday.
        (StatutoryTime::working_hours(9), "2027-01-04 Mon 11:00"),
    ] {
        let due = time.due_at(vn("2026-12-31 10:00"), &calendar).unwrap();
        assert_eq!(show(due), expected, "{time:?}");
    }
    // Past the provisional range (1900-2199) a year needs a notice.
    for time in [
        StatutoryTime::working_days(2),
        StatutoryTime::calendar_days(3),
        StatutoryTime::working_hours(9),
    ] {
        assert_eq!(
            time.due_at(vn("2199-12-31 10:00"), &calendar),
            Err(CalendarError::YearNotLoaded { year: 2200 }),
            "{time:?}"
        );
    }
}

#[test]
fn supplement_pauses_move_the_due_date_by_the_waiting_time() {
    let calendar = BusinessCalendar::vietnam();
    #[rustfmt::skip]
    let cases = [
        // Day-based: k working days d with request date <= d < supplement date.
        (TimeUnit::WorkingDays, "2026-06-11 17:00", "2026-06-09 10:00", "2026-06-11 09:00", "2026-06-15 Mon 17:00"),
        (TimeUnit::WorkingDays, "2026-06-11 17:00", "2026-06-09 10:00", "2026-06-09 16:00", "2026-06-11 Thu 17:00"), // Same day: k = 0.
        (TimeUnit::WorkingDays, "2026-06-11 17:00", "2026-06-13 10:00", "2026-06-15 09:00", "2026-06-11 Thu 17:00"), // Weekend only.
        (TimeUnit::WorkingDays, "2026-02-25 17:00", "2026-02-13 10:00", "2026-02-24 09:00", "2026-02-27 Fri 17:00"), // Over Tết: k = 2.
        (TimeUnit::CalendarDays, "2026-06-15 17:00", "2026-06-10 10:00", "2026-06-12 10:00", "2026-06-17 Wed 17:00"),
        (TimeUnit::WorkingDays, "2026-12-29 17:00", "2026-12-28 10:00", "2026-12-29 10:00", "2026-12-30 Wed 17:00"),
        // Hour-based: the office time between request and supplement.
        (TimeUnit::WorkingHours, "2026-06-08 15:00", "2026-06-08 11:00", "2026-06-08 14:00", "2026-06-08 Mon 17:00"),
        (TimeUnit::WorkingHours, "2026-06-08 15:00", "2026-06-08 11:00", "2026-06-09 11:00", "2026-06-09 Tue 15:00"),
        (TimeUnit::WorkingHours, "2026-06-08 15:00", "2026-06-08 12:05", "2026-06-08 12:55", "2026-06-08 Mon 15:00"), // Lunch only.
    ];
    for (unit, due, requested, supplied, expected) in cases {
        let moved = unit
            .extend_for_pause(vn(due), vn(requested), vn(supplied), &calendar)
            .unwrap();
        assert_eq!(
            show(moved),
            expected,
            "{unit:?} due {due}, paused {requested} .. {supplied}"
        );
    }
}

#[test]
fn the_green_lane_is_configuration() {
    let code = ProcedureCode::parse("code", "1.001234").unwrap();
    let other = ProcedureCode::parse("code", "2.000815").unwrap();
    let lane = GreenLane::new().with(code.clone(), StatutoryTime::working_hours(4));
    assert_eq!(lane.shortened_time(&code), Some(StatutoryTime::working_hours(4)));
    assert_eq!(lane.shortened_time(&other), None);
}

fn statutory_time() -> impl Strategy<Value = StatutoryTime> {
    (
        1u32..=15,
        prop_oneof![
            Just(TimeUnit::WorkingDays),
            Just(TimeUnit::WorkingHours),
            Just(TimeUnit::CalendarDays)
        ],
    )
        .prop_map(|(amount, unit)| StatutoryTime { amount, unit })
}

/// Whether an instant is a working day's office time, its ends included.
fn in_working_time(calendar: &BusinessCalendar, instant: DateTime<Utc>) -> bool {
    let local = to_local(instant);
    calendar.is_working_day(local.date()).unwrap()
        && calendar
            .office_hours()
            .intervals()
            .iter()
            .any(|(open, close)| (*open..=*close).contains(&local.time()))
}

proptest! {
    #[test]
    fn due_dates_fall_in_working_time_and_never_move_earlier(
        received in instant_from_2025(690),
        later_by in 0i64..(10 * 24 * 60),
        time in statutory_time(),
    ) {
        let calendar = BusinessCalendar::vietnam();
        let due = time.due_at(received, &calendar).unwrap();
        prop_assert!(due > received);
        prop_assert!(in_working_time(&calendar, due), "{} for {time:?} from {}", show(due), show(received));
        if time.unit != TimeUnit::WorkingHours {
            prop_assert_eq!(to_local(due).time(), calendar.office_hours().close());
        }
        // Later receipt, same time: never an earlier due date.
        let later = time.due_at(received + TimeDelta::minutes(later_by), &calendar).unwrap();
        prop_assert!(later >= due);
    }

    #[test]
    fn supplement_pauses_never_move_the_due_date_earlier(
        received in instant_from_2025(660),
        requested_after in 0i64..(15 * 24 * 60),
        waited in 0i64..(15 * 24 * 60),
        time in statutory_time(),
    ) {
        let calendar = BusinessCalendar::vietnam();
        let due = time.due_at(received, &calendar).unwrap();
        let requested = received + TimeDelta::minutes(requested_after);
        let supplied = requested + TimeDelta::minutes(waited);
        let moved = time.unit.extend_for_pause(due, requested, supplied, &calendar).unwrap();
        prop_assert!(moved >= due);
        prop_assert!(in_working_time(&calendar, moved), "{}", show(moved));
        // Waiting longer never gives an earlier due date.
        let longer = time.unit.extend_for_pause(due, requested, supplied + TimeDelta::hours(30), &calendar).unwrap();
        prop_assert!(longer >= moved);
    }
}
