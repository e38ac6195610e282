//! Tests for the lunar calendar: Tết and the Hùng Kings' day against published dates, leap months,
//! and the round trip solar → lunar → solar over 2020–2035.

use chrono::{Datelike, NaiveDate};

use super::*;

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

#[test]
fn tet_matches_the_published_calendars() {
    // Tết Nguyên Đán (1/1 lunar), 2020-2035. Source: the Vietnamese calendars computed with Hồ Ngọc
    // Đức's program (lunar calendar tables at https://www.informatik.uni-leipzig.de/~duc/amlich/).
    // 2025 and 2026 are consistent with the shipped notices (Tết days 27-31/1/2025 and
    // 16-20/2/2026). 2030 is one of the years the Vietnamese calendar differs from the Chinese
    // one: the new moon is at 23:07 on 2/2 in UTC+7 (16:07 UTC), already 3/2 in China's UTC+8, so
    // Tết Canh Tuất is on 2/2 in Vietnam while the Chinese New Year is on 3/2.
    #[rustfmt::skip]
    let tet = [
        (2020, "2020-01-25"), (2021, "2021-02-12"), (2022, "2022-02-01"), (2023, "2023-01-22"),
        (2024, "2024-02-10"), (2025, "2025-01-29"), (2026, "2026-02-17"), (2027, "2027-02-06"),
        (2028, "2028-01-26"), (2029, "2029-02-13"), (2030, "2030-02-02"), (2031, "2031-01-23"),
        (2032, "2032-02-11"), (2033, "2033-01-31"), (2034, "2034-02-19"), (2035, "2035-02-08"),
    ];
    for (year, expected) in tet {
        assert_eq!(lunar_to_solar(year, 1, 1, false), Some(date(expected)), "Tết {year}");
        assert_eq!(solar_to_lunar(date(expected)), Some((1, 1, year, false)), "{expected}");
    }
}

#[test]
fn hung_kings_day_matches_the_published_calendars() {
    // Giỗ Tổ Hùng Vương (10/3 lunar), 2020-2035. Source as for Tết: the calendars computed with Hồ
    // Ngọc Đức's program (informatik.uni-leipzig.de/~duc/amlich/); 2020-2026 are also the dates of
    // the yearly notices (7/4/2025 in TB 6150/TB-BLĐTBXH, Sunday 26/4/2026 in TB 9441/TB-BNV).
    // 10/3 is in the regular month 3 even in 2031, whose leap month is a second month 3; in 2023
    // the leap month 2 puts it a month later than in other years (29/4). Otherwise it is 68 days
    // after Tết (months 1 and 2 of 29 or 30 days, plus 9): 67 to 69 days.
    #[rustfmt::skip]
    let hung_kings = [
        (2020, "2020-04-02"), (2021, "2021-04-21"), (2022, "2022-04-10"), (2023, "2023-04-29"),
        (2024, "2024-04-18"), (2025, "2025-04-07"), (2026, "2026-04-26"), (2027, "2027-04-16"),
        (2028, "2028-04-04"), (2029, "2029-04-23"), (2030, "2030-04-12"), (2031, "2031-04-01"),
        (2032, "2032-04-19"), (2033, "2033-04-09"), (2034, "2034-04-28"), (2035, "2035-04-17"),
    ];
    for (year, expected) in hung_kings {
        assert_eq!(
            lunar_to_solar(year, 3, 10, false),
            Some(date(expected)),
            "Hùng Kings {year}"
        );
        assert_eq!(solar_to_lunar(date(expected)), Some((10, 3, year, false)), "{expected}");
    }
}

/// The leap month of a lunar year, found by walking its days.
fn leap_month(year: i32) -> Option<u32> {
    let start = lunar_to_solar(year, 1, 1, false).unwrap();
    let end = lunar_to_solar(year + 1, 1, 1, false).unwrap();
    start
        .iter_days()
        .take_while(|day| *day < end)
        .find_map(|day| match solar_to_lunar(day).unwrap() {
            (_, month, _, true) => Some(month),
            _ => None,
        })
}

#[test]
fn leap_months_match_the_published_calendars() {
    // Same source; the leap month 11 of 2033 (Quý Sửu) is the Vietnamese calendar's, the Chinese
    // one (UTC+8) has a leap month 11 too but differs in other years.
    #[rustfmt::skip]
    let leap = [
        (2020, Some(4)), (2021, None), (2022, None), (2023, Some(2)), (2024, None), (2025, Some(6)),
        (2026, None), (2027, None), (2028, Some(5)), (2029, None), (2030, None), (2031, Some(3)),
        (2032, None), (2033, Some(11)), (2034, None), (2035, None),
    ];
    for (year, expected) in leap {
        assert_eq!(leap_month(year), expected, "{year}");
    }
    // A leap month exists only where there is one; the regular and the leap month differ.
    assert_eq!(lunar_to_solar(2025, 6, 1, true), Some(date("2025-07-25")));
    assert_eq!(lunar_to_solar(2025, 6, 1, false), Some(date("2025-06-25")));
    assert_eq!(lunar_to_solar(2025, 5, 1, true), None);
    assert_eq!(lunar_to_solar(2026, 6, 1, true), None);
}

#[test]
fn invalid_lunar_dates_have_no_solar_date() {
    assert_eq!(lunar_to_solar(2026, 0, 1, false), None);
    assert_eq!(lunar_to_solar(2026, 13, 1, false), None);
    assert_eq!(lunar_to_solar(2026, 1, 0, false), None);
    assert_eq!(lunar_to_solar(2026, 1, 31, false), None);
    // The last day of tháng Chạp (month 12) before Tết 2026 is its 29th; there is no 30th.
    let eve_2026 = date("2026-02-16");
    assert_eq!(solar_to_lunar(eve_2026), Some((29, 12, 2025, false)));
    assert_eq!(lunar_to_solar(2025, 12, 29, false), Some(eve_2026));
    assert_eq!(lunar_to_solar(2025, 12, 30, false), None, "past the month's end");
}

#[test]
fn solar_to_lunar_to_solar_round_trips_2020_to_2035() {
    let (mut day, end) = (date("2020-01-01"), date("2035-12-31"));
    let mut previous: Option<(u32, u32, i32, bool)> = None;
    while day <= end {
        let lunar = solar_to_lunar(day).unwrap();
        let (d, m, y, leap) = lunar;
        assert_eq!(lunar_to_solar(y, m, d, leap), Some(day), "{day} is {lunar:?}");
        assert!((1..=30).contains(&d) && (1..=12).contains(&m), "{day} is {lunar:?}");
        assert!((day.year() - 1..=day.year()).contains(&y), "{day} is {lunar:?}");
        // Days follow each other: the next lunar day, or day 1 after day 29 or 30.
        if let Some((pd, ..)) = previous {
            assert!(
                d == pd + 1 || (d == 1 && (29..=30).contains(&pd)),
                "{day} is {lunar:?} after {previous:?}"
            );
        }
        previous = Some(lunar);
        day = day.succ_opt().unwrap();
    }
}
