//! Reference data end to end: desks keep receiving in December on a provisional calendar, a
//! holiday notice loaded while serving changes later receipts only, and the procedure catalogue
//! gives every receipt its values.

use chrono::{DateTime, Datelike, Utc};
use hoso_api::convert::utc_to_timestamp;
use hoso_api::pb;
use prost::Message;
use tonic::Code;
use uuid::Uuid;

use crate::harness::*;

/// A local (UTC+7) instant written as `YYYY-MM-DD HH:MM`.
fn local(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{}T{}:00+07:00", &text[..10], &text[11..]))
        .unwrap()
        .into()
}

fn days(amount: u32) -> Option<pb::StatutoryTime> {
    Some(pb::StatutoryTime {
        amount,
        unit: pb::TimeUnit::WorkingDays.into(),
    })
}

fn entry(code: &str, amount: u32) -> pb::CatalogueEntry {
    pb::CatalogueEntry {
        code: code.to_owned(),
        name: "Cấp giấy phép xây dựng".to_owned(),
        statutory_time: days(amount),
        fee_vnd: 50_000,
        full_online_eligible: true,
        paper_result: true,
        handling_agencies: vec![OWN_AGENCY.to_owned()],
        green_lane_time: None,
    }
}

fn decision(number: &str, effective_from: &str, entries: Vec<pb::CatalogueEntry>) -> pb::LoadCatalogueRequest {
    pb::LoadCatalogueRequest {
        decision: number.to_owned(),
        effective_from: effective_from.to_owned(),
        entries,
        abolished: vec![],
        load_id: Uuid::new_v4().to_string(),
    }
}

/// A receipt of `code` at the local instant `at`, naming the procedure by its code alone.
fn by_code_at(code: &str, at: &str, sequence: u32) -> pb::ReceiveDossierRequest {
    let mut request = receive_request(
        &format!("G09.20-{}-{sequence:07}", at[..10].replace('-', "")),
        pb::Channel::Online,
        OWN_AGENCY,
        0,
    );
    request.procedure = Some(pb::Procedure {
        code: code.to_owned(),
        ..pb::Procedure::default()
    });
    request.command.as_mut().unwrap().occurred_at = Some(utc_to_timestamp(local(at)));
    request
}

/// The outcome of a receipt that must be accepted.
async fn receive(desk: &mut Desk, request: pb::ReceiveDossierRequest) -> pb::CommandOutcome {
    desk.receive_dossier(request)
        .await
        .unwrap()
        .into_inner()
        .outcome
        .unwrap()
}

fn calendar_ref(year: i32, version: u32) -> pb::CalendarRef {
    pb::CalendarRef {
        year,
        version,
        provisional: version == 0,
    }
}

#[tokio::test]
async fn desks_keep_receiving_in_december_and_a_notice_loaded_later_changes_only_later_receipts() {
    let mut server = Server::start_with_config("allow_procedures_outside_catalogue = false\n");
    let mut admin = server.admin(Role::Operator).await;
    admin
        .load_catalogue(decision("100/QĐ-UBND", "2026-01-01", vec![entry("1.001234", 20)]))
        .await
        .unwrap();
    let mut desk = server.desk(Role::Desk).await;
    let mut reference = server.reference(Role::Desk).await;
    assert!(
        reference
            .get_calendar(pb::GetCalendarRequest { year: 2027 })
            .await
            .unwrap()
            .into_inner()
            .calendar
            .unwrap()
            .provisional
    );
    let today = hoso_domain::calendar::to_local(Utc::now()).date();
    let warnings = admin
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner()
        .warnings;
    if today.year() == 2026 && today.month() >= 10 {
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("no holiday notice is loaded for 2027")),
            "{warnings:?}"
        );
    }

    // Monday 7 December 2026, 20 working days: due in January 2027, on the provisional calendar
    // (1 January off): Tuesday 5 January.
    let first = receive(&mut desk, by_code_at("1.001234", "2026-12-07 08:00", 1)).await;
    assert_eq!(first.due_at, Some(utc_to_timestamp(local("2027-01-05 17:00"))));
    assert_eq!(first.due_at_calendars, [calendar_ref(2026, 1), calendar_ref(2027, 0)]);

    let mut reports = reports(&server, Role::Auditor).await;
    let december = |cutoff| pb::GetIndexFiguresRequest {
        scope: Some(pb::ReportScope {
            month: "2026-12".to_owned(),
            cutoff,
            ..Default::default()
        }),
    };
    let before = reports.get_index_figures(december(None)).await.unwrap().into_inner();

    // The 2027 notice, loaded while serving, makes Monday 4 January a day off too.
    let notice = r#"{"year": 2027, "version": 1, "source": "TB 1/TB-BNV (test)",
        "days_off": ["2027-01-01", "2027-01-04"], "working_saturdays": []}"#;
    let loaded = admin
        .load_calendar(pb::LoadCalendarRequest {
            table_json: notice.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((loaded.year, loaded.version, loaded.replaced_version), (2027, 1, 0));
    // Loading it again is a retry; an older version is refused naming the rule.
    admin
        .load_calendar(pb::LoadCalendarRequest {
            table_json: notice.to_owned(),
        })
        .await
        .unwrap();
    assert_refused(
        admin
            .load_calendar(pb::LoadCalendarRequest {
                table_json: notice.replace(r#""version": 1"#, r#""version": 0"#),
            })
            .await,
        Code::InvalidArgument,
        "table_json",
    );
    let denied = server
        .admin(Role::Desk)
        .await
        .load_calendar(pb::LoadCalendarRequest {
            table_json: notice.to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");

    let second = receive(&mut desk, by_code_at("1.001234", "2026-12-07 08:00", 2)).await;
    assert_eq!(second.due_at, Some(utc_to_timestamp(local("2027-01-06 17:00"))));
    assert_eq!(second.due_at_calendars, [calendar_ref(2026, 1), calendar_ref(2027, 1)]);
    // The first receipt keeps the due date it was given.
    let mut query = server.query(Role::Auditor).await;
    let kept = query
        .get_dossier(pb::GetDossierRequest {
            dossier: by_code("G09.20-20261207-0000001"),
        })
        .await
        .unwrap()
        .into_inner()
        .dossier
        .unwrap();
    assert_eq!(kept.due_at, first.due_at);
    assert_eq!(kept.due_at_calendars, [calendar_ref(2026, 1), calendar_ref(2027, 0)]);

    // The month's figures as of the cut-off taken before the load are the same bytes.
    let after = reports
        .get_index_figures(december(before.cutoff))
        .await
        .unwrap()
        .into_inner();
    let bytes = |response: &pb::GetIndexFiguresResponse| {
        pb::GetIndexFiguresResponse {
            projection_position: 0,
            ..response.clone()
        }
        .encode_to_vec()
    };
    assert_eq!(bytes(&after), bytes(&before));

    let calendar = reference
        .get_calendar(pb::GetCalendarRequest { year: 2027 })
        .await
        .unwrap()
        .into_inner()
        .calendar
        .unwrap();
    assert_eq!(
        (calendar.provisional, calendar.version, calendar.loaded_by.as_str()),
        (false, 1, "dev.operator")
    );
    assert_eq!(calendar.days_off, ["2027-01-01", "2027-01-04"]);
    let warnings = admin
        .get_status(pb::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner()
        .warnings;
    assert!(!warnings.iter().any(|w| w.contains("2027")), "{warnings:?}");

    // The notice is in the log: a restart has it.
    assert!(server.terminate().await);
    let restarted = Server::start_in(server.dir());
    let calendar = restarted
        .reference(Role::Auditor)
        .await
        .get_calendar(pb::GetCalendarRequest { year: 2027 })
        .await
        .unwrap()
        .into_inner()
        .calendar
        .unwrap();
    assert_eq!((calendar.version, calendar.loaded_by.as_str()), (1, "dev.operator"));
}

#[tokio::test]
async fn the_catalogue_gives_every_receipt_its_values_and_survives_a_restart() {
    let mut server = Server::start_with_config("allow_procedures_outside_catalogue = false\n");
    let mut desk = server.desk(Role::Desk).await;
    // No catalogue yet: nothing can be received.
    assert_refused(
        desk.receive_dossier(by_code_at("1.001234", "2026-06-09 09:00", 1))
            .await,
        Code::FailedPrecondition,
        "procedure-in-catalogue",
    );
    let denied = server
        .admin(Role::Desk)
        .await
        .load_catalogue(decision("100/QĐ-UBND", "2026-01-01", vec![entry("1.001234", 3)]))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let mut admin = server.admin(Role::Operator).await;
    let mut green = entry("2.000815", 10);
    green.green_lane_time = days(2);
    let first = decision("100/QĐ-UBND", "2026-01-01", vec![entry("1.001234", 3), green]);
    let loaded = admin.load_catalogue(first.clone()).await.unwrap().into_inner();
    assert_eq!(
        (
            loaded.catalogue.clone().unwrap().version,
            loaded.entries,
            loaded.replayed
        ),
        (1, 2, false)
    );
    let again = admin.load_catalogue(first).await.unwrap().into_inner();
    assert_eq!((again.catalogue.unwrap().version, again.replayed), (1, true));
    // A reissue in force from Wednesday 10 June: 5 working days.
    admin
        .load_catalogue(decision("200/QĐ-UBND", "2026-06-10", vec![entry("1.001234", 5)]))
        .await
        .unwrap();

    // By code alone, on Tuesday 9 June: the first decision's 3 working days, due Friday 12.
    let outcome = receive(&mut desk, by_code_at("1.001234", "2026-06-09 09:00", 1)).await;
    assert_eq!(outcome.due_at, Some(utc_to_timestamp(local("2026-06-12 17:00"))));
    // On Wednesday 10 June: the reissue's 5 working days, due Wednesday 17.
    let outcome = receive(&mut desk, by_code_at("1.001234", "2026-06-10 09:00", 2)).await;
    assert_eq!(outcome.due_at, Some(utc_to_timestamp(local("2026-06-17 17:00"))));
    let dossier = server
        .query(Role::Auditor)
        .await
        .get_dossier(pb::GetDossierRequest {
            dossier: by_code("G09.20-20260610-0000002"),
        })
        .await
        .unwrap()
        .into_inner()
        .dossier
        .unwrap();
    assert_eq!(dossier.procedure_source, i32::from(pb::ProcedureSource::Catalogue));
    let catalogue = dossier.catalogue.unwrap();
    assert_eq!((catalogue.version, catalogue.decision.as_str()), (2, "200/QĐ-UBND"));
    assert_eq!(dossier.procedure.unwrap().fee_vnd, Some(50_000));
    // The green lane comes with the entry; the agency too, when it is the only one.
    let mut green = by_code_at("2.000815", "2026-06-09 09:00", 3);
    green.handling_agency.clear();
    let outcome = receive(&mut desk, green).await;
    assert_eq!(outcome.due_at, Some(utc_to_timestamp(local("2026-06-11 17:00"))));

    // A value that differs is refused, naming the field and the decision; so is an unknown code.
    let mut differs = by_code_at("1.001234", "2026-06-09 09:00", 4);
    differs.procedure.as_mut().unwrap().fee_vnd = Some(1);
    let refused = desk.receive_dossier(differs).await.unwrap_err();
    assert_eq!(reason(&refused).as_deref(), Some("procedure-values-from-catalogue"));
    assert!(refused.message().contains("procedure.fee_vnd"), "{}", refused.message());
    assert!(refused.message().contains("100/QĐ-UBND"), "{}", refused.message());
    let refused = desk
        .receive_dossier(by_code_at("1.009999", "2026-06-09 09:00", 5))
        .await
        .unwrap_err();
    assert_eq!(reason(&refused).as_deref(), Some("procedure-in-catalogue"));
    assert!(refused.message().contains("1.009999"), "{}", refused.message());

    // Desk software lists the catalogue as in force at an instant, and by agency.
    let mut reference = server.reference(Role::Desk).await;
    let list = |at: &str, agency: &str| pb::ListProceduresRequest {
        agency: agency.to_owned(),
        at: Some(utc_to_timestamp(local(at))),
        ..Default::default()
    };
    let listed = |response: pb::ListProceduresResponse| -> Vec<(String, String)> {
        response
            .procedures
            .into_iter()
            .map(|p| (p.entry.unwrap().code, p.catalogue.unwrap().decision))
            .collect()
    };
    let on_the_9th = reference
        .list_procedures(list("2026-06-09 12:00", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(on_the_9th.catalogue_version, 2);
    assert_eq!(
        listed(on_the_9th),
        [
            ("1.001234".to_owned(), "100/QĐ-UBND".to_owned()),
            ("2.000815".to_owned(), "100/QĐ-UBND".to_owned())
        ]
    );
    let on_the_10th = reference
        .list_procedures(list("2026-06-10 12:00", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed(on_the_10th)[0],
        ("1.001234".to_owned(), "200/QĐ-UBND".to_owned())
    );
    let elsewhere = reference
        .list_procedures(list("2026-06-10 12:00", OTHER_AGENCY))
        .await
        .unwrap()
        .into_inner();
    assert!(elsewhere.procedures.is_empty());

    // The catalogue is in the log: a restart has it.
    assert!(server.terminate().await);
    let restarted = Server::start_in(server.dir());
    let listed_again = restarted
        .reference(Role::Auditor)
        .await
        .list_procedures(list("2026-06-10 12:00", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed_again.catalogue_version, 2);
    assert_eq!(listed(listed_again).len(), 2);
}
