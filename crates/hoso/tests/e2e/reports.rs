//! Figures from the live projection: the same as a rebuild, stable for a given cut-off.

use hoso_api::pb;
use prost::Message;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn figures_follow_the_log_and_a_cut_off_fixes_them() {
    let server = Server::start();
    let mut agency = server.desk(Role::Agency).await;
    // Received Tue 9 June, due Fri 12 June: one approved on time, one still open (overdue at the
    // end of June), one approved late.
    let on_time = received(&server).await;
    agency
        .process_dossier(process(&on_time, 60, pb::ProcessingStep::Approved))
        .await
        .unwrap();
    let open = received(&server).await;
    let late = received(&server).await;
    agency
        .process_dossier(process(&late, 60 * 24 * 7, pb::ProcessingStep::Approved))
        .await
        .unwrap();

    let mut reports = reports(&server, Role::Auditor).await;
    let first = reports
        .get_index_figures(june_figures(None))
        .await
        .unwrap()
        .into_inner();
    let province = first.province.clone().unwrap();
    let on_time_figures = province.on_time.unwrap();
    let ratio = on_time_figures.on_time.unwrap();
    assert_eq!(
        (ratio.numerator, ratio.denominator, ratio.rate_percent.as_str()),
        (1, 3, "33.33")
    );
    let mut overdue = on_time_figures.overdue_receipt_codes.clone();
    overdue.sort();
    let mut expected = vec![open.clone(), late.clone()];
    expected.sort();
    assert_eq!(overdue, expected);
    assert_eq!(first.agencies.len(), 1);
    assert_eq!(first.agencies[0].group, OWN_AGENCY);
    let absent: Vec<&str> = province
        .indicators
        .iter()
        .filter(|i| !i.measured)
        .map(|i| i.code.as_str())
        .collect();
    assert_eq!(
        absent,
        ["1", "5"],
        "indicators that need more than dossiers are absent, not zero"
    );

    // A back-dated approval of the open dossier, recorded after the first report's cut-off.
    agency
        .process_dossier(process(&open, 90, pb::ProcessingStep::Approved))
        .await
        .unwrap();
    let again = reports
        .get_index_figures(june_figures(first.cutoff))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        Message::encode_to_vec(&pb::GetIndexFiguresResponse {
            projection_position: 0,
            ..again.clone()
        }),
        Message::encode_to_vec(&pb::GetIndexFiguresResponse {
            projection_position: 0,
            ..first.clone()
        }),
        "the same cut-off gives the same figures"
    );
    let now = reports
        .get_index_figures(june_figures(None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        now.province
            .clone()
            .unwrap()
            .on_time
            .unwrap()
            .on_time
            .unwrap()
            .numerator,
        2
    );

    // A rebuild reports progress, swaps, and gives the same figures.
    let mut operator = reports_as_operator(&server).await;
    let mut progress = operator
        .rebuild_projections(pb::RebuildProjectionsRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut last = None;
    while let Some(message) = progress.message().await.unwrap() {
        last = Some(message);
    }
    let last = last.unwrap();
    assert!(last.swapped && last.events_done == last.events_total, "{last:?}");
    let rebuilt = reports
        .get_index_figures(june_figures(now.cutoff))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rebuilt, now, "the rebuilt projection gives the live one's figures");

    let status = reports
        .get_projection_status(pb::GetProjectionStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.dossiers, 3);
    assert_eq!(status.applied_position, status.head_position);

    // Only operators rebuild.
    let status = reports
        .rebuild_projections(pb::RebuildProjectionsRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
}

async fn reports_as_operator(server: &Server) -> Reports {
    reports(server, Role::Operator).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_period_is_invalid_argument_naming_the_field() {
    let server = Server::start();
    let mut reports = reports(&server, Role::Auditor).await;
    let status = reports
        .get_index_figures(pb::GetIndexFiguresRequest {
            scope: Some(pb::ReportScope {
                month: "2026-13".to_owned(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["scope.month"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dossier_list_filters_and_pages() {
    let server = Server::start();
    let mut agency = server.desk(Role::Agency).await;
    let first = received(&server).await;
    let open = received(&server).await;
    agency
        .process_dossier(process(&first, 60, pb::ProcessingStep::Approved))
        .await
        .unwrap();
    let mut reports = reports(&server, Role::Agency).await;
    let all = reports
        .list_dossiers(pb::ListDossiersRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((all.total, all.dossiers.len()), (2, 1));
    let second = reports
        .list_dossiers(pb::ListDossiersRequest {
            page_size: 1,
            page_token: all.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.dossiers.len(), 1);
    assert!(second.next_page_token.is_empty(), "the last page");
    assert_ne!(all.dossiers[0].receipt_code, second.dossiers[0].receipt_code);

    // Received in June 2026 and still open now: overdue.
    let overdue = reports
        .list_dossiers(pb::ListDossiersRequest {
            deadline: pb::DeadlineState::Overdue.into(),
            handling_agency: OWN_AGENCY.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        overdue
            .dossiers
            .iter()
            .map(|d| d.receipt_code.as_str())
            .collect::<Vec<_>>(),
        [open.as_str()]
    );
    assert!(overdue.dossiers[0].remaining_working_time.as_ref().unwrap().seconds < 0);

    let status = reports
        .list_dossiers(pb::ListDossiersRequest {
            received_from: "June".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_fields(&status), ["received_from"]);

    let board = reports
        .get_green_lane_board(pb::GetGreenLaneBoardRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(board.dossiers.is_empty(), "no green-lane procedure is configured");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_metrics_count_calls_by_method_and_code_and_show_the_projection_lag() {
    use std::io::{Read, Write};
    let server = Server::start_with_config("metrics_listen = \"127.0.0.1:0\"\n");
    received(&server).await;
    // One refused command: an empty request is refused before anything is appended.
    let refused = server
        .desk(Role::Desk)
        .await
        .receive_dossier(pb::ReceiveDossierRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    // A report waits until the projection has applied every durable event: the lag is observed.
    reports(&server, Role::Auditor)
        .await
        .get_green_lane_board(pb::GetGreenLaneBoardRequest::default())
        .await
        .unwrap();
    let addr = server
        .metrics_addr
        .clone()
        .expect("the server printed its metrics address");
    let body = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    })
    .await
    .unwrap();
    assert!(
        body.starts_with("HTTP/1.0 200") || body.starts_with("HTTP/1.1 200"),
        "{body}"
    );
    assert!(body.contains("hoso_store_head_position 1"), "{body}");
    // The OK answer's status travels in trailers, the refusal's in trailers-only headers: both
    // are counted, once each, and each has its latency observed.
    let receive = "method=\"/hoso.v1.DeskService/ReceiveDossier\"";
    for code in ["OK", "INVALID_ARGUMENT"] {
        let labels = format!("{{{receive},code=\"{code}\"}}");
        assert!(
            body.contains(&format!("hoso_grpc_requests_total{labels} 1\n")),
            "{code}: {body}"
        );
        assert!(
            body.contains(&format!("hoso_grpc_request_duration_seconds_count{labels} 1\n")),
            "{code}: {body}"
        );
    }
    assert!(body.contains("hoso_store_append_batch_events_count 1\n"), "{body}");
    assert!(body.contains("hoso_projection_lag_seconds_count 1\n"), "{body}");
    assert!(body.contains("hoso_build_info{version="), "{body}");
    assert!(body.contains("# TYPE hoso_projection_lag_events gauge"), "{body}");
    assert!(body.contains("hoso_store_accepting_writes 1"), "{body}");
    assert!(body.contains("hoso_feed_streams 0"), "{body}");
    // No catalogue is loaded in this test; this year's notice is shipped or not, but the gauge is
    // there for this year either way.
    assert!(body.contains("hoso_catalogue_version 0"), "{body}");
    let year = chrono::Datelike::year(&hoso_domain::calendar::to_local(chrono::Utc::now()));
    assert!(
        body.contains(&format!("hoso_calendar_notice_missing{{year=\"{year}\"}}")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hoso_disclose_writes_the_same_document_for_the_same_cut_off() {
    let server = Server::start_with_config(
        "province_name = \"Thái Nguyên\"\n[agency_names]\n\"000.00.04.G18\" = \"Sở Xây dựng\"\n",
    );
    received(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let disclose = |format: &str, name: &str, cutoff: Option<&str>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hoso"));
        command
            .args(["disclose", "--month", "2026-06", "--format", format, "--out"])
            .arg(dir.path().join(name))
            .env("HOSO_SERVER", format!("http://{}", server.addr))
            .env("HOSO_TOKEN", server.token(Role::Auditor));
        if let Some(cutoff) = cutoff {
            command.args(["--cutoff", cutoff]);
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let said = disclose("html", "first.html", None);
    let cutoff = said
        .split("as of ")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    disclose("html", "second.html", Some(&cutoff));
    let first = std::fs::read(dir.path().join("first.html")).unwrap();
    assert_eq!(first, std::fs::read(dir.path().join("second.html")).unwrap());
    let html = String::from_utf8(first).unwrap();
    assert!(
        html.contains("<svg") && html.contains("Sở Xây dựng") && html.contains("ỦY BAN NHÂN DÂN TỈNH THÁI NGUYÊN"),
        "{html}"
    );
    disclose("xlsx", "figures.xlsx", Some(&cutoff));
    assert!(
        std::fs::read(dir.path().join("figures.xlsx"))
            .unwrap()
            .starts_with(b"PK")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hoso_disclose_names_each_language_apart_keeps_existing_files_and_warns_of_an_empty_month() {
    let server = Server::start_with_config("province_name = \"Thái Nguyên\"\n");
    received(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let disclose = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_hoso"))
            .arg("disclose")
            .args(args)
            .current_dir(dir.path())
            .env("HOSO_SERVER", format!("http://{}", server.addr))
            .env("HOSO_TOKEN", server.token(Role::Auditor))
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8(output.stdout).unwrap() + &String::from_utf8(output.stderr).unwrap(),
        )
    };
    let (ok, said) = disclose(&["--month", "2026-06"]);
    assert!(ok, "{said}");
    let (ok, said) = disclose(&["--month", "2026-06", "--language", "en"]);
    assert!(ok, "{said}");
    let vi = dir.path().join("cong-khai-2026-06.html");
    let en = dir.path().join("disclosure-2026-06-en.html");
    assert!(vi.exists() && en.exists(), "{said}");
    assert!(!said.contains("warning"), "a month with a dossier: {said}");
    // An existing file is kept unless --force.
    std::fs::write(&vi, "kept").unwrap();
    let (ok, said) = disclose(&["--month", "2026-06"]);
    assert!(!ok, "an existing file was replaced: {said}");
    assert!(said.contains("exists; give --force"), "{said}");
    assert_eq!(std::fs::read_to_string(&vi).unwrap(), "kept");
    let (ok, said) = disclose(&["--month", "2026-06", "--force"]);
    assert!(ok, "{said}");
    assert!(std::fs::read_to_string(&vi).unwrap().starts_with("<!DOCTYPE html>"));
    // A month with no dossier: the document is written, says so, and the command warns.
    let (ok, said) = disclose(&["--month", "2020-01"]);
    assert!(ok, "{said}");
    assert!(said.contains("warning: no dossier of 2020-01"), "{said}");
    let empty = std::fs::read_to_string(dir.path().join("cong-khai-2020-01.html")).unwrap();
    assert!(empty.contains("id=\"empty-period\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disclosure_needs_the_province_name_configured() {
    let server = Server::start();
    let mut reports = reports(&server, Role::Auditor).await;
    let status = reports
        .get_disclosure(pb::GetDisclosureRequest {
            scope: Some(pb::ReportScope {
                month: "2026-06".to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert!(status.message().contains("province_name"));
}
