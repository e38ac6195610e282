//! Retried commands write nothing new; racing desks get a clean conflict.

use std::time::Duration;

use hoso_api::pb;
use tonic::{Code, IntoRequest};
use uuid::Uuid;

use crate::harness::*;

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
        race_one_round(&mut a, &mut b, &code, round, minutes).await;
    }
}

/// A command id sent again with another request is refused naming `command.command_id`, as
/// AIP-155 asks of request ids; the true retry still gets the original outcome, also after a
/// restart.
#[tokio::test]
async fn a_command_id_sent_again_with_another_request_is_refused_also_after_a_restart() {
    let mut server = Server::start();
    let code = received(&server).await;
    let pay_id = Uuid::new_v4();
    let payment = |amount_vnd| pb::RecordOnlinePaymentRequest {
        command: header_with(pay_id, 10, None),
        ..pay(&code, 10, amount_vnd)
    };
    let process_id = Uuid::new_v4();
    let step = |step| pb::ProcessDossierRequest {
        command: header_with(process_id, 20, None),
        ..process(&code, 20, step)
    };
    let mut desk = server.desk(Role::Desk).await;
    let mut agency = server.desk(Role::Agency).await;
    let paid = desk
        .record_online_payment(payment(1_000))
        .await
        .unwrap()
        .into_inner()
        .outcome
        .unwrap();
    let approved = agency
        .process_dossier(step(pb::ProcessingStep::Approved))
        .await
        .unwrap()
        .into_inner()
        .outcome
        .unwrap();
    let head = server.head().await;
    for restarted in [false, true] {
        if restarted {
            server.kill();
            server = Server::start_in(server.dir());
            desk = server.desk(Role::Desk).await;
            agency = server.desk(Role::Agency).await;
        }
        let status = desk.record_online_payment(payment(49_000)).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "restarted: {restarted}, {status:?}"
        );
        assert_eq!(bad_fields(&status), ["command.command_id"]);
        assert!(status.message().contains("other values"), "{}", status.message());
        let status = agency
            .process_dossier(step(pb::ProcessingStep::Stopped))
            .await
            .unwrap_err();
        assert_eq!(bad_fields(&status), ["command.command_id"], "restarted: {restarted}");

        let retry = desk
            .record_online_payment(payment(1_000))
            .await
            .unwrap()
            .into_inner()
            .outcome
            .unwrap();
        assert!(retry.replayed);
        assert_eq!((retry.version, retry.position), (paid.version, paid.position));
        let retry = agency
            .process_dossier(step(pb::ProcessingStep::Approved))
            .await
            .unwrap()
            .into_inner()
            .outcome
            .unwrap();
        assert!(retry.replayed);
        assert_eq!((retry.version, retry.position), (approved.version, approved.position));
        assert_eq!(server.head().await, head, "restarted: {restarted}: nothing written");
    }
}

/// Fifty copies of one command sent at once: one event written, and exactly one answer says so.
#[tokio::test(flavor = "multi_thread")]
async fn of_fifty_identical_commands_sent_at_once_exactly_one_is_told_it_wrote() {
    const COPIES: usize = 50;
    let server = Server::start();
    for round in 0..3 {
        let code = received(&server).await;
        let head = server.head().await;
        let request = digitize_with(&code, Uuid::new_v4(), 10 + round, None);
        let desk = server.desk(Role::Desk).await;
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(COPIES));
        let mut tasks = Vec::new();
        for _ in 0..COPIES {
            let (mut desk, request, start) = (desk.clone(), request.clone(), start.clone());
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                desk.digitize_dossier(request).await
            }));
        }
        let mut wrote = 0;
        let mut answers = std::collections::HashSet::new();
        for task in tasks {
            let outcome = task.await.unwrap().unwrap().into_inner().outcome.unwrap();
            wrote += usize::from(!outcome.replayed);
            answers.insert((outcome.version, outcome.position));
        }
        assert_eq!(wrote, 1, "round {round}: exactly one copy wrote");
        assert_eq!(answers.len(), 1, "round {round}: every copy got the same outcome");
        assert_eq!(server.head().await, head + 1, "round {round}: one event written");
    }
}
