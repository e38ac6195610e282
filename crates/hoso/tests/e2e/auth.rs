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

/// `hoso token new` for officers with Vietnamese names: the entries it prints make a tokens file
/// the server starts with, and each token acts as the officer it names.
#[tokio::test]
async fn tokens_made_by_hoso_token_new_for_vietnamese_names_start_the_server_and_name_the_actor() {
    fn token_new(role: &str, subject: &str, file: &mut String) -> String {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_hoso"))
            .args([
                "token",
                "new",
                "--role",
                role,
                "--agency",
                "G09.20",
                "--subject",
                subject,
            ])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8(output.stdout).unwrap();
        let (_, entry) = stdout.split_once("# add to the tokens file:\n").unwrap();
        file.push_str(entry);
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("token (give it to the caller; it is not stored anywhere): "))
            .unwrap()
            .to_owned()
    }
    let dir = tempfile::tempdir().unwrap();
    let mut file = String::new();
    let desks: Vec<(String, &str)> = ["cán bộ một cửa Đồng Hỷ", "Trần \"Thu\" Hà \\ Phòng Tư pháp"]
        .into_iter()
        .map(|subject| (token_new("desk_officer", subject, &mut file), subject))
        .collect();
    let auditor = token_new("auditor", "kiểm toán viên Sở Nội vụ", &mut file);
    let tokens_path = dir.path().join("tokens.toml");
    std::fs::write(&tokens_path, file).unwrap();
    let server = Server::start_with_config(&format!(
        "tokens_file = \"{}\"\nallow_procedures_outside_catalogue = true\n",
        tokens_path.display()
    ));
    let mut audit =
        pb::audit_service_client::AuditServiceClient::new(tonic::service::interceptor::InterceptedService::new(
            server.raw_channel().await,
            Server::bearer_token(&auditor),
        ));
    for (token, subject) in desks {
        let code = receipt_code();
        let mut desk = server.desk_as(Server::bearer_token(&token)).await;
        desk.receive_dossier(receive_request(&code, pb::Channel::Online, OWN_AGENCY, 0))
            .await
            .unwrap();
        let mut stream = audit
            .replay_dossier(pb::ReplayDossierRequest {
                dossier: by_code(&code),
                as_of: None,
            })
            .await
            .unwrap()
            .into_inner();
        let event = stream.message().await.unwrap().unwrap().event.unwrap();
        let metadata: serde_json::Value = serde_json::from_str(&event.metadata_json).unwrap();
        assert_eq!(metadata["actor"], subject);
    }
}
