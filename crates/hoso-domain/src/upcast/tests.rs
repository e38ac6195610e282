//! Tests for the upcaster path: a stored old-format record decodes to the current event, and every
//! way the path can fail is a typed error.

use serde_json::json;

use crate::error::DecodeError;
use crate::event::{DossierEvent, PaidOnline, PaymentGateway};
use crate::tests::vn;

/// A `PaidOnline` record as version 1 wrote it, kept as a file like any stored history.
const PAID_ONLINE_V1: &str = include_str!("../../testdata/PaidOnline.v1.json");

#[test]
fn a_stored_v1_payment_reads_as_the_current_event() {
    let data: serde_json::Value = serde_json::from_str(PAID_ONLINE_V1).unwrap();
    let event = DossierEvent::from_stored("PaidOnline", 1, data).unwrap();
    assert_eq!(
        event,
        DossierEvent::PaidOnline(PaidOnline {
            occurred_at: vn("2025-03-14 10:20"),
            amount_vnd: 30_000,
            gateway: PaymentGateway::NationalPortal,
            transaction_ref: "DVCQG-PAY-2025031400017".into(),
        })
    );
    // Written back, it is the current version.
    assert_eq!((event.event_type(), event.schema_version()), ("PaidOnline", 2));
    assert_eq!(event.to_json()["amount_vnd"], 30_000);
}

#[test]
fn v1_data_is_not_valid_v2_data() {
    // Without the upcaster the old record would be orphaned: the renamed field is unknown.
    let data: serde_json::Value = serde_json::from_str(PAID_ONLINE_V1).unwrap();
    let err = DossierEvent::from_stored("PaidOnline", 2, data).unwrap_err();
    assert!(matches!(err, DecodeError::Malformed { version: 2, .. }), "{err}");
}

#[test]
fn decoding_failures_are_typed() {
    let cases = [
        ("Renamed", 1, json!({}), "unknown event type \"Renamed\""),
        (
            "PaidOnline",
            3,
            json!({}),
            "PaidOnline schema version 3 is not supported (current is 2)",
        ),
        (
            "Withdrawn",
            0,
            json!({}),
            "Withdrawn schema version 0 is not supported (current is 1)",
        ),
        (
            "PaidOnline",
            1,
            json!({"occurred_at": "2025-03-14T03:20:00Z"}),
            "PaidOnline version 1 cannot be upcast: field \"amount\" is missing",
        ),
        (
            "PaidOnline",
            1,
            json!([1, 2]),
            "PaidOnline version 1 cannot be upcast: data is not a json object",
        ),
        (
            "PaidOnline",
            1,
            json!({"amount": 1, "amount_vnd": 1}),
            "PaidOnline version 1 cannot be upcast: field \"amount_vnd\" is already present",
        ),
    ];
    for (event_type, version, data, expected) in cases {
        let err = DossierEvent::from_stored(event_type, version, data).unwrap_err();
        assert_eq!(err.to_string(), expected);
    }
}

#[test]
fn a_version_gap_without_an_upcaster_is_reported() {
    let err = super::to_current("Withdrawn", 1, 3, json!({})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Withdrawn version 1 cannot be upcast: no upcaster is registered"
    );
}
