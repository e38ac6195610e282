//! A graceful shutdown loses no acknowledged command.

use hoso_api::pb;
use tokio::sync::mpsc;

use crate::harness::*;

#[tokio::test]
async fn sigterm_while_desks_are_writing_loses_no_acknowledged_command() {
    let mut server = Server::start();
    let (acks, mut acked) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut desk = server.desk(Role::Desk).await;
        let acks = acks.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let code = receipt_code();
                match desk
                    .receive_dossier(receive_request(&code, pb::Channel::Online, OWN_AGENCY, 0))
                    .await
                {
                    Ok(answer) => {
                        let outcome = answer.into_inner().outcome.unwrap();
                        if acks.send((code, outcome)).is_err() {
                            return;
                        }
                    }
                    // The server went away: stop.
                    Err(_) => return,
                }
            }
        }));
    }
    drop(acks);
    let mut recorded = Vec::new();
    while recorded.len() < 50 {
        recorded.push(acked.recv().await.unwrap());
    }
    assert!(server.terminate().await, "the server exits cleanly on SIGTERM");
    for task in tasks {
        task.await.unwrap();
    }
    while let Some(ack) = acked.recv().await {
        recorded.push(ack);
    }

    let server = Server::start_in(server.dir());
    let mut query = server.query(Role::Auditor).await;
    for (code, outcome) in &recorded {
        let dossier = query
            .get_dossier(pb::GetDossierRequest { dossier: by_code(code) })
            .await
            .unwrap_or_else(|status| panic!("acknowledged dossier {code} lost: {status:?}"))
            .into_inner()
            .dossier
            .unwrap();
        assert_eq!(dossier.dossier_id, outcome.dossier_id);
    }
    let mut audit = server.audit(Role::Auditor).await;
    let verified = audit
        .verify_chain(pb::VerifyChainRequest { dossier: None })
        .await
        .unwrap()
        .into_inner();
    assert!(verified.ok, "{verified:?}");
    assert!(verified.records_checked >= recorded.len() as u64);
}
