//! The Vietnamese lunisolar calendar (âm lịch), needed for the lunar holidays of the provisional
//! holiday tables: Tết (1/1 lunar and the last day of the lunar year) and the Hùng Kings'
//! commemoration (10/3 lunar).
//!
//! **Algorithm.** Hồ Ngọc Đức's, as published with his lunar calendar program and tables
//! ("Thuật toán tính âm lịch", <https://www.informatik.uni-leipzig.de/~duc/amlich/calrules.html>),
//! which the published Vietnamese calendars follow. Its astronomy is from Jean Meeus, "Astronomical
//! Algorithms" (1998): the instant of the k-th new moon after 1900-01-01 (ch. 49, with the short
//! series of periodic terms and a ΔT correction) and the apparent longitude of the sun (ch. 25,
//! low-precision). Everything is computed for the time zone of Vietnam, UTC+7, which is why the
//! Vietnamese calendar differs from the Chinese one (UTC+8) in some years. The rules:
//!
//! - a lunar month begins on the local day of a new moon;
//! - month 11 is the month that contains the winter solstice (sun longitude 270°);
//! - a year from month 11 to the next month 11 with 13 months has a leap month: the first month
//!   after month 11 during which the sun enters no new 30° sector (no major solar term, *trung
//!   khí*); it repeats the number of the month before it.
//!
//! Julian day numbers (JDN, days since noon 1 January 4713 BC, an integer per civil date) carry the
//! dates. The arithmetic is plain `f64` with the same terms in the same order as Hồ Ngọc Đức's code,
//! so the results are deterministic and match his tables; they are checked against the published
//! dates of 2020–2035 in the tests. Meant for the years 1900–2199 (the range his tables cover and
//! the provisional tables use).

use std::f64::consts::PI;

use chrono::{Datelike, NaiveDate};

/// Hours of UTC+7, the time zone the Vietnamese calendar is computed for.
const TIME_ZONE_HOURS: f64 = 7.0;

/// The JDN of 1900-01-01 minus one, the origin of the new-moon count in the algorithm.
const EPOCH_JDN: f64 = 2_415_021.0;

/// The JDN of the first new moon counted (1900-01-01 01:51 UTC).
const EPOCH_NEW_MOON: f64 = 2_415_021.076_998_695;

/// The mean length of a synodic month, in days.
const SYNODIC_MONTH: f64 = 29.530_588_853;

/// The JDN of 0001-01-01 (proleptic Gregorian) minus the days chrono counts from it.
const JDN_OF_CE_DAY_ZERO: i64 = 1_721_425;

/// The Julian day number of a (proleptic Gregorian) date.
fn jdn(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce()) + JDN_OF_CE_DAY_ZERO
}

/// The date of a Julian day number, if chrono can represent it.
fn date_of_jdn(jdn: i64) -> Option<NaiveDate> {
    let days = i32::try_from(jdn - JDN_OF_CE_DAY_ZERO).ok()?;
    NaiveDate::from_num_days_from_ce_opt(days)
}

/// `floor(x)` as an integer; the values here are Julian day numbers and month counts, far inside
/// `i64`.
fn floor(x: f64) -> i64 {
    // Truncation after floor() is exact for these magnitudes (|x| < 2^53).
    x.floor() as i64
}

/// The JDN of the local (UTC+7) day of the `k`-th new moon after the one of 1900-01-01 (Meeus
/// ch. 49, as simplified by Hồ Ngọc Đức).
fn new_moon_day(k: i64) -> i64 {
    let k = k as f64;
    let t = k / 1236.85; // Julian centuries since 1900-01-01 12:00.
    let t2 = t * t;
    let t3 = t2 * t;
    let dr = PI / 180.0;
    let mut jd1 = 2_415_020.759_33 + 29.530_588_68 * k + 0.000_117_8 * t2 - 0.000_000_155 * t3;
    jd1 += 0.000_33 * ((166.56 + 132.87 * t - 0.009_173 * t2) * dr).sin(); // Mean new moon.
    let m = 359.2242 + 29.105_356_08 * k - 0.000_033_3 * t2 - 0.000_003_47 * t3; // Sun's anomaly.
    let mpr = 306.0253 + 385.816_918_06 * k + 0.010_730_6 * t2 + 0.000_012_36 * t3; // Moon's anomaly.
    let f = 21.2964 + 390.670_506_46 * k - 0.001_652_8 * t2 - 0.000_002_39 * t3; // Moon's argument of latitude.
    let mut c1 = (0.1734 - 0.000_393 * t) * (m * dr).sin() + 0.0021 * (2.0 * dr * m).sin();
    c1 = c1 - 0.4068 * (mpr * dr).sin() + 0.0161 * (dr * 2.0 * mpr).sin();
    c1 -= 0.0004 * (dr * 3.0 * mpr).sin();
    c1 = c1 + 0.0104 * (dr * 2.0 * f).sin() - 0.0051 * (dr * (m + mpr)).sin();
    c1 = c1 - 0.0074 * (dr * (m - mpr)).sin() + 0.0004 * (dr * (2.0 * f + m)).sin();
    c1 = c1 - 0.0004 * (dr * (2.0 * f - m)).sin() - 0.0006 * (dr * (2.0 * f + mpr)).sin();
    c1 = c1 + 0.0010 * (dr * (2.0 * f - mpr)).sin() + 0.0005 * (dr * (2.0 * mpr + m)).sin();
    // ΔT (terrestrial minus universal time), in days.
    let delta_t = if t < -11.0 {
        0.001 + 0.000_839 * t + 0.000_226_1 * t2 - 0.000_008_45 * t3 - 0.000_000_081 * t * t3
    } else {
        -0.000_278 + 0.000_265 * t + 0.000_262 * t2
    };
    let jd_new = jd1 + c1 - delta_t;
    floor(jd_new + 0.5 + TIME_ZONE_HOURS / 24.0)
}

/// The 30° sector (0 to 11; 0 from the March equinox) the sun is in at the local start (00:00
/// UTC+7) of the day `jdn` (Meeus ch. 25, low precision).
fn sun_sector(jdn: i64) -> i64 {
    let t = (jdn as f64 - 2_451_545.5 - TIME_ZONE_HOURS / 24.0) / 36_525.0; // Julian centuries since J2000.
    let t2 = t * t;
    let dr = PI / 180.0;
    let m = 357.529_10 + 35_999.050_30 * t - 0.000_155_9 * t2 - 0.000_000_48 * t * t2; // Mean anomaly.
    let l0 = 280.466_45 + 36_000.769_83 * t + 0.000_303_2 * t2; // Mean longitude.
    let mut dl = (1.914_600 - 0.004_817 * t - 0.000_014 * t2) * (dr * m).sin();
    dl = dl + (0.019_993 - 0.000_101 * t) * (dr * 2.0 * m).sin() + 0.000_290 * (dr * 3.0 * m).sin();
    let mut l = (l0 + dl) * dr; // True longitude, in radians.
    l -= PI * 2.0 * ((l / (PI * 2.0)).floor());
    floor(l / PI * 6.0)
}

/// The JDN of the first day of lunar month 11 (the month of the winter solstice) that begins in
/// the Gregorian year `year`.
fn month_11_start(year: i32) -> Option<i64> {
    let dec_31 = jdn(NaiveDate::from_ymd_opt(year, 12, 31)?);
    let k = floor((dec_31 as f64 - EPOCH_JDN) / SYNODIC_MONTH);
    let new_moon = new_moon_day(k);
    // Past the sector of 270° (the solstice) at the new moon: month 11 began a month earlier.
    if sun_sector(new_moon) >= 9 {
        Some(new_moon_day(k - 1))
    } else {
        Some(new_moon)
    }
}

/// In a 13-month year beginning with month 11 at `a11`, the offset (from month 11) of the leap
/// month: the first month without a major solar term.
fn leap_month_offset(a11: i64) -> i64 {
    let k = floor((a11 as f64 - EPOCH_NEW_MOON) / SYNODIC_MONTH + 0.5);
    let mut i = 1;
    let mut arc = sun_sector(new_moon_day(k + i));
    loop {
        let last = arc;
        i += 1;
        arc = sun_sector(new_moon_day(k + i));
        if arc == last || i >= 14 {
            return i - 1;
        }
    }
}

/// The lunar date of a Gregorian date: `(day, month, year, leap)`, where `year` is the lunar year
/// (the Gregorian year in which its month 1 begins) and `leap` tells a leap month.
///
/// Meant for 1900–2199; `None` only for dates chrono cannot carry a year before or after.
pub(crate) fn solar_to_lunar(date: NaiveDate) -> Option<(u32, u32, i32, bool)> {
    let day_number = jdn(date);
    let k = floor((day_number as f64 - EPOCH_NEW_MOON) / SYNODIC_MONTH);
    let mut month_start = new_moon_day(k + 1);
    if month_start > day_number {
        month_start = new_moon_day(k);
    }
    let year = date.year();
    let mut a11 = month_11_start(year)?;
    let b11;
    let mut lunar_year;
    if a11 >= month_start {
        lunar_year = year;
        b11 = a11;
        a11 = month_11_start(year - 1)?;
    } else {
        lunar_year = year + 1;
        b11 = month_11_start(year + 1)?;
    }
    let lunar_day = day_number - month_start + 1;
    let diff = (month_start - a11).div_euclid(29);
    let mut leap = false;
    let mut lunar_month = diff + 11;
    if b11 - a11 > 365 {
        let leap_offset = leap_month_offset(a11);
        if diff >= leap_offset {
            lunar_month = diff + 10;
            leap = diff == leap_offset;
        }
    }
    if lunar_month > 12 {
        lunar_month -= 12;
    }
    if lunar_month >= 11 && diff < 4 {
        lunar_year -= 1;
    }
    Some((
        u32::try_from(lunar_day).ok()?,
        u32::try_from(lunar_month).ok()?,
        lunar_year,
        leap,
    ))
}

/// The Gregorian date of a lunar date, or `None` when there is no such lunar date (a month
/// outside 1–12, a day outside the month, `leap` for a month that is not the year's leap month).
///
/// `year` is the lunar year (the Gregorian year in which its month 1 begins); `month` with
/// `leap = false` is the regular month of that number, never its leap repetition. Meant for
/// 1900–2199.
pub(crate) fn lunar_to_solar(year: i32, month: u32, day: u32, leap: bool) -> Option<NaiveDate> {
    if !(1..=12).contains(&month) || !(1..=30).contains(&day) {
        return None;
    }
    let (a11, b11) = if month < 11 {
        (month_11_start(year - 1)?, month_11_start(year)?)
    } else {
        (month_11_start(year)?, month_11_start(year + 1)?)
    };
    let k = floor(0.5 + (a11 as f64 - EPOCH_NEW_MOON) / SYNODIC_MONTH);
    let mut offset = (i64::from(month) - 11).rem_euclid(12);
    if b11 - a11 > 365 {
        let leap_offset = leap_month_offset(a11);
        let leap_month = (leap_offset - 2).rem_euclid(12);
        if leap && i64::from(month) != leap_month {
            return None;
        }
        if leap || offset >= leap_offset {
            offset += 1;
        }
    } else if leap {
        return None;
    }
    let month_start = new_moon_day(k + offset);
    let month_length = new_moon_day(k + offset + 1) - month_start;
    if i64::from(day) > month_length {
        return None;
    }
    date_of_jdn(month_start + i64::from(day) - 1)
}

#[cfg(test)]
mod tests;
