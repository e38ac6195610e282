//! Every rule rejection reaches the client with its status code and the rule or field named.

use chrono::TimeDelta;
use hoso_api::pb;
use tonic::Code;

use crate::harness::*;

#[tokio::test]
async fn bad_fields_are_invalid_argument_with_every_field_named() {
    let server = Server::start();
    let mut desk = server.desk(Role::Desk).await;

    let mut request = receive_request(&receipt_code(), pb::Channel::Online, OWN_AGENCY, 0);
    request.command.as_mut().unwrap().command_id = "not-a-uuid".to_owned();
    request.channel = 0;
    let status = desk.receive_dossier(request).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["command.command_id", "channel"]);

    // A procedure outside the catalogue must declare its values.
    let mut request = receive_request(&receipt_code(), pb::Channel::Online, OWN_AGENCY, 0);
    request.procedure.as_mut().unwrap().name.clear();
    assert_refused(
        desk.receive_dossier(request).await,
        Code::InvalidArgument,
        "procedure.name",
    );

    let mut request = receive_request(&receipt_code(), pb::Channel::Online, OWN_AGENCY, 0);
    request.procedure.as_mut().unwrap().code = "1.23".to_owned();
    assert_refused(
        desk.receive_dossier(request).await,
        Code::InvalidArgument,
        "procedure.code",
    );

    let mut request = receive_request(&receipt_code(), pb::Channel::Online, OWN_AGENCY, 0);
    request.receipt_code = "G09.20-20260610-0000001".to_owned();
    assert_refused(
        desk.receive_dossier(request).await,
        Code::InvalidArgument,
        "receipt_code",
    );

    let mut request = receive_request(&receipt_code(), pb::Channel::Online, OWN_AGENCY, 0);
    request.command = header_with(uuid::Uuid::new_v4(), 0, None);
    request.command.as_mut().unwrap().occurred_at = Some(hoso_api::convert::utc_to_timestamp(
        chrono::Utc::now() + TimeDelta::hours(1),
    ));
    request.receipt_code = format!(
        "G09.20-{}-0000001",
        (chrono::Utc::now() + TimeDelta::hours(8)).format("%Y%m%d")
    );
    assert_refused(
        desk.receive_dossier(request).await,
        Code::InvalidArgument,
        "command.occurred_at",
    );

    let code = received(&server).await;
    let mut request = process(&code, 10, pb::ProcessingStep::Stopped);
    request.reason.clear();
    let mut agency = server.desk(Role::Agency).await;
    assert_refused(agency.process_dossier(request).await, Code::InvalidArgument, "reason");

    let mut request = digitize(&code, 10);
    request.files[0].content_hash = "XYZ".to_owned();
    assert_refused(
        desk.digitize_dossier(request).await,
        Code::InvalidArgument,
        "files.content_hash",
    );
}

#[tokio::test]
async fn broken_rules_are_failed_precondition_with_the_rule_named() {
    let server = Server::start();
    let mut desk = server.desk(Role::Desk).await;
    let mut agency = server.desk(Role::Agency).await;

    // A receipt code is received once.
    let code = received(&server).await;
    let again = receive_request(&code, pb::Channel::Online, OWN_AGENCY, 50_000);
    assert_refused(
        desk.receive_dossier(again).await,
        Code::FailedPrecondition,
        "dossier-already-received",
    );

    // Business time never goes back before the previous event.
    desk.digitize_dossier(digitize(&code, 30)).await.unwrap();
    assert_refused(
        desk.digitize_dossier(digitize(&code, 20)).await,
        Code::FailedPrecondition,
        "occurred-at-not-before-previous",
    );

    // E-result, return and rating need the steps before them.
    assert_refused(
        agency.issue_e_result(e_result(&code, 40)).await,
        Code::FailedPrecondition,
        "e-result-needs-approval",
    );
    assert_refused(
        desk.return_result(return_result(&code, 40)).await,
        Code::FailedPrecondition,
        "return-needs-finished-processing",
    );
    assert_refused(
        desk.record_rating(rate(&code, 40)).await,
        Code::FailedPrecondition,
        "rating-after-return",
    );

    // Supplements: one open request at a time, none received without one, processing paused.
    assert_refused(
        desk.receive_supplement(receive_supplement(&code, 40)).await,
        Code::FailedPrecondition,
        "supplement-needs-request",
    );
    desk.request_supplement(request_supplement(&code, 50)).await.unwrap();
    assert_refused(
        desk.request_supplement(request_supplement(&code, 60)).await,
        Code::FailedPrecondition,
        "one-open-supplement-request",
    );
    assert_refused(
        agency
            .process_dossier(process(&code, 60, pb::ProcessingStep::Appraised))
            .await,
        Code::FailedPrecondition,
        "paused-for-supplement",
    );
    desk.receive_supplement(receive_supplement(&code, 70)).await.unwrap();

    // Refusal only before processing; payments within the fee.
    agency
        .process_dossier(process(&code, 80, pb::ProcessingStep::Appraised))
        .await
        .unwrap();
    assert_refused(
        desk.refuse_at_intake(refuse(&code, 90)).await,
        Code::FailedPrecondition,
        "refusal-only-at-intake",
    );
    assert_refused(
        desk.record_online_payment(pay(&code, 90, 60_000)).await,
        Code::FailedPrecondition,
        "payment-within-fee",
    );

    // An apology's new date must be after the due date.
    assert_refused(
        agency.send_apology(apology(&code, 90, june(60))).await,
        Code::FailedPrecondition,
        "apology-date-after-due-date",
    );

    // After approval: no further step, one e-result.
    agency
        .process_dossier(process(&code, 100, pb::ProcessingStep::Approved))
        .await
        .unwrap();
    assert_refused(
        agency
            .process_dossier(process(&code, 110, pb::ProcessingStep::Appraised))
            .await,
        Code::FailedPrecondition,
        "processing-finished",
    );
    agency.issue_e_result(e_result(&code, 110)).await.unwrap();
    assert_refused(
        agency.issue_e_result(e_result(&code, 120)).await,
        Code::FailedPrecondition,
        "one-e-result",
    );

    // After return: one rating; nothing else but a rating or a sync.
    desk.return_result(return_result(&code, 130)).await.unwrap();
    desk.record_rating(rate(&code, 140)).await.unwrap();
    assert_refused(
        desk.record_rating(rate(&code, 150)).await,
        Code::FailedPrecondition,
        "one-rating",
    );
    assert_refused(
        desk.digitize_dossier(digitize(&code, 150)).await,
        Code::FailedPrecondition,
        "nothing-after-close",
    );
    desk.mark_synced(sync(&code, 160, 10)).await.unwrap();

    // A free procedure has nothing to pay.
    let free = receipt_code();
    desk.receive_dossier(receive_request(&free, pb::Channel::InPerson, OWN_AGENCY, 0))
        .await
        .unwrap();
    assert_refused(
        desk.record_online_payment(pay(&free, 10, 1)).await,
        Code::FailedPrecondition,
        "payment-needs-fee",
    );

    // A year without a holiday notice gets a provisional calendar, recorded in the answer.
    let mut old = receive_request("G09.20-20240610-0000001", pb::Channel::InPerson, OWN_AGENCY, 0);
    old.command.as_mut().unwrap().occurred_at = Some(hoso_api::convert::utc_to_timestamp(
        chrono::DateTime::parse_from_rfc3339("2024-06-10T09:00:00+07:00")
            .unwrap()
            .into(),
    ));
    let outcome = desk.receive_dossier(old).await.unwrap().into_inner().outcome.unwrap();
    assert_eq!(
        outcome.due_at_calendars,
        [pb::CalendarRef {
            year: 2024,
            version: 0,
            provisional: true
        }]
    );

    // A withdrawn dossier is closed.
    desk.withdraw_dossier(withdraw(&free, 20)).await.unwrap();
    assert_refused(
        desk.withdraw_dossier(withdraw(&free, 30)).await,
        Code::FailedPrecondition,
        "nothing-after-close",
    );
}

#[tokio::test]
async fn an_unknown_dossier_is_not_found() {
    let server = Server::start();
    let mut desk = server.desk(Role::Desk).await;
    let status = desk
        .digitize_dossier(digitize("G09.20-20260609-9999999", 10))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(
        status.message().contains("G09.20-20260609-9999999"),
        "{}",
        status.message()
    );

    let mut query = server.query(Role::Auditor).await;
    let status = query
        .get_dossier(pb::GetDossierRequest {
            dossier: Some(pb::DossierRef {
                r#ref: Some(pb::dossier_ref::Ref::DossierId(uuid::Uuid::new_v4().to_string())),
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

/// A huge invalid value, or thousands of them, is INVALID_ARGUMENT with a short message: the
/// value is echoed cut, and only the first fields are named.
#[tokio::test]
async fn huge_invalid_values_are_invalid_argument_with_a_short_message() {
    let server = Server::start();
    let code = received(&server).await;
    let mut desk = server.desk(Role::Desk).await;
    let huge = "G09.20-20260609-".to_owned() + &"9".repeat(4_000);
    let check = |status: tonic::Status, field: &str| {
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {:?}", status.code());
        assert!(
            status.message().len() <= 2_048,
            "{field}: {} bytes",
            status.message().len()
        );
        assert!(
            !status.message().contains(&"9".repeat(100)),
            "{field}: the whole value echoed"
        );
        assert!(
            bad_fields(&status).iter().any(|f| f == field),
            "{field}: {:?}",
            bad_fields(&status)
        );
    };
    let request = receive_request(&huge, pb::Channel::Online, OWN_AGENCY, 0);
    check(desk.receive_dossier(request).await.unwrap_err(), "receipt_code");
    let mut request = receive_request(&receipt_code(), pb::Channel::Online, OWN_AGENCY, 0);
    request.applicant_ref = "Nguyễn Văn A ".repeat(300);
    let status = desk.receive_dossier(request).await.unwrap_err();
    assert_eq!(bad_fields(&status), ["applicant_ref"]);
    assert!(
        !status.message().contains("Nguyễn"),
        "the applicant reference is never echoed"
    );
    let status = server
        .query(Role::Auditor)
        .await
        .get_dossier(pb::GetDossierRequest {
            dossier: by_code(&huge),
        })
        .await
        .unwrap_err();
    check(status, "dossier.receipt_code");

    let mut request = digitize(&code, 10);
    request.files[0].content_hash = "f".repeat(4_000);
    check(desk.digitize_dossier(request).await.unwrap_err(), "files.content_hash");
    let mut request = digitize(&code, 10);
    request.files = (0..5_000)
        .map(|_| pb::ComponentFile {
            component: String::new(),
            content_hash: "ab".repeat(32),
        })
        .collect();
    let status = desk.digitize_dossier(request).await.unwrap_err();
    check(status.clone(), "files[0].component");
    assert!(
        status.message().contains("and 4980 more fields"),
        "{}",
        status.message()
    );
    assert_eq!(server.head().await, 1, "nothing was written");
}

/// Bytes that are not the method's protobuf message are the client's fault: INVALID_ARGUMENT.
#[tokio::test]
async fn an_undecodable_request_is_invalid_argument() {
    let server = Server::start();
    let mut grpc = tonic::client::Grpc::new(server.raw_channel().await);
    for path in [
        "/hoso.v1.DeskService/ReceiveDossier",
        "/hoso.v1.DossierQueryService/GetDossier",
    ] {
        grpc.ready().await.unwrap();
        // A Timestamp's field 1 is a varint where these requests hold a message.
        let mut request = tonic::Request::new(prost_types::Timestamp { seconds: 5, nanos: 0 });
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", server.token(Role::Desk)).parse().unwrap(),
        );
        let status = grpc
            .unary::<_, prost_types::Timestamp, _>(
                request,
                path.parse().unwrap(),
                hoso_api::codec::HosoCodec::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{path}: {status:?}");
        assert!(status.message().contains("protobuf"), "{}", status.message());
    }
}
