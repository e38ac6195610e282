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
            full_online_eligible: Some(true),
            paper_result: Some(true),
            fee_vnd: Some(50_000),
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
        Some(hoso_domain::StatutoryTime::working_days(3))
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
        ["command.occurred_at", "procedure.statutory_time.unit", "channel"]
    );
}

#[test]
fn a_receipt_by_code_alone_declares_no_value() {
    let mut request = receive();
    request.procedure = Some(pb::Procedure {
        code: "1.001234".to_owned(),
        ..pb::Procedure::default()
    });
    request.handling_agency.clear();
    let command = request.into_desk_command().unwrap().command;
    let hoso_domain::Command::ReceiveDossier(receive) = command else {
        panic!("not a receipt: {command:?}")
    };
    assert_eq!(
        receive.procedure,
        hoso_domain::command::ProcedureInput::code("1.001234")
    );
    assert_eq!(receive.handling_agency, "");
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

/// One command of every kind, with officers left empty (requests carry none).
fn one_of_each() -> Vec<hoso_domain::Command> {
    use hoso_domain::command::*;
    use hoso_domain::event::{PaymentGateway, ProcessingStep, ReturnMethod, Satisfaction};
    let at = Utc.with_ymd_and_hms(2026, 6, 9, 2, 0, 0).unwrap();
    vec![
        ReceiveDossier {
            occurred_at: at,
            receipt_code: "G09.20-20260609-0092637".to_owned(),
            procedure: ProcedureInput::declared(
                "1.001234",
                "Cấp giấy phép xây dựng",
                hoso_domain::StatutoryTime::working_hours(12),
                true,
                false,
                50_000,
            ),
            receiving_desk: "G09.20".to_owned(),
            handling_agency: "000.00.04.G18".to_owned(),
            channel: hoso_domain::Channel::Postal,
            applicant: hoso_domain::ApplicantRef(uuid::Uuid::from_u128(7)),
        }
        .into(),
        DigitizeDossier {
            occurred_at: at,
            files: vec![FileInput {
                component: "Đơn".to_owned(),
                content_hash: "ab".repeat(32),
            }],
            reused: vec![ReuseInput {
                component: "Căn cước".to_owned(),
                source: "CSDLQG về dân cư".to_owned(),
            }],
            result_digitized: true,
        }
        .into(),
        ProcessDossier {
            occurred_at: at,
            step: ProcessingStep::Stopped,
            officer: String::new(),
            to_unit: Some("000.00.05.G18".to_owned()),
            reason: Some("không đủ điều kiện".to_owned()),
        }
        .into(),
        RequestSupplement {
            occurred_at: at,
            missing_components: vec!["Bản vẽ".to_owned(), "Bản sao".to_owned()],
            officer: String::new(),
        }
        .into(),
        ReceiveSupplement { occurred_at: at }.into(),
        IssueEResult {
            occurred_at: at,
            result_id: "KQ-1".to_owned(),
            content_hash: "cd".repeat(32),
            signer: "signer.g18".to_owned(),
        }
        .into(),
        PayOnline {
            occurred_at: at,
            amount_vnd: 70_000,
            gateway: PaymentGateway::Provincial,
            transaction_ref: "TT1".to_owned(),
        }
        .into(),
        SendApology {
            occurred_at: at,
            reason: "cần xác minh".to_owned(),
            new_appointment_at: at + chrono::TimeDelta::days(3),
            letter_number: "15/XL".to_owned(),
        }
        .into(),
        ReturnResult {
            occurred_at: at,
            method: ReturnMethod::ByPost,
        }
        .into(),
        RateSatisfaction {
            occurred_at: at,
            rating: Satisfaction::Unsatisfied,
        }
        .into(),
        Withdraw {
            occurred_at: at,
            reason: "công dân rút".to_owned(),
        }
        .into(),
        RefuseAtIntake {
            occurred_at: at,
            reason: "không thuộc thẩm quyền".to_owned(),
            officer: String::new(),
        }
        .into(),
        RecordNationalPortalSync {
            occurred_at: at,
            status: hoso_domain::PortalStatus::ResultReturned,
        }
        .into(),
    ]
}

#[test]
fn every_command_converts_to_its_request_and_back_unchanged() {
    use crate::convert::command_to_pb;
    let header = header().unwrap();
    let dossier = Some(pb::DossierRef {
        r#ref: Some(pb::dossier_ref::Ref::ReceiptCode("G09.20-20260609-0092637".to_owned())),
    });
    for command in one_of_each() {
        let request = command_to_pb(&command, header.clone(), dossier.clone());
        let back = request
            .into_desk_command()
            .unwrap_or_else(|err| panic!("{command:?} does not convert back: {err}"));
        assert_eq!(back.command, command);
        assert_eq!(back.header.expected_version, Some(3));
        let expected_key = match command {
            hoso_domain::Command::ReceiveDossier(_) => None,
            _ => Some(DossierKey::ReceiptCode("G09.20-20260609-0092637".to_owned())),
        };
        assert_eq!(back.dossier, expected_key);
    }
}
