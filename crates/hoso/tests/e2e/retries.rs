//! Retried commands write nothing new; racing desks get a clean conflict.

use std::time::Duration;

use hoso_api::pb;
use tonic::{Code, IntoRequest};
use uuid::Uuid;

use crate::harness::*;

fn digitize_with(code: &str, command_id: Uuid, minutes: i64, expected: Option<u64>) -> pb::DigitizeDossierRequest {
    pb::DigitizeDossierRequest {
        command: header_with(command_id, minutes, expected),
        ..digitize(code, minutes)
    }
}

#[tokio::test]
async fn a_retried_command_returns_the_original_outcome_and_writes_nothing() {
    let server = Server::start();
    let mut desk = server.desk(Role::Desk).await;
    let code = received(&server).await;
    let command_id = Uuid::new_v4();
    let first = desk
        .digitize_dossier(digitize_with(&code, command_id, 10, None))
        .await
        .unwrap()
        .into_inner()
        .outcome
        .unwrap();
    assert!(!first.replayed);
    let head = server.head().await;
    // A later command moves the dossier on; the retry still answers as the first time did.
    desk.digitize_dossier(digitize(&code, 20)).await.unwrap();
    let retry = desk
        .digitize_dossier(digitize_with(&code, command_id, 10, None))
        .await
        .unwrap()
        .into_inner()
        .outcome
        .unwrap();
    assert!(retry.replayed);
    assert_eq!((retry.version, retry.position), (first.version, first.position));
    assert_eq!(server.head().await, head + 1, "only the other command wrote");

    // The same receipt, retried: the same dossier id.
    let receipt = receive_request(&receipt_code(), pb::Channel::InPerson, OWN_AGENCY, 0);
    let a = desk
        .receive_dossier(receipt.clone())
        .await
        .unwrap()
        .into_inner()
        .outcome
        .unwrap();
    let b = desk
        .receive_dossier(receipt)
        .await
        .unwrap()
        .into_inner()
        .outcome
        .unwrap();
    assert_eq!(a.dossier_id, b.dossier_id);
    assert!(b.replayed && !a.replayed);

    // A command id reused for another command is refused.
    let status = desk
        .withdraw_dossier(pb::WithdrawDossierRequest {
            command: header_with(command_id, 30, None),
            ..withdraw(&code, 30)
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["command.command_id"]);
}

#[tokio::test]
async fn a_command_retried_after_a_client_timeout_is_recorded_once() {
    let server = Server::start();
    let mut desk = server.desk(Role::Desk).await;
    let code = received(&server).await;
    let command_id = Uuid::new_v4();
    for _ in 0..5 {
        let mut request = digitize_with(&code, command_id, 10, None).into_request();
        request.set_timeout(Duration::from_micros(1));
        // Timed out or not, the client cannot know whether it was recorded.
        let _ = desk.digitize_dossier(request).await;
    }
    let outcome = desk
        .digitize_dossier(digitize_with(&code, command_id, 10, None))
        .await
        .unwrap()
        .into_inner()
        .outcome
        .unwrap();
    assert_eq!(outcome.version, 1, "recorded once, right after the receipt");
    assert_eq!(server.head().await, 2, "the receipt and one digitization");
}

#[tokio::test]
async fn a_command_retried_after_a_restart_writes_nothing_new() {
    let mut server = Server::start();
    let code = received(&server).await;
    let command_id = Uuid::new_v4();
    let mut desk = server.desk(Role::Desk).await;
    let first = desk
        .digitize_dossier(digitize_with(&code, command_id, 10, None))
        .await
        .unwrap()
        .into_inner()
        .outcome
        .unwrap();
    let head = server.head().await;
    server.kill();
    let server = Server::start_in(server.dir());
    let mut desk = server.desk(Role::Desk).await;
    let retry = desk
        .digitize_dossier(digitize_with(&code, command_id, 10, None))
        .await
        .unwrap()
        .into_inner()
        .outcome
        .unwrap();
    assert!(retry.replayed);
    assert_eq!(
        (retry.version, retry.position, retry.dossier_id),
        (first.version, first.position, first.dossier_id)
    );
    assert_eq!(server.head().await, head);
}

#[tokio::test]
async fn two_desks_racing_on_one_dossier_one_wins_the_other_is_aborted_with_the_actual_version() {
    let server = Server::start();
    let code = received(&server).await;
    for round in 0..10u64 {
        let mut a = server.desk(Role::Desk).await;
        let mut b = server.desk(Role::Desk).await;
        let minutes = 10 + round as i64;
        let (ra, rb) = tokio::join!(
            a.digitize_dossier(digitize_with(&code, Uuid::new_v4(), minutes, Some(round))),
            b.digitize_dossier(digitize_with(&code, Uuid::new_v4(), minutes, Some(round))),
        );
        let (won, lost) = match (ra, rb) {
            (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won.into_inner().outcome.unwrap(), lost),
            (a, b) => panic!("exactly one must win: {a:?} {b:?}"),
        };
        assert_eq!(won.version, round + 1);
        assert_eq!(lost.code(), Code::Aborted, "{lost:?}");
        use tonic_types::StatusExt;
        let info = lost.get_details_error_info().unwrap();
        assert_eq!(info.reason, "version-conflict");
        assert_eq!(info.metadata["actual_version"], (round + 1).to_string());
    }
}
