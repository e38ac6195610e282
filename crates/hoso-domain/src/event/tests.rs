//! Tests for the event codec: the persisted JSON of every event type is pinned by a golden file in
//! `testdata/`, every golden file decodes back to its event, and the type table is complete.

use expect_test::expect_file;
use uuid::Uuid;

use super::*;
use crate::calendar::CalendarRef;
use crate::catalogue::{CatalogueRef, ProcedureSource};
use crate::event::{ComponentFile, ProcedureSnapshot, ReusedComponent};
use crate::procedure::StatutoryTime;
use crate::tests::vn;

const HASH: &str = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

/// One example of every event type, at its current schema version.
pub(crate) fn samples() -> Vec<DossierEvent> {
    let code = |s: &str| AgencyCode::parse("code", s).unwrap();
    let hash = || ContentHash::parse("hash", HASH).unwrap();
    vec![
        DossierReceived {
            occurred_at: vn("2026-06-09 09:15"),
            receipt_code: ReceiptCode::parse("receipt_code", "G09.20-20260609-0092637").unwrap(),
            procedure: ProcedureSnapshot {
                code: ProcedureCode::parse("code", "2.000815").unwrap(),
                name: "Cấp giấy phép xây dựng".into(),
                statutory_time: StatutoryTime::working_days(15),
                full_online_eligible: false,
                paper_result: true,
                fee_vnd: 75_000,
            },
            receiving_desk: code("000.00.04.G18"),
            handling_agency: code("000.00.20.H28"),
            channel: Channel::InPerson,
            green_lane: true,
            effective_time: StatutoryTime::working_days(10),
            applicant: ApplicantRef(Uuid::from_u128(0x0123_4567_89ab_cdef)),
            due_at: vn("2026-06-23 17:00"),
            procedure_source: ProcedureSource::Catalogue,
            catalogue: Some(CatalogueRef {
                version: 3,
                decision: "1234/QĐ-UBND".into(),
                effective_from: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            }),
            calendars: vec![CalendarRef {
                year: 2026,
                version: 1,
                provisional: false,
            }],
        }
        .into(),
        DossierDigitized {
            occurred_at: vn("2026-06-09 09:40"),
            files: vec![ComponentFile {
                component: "Đơn đề nghị".into(),
                content_hash: hash(),
            }],
            reused: vec![ReusedComponent {
                component: "Giấy chứng nhận QSDĐ".into(),
                source: "CSDL đất đai".into(),
            }],
            result_digitized: false,
        }
        .into(),
        DossierProcessed {
            occurred_at: vn("2026-06-10 14:00"),
            step: ProcessingStep::Transferred,
            officer: "cb.le".into(),
            to_unit: Some(code("000.00.20.H28")),
            reason: None,
        }
        .into(),
        EResultIssued {
            occurred_at: vn("2026-06-18 10:00"),
            result_id: "GPXD-2026-0042".into(),
            content_hash: hash(),
            signer: "so.xay.dung".into(),
        }
        .into(),
        PaidOnline {
            occurred_at: vn("2026-06-09 09:20"),
            amount_vnd: 75_000,
            gateway: PaymentGateway::Provincial,
            transaction_ref: "VNPT-PAY-20260609-1".into(),
        }
        .into(),
        ApologySent {
            occurred_at: vn("2026-06-19 16:00"),
            reason: "chờ ý kiến sở ngành".into(),
            new_appointment_at: vn("2026-06-26 17:00"),
            letter_number: "07/PXL-HCC".into(),
        }
        .into(),
        SupplementRequested {
            occurred_at: vn("2026-06-11 08:30"),
            missing_components: vec!["Bản vẽ thiết kế".into()],
            officer: "cb.le".into(),
        }
        .into(),
        SupplementReceived {
            occurred_at: vn("2026-06-12 15:00"),
            due_at: vn("2026-06-25 17:00"),
            calendars: vec![CalendarRef {
                year: 2026,
                version: 1,
                provisional: false,
            }],
        }
        .into(),
        ResultReturned {
            occurred_at: vn("2026-06-24 09:00"),
            method: ReturnMethod::ByPost,
        }
        .into(),
        SatisfactionRated {
            occurred_at: vn("2026-06-24 09:05"),
            rating: Satisfaction::Unsatisfied,
        }
        .into(),
        Withdrawn {
            occurred_at: vn("2026-06-15 10:00"),
            reason: "nộp lại hồ sơ khác".into(),
        }
        .into(),
        RefusedAtIntake {
            occurred_at: vn("2026-06-09 09:30"),
            reason: "không thuộc thẩm quyền".into(),
            officer: "cb.pham".into(),
        }
        .into(),
        SyncedToNationalPortal {
            occurred_at: vn("2026-06-24 09:10"),
            status: PortalStatus::ResultReturned,
        }
        .into(),
    ]
}

#[test]
fn every_event_type_has_a_pinned_golden_file() {
    let samples = samples();
    let mut names: Vec<&str> = samples.iter().map(DossierEvent::event_type).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), EVENT_TYPES.len(), "one sample per event type");
    for event in samples {
        let json = serde_json::to_string_pretty(&event.to_json()).unwrap() + "\n";
        let path = format!("../../testdata/{}.v{}.json", event.event_type(), event.schema_version());
        expect_file![path].assert_eq(&json);
    }
}

#[test]
fn golden_files_decode_to_their_events() {
    for event in samples() {
        let path = format!(
            "{}/testdata/{}.v{}.json",
            env!("CARGO_MANIFEST_DIR"),
            event.event_type(),
            event.schema_version()
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let data: serde_json::Value = serde_json::from_str(&text).unwrap();
        let decoded = DossierEvent::from_stored(event.event_type(), event.schema_version(), data).unwrap();
        assert_eq!(decoded, event, "{path}");
        let fast = DossierEvent::from_stored_json(event.event_type(), event.schema_version(), text.as_bytes()).unwrap();
        assert_eq!(fast, event, "{path}, read from its text");
        assert_eq!(decoded.occurred_at(), event.occurred_at());
    }
}

#[test]
fn receipts_and_supplements_of_version_1_read_as_declared_with_no_tables_recorded() {
    for (event_type, file) in [
        ("DossierReceived", "DossierReceived.v1.json"),
        ("SupplementReceived", "SupplementReceived.v1.json"),
    ] {
        let path = format!("{}/testdata/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        let event = DossierEvent::from_stored_json(event_type, 1, text.as_bytes()).unwrap();
        match event {
            DossierEvent::DossierReceived(received) => {
                assert_eq!(received.procedure_source, ProcedureSource::Declared);
                assert_eq!(received.catalogue, None);
                assert!(received.calendars.is_empty());
                assert_eq!(received.due_at, vn("2026-06-23 17:00"));
            }
            DossierEvent::SupplementReceived(supplement) => assert!(supplement.calendars.is_empty()),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn text_of_an_old_schema_version_is_upcast_too() {
    let path = format!("{}/testdata/PaidOnline.v1.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let via_value = DossierEvent::from_stored("PaidOnline", 1, serde_json::from_str(&text).unwrap()).unwrap();
    let via_text = DossierEvent::from_stored_json("PaidOnline", 1, text.as_bytes()).unwrap();
    assert_eq!(via_text, via_value);
    assert!(matches!(
        DossierEvent::from_stored_json("PaidOnline", 2, b"{not json"),
        Err(crate::DecodeError::Malformed { .. })
    ));
    assert!(matches!(
        DossierEvent::from_stored_json("Nope", 1, b"{}"),
        Err(crate::DecodeError::UnknownEventType { .. })
    ));
}

#[test]
fn the_type_table_names_every_event_once() {
    let expected = [
        ("DossierReceived", 2),
        ("DossierDigitized", 1),
        ("DossierProcessed", 1),
        ("EResultIssued", 1),
        ("PaidOnline", 2),
        ("ApologySent", 1),
        ("SupplementRequested", 1),
        ("SupplementReceived", 2),
        ("ResultReturned", 1),
        ("SatisfactionRated", 1),
        ("Withdrawn", 1),
        ("RefusedAtIntake", 1),
        ("SyncedToNationalPortal", 1),
    ];
    assert_eq!(EVENT_TYPES, expected);
}

#[test]
fn stored_data_is_validated_on_read() {
    let mut data = samples()[0].to_json();
    data["receipt_code"] = "G09.20-2026-1".into();
    let err = DossierEvent::from_stored("DossierReceived", 2, data).unwrap_err();
    assert_eq!(
        err.to_string(),
        "DossierReceived data does not match schema version 2: receipt code: \"G09.20-2026-1\" is not a receipt code like G09.20-20260609-0092637 (unit, date YYYYMMDD, 7-digit sequence)"
    );
    let mut data = samples()[12].to_json();
    data["status"] = 11.into();
    let err = DossierEvent::from_stored("SyncedToNationalPortal", 1, data).unwrap_err();
    assert_eq!(
        err.to_string(),
        "SyncedToNationalPortal data does not match schema version 1: 11 is not a portal status (1-10)"
    );
    let mut data = samples()[10].to_json();
    data["applicant_name"] = "Nguyễn Văn A".into();
    let err = DossierEvent::from_stored("Withdrawn", 1, data).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Withdrawn data does not match schema version 1: unknown field `applicant_name`, expected `occurred_at` or `reason`"
    );
}
