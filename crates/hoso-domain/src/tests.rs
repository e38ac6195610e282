//! Test support shared by the modules' tests: writing and reading Vietnam local times.

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::calendar::{from_local, to_local};

/// A Vietnam local time written `YYYY-MM-DD HH:MM`.
pub(crate) fn vn(s: &str) -> DateTime<Utc> {
    from_local(NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap())
}

/// Renders an instant as Vietnam local time with its weekday.
pub(crate) fn show(instant: DateTime<Utc>) -> String {
    to_local(instant).format("%Y-%m-%d %a %H:%M").to_string()
}
