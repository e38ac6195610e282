//! `hoso copy` between the embedded store and PostgreSQL (the `postgres` feature): a served
//! log copied into PostgreSQL and back is served again with every dossier, at the same position
//! and head hash; a target being served, or holding what the source does not, is refused.

use std::ffi::OsStr;
use std::process::Command;

use hoso_api::pb;

use crate::harness::*;
use crate::postgres::Postgres;

/// `hoso copy --from FROM --to TO`: whether it succeeded, its standard output and error.
fn copy(from: impl AsRef<OsStr>, to: impl AsRef<OsStr>) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_hoso"))
        .arg("copy")
        .arg("--from")
        .arg(from)
        .arg("--to")
        .arg(to)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// The position and head hash a successful copy's last line names.
fn copied(stdout: &str) -> (u64, String) {
    let line = stdout.lines().last().unwrap_or_else(|| panic!("no output: {stdout:?}"));
    let position = line
        .split("holds positions 0..")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    let hash = line.rsplit("head hash ").next().unwrap().to_owned();
    (position, hash)
}

async fn has_dossiers(server: &Server, codes: &[String]) {
    let mut query = server.query(Role::Auditor).await;
    for code in codes {
        query
            .get_dossier(pb::GetDossierRequest { dossier: by_code(code) })
            .await
            .unwrap_or_else(|status| panic!("dossier {code} is missing after the copy: {status:?}"));
    }
    let verified = server
        .audit(Role::Auditor)
        .await
        .verify_chain(pb::VerifyChainRequest { dossier: None })
        .await
        .unwrap()
        .into_inner();
    assert!(verified.ok, "{verified:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_copied_to_postgresql_and_back_is_served_whole_and_a_served_or_foreign_target_is_refused() {
    let mut first = Server::start();
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(received(&first).await);
    }
    let head = first.head().await;
    assert!(first.terminate().await);
    let source = first.dir().to_owned();

    let pg = Postgres::start();
    let (ok, stdout, stderr) = copy(&source, &pg.url);
    assert!(ok, "{stderr}");
    let (position, hash) = copied(&stdout);
    assert_eq!(position, head);
    assert!(
        stderr.contains("verifying the target"),
        "progress is shown on stderr: {stderr}"
    );

    // Served from PostgreSQL, with every dossier; a copy into it meanwhile is refused.
    let mut on_pg = pg.hoso();
    assert_eq!(on_pg.head().await, head);
    has_dossiers(&on_pg, &codes).await;
    let (ok, _, stderr) = copy(&source, &pg.url);
    assert!(!ok && stderr.contains("is being served"), "{stderr}");
    assert!(on_pg.terminate().await);

    // And back into a new data directory: the same position and head hash.
    let back = tempfile::tempdir().unwrap();
    let dir = back.path().join("data");
    let (ok, stdout, stderr) = copy(&pg.url, &dir);
    assert!(ok, "{stderr}");
    assert_eq!(copied(&stdout), (head, hash));
    let mut again = Server::start_in(&dir);
    assert_eq!(again.head().await, head);
    has_dossiers(&again, &codes).await;
    let (ok, _, stderr) = copy(&pg.url, &dir);
    assert!(!ok && stderr.contains("another process"), "{stderr}");

    // A target that took appends of its own is not a copy of the source any more.
    received(&again).await;
    assert!(again.terminate().await);
    let (ok, _, stderr) = copy(&pg.url, &dir);
    assert!(!ok && stderr.contains("copy into an empty store"), "{stderr}");
}
