//! Tests for the shape checks of codes and the receipt-code formatter.

use chrono::NaiveDate;

use super::*;

#[test]
fn code_shapes() {
    #[rustfmt::skip]
    type Case = (&'static str, fn(&str) -> bool, bool);
    let cases: [Case; 24] = [
        ("1.001234", |s| ProcedureCode::parse("f", s).is_ok(), true),
        ("2.000815", |s| ProcedureCode::parse("f", s).is_ok(), true),
        ("1.00123", |s| ProcedureCode::parse("f", s).is_ok(), false),
        ("12.00123", |s| ProcedureCode::parse("f", s).is_ok(), false),
        ("1-001234", |s| ProcedureCode::parse("f", s).is_ok(), false),
        ("1.00123a", |s| ProcedureCode::parse("f", s).is_ok(), false),
        ("000.00.04.G18", |s| AgencyCode::parse("f", s).is_ok(), true),
        ("G09.20", |s| AgencyCode::parse("f", s).is_ok(), true),
        ("G09", |s| AgencyCode::parse("f", s).is_ok(), false),
        ("000..04.G18", |s| AgencyCode::parse("f", s).is_ok(), false),
        ("000.00.04.g18", |s| AgencyCode::parse("f", s).is_ok(), false),
        ("000.00.04 .G18", |s| AgencyCode::parse("f", s).is_ok(), false),
        ("A.B.C.D.E.F.G", |s| AgencyCode::parse("f", s).is_ok(), false),
        ("000.123456789", |s| AgencyCode::parse("f", s).is_ok(), false),
        ("G09.20-20260609-0092637", |s| ReceiptCode::parse("f", s).is_ok(), true),
        (
            "000.00.04.G18-20250101-0000001",
            |s| ReceiptCode::parse("f", s).is_ok(),
            true,
        ),
        ("G09-20260609-0092637", |s| ReceiptCode::parse("f", s).is_ok(), true),
        ("G09.20-20260231-0092637", |s| ReceiptCode::parse("f", s).is_ok(), false),
        ("G09.20-20260609-092637", |s| ReceiptCode::parse("f", s).is_ok(), false),
        ("G09.20-2026069-00926377", |s| ReceiptCode::parse("f", s).is_ok(), false),
        (
            "G09.20-20260609-0092637-1",
            |s| ReceiptCode::parse("f", s).is_ok(),
            false,
        ),
        ("g09.20-20260609-0092637", |s| ReceiptCode::parse("f", s).is_ok(), false),
        (
            "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
            |s| ContentHash::parse("f", s).is_ok(),
            true,
        ),
        (
            "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7a",
            |s| ContentHash::parse("f", s).is_ok(),
            false,
        ),
    ];
    for (value, parses, expected) in cases {
        assert_eq!(parses(value), expected, "{value}");
    }
}

#[test]
fn the_receipt_code_formatter_and_its_parts() {
    let date = NaiveDate::from_ymd_opt(2026, 6, 9).unwrap();
    let code = ReceiptCode::format("G09.20", date, 92_637).unwrap();
    assert_eq!(code.as_str(), "G09.20-20260609-0092637");
    assert_eq!((code.unit(), code.date()), ("G09.20", date));
    assert_eq!(
        ReceiptCode::format("G09.20", date, 10_000_000).unwrap_err().to_string(),
        "sequence: 10000000 has more than 7 digits"
    );
    assert!(ReceiptCode::format("g09", date, 1).is_err());
}

#[test]
fn codes_are_persisted_as_strings_and_checked_on_read() {
    let code = AgencyCode::parse("f", "000.00.04.G18").unwrap();
    assert_eq!(serde_json::to_string(&code).unwrap(), r#""000.00.04.G18""#);
    let err = serde_json::from_str::<AgencyCode>(r#""bad code""#).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"agency code: "bad code" is not an agency code like 000.00.04.G18 (2 to 6 dot-separated groups of upper-case letters or digits)"#
    );
}

#[test]
fn a_refused_value_is_echoed_cut_to_a_short_prefix() {
    assert_eq!(super::echo("1.00x"), "\"1.00x\"");
    let long = "ồ".repeat(5_000);
    let err = ProcedureCode::parse("procedure.code", &long).unwrap_err().to_string();
    assert!(err.len() < 400, "{} bytes: {err}", err.len());
    assert!(
        err.contains(&format!("\"{}\"…", "ồ".repeat(super::ECHO_CHARS))),
        "{err}"
    );
    for err in [
        AgencyCode::parse("handling_agency", &long).unwrap_err(),
        ReceiptCode::parse("receipt_code", &long).unwrap_err(),
        ContentHash::parse("files.content_hash", &long).unwrap_err(),
    ] {
        assert!(err.to_string().len() < 400, "{err}");
    }
}
