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

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hoso_api::pb;
use uuid::Uuid;

use crate::harness::*;

// The end-to-end suite's harness, shared rather than copied: this test uses only part of it.
#[allow(dead_code)]
#[path = "../../hoso/tests/e2e/harness.rs"]
mod harness;

/// The `hoso` server binary beside this package's `hoso-load`, which cargo does not build for a
/// test of another package; missing, the test says how to build it instead of skipping.
fn server_binary() -> PathBuf {
    let path =
        Path::new(env!("CARGO_BIN_EXE_hoso-load")).with_file_name(format!("hoso{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "the server binary {} is missing: run the workspace's tests (`cargo nextest run --workspace`) or `cargo build -p hoso` first",
        path.display()
    );
    path
}

/// Clients of each load run.
const CLIENTS: usize = 8;

/// One line of an acknowledgement log.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ack {
    command_id: Uuid,
    receipt_code: String,
    first_version: u64,
    events: u64,
    first_position: u64,
    replayed: bool,
}

fn read_acks(path: &Path) -> Vec<Ack> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let [id, code, version, events, position, replayed] = fields.as_slice() else {
                panic!(
                    "a torn or malformed acknowledgement line in {}: {line:?}",
                    path.display()
                );
            };
            Ack {
                command_id: id.parse().unwrap(),
                receipt_code: (*code).to_owned(),
                first_version: version.parse().unwrap(),
                events: events.parse().unwrap(),
                first_position: position.parse().unwrap(),
                replayed: match *replayed {
                    "0" => false,
                    "1" => true,
                    other => panic!("replayed is {other:?} in {line:?}"),
                },
            }
        })
        .collect()
}

/// `hoso-load` against `server`, its standard error in `log`.
fn load(server: &Server, run_id: &str, seed: u64, ack_log: &Path, log: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_hoso-load"))
        .args(["--server", &format!("http://{}", server.addr)])
        .arg("--tokens")
        .arg(hoso_server::DataDir::new(server.dir()).dev_tokens())
        .args(["--run-id", run_id, "--seed", &seed.to_string()])
        .args([
            "--clients",
            &CLIENTS.to_string(),
            "--connections",
            "2",
            "--lag-sample-ms",
            "0",
        ])
        .arg("--ack-log")
        .arg(ack_log)
        .args(extra)
        .env_remove("HOSO_TOKEN")
        .env_remove("HOSO_LOAD_TOKENS")
        .env_remove("HOSO_AGENCY_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// A dossier's events as stored: (event id, version, position), in version order.
async fn stream(audit: &mut Audit, receipt_code: &str) -> Vec<(Uuid, u64, u64)> {
    let mut replay = audit
        .replay_dossier(pb::ReplayDossierRequest {
            dossier: by_code(receipt_code),
            as_of: None,
        })
        .await
        .unwrap_or_else(|status| panic!("dossier {receipt_code} cannot be replayed: {status:?}"))
        .into_inner();
    let mut events = Vec::new();
    while let Some(item) = replay.message().await.unwrap() {
        let event = item.event.unwrap();
        events.push((event.event_id.parse().unwrap(), event.version, event.position));
    }
    events
}

/// What the rounds found.
#[derive(Debug, Default)]
struct Tally {
    rounds: u32,
    acknowledged: u64,
    in_flight_written: u64,
    lost: u64,
    duplicated: u64,
    problems: Vec<String>,
}

impl Tally {
    fn lost(&mut self, what: String) {
        self.lost += 1;
        self.problems.push(what);
    }

    fn duplicated(&mut self, what: String) {
        self.duplicated += 1;
        self.problems.push(what);
    }
}

/// Checks that every command of `acks` has its events in its dossier's stream exactly once, at
/// the acknowledged versions and positions; with `whole`, that the streams hold nothing else.
async fn check_streams(audit: &mut Audit, acks: &[Ack], whole: bool, tally: &mut Tally) {
    let mut by_dossier: BTreeMap<&str, Vec<&Ack>> = BTreeMap::new();
    for ack in acks {
        by_dossier.entry(&ack.receipt_code).or_default().push(ack);
    }
    for (code, acks) in by_dossier {
        let events = stream(audit, code).await;
        let mut seen: HashMap<Uuid, Vec<(u64, u64)>> = HashMap::new();
        for (id, version, position) in &events {
            seen.entry(*id).or_default().push((*version, *position));
        }
        let mut expected = 0;
        for ack in acks {
            for j in 0..ack.events {
                expected += 1;
                let id = hoso_server::app::event_id(ack.command_id, j as usize);
                let wanted = (ack.first_version + j, ack.first_position + j);
                match seen.get(&id).map(Vec::as_slice) {
                    None | Some([]) => tally.lost(format!(
                        "event {j} of acknowledged command {} is missing from {code}",
                        ack.command_id
                    )),
                    Some([found]) if *found == wanted => {}
                    Some([found]) => tally.lost(format!(
                        "event {j} of command {} in {code} is at (version, position) {found:?}, acknowledged at {wanted:?}",
                        ack.command_id
                    )),
                    Some(many) => tally.duplicated(format!(
                        "event {j} of command {} is {} times in {code}: {many:?}",
                        ack.command_id,
                        many.len()
                    )),
                }
            }
        }
        if whole && events.len() as u64 != expected {
            tally.duplicated(format!(
                "{code} holds {} events; its commands wrote {expected}",
                events.len()
            ));
        }
    }
}

/// The live projection's answers that a rebuild must reproduce.
async fn projection_view(
    server: &Server,
    cutoff: prost_types::Timestamp,
) -> (Vec<pb::GetIndexFiguresResponse>, Vec<pb::DossierRow>, u64) {
    let mut reports = reports(server, Role::Auditor).await;
    let mut figures = Vec::new();
    for month in ["2025-01", "2025-02", "2025-03"] {
        let answer = reports
            .get_index_figures(pb::GetIndexFiguresRequest {
                scope: Some(pb::ReportScope {
                    month: month.to_owned(),
                    cutoff: Some(cutoff),
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner();
        figures.push(answer);
    }
    let rows = all_rows(&mut reports).await;
    let status = reports
        .get_projection_status(pb::GetProjectionStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    (figures, rows, status.dossiers)
}

/// Rebuilds the projection from the whole log and waits for the swap.
async fn rebuild(server: &Server) {
    let channel = server.raw_channel().await;
    let mut reports = pb::reports_service_client::ReportsServiceClient::with_interceptor(
        channel,
        server.bearer(Some(Role::Operator)),
    );
    let mut progress = reports
        .rebuild_projections(pb::RebuildProjectionsRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut swapped = false;
    while let Some(step) = progress.message().await.unwrap() {
        swapped |= step.swapped;
    }
    assert!(swapped, "the rebuild ended without swapping");
}

/// Waits (off the runtime's threads) for the load to write at least one acknowledgement.
fn wait_for_first_ack(ack_log: &Path, load: &mut Child, log: &Path) {
    let patience = Instant::now() + Duration::from_secs(120);
    while std::fs::metadata(ack_log).map_or(0, |m| m.len()) == 0 {
        if let Some(status) = load.try_wait().unwrap() {
            panic!(
                "hoso-load exited ({status}) before any acknowledgement:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < patience,
            "hoso-load got no acknowledgement in two minutes:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

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
            &server,
            &run_id,
            workload_seed,
            &ack_log,
            &load_log,
            &["--duration", "10m"],
        );
        let kill_after = Duration::from_millis(20 + rng.below(600));
        tokio::task::block_in_place(|| {
            wait_for_first_ack(&ack_log, &mut child, &load_log);
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

        // The same run again: every command (acknowledged or not) retried with its command id.
        let dossiers = acked
            .iter()
            .map(|a| &a.receipt_code)
            .collect::<std::collections::HashSet<_>>()
            .len()
            + CLIENTS;
        let mut retry = load(
            &server,
            &run_id,
            workload_seed,
            &retry_log,
            &load_log,
            &["--dossiers", &dossiers.to_string(), "--json"],
        );
        let mut summary = String::new();
        retry.stdout.take().unwrap().read_to_string(&mut summary).unwrap();
        let status = tokio::task::block_in_place(|| retry.wait().unwrap());
        assert!(
            status.success(),
            "the retry run failed ({status}):\n{}",
            std::fs::read_to_string(&load_log).unwrap_or_default()
        );
        let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
        assert_eq!(summary["refused"], 0, "nothing is refused when retried: {summary}");
        assert_eq!(summary["errors"], serde_json::json!({}), "{summary}");
        let retried = read_acks(&retry_log);
        let by_id: HashMap<Uuid, &Ack> = retried.iter().map(|a| (a.command_id, a)).collect();
        for ack in &acked {
            match by_id.get(&ack.command_id) {
                Some(again)
                    if again.replayed
                        && again.first_version == ack.first_version
                        && again.events == ack.events
                        && again.first_position == ack.first_position => {}
                Some(again) if !again.replayed => tally.duplicated(format!(
                    "acknowledged command {} was written again when retried: {again:?}",
                    ack.command_id
                )),
                Some(again) => tally.lost(format!(
                    "acknowledged command {} came back with another outcome: {ack:?} then {again:?}",
                    ack.command_id
                )),
                None => tally.lost(format!("acknowledged command {} was not retried", ack.command_id)),
            }
        }
        let first_time: std::collections::HashSet<Uuid> = acked.iter().map(|a| a.command_id).collect();
        // Written before the kill without its acknowledgement reaching the load: found as a retry.
        tally.in_flight_written += retried
            .iter()
            .filter(|a| a.replayed && !first_time.contains(&a.command_id))
            .count() as u64;

        // Every command of the round now has its events exactly once, and the log holds exactly
        // the events of every command ever acknowledged.
        check_streams(&mut audit, &retried, true, &mut tally).await;
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
        let live = projection_view(&server, cutoff).await;
        rebuild(&server).await;
        let rebuilt = projection_view(&server, cutoff).await;
        assert_eq!(live.2, rebuilt.2, "round {round}: dossiers in the projection");
        assert_eq!(live.1, rebuilt.1, "round {round}: the dossier list");
        assert_eq!(live.0, rebuilt.0, "round {round}: the figures");
        assert!(live.2 > 0, "the projection holds the dossiers");
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
