//! Crash under load: `hoso-load` drives the real server with generated dossier lives and an
//! acknowledgement log, the server is killed with SIGKILL at a random moment and restarted, and
//! after every round:
//! - every acknowledged command's events are in its dossier's stream exactly once, at the
//!   versions and positions the acknowledgement gave;
//! - the same run sent again (the same command ids: every unacknowledged command retried, the
//!   acknowledged ones too) writes nothing twice: acknowledged commands come back as retries with
//!   their original outcome, and afterwards every command's events are there exactly once and the
//!   log holds exactly the events of all the commands ever acknowledged, nothing more;
//! - every hash chain verifies;
//! - the live projection equals one rebuilt from the whole log (figures, list, dossier count).
//!
//! `HOSO_CRASH_LOAD_ROUNDS` sets the number of rounds (10 by default); `HOSO_CRASH_LOAD_SEED`
//! replays a run's random choices (the moments of the kills still depend on timing).
//!
//! The server is the `hoso` binary of the same build, found beside `hoso-load`: a workspace test
//! run (`cargo nextest run --workspace`) builds it for `hoso`'s own end-to-end tests; alone,
//! `cargo build -p hoso` first.

use std::path::PathBuf;
use std::time::Duration;

use hoso_api::pb;

use crate::harness::*;
use crate::support::*;

// The end-to-end suite's harness, shared rather than copied: this test uses only part of it.
#[allow(dead_code)]
#[path = "../../hoso/tests/e2e/harness.rs"]
mod harness;
#[allow(dead_code)]
mod support;

use support::server_binary;

fn rounds() -> u32 {
    std::env::var("HOSO_CRASH_LOAD_ROUNDS")
        .ok()
        .map(|v| v.parse().expect("HOSO_CRASH_LOAD_ROUNDS is a number of rounds"))
        .unwrap_or(10)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_and_duplicates_nothing_and_the_projection_equals_a_rebuild() {
    let seed = std::env::var("HOSO_CRASH_LOAD_SEED")
        .ok()
        .map(|v| v.parse().expect("HOSO_CRASH_LOAD_SEED is a number"))
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash under load: HOSO_CRASH_LOAD_SEED={seed}");
    let mut rng = hoso_gen::Rng::new(seed);
    let temp = tempfile::tempdir().unwrap();
    let dir: PathBuf = temp.path().join("data");
    let mut server = Server::start_in(&dir);
    let mut tally = Tally::default();
    let mut events_in_log = 0u64;
    for round in 0..rounds() {
        let run_id = format!("C{round}");
        let workload_seed = 1 + rng.below(1000);
        let ack_log = temp.path().join(format!("ack-{round}.log"));
        let retry_log = temp.path().join(format!("retry-{round}.log"));
        let load_log = temp.path().join(format!("load-{round}.log"));

        // Load, and a SIGKILL at a random moment once commands are being acknowledged.
        let mut child = load(
            &[&server],
            &run_id,
            workload_seed,
            &ack_log,
            &load_log,
            &["--duration", "10m"],
        );
        let kill_after = Duration::from_millis(20 + rng.below(600));
        tokio::task::block_in_place(|| {
            wait_for_acks(&ack_log, 1, &mut child, &load_log);
            std::thread::sleep(kill_after);
            server.kill();
            child.kill().unwrap();
            child.wait().unwrap();
        });
        let acked = read_acks(&ack_log);
        assert!(acked.iter().all(|a| !a.replayed), "a fresh run retries nothing");
        tally.acknowledged += acked.len() as u64;

        // After a restart, every acknowledged command is there, exactly once.
        server = Server::start_in(&dir);
        let mut audit = server.audit(Role::Auditor).await;
        check_streams(&mut audit, &acked, false, &mut tally).await;

        // The same run again: every command (acknowledged or not) retried with its command id;
        // afterwards every command of the round has its events exactly once, and the log holds
        // exactly the events of every command ever acknowledged.
        let retried = send_again_and_check(
            &[&server],
            &run_id,
            workload_seed,
            &acked,
            &retry_log,
            &load_log,
            &mut tally,
        )
        .await;
        events_in_log += retried.iter().map(|a| a.events).sum::<u64>();
        let head = server.head().await;
        if head != events_in_log {
            tally.duplicated(format!(
                "round {round}: the log holds {head} events; the acknowledged commands wrote {events_in_log}"
            ));
        }
        let report = audit
            .verify_chain(pb::VerifyChainRequest { dossier: None })
            .await
            .unwrap()
            .into_inner();
        assert!(
            report.ok,
            "round {round}: the chain does not verify: {:?}",
            report.first_problem
        );
        assert_eq!(report.records_checked, head, "round {round}: every record is verified");

        // The live projection equals a rebuild from the whole log.
        let cutoff = hoso_api::convert::utc_to_timestamp(chrono::Utc::now());
        check_projection(&server, cutoff, &format!("round {round}")).await;
        tally.rounds += 1;
        assert!(
            tally.problems.is_empty(),
            "round {round} (HOSO_CRASH_LOAD_SEED={seed}): {} lost, {} duplicated:\n{}",
            tally.lost,
            tally.duplicated,
            tally.problems.join("\n")
        );
    }
    eprintln!(
        "crash under load: {} rounds, {} commands acknowledged before the kills ({} more were written without their acknowledgement reaching the load), lost = {}, duplicated = {}; {} events in the log",
        tally.rounds, tally.acknowledged, tally.in_flight_written, tally.lost, tally.duplicated, events_in_log
    );
    assert_eq!((tally.lost, tally.duplicated), (0, 0));
}
