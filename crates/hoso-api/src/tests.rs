use chrono::{TimeZone, Utc};
use prost::Message;

use crate::convert::{DeskCommand, DossierKey, IntoDeskCommand, utc_to_timestamp};
use crate::pb;

fn header() -> Option<pb::CommandHeader> {
    Some(pb::CommandHeader {
        command_id: "0b6c7a52-52b5-4c6b-8f3e-3f2a1b0c9d8e".to_owned(),
        expected_version: Some(3),
        correlation_id: String::new(),
        occurred_at: Some(utc_to_timestamp(Utc.with_ymd_and_hms(2026, 6, 9, 2, 0, 0).unwrap())),
    })
}

fn receive() -> pb::ReceiveDossierRequest {
    pb::ReceiveDossierRequest {
        command: header(),
        receipt_code: "G09.20-20260609-0092637".to_owned(),
        procedure: Some(pb::Procedure {
            code: "1.001234".to_owned(),
            name: "Cấp giấy phép xây dựng".to_owned(),
            statutory_time: Some(pb::StatutoryTime {
                amount: 3,
                unit: pb::TimeUnit::WorkingDays.into(),
            }),
            full_online_eligible: true,
            paper_result: true,
            fee_vnd: 50_000,
        }),
        receiving_desk: "G09.20".to_owned(),
        handling_agency: "000.00.04.G18".to_owned(),
        channel: pb::Channel::Online.into(),
        applicant_ref: "5f0e3a1c-8d7b-4e2f-9a6c-1b2d3e4f5a6b".to_owned(),
    }
}

#[test]
fn a_complete_receipt_converts_and_the_correlation_defaults_to_the_command_id() {
    let DeskCommand {
        header,
        dossier,
        command,
    } = receive().into_desk_command().unwrap();
    assert_eq!(dossier, None);
    assert_eq!(header.expected_version, Some(3));
    assert_eq!(header.correlation_id, header.command_id.to_string());
    let hoso_domain::Command::ReceiveDossier(receive) = command else {
        panic!("not a receipt: {command:?}")
    };
    assert_eq!(
        receive.procedure.statutory_time,
        hoso_domain::StatutoryTime::working_days(3)
    );
    assert_eq!(receive.channel, hoso_domain::Channel::Online);
}

#[test]
fn every_missing_field_is_named_by_its_path() {
    let mut request = receive();
    request.command.as_mut().unwrap().occurred_at = None;
    request
        .procedure
        .as_mut()
        .unwrap()
        .statutory_time
        .as_mut()
        .unwrap()
        .unit = 0;
    request.channel = 9;
    request.handling_agency.clear();
    let err = request.into_desk_command().unwrap_err();
    let fields: Vec<&str> = err.violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "command.occurred_at",
            "procedure.statutory_time.unit",
            "handling_agency",
            "channel"
        ]
    );
}

#[test]
fn an_applicant_reference_that_is_not_a_uuid_is_refused_without_echoing_it() {
    let mut request = receive();
    request.applicant_ref = "001203004567".to_owned(); // what an identity number looks like
    let err = request.into_desk_command().unwrap_err();
    assert_eq!(err.violations.len(), 1);
    assert_eq!(err.violations[0].field, "applicant_ref");
    assert!(!err.to_string().contains("001203004567"), "{err}");
}

#[test]
fn commands_on_a_dossier_need_a_dossier_reference() {
    let request = pb::WithdrawDossierRequest {
        command: header(),
        dossier: None,
        reason: "đổi ý".to_owned(),
    };
    let err = request.into_desk_command().unwrap_err();
    assert_eq!(err.violations[0].field, "dossier");

    let request = pb::WithdrawDossierRequest {
        command: header(),
        dossier: Some(pb::DossierRef {
            r#ref: Some(pb::dossier_ref::Ref::ReceiptCode("G09.20-20260609-0092637".to_owned())),
        }),
        reason: "đổi ý".to_owned(),
    };
    let command = request.into_desk_command().unwrap();
    assert_eq!(
        command.dossier,
        Some(DossierKey::ReceiptCode("G09.20-20260609-0092637".to_owned()))
    );
}

#[test]
fn a_sync_with_an_unknown_portal_status_is_refused() {
    let request = pb::MarkSyncedRequest {
        command: header(),
        dossier: Some(pb::DossierRef {
            r#ref: Some(pb::dossier_ref::Ref::DossierId("not-a-uuid".to_owned())),
        }),
        status: 11,
    };
    let err = request.into_desk_command().unwrap_err();
    let fields: Vec<&str> = err.violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, ["dossier.dossier_id", "status"]);
}

#[test]
fn the_descriptor_set_holds_every_service_for_reflection() {
    let fds = prost_types::FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET).unwrap();
    let services: Vec<String> = fds
        .file
        .iter()
        .filter(|f| f.package() == "hoso.v1")
        .flat_map(|f| f.service.iter().map(|s| s.name().to_owned()))
        .collect();
    for wanted in ["DeskService", "DossierQueryService", "AuditService", "AdminService"] {
        assert!(
            services.iter().any(|s| s == wanted),
            "{wanted} missing from {services:?}"
        );
    }
}
