//! Who may do what: every role against the services, and callers without a valid token.

use hoso_api::pb;
use tonic::Code;

use crate::harness::*;

#[tokio::test]
async fn callers_without_a_valid_token_are_unauthenticated() {
    let server = Server::start();
    let code = received(&server).await;
    for bearer in [server.bearer(None), Server::bearer_token("hoso_not_a_known_token")] {
        let mut desk = server.desk_as(bearer).await;
        let status = desk.digitize_dossier(digitize(&code, 10)).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }
    assert_eq!(server.head().await, 1, "nothing was written");
}

/// What each role may do: receive, process (own agency), process (another agency), get a
/// dossier, replay, read the status.
#[tokio::test]
async fn each_role_may_do_what_its_duties_need_and_nothing_more() {
    let server = Server::start();
    let own = received(&server).await;
    let other = receipt_code();
    server
        .desk(Role::Desk)
        .await
        .receive_dossier(receive_request(&other, pb::Channel::Online, OTHER_AGENCY, 0))
        .await
        .unwrap();

    let expected = [
        // role, receive, process own, process other, get, replay, status
        (Role::Desk, true, false, false, true, false, false),
        (Role::Agency, false, true, false, true, false, false),
        (Role::Auditor, false, false, false, true, true, true),
        (Role::Operator, false, false, false, true, true, true),
    ];
    for (minute, (role, receive, process_own, process_other, get, replay, status)) in expected.into_iter().enumerate() {
        let minute = 10 + minute as i64;
        let mut desk = server.desk(role).await;
        let allowed = |result: Result<(), tonic::Status>| match result {
            Ok(()) => true,
            Err(status) if status.code() == Code::PermissionDenied => false,
            Err(status) => panic!("{role:?}: neither allowed nor refused: {status:?}"),
        };
        let got = (
            allowed(
                desk.receive_dossier(receive_request(&receipt_code(), pb::Channel::Online, OWN_AGENCY, 0))
                    .await
                    .map(drop),
            ),
            allowed(
                desk.process_dossier(process(&own, minute, pb::ProcessingStep::Appraised))
                    .await
                    .map(drop),
            ),
            allowed(
                desk.process_dossier(process(&other, minute, pb::ProcessingStep::Appraised))
                    .await
                    .map(drop),
            ),
            allowed(
                server
                    .query(role)
                    .await
                    .get_dossier(pb::GetDossierRequest { dossier: by_code(&own) })
                    .await
                    .map(drop),
            ),
            allowed(
                server
                    .audit(role)
                    .await
                    .replay_dossier(pb::ReplayDossierRequest {
                        dossier: by_code(&own),
                        as_of: None,
                    })
                    .await
                    .map(drop),
            ),
            allowed(
                server
                    .admin(role)
                    .await
                    .get_status(pb::GetStatusRequest {})
                    .await
                    .map(drop),
            ),
        );
        assert_eq!(
            got,
            (receive, process_own, process_other, get, replay, status),
            "{role:?}"
        );
    }
}

#[tokio::test]
async fn the_processing_officer_recorded_is_the_caller_not_the_request() {
    let server = Server::start();
    let code = received(&server).await;
    let mut agency = server.desk(Role::Agency).await;
    agency
        .process_dossier(process(&code, 10, pb::ProcessingStep::Appraised))
        .await
        .unwrap();
    let mut audit = server.audit(Role::Auditor).await;
    let mut stream = audit
        .replay_dossier(pb::ReplayDossierRequest {
            dossier: by_code(&code),
            as_of: None,
        })
        .await
        .unwrap()
        .into_inner();
    let mut last = None;
    while let Some(item) = stream.message().await.unwrap() {
        last = item.event;
    }
    let event = last.unwrap();
    let data: serde_json::Value = serde_json::from_str(&event.data_json).unwrap();
    assert_eq!(data["officer"], "dev.agency-officer");
    let metadata: serde_json::Value = serde_json::from_str(&event.metadata_json).unwrap();
    assert_eq!(metadata["actor"], "dev.agency-officer");
    assert_eq!(metadata["role"], "agency_officer");
}
