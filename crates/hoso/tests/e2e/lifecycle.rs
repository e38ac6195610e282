//! A dossier's whole life through the API, for each channel; replay and verify afterwards.

use hoso_api::pb;
use prost::Message;

use crate::harness::*;

async fn whole_life(server: &Server, channel: pb::Channel) -> (String, Vec<pb::CommandOutcome>) {
    let code = receipt_code();
    let mut desk = server.desk(Role::Desk).await;
    let mut agency = server.desk(Role::Agency).await;
    let mut operator = server.desk(Role::Operator).await;
    let mut outcomes = Vec::new();
    let receipt = desk
        .receive_dossier(receive_request(&code, channel, OWN_AGENCY, 50_000))
        .await
        .unwrap()
        .into_inner()
        .outcome
        .unwrap();
    assert_eq!(receipt.status, 2, "received");
    // Received Tuesday 9 June 2026 with 3 working days: due Friday 12 June, 17:00 (UTC+7).
    let due = hoso_api::convert::timestamp_to_utc(receipt.due_at.as_ref().unwrap()).unwrap();
    assert_eq!(due.to_rfc3339(), "2026-06-12T10:00:00+00:00");
    outcomes.push(receipt);
    let mut push = |outcome: Option<pb::CommandOutcome>| outcomes.push(outcome.unwrap());
    push(
        desk.digitize_dossier(digitize(&code, 10))
            .await
            .unwrap()
            .into_inner()
            .outcome,
    );
    push(
        desk.request_supplement(request_supplement(&code, 20))
            .await
            .unwrap()
            .into_inner()
            .outcome,
    );
    push(
        desk.receive_supplement(receive_supplement(&code, 60 * 24))
            .await
            .unwrap()
            .into_inner()
            .outcome,
    );
    push(
        agency
            .process_dossier(process(&code, 60 * 25, pb::ProcessingStep::Appraised))
            .await
            .unwrap()
            .into_inner()
            .outcome,
    );
    push(
        desk.record_online_payment(pay(&code, 60 * 26, 50_000))
            .await
            .unwrap()
            .into_inner()
            .outcome,
    );
    push(
        agency
            .process_dossier(process(&code, 60 * 27, pb::ProcessingStep::Approved))
            .await
            .unwrap()
            .into_inner()
            .outcome,
    );
    push(
        agency
            .issue_e_result(e_result(&code, 60 * 28))
            .await
            .unwrap()
            .into_inner()
            .outcome,
    );
    push(
        desk.return_result(return_result(&code, 60 * 29))
            .await
            .unwrap()
            .into_inner()
            .outcome,
    );
    push(
        desk.record_rating(rate(&code, 60 * 30))
            .await
            .unwrap()
            .into_inner()
            .outcome,
    );
    push(
        operator
            .mark_synced(sync(&code, 60 * 31, 10))
            .await
            .unwrap()
            .into_inner()
            .outcome,
    );
    (code, outcomes)
}

#[tokio::test]
async fn a_dossier_lives_its_whole_life_on_each_channel() {
    let server = Server::start();
    for channel in [pb::Channel::InPerson, pb::Channel::Online, pb::Channel::Postal] {
        let (code, outcomes) = whole_life(&server, channel).await;
        let versions: Vec<u64> = outcomes.iter().map(|o| o.version).collect();
        assert_eq!(versions, (0..11).collect::<Vec<_>>(), "{channel:?}");
        assert!(outcomes.windows(2).all(|w| w[0].position < w[1].position));
        assert!(outcomes.iter().all(|o| !o.replayed && o.receipt_code == code));
        let dossier_id = outcomes[0].dossier_id.clone();
        assert!(outcomes.iter().all(|o| o.dossier_id == dossier_id));

        // The supplement pause (9 June 08:50 to 10 June 08:30: 1 working day) moved the due date.
        let mut query = server.query(Role::Desk).await;
        let by_id = query
            .get_dossier(pb::GetDossierRequest {
                dossier: Some(pb::DossierRef {
                    r#ref: Some(pb::dossier_ref::Ref::DossierId(dossier_id.clone())),
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .dossier
            .unwrap();
        assert_eq!(by_id.receipt_code, code);
        assert_eq!(by_id.status, 10, "result returned");
        assert_eq!(by_id.channel, channel as i32);
        assert_eq!(by_id.version, 10);
        assert_eq!(by_id.paid_online_vnd, 50_000);
        assert_eq!(by_id.satisfaction, pb::Satisfaction::Satisfied as i32);
        assert!(by_id.missing_components.is_empty());
        let due = hoso_api::convert::timestamp_to_utc(by_id.due_at.as_ref().unwrap()).unwrap();
        assert_eq!(
            due.to_rfc3339(),
            "2026-06-15T10:00:00+00:00",
            "moved by one working day"
        );
        assert_eq!(by_id.deadline.unwrap().state, pb::DeadlineState::FinishedOnTime as i32);
    }
}

#[tokio::test]
async fn the_replay_is_what_was_written_byte_for_byte_and_the_chain_verifies() {
    let mut server = Server::start();
    let (code, outcomes) = whole_life(&server, pb::Channel::Online).await;
    let mut audit = server.audit(Role::Auditor).await;
    let replay = |audit: &mut Audit, as_of: Option<prost_types::Timestamp>| {
        let mut audit = audit.clone();
        let code = code.clone();
        async move {
            let mut stream = audit
                .replay_dossier(pb::ReplayDossierRequest {
                    dossier: by_code(&code),
                    as_of,
                })
                .await
                .unwrap()
                .into_inner();
            let mut items = Vec::new();
            while let Some(item) = stream.message().await.unwrap() {
                items.push(item);
            }
            items
        }
    };
    let items = replay(&mut audit, None).await;
    assert_eq!(items.len(), outcomes.len());
    let types: Vec<&str> = items
        .iter()
        .map(|i| i.event.as_ref().unwrap().event_type.as_str())
        .collect();
    assert_eq!(
        types,
        [
            "DossierReceived",
            "DossierDigitized",
            "SupplementRequested",
            "SupplementReceived",
            "DossierProcessed",
            "PaidOnline",
            "DossierProcessed",
            "EResultIssued",
            "ResultReturned",
            "SatisfactionRated",
            "SyncedToNationalPortal"
        ]
    );
    for (item, outcome) in items.iter().zip(&outcomes) {
        let event = item.event.as_ref().unwrap();
        assert_eq!((event.version, event.position), (outcome.version, outcome.position));
        assert_eq!(event.hash.len(), 64);
        let data: serde_json::Value = serde_json::from_str(&event.data_json).unwrap();
        assert!(data.get("occurred_at").is_some(), "{data}");
        let metadata: serde_json::Value = serde_json::from_str(&event.metadata_json).unwrap();
        assert!(
            metadata["command_id"].is_string() && !event.actor.is_empty(),
            "{metadata}"
        );
        assert_eq!(item.dossier_after.as_ref().unwrap().version, event.version);
    }
    assert_eq!(
        items[0].event.as_ref().unwrap().event_id,
        outcomes[0].dossier_id,
        "the dossier id is its receipt event's id"
    );
    assert_eq!(
        items[0].event.as_ref().unwrap().actor,
        "dev.desk-officer",
        "the actor comes from the token"
    );
    assert_eq!(items[4].event.as_ref().unwrap().actor, "dev.agency-officer");
    let paid: serde_json::Value = serde_json::from_str(&items[5].event.as_ref().unwrap().data_json).unwrap();
    assert_eq!(paid["amount_vnd"], 50_000);

    // As of the recorded-at instant of the fifth event: five events.
    let cutoff = items[4].event.as_ref().unwrap().recorded_at;
    let early = replay(&mut audit, cutoff).await;
    assert_eq!(early.len(), 5);
    assert_eq!(early[..], items[..5]);

    let verified = audit
        .verify_chain(pb::VerifyChainRequest {
            dossier: by_code(&code),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(verified.ok && verified.records_checked == 11, "{verified:?}");
    let whole = audit
        .verify_chain(pb::VerifyChainRequest { dossier: None })
        .await
        .unwrap()
        .into_inner();
    assert!(whole.ok && whole.first_problem.is_none(), "{whole:?}");

    // The same bytes after a restart.
    let before: Vec<Vec<u8>> = items.iter().map(Message::encode_to_vec).collect();
    assert!(server.terminate().await, "a clean shutdown");
    let server = Server::start_in(server.dir());
    let mut audit = server.audit(Role::Auditor).await;
    let after: Vec<Vec<u8>> = replay(&mut audit, None)
        .await
        .iter()
        .map(Message::encode_to_vec)
        .collect();
    assert_eq!(before, after);
}

#[tokio::test]
async fn health_and_reflection_answer_without_a_token() {
    let server = Server::start();
    let channel = server.raw_channel().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    for service in ["", "hoso.v1.DeskService"] {
        let answer = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            answer.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
    }

    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut reflection = ServerReflectionClient::new(channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for wanted in ["hoso.v1.DeskService", "hoso.v1.AuditService", "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == wanted), "{wanted} not in {names:?}");
    }

    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as AlphaClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AlphaRequest;
    let mut alpha = AlphaClient::new(channel);
    let request = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(AlphaRequest::FileContainingSymbol("hoso.v1.DeskService".to_owned())),
    };
    let mut answers = alpha
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    assert!(
        matches!(
            answer.message_response,
            Some(tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(_))
        ),
        "{answer:?}"
    );
}
