//! Upcasters: pure functions that lift the stored JSON of an event from one schema version to the
//! next, so history written by an older release is never orphaned.
//!
//! Reading runs the chain `v(stored) -> v(stored)+1 -> ... -> current` on the raw JSON, then parses
//! the current struct. Each step is registered in `step` by event type and the version it reads;
//! a missing step is a [`DecodeError::Upcast`], and a stored version newer than the crate (or zero)
//! is a [`DecodeError::UnsupportedVersion`].
//!
//! History of schema changes:
//! - `PaidOnline` v1 -> v2: field `amount` renamed to `amount_vnd`, so that the unit is in the
//!   name. Version 1 is the shape first drafted for hoso; the rename was made before the first
//!   release and its upcaster is kept both for any v1 data and as the worked example of the path,
//!   tested against a stored v1 record (`testdata/PaidOnline.v1.json`).
//! - `DossierReceived` v1 -> v2: the receipt records where its procedure values came from
//!   (`procedure_source`: v1 receipts took the desk's values, `declared`), the catalogue decision
//!   (`catalogue`: none in v1) and the holiday tables its due date used (`calendars`: not recorded
//!   in v1, so empty).
//! - `SupplementReceived` v1 -> v2: the holiday tables of the moved due date (`calendars`, empty).

use serde_json::Value;

use crate::error::DecodeError;

/// Lifts `data` of `event_type` from `stored_version` to `current_version`.
pub(crate) fn to_current(
    event_type: &str,
    stored_version: u32,
    current_version: u32,
    mut data: Value,
) -> Result<Value, DecodeError> {
    if stored_version == 0 || stored_version > current_version {
        return Err(DecodeError::UnsupportedVersion {
            event_type: event_type.to_owned(),
            version: stored_version,
            current: current_version,
        });
    }
    for version in stored_version..current_version {
        let Some(upcaster) = step(event_type, version) else {
            return Err(upcast_error(
                event_type,
                version,
                "no upcaster is registered".to_owned(),
            ));
        };
        data = upcaster(data).map_err(|problem| upcast_error(event_type, version, problem))?;
    }
    Ok(data)
}

type Upcaster = fn(Value) -> Result<Value, String>;

/// The upcaster reading `version` of `event_type`, if any.
fn step(event_type: &str, version: u32) -> Option<Upcaster> {
    match (event_type, version) {
        ("PaidOnline", 1) => Some(paid_online_v1_to_v2),
        ("DossierReceived", 1) => Some(dossier_received_v1_to_v2),
        ("SupplementReceived", 1) => Some(supplement_received_v1_to_v2),
        _ => None,
    }
}

fn upcast_error(event_type: &str, from_version: u32, problem: String) -> DecodeError {
    DecodeError::Upcast {
        event_type: event_type.to_owned(),
        from_version,
        problem,
    }
}

/// `PaidOnline` v1 -> v2: `amount` becomes `amount_vnd`.
fn paid_online_v1_to_v2(data: Value) -> Result<Value, String> {
    rename_field(data, "amount", "amount_vnd")
}

/// `DossierReceived` v1 -> v2: the values were the desk's, no catalogue, tables not recorded.
fn dossier_received_v1_to_v2(data: Value) -> Result<Value, String> {
    let data = add_field(data, "procedure_source", Value::from("declared"))?;
    let data = add_field(data, "catalogue", Value::Null)?;
    add_field(data, "calendars", Value::Array(Vec::new()))
}

/// `SupplementReceived` v1 -> v2: tables not recorded.
fn supplement_received_v1_to_v2(data: Value) -> Result<Value, String> {
    add_field(data, "calendars", Value::Array(Vec::new()))
}

fn add_field(mut data: Value, name: &str, value: Value) -> Result<Value, String> {
    let object = data.as_object_mut().ok_or("data is not a json object")?;
    if object.insert(name.to_owned(), value).is_some() {
        return Err(format!("field {name:?} is already present"));
    }
    Ok(data)
}

fn rename_field(mut data: Value, from: &str, to: &str) -> Result<Value, String> {
    let object = data.as_object_mut().ok_or("data is not a json object")?;
    let value = object
        .remove(from)
        .ok_or_else(|| format!("field {from:?} is missing"))?;
    if object.insert(to.to_owned(), value).is_some() {
        return Err(format!("field {to:?} is already present"));
    }
    Ok(data)
}

#[cfg(test)]
mod tests;
