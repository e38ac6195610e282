//! A backup under load: `hoso-load` drives the real server with generated dossier lives (every
//! kind of command, several clients) and an acknowledgement log while `hoso backup` runs twice
//! into one directory (a full copy, then an incremental one). The backup is restored and served:
//! - it holds exactly the events below its position, and every chain verifies;
//! - every command acknowledged before the second run started lies below that position;
//! - every command acknowledged below it (before, during or after the run) has its events in its
//!   dossier's stream exactly once, at the acknowledged versions and positions.
//!
//! The server is the `hoso` binary of the same build, found beside `hoso-load` (see
//! `crash_load.rs`); the load and the checks are the load tests' shared `support`.

use std::process::Command;

use hoso_api::pb;

use crate::harness::*;
use crate::support::*;

// The end-to-end suite's harness, shared rather than copied: this test uses only part of it.
#[allow(dead_code)]
#[path = "../../hoso/tests/e2e/harness.rs"]
mod harness;
#[allow(dead_code)]
mod support;

/// The position after a command's last event.
fn end(ack: &Ack) -> u64 {
    ack.first_position + ack.events
}

/// Runs `hoso` with `args`; its standard output, after checking that it succeeded.
fn hoso(args: &[&std::ffi::OsStr]) -> String {
    let output = Command::new(server_binary()).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "hoso {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The `N` of "holds positions 0..N" in a backup's output.
fn position(stdout: &str) -> u64 {
    let rest = stdout
        .split("holds positions 0..")
        .nth(1)
        .unwrap_or_else(|| panic!("{stdout}"));
    rest.split(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_every_command_acknowledged_below_its_position() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let dest = temp.path().join("backup");
    let (ack_log, load_log) = (temp.path().join("acks.log"), temp.path().join("load.log"));
    let mut server = Server::start_in(&data);
    let mut child = load(&[&server], "B", 19, &ack_log, &load_log, &["--duration", "10m"]);
    let (before, backed_up) = tokio::task::block_in_place(|| {
        wait_for_acks(&ack_log, 200, &mut child, &load_log);
        hoso(&[
            "backup".as_ref(),
            dest.as_os_str(),
            "--data-dir".as_ref(),
            data.as_os_str(),
        ]);
        wait_for_acks(&ack_log, 600, &mut child, &load_log);
        let before = read_acks_so_far(&ack_log);
        let stdout = hoso(&[
            "backup".as_ref(),
            dest.as_os_str(),
            "--data-dir".as_ref(),
            data.as_os_str(),
        ]);
        wait_for_acks(&ack_log, before.len() + 200, &mut child, &load_log);
        child.kill().unwrap();
        child.wait().unwrap();
        (before, position(&stdout))
    });
    assert!(server.terminate().await);
    let acked = read_acks_so_far(&ack_log);
    for ack in &before {
        assert!(
            end(ack) <= backed_up,
            "command {} was acknowledged before the backup started, at positions {}..{}, but the backup holds 0..{backed_up}",
            ack.command_id,
            ack.first_position,
            end(ack)
        );
    }

    let restored = temp.path().join("restored");
    hoso(&["restore".as_ref(), dest.as_os_str(), restored.as_os_str()]);
    let server = Server::start_in(&restored);
    assert_eq!(server.head().await, backed_up);
    let mut audit = server.audit(Role::Auditor).await;
    let report = audit
        .verify_chain(pb::VerifyChainRequest { dossier: None })
        .await
        .unwrap()
        .into_inner();
    assert!(report.ok, "{:?}", report.first_problem);
    assert_eq!(report.records_checked, backed_up);

    let below: Vec<Ack> = acked.iter().filter(|a| end(a) <= backed_up).cloned().collect();
    let mut tally = Tally::default();
    // Not `whole`: commands not yet acknowledged when the load was killed may be in the backup.
    check_streams(&mut audit, &below, false, &mut tally).await;
    assert!(tally.problems.is_empty(), "{}", tally.problems.join("\n"));
    eprintln!(
        "backup under load: {} commands acknowledged, {} before the backup; the backup holds 0..{backed_up}, with the events of the {} commands acknowledged below it",
        acked.len(),
        before.len(),
        below.len()
    );
}
