//! `hoso backup` of a serving server's data directory, and `hoso restore`: the restored server
//! holds every dossier acknowledged before the backup started, and exactly the backup's events.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hoso_api::pb;
use tokio::sync::mpsc;

use crate::harness::*;

fn hoso(args: &[&Path]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_hoso")).args(args).output().unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// The `N` of "holds positions 0..N" in a backup's or a restore's output.
fn position(stdout: &str) -> u64 {
    let rest = stdout
        .split("holds positions 0..")
        .nth(1)
        .unwrap_or_else(|| panic!("{stdout}"));
    rest.split(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_backup_of_a_serving_server_restores_every_acknowledged_dossier() {
    let mut server = Server::start();
    let (acks, mut acked) = mpsc::unbounded_channel();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let mut desk = server.desk(Role::Desk).await;
        let (acks, stop) = (acks.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let code = receipt_code();
                let answer = desk
                    .receive_dossier(receive_request(&code, pb::Channel::Online, OWN_AGENCY, 0))
                    .await
                    .unwrap();
                let _ = acks.send((code, answer.into_inner().outcome.unwrap()));
            }
        }));
    }
    drop(acks);
    let mut before = Vec::new();
    while before.len() < 40 {
        before.push(acked.recv().await.unwrap());
    }
    // Every acknowledgement received so far came before the backup started.
    while let Ok(ack) = acked.try_recv() {
        before.push(ack);
    }
    let backups = tempfile::tempdir().unwrap();
    let dest = backups.path().join("backup");
    let (data, to) = (server.dir().to_owned(), dest.clone());
    let (ok, stdout, stderr) =
        tokio::task::spawn_blocking(move || hoso(&[Path::new("backup"), &to, Path::new("--data-dir"), &data]))
            .await
            .unwrap();
    assert!(ok, "{stderr}");
    let backed_up = position(&stdout);
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    assert!(server.terminate().await);

    let restored = backups.path().join("restored");
    let (ok, stdout, stderr) = hoso(&[Path::new("restore"), &dest, &restored]);
    assert!(ok, "{stderr}");
    assert_eq!(position(&stdout), backed_up);
    let (ok, _, stderr) = hoso(&[Path::new("restore"), &dest, &restored]);
    assert!(!ok && stderr.contains("not empty"), "{stderr}");

    let server = Server::start_in(&restored);
    assert_eq!(server.head().await, backed_up);
    let mut query = server.query(Role::Auditor).await;
    for (code, outcome) in &before {
        let dossier = query
            .get_dossier(pb::GetDossierRequest { dossier: by_code(code) })
            .await
            .unwrap_or_else(|status| panic!("dossier {code}, acknowledged before the backup, lost: {status:?}"))
            .into_inner()
            .dossier
            .unwrap();
        assert_eq!(dossier.dossier_id, outcome.dossier_id);
    }
    let verified = server
        .audit(Role::Auditor)
        .await
        .verify_chain(pb::VerifyChainRequest { dossier: None })
        .await
        .unwrap()
        .into_inner();
    assert!(verified.ok, "{verified:?}");
    assert_eq!(verified.records_checked, backed_up);
}
