//! Identifiers with a checked shape: procedure, agency and receipt codes, content hashes, and the
//! pseudonymous applicant reference.
//!
//! Shapes are checked by hand, character by character (no regex dependency):
//! - procedure code: one digit, a dot, six digits (`1.001234`, `2.000815`);
//! - agency code: 2 to 6 dot-separated segments of 1 to 8 ASCII upper-case letters or digits
//!   (`000.00.04.G18`, `G09.20`); lenient on the segment layout, which varies by province, strict
//!   on the alphabet so that spaces, lower case and stray punctuation are caught;
//! - receipt code: `<receiving unit>-<YYYYMMDD>-<7-digit sequence>` (`G09.20-20260609-0092637`),
//!   the unit being 1 to 6 segments as above and the date a real date. The official specification
//!   was not found, so the generator stays outside the domain: [`ReceiptCode::format`] builds the
//!   observed form and [`ReceiptCode::parse`] checks it;
//! - content hash: SHA-256 as 64 lower-case hexadecimal digits.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::DomainError;

/// How many characters of a refused value an error message repeats: enough for a whole SHA-256
/// in hexadecimal or any well-formed code, so a near miss is shown in full.
pub const ECHO_CHARS: usize = 64;

/// A refused value as an error message repeats it: quoted, and cut to [`ECHO_CHARS`] characters
/// with an ellipsis, so that a huge value cannot make the error larger than a client accepts.
/// Never give it a value that may be personal data.
pub fn echo(value: &str) -> String {
    match value.char_indices().nth(ECHO_CHARS) {
        None => format!("{value:?}"),
        Some((end, _)) => format!("{:?}…", &value[..end]),
    }
}

/// A published administrative procedure's code, e.g. `1.001234`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProcedureCode(String);

impl ProcedureCode {
    /// Checks the shape `d.dddddd`.
    pub fn parse(field: &'static str, value: &str) -> Result<ProcedureCode, DomainError> {
        let bytes = value.as_bytes();
        let ok = bytes.len() == 8
            && bytes[0].is_ascii_digit()
            && bytes[1] == b'.'
            && bytes[2..].iter().all(u8::is_ascii_digit);
        if !ok {
            return Err(DomainError::invalid(
                field,
                format!(
                    "{} is not a procedure code like 1.001234 (a digit, a dot, six digits)",
                    echo(value)
                ),
            ));
        }
        Ok(ProcedureCode(value.to_owned()))
    }

    /// The code as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An agency or desk code, e.g. `000.00.04.G18` or `G09.20`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AgencyCode(String);

impl AgencyCode {
    /// Checks the shape: 2 to 6 dot-separated segments of 1 to 8 upper-case letters or digits.
    pub fn parse(field: &'static str, value: &str) -> Result<AgencyCode, DomainError> {
        if !segments_ok(value, 2) {
            return Err(DomainError::invalid(
                field,
                format!(
                    "{} is not an agency code like 000.00.04.G18 (2 to 6 dot-separated groups of upper-case letters or digits)",
                    echo(value)
                ),
            ));
        }
        Ok(AgencyCode(value.to_owned()))
    }

    /// The code as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn segments_ok(value: &str, min_segments: usize) -> bool {
    let segments: Vec<&str> = value.split('.').collect();
    (min_segments..=6).contains(&segments.len())
        && segments.iter().all(|segment| {
            (1..=8).contains(&segment.len()) && segment.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        })
}

/// The prefix of every dossier's stream: a dossier's stream is `dossier-<receipt code>`
/// ([`ReceiptCode::stream_id`]), and every stream with this prefix is a dossier's.
pub const STREAM_PREFIX: &str = "dossier-";

/// The code printed on the receipt: `<receiving unit>-<YYYYMMDD>-<7-digit sequence>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ReceiptCode(String);

impl ReceiptCode {
    const EXPECTED: &'static str =
        "a receipt code like G09.20-20260609-0092637 (unit, date YYYYMMDD, 7-digit sequence)";

    /// Checks the observed shape, including that the date exists.
    pub fn parse(field: &'static str, value: &str) -> Result<ReceiptCode, DomainError> {
        let bad = || DomainError::invalid(field, format!("{} is not {}", echo(value), ReceiptCode::EXPECTED));
        let parts: Vec<&str> = value.split('-').collect();
        let [unit, date, sequence] = parts.as_slice() else {
            return Err(bad());
        };
        let date_ok = date.len() == 8
            && date.bytes().all(|b| b.is_ascii_digit())
            && NaiveDate::parse_from_str(date, "%Y%m%d").is_ok();
        let sequence_ok = sequence.len() == 7 && sequence.bytes().all(|b| b.is_ascii_digit());
        if !segments_ok(unit, 1) || !date_ok || !sequence_ok {
            return Err(bad());
        }
        Ok(ReceiptCode(value.to_owned()))
    }

    /// The stream that holds this dossier's events.
    pub fn stream_id(&self) -> String {
        format!("{STREAM_PREFIX}{}", self.0)
    }

    /// Formats the observed form from its parts (the default generator a desk system may use).
    pub fn format(unit: &str, date: NaiveDate, sequence: u32) -> Result<ReceiptCode, DomainError> {
        if sequence > 9_999_999 {
            return Err(DomainError::invalid(
                "sequence",
                format!("{sequence} has more than 7 digits"),
            ));
        }
        ReceiptCode::parse(
            "receipt_code",
            &format!("{unit}-{}-{sequence:07}", date.format("%Y%m%d")),
        )
    }

    /// The receiving unit part.
    pub fn unit(&self) -> &str {
        self.0.split('-').next().unwrap_or_default()
    }

    /// The date part.
    pub fn date(&self) -> NaiveDate {
        let date = self.0.split('-').nth(1).unwrap_or_default();
        NaiveDate::parse_from_str(date, "%Y%m%d").expect("checked when parsed")
    }

    /// The code as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A SHA-256 content hash as 64 lower-case hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContentHash(String);

impl ContentHash {
    /// Checks the shape.
    pub fn parse(field: &'static str, value: &str) -> Result<ContentHash, DomainError> {
        let ok = value.len() == 64 && value.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !ok {
            return Err(DomainError::invalid(
                field,
                format!(
                    "{} is not a SHA-256 hash (64 lower-case hexadecimal digits)",
                    echo(value)
                ),
            ));
        }
        Ok(ContentHash(value.to_owned()))
    }

    /// The hash as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The pseudonymous reference to an applicant: a UUID with no meaning of its own.
///
/// The identity (name, citizen identity number) lives outside the event log, in a store where it
/// can be erased or whose per-applicant key can be destroyed; only this reference enters events.
/// Being a bare UUID, it cannot carry a name or an identity number by mistake. Derive it at
/// random (v4) and keep the mapping in the erasable store; a v5 hash of an identity number would be
/// reversible by enumerating the 10^12 possible numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApplicantRef(pub Uuid);

macro_rules! string_code {
    ($($ty:ident => $label:literal),*) => {$(
        impl TryFrom<String> for $ty {
            type Error = DomainError;
            fn try_from(value: String) -> Result<$ty, DomainError> {
                $ty::parse($label, &value)
            }
        }
        impl From<$ty> for String {
            fn from(code: $ty) -> String {
                code.0
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}

string_code!(
    ProcedureCode => "procedure code",
    AgencyCode => "agency code",
    ReceiptCode => "receipt code",
    ContentHash => "content hash"
);

#[cfg(test)]
mod tests;
