//! Due dates for any receipt instant and statutory time: never a panic; when one is computed,
//! it is not before the receipt, falls on a working day, grows with the amount, and agrees with
//! the count of working days; a supplement pause never moves it earlier.

use chrono::{DateTime, Days, TimeDelta, Utc};
use hoso_domain::calendar::to_local;
use hoso_domain::{BusinessCalendar, StatutoryTime, TimeUnit};

use super::Bytes;

/// Microseconds of the years 1800..2300 around the epoch, where most inputs land.
const SPAN_MICROS: i64 = 500 * 366 * 86_400 * 1_000_000;

/// An instant from the input: mostly within a few centuries of now, sometimes anywhere chrono
/// can represent.
fn instant(b: &mut Bytes<'_>) -> DateTime<Utc> {
    let raw = b.u64().cast_signed();
    let micros = if b.u8().is_multiple_of(8) {
        raw
    } else {
        raw.rem_euclid(SPAN_MICROS) - SPAN_MICROS / 2 + 946_684_800_000_000
    };
    let edge = if micros < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    };
    DateTime::from_timestamp_micros(micros).unwrap_or(edge)
}

fn unit(byte: u8) -> TimeUnit {
    match byte % 3 {
        0 => TimeUnit::WorkingDays,
        1 => TimeUnit::WorkingHours,
        _ => TimeUnit::CalendarDays,
    }
}

pub(super) fn run(data: &[u8]) -> Result<String, String> {
    let calendar = BusinessCalendar::vietnam();
    let mut b = Bytes(data);
    let received_at = instant(&mut b);
    let unit = unit(b.u8());
    let amount = match b.u8() % 4 {
        0 => b.u32(),
        _ => b.u32() % 400,
    };
    let time = StatutoryTime { amount, unit };
    let Ok(due) = time.due_at(received_at, &calendar) else {
        return Ok(format!("{unit:?}:refused"));
    };
    if amount == 0 {
        return Ok(format!("{unit:?}:zero"));
    }
    let at = || format!("{time} from {received_at}");
    if due < received_at {
        return Err(format!("due {due} is before receipt, {}", at()));
    }
    let due_day = to_local(due).date();
    if calendar.is_working_day(due_day) != Ok(true) {
        return Err(format!("due {due} is not on a working day, {}", at()));
    }
    if let Some(more) = amount.checked_add(1)
        && let Ok(next) = (StatutoryTime { amount: more, unit }).due_at(received_at, &calendar)
        && next < due
    {
        return Err(format!(
            "one unit more gives an earlier due date ({next} < {due}), {}",
            at()
        ));
    }
    if unit == TimeUnit::WorkingDays && amount < 400 {
        // The n-th working day after the receipt date has n working days in (date, due date].
        let received_on = to_local(received_at).date();
        let counted = received_on
            .checked_add_days(Days::new(1))
            .zip(due_day.checked_add_days(Days::new(1)))
            .map(|(from, until)| calendar.working_days_between(from, until));
        if let Some(Ok(n)) = counted
            && n != amount
        {
            return Err(format!("{n} working days counted up to the due date {due}, {}", at()));
        }
    }
    // A supplement requested and received some time after receipt.
    let requested_at = received_at.checked_add_signed(TimeDelta::hours(i64::from(b.u8())));
    let supplied_at = requested_at.and_then(|r| r.checked_add_signed(TimeDelta::hours(i64::from(b.u32() % 5000))));
    let (Some(requested_at), Some(supplied_at)) = (requested_at, supplied_at) else {
        return Ok(format!("{unit:?}:due"));
    };
    if let Ok(extended) = unit.extend_for_pause(due, requested_at, supplied_at, &calendar)
        && extended < due
    {
        return Err(format!(
            "a pause from {requested_at} to {supplied_at} moved the due date {due} earlier, to {extended}, {}",
            at()
        ));
    }
    Ok(format!("{unit:?}:due"))
}
