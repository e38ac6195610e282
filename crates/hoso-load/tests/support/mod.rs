//! What the load tests share: running `hoso-load` with an acknowledgement log against one or
//! several servers, and checking every acknowledged command against the log and the projection
//! against a rebuild.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hoso_api::pb;
use uuid::Uuid;

use crate::harness::*;

/// The `hoso` server binary beside this package's `hoso-load`, which cargo does not build for a
/// test of another package; missing, the test says how to build it instead of skipping.
pub(crate) fn server_binary() -> PathBuf {
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
pub(crate) const CLIENTS: usize = 8;

/// One line of an acknowledgement log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ack {
    pub(crate) command_id: Uuid,
    pub(crate) receipt_code: String,
    pub(crate) first_version: u64,
    pub(crate) events: u64,
    pub(crate) first_position: u64,
    pub(crate) replayed: bool,
}

pub(crate) fn read_acks(path: &Path) -> Vec<Ack> {
    parse_acks(&std::fs::read_to_string(path).unwrap_or_default(), path)
}

/// The whole lines of an acknowledgement log that a load may still be writing, or was killed
/// while writing: a torn last line is left out.
pub(crate) fn read_acks_so_far(path: &Path) -> Vec<Ack> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    parse_acks(text.rfind('\n').map_or("", |end| &text[..=end]), path)
}

fn parse_acks(text: &str, path: &Path) -> Vec<Ack> {
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

/// `hoso-load` against `servers` (several serve one record: it spreads its commands over them),
/// with the first server's development tokens, its standard error in `log`.
pub(crate) fn load(servers: &[&Server], run_id: &str, seed: u64, ack_log: &Path, log: &Path, extra: &[&str]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hoso-load"));
    command.args(["--server", &format!("http://{}", servers[0].addr)]);
    for other in &servers[1..] {
        command.args(["--other-server", &format!("http://{}", other.addr)]);
    }
    command
        .arg("--tokens")
        .arg(hoso_server::DataDir::new(servers[0].dir()).dev_tokens())
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

/// Waits for a load run to end (off the runtime's threads) and returns its `--json` summary.
pub(crate) async fn summary(mut load: Child, log: &Path) -> serde_json::Value {
    let mut out = String::new();
    load.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let status = tokio::task::block_in_place(|| load.wait().unwrap());
    assert!(
        status.success(),
        "the load run failed ({status}):\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    serde_json::from_str(&out).unwrap_or_else(|err| panic!("the load's summary is not JSON ({err}): {out:?}"))
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

/// What the checks found.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) rounds: u32,
    pub(crate) acknowledged: u64,
    pub(crate) in_flight_written: u64,
    pub(crate) lost: u64,
    pub(crate) duplicated: u64,
    pub(crate) problems: Vec<String>,
}

impl Tally {
    pub(crate) fn lost(&mut self, what: String) {
        self.lost += 1;
        self.problems.push(what);
    }

    pub(crate) fn duplicated(&mut self, what: String) {
        self.duplicated += 1;
        self.problems.push(what);
    }
}

/// Checks that every command of `acks` has its events in its dossier's stream exactly once, at
/// the acknowledged versions and positions; with `whole`, that the streams hold nothing else.
pub(crate) async fn check_streams(audit: &mut Audit, acks: &[Ack], whole: bool, tally: &mut Tally) {
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

/// Sends the run `run_id` (seed `seed`) again over `servers`: every command of the dossiers that
/// `acked` touched and of the few after them, acknowledged or not, retried with its command id.
/// Checks that the acknowledged ones come back as retries with their original outcome and that
/// afterwards each of those dossiers holds exactly its commands' events; returns the retry's
/// acknowledgements (every command of those dossiers, once).
pub(crate) async fn send_again_and_check(
    servers: &[&Server],
    run_id: &str,
    seed: u64,
    acked: &[Ack],
    retry_log: &Path,
    load_log: &Path,
    tally: &mut Tally,
) -> Vec<Ack> {
    // A client abandons at most the dossier it was sending when the run stopped.
    let dossiers = acked.iter().map(|a| &a.receipt_code).collect::<HashSet<_>>().len() + CLIENTS;
    let retry = load(
        servers,
        run_id,
        seed,
        retry_log,
        load_log,
        &["--dossiers", &dossiers.to_string(), "--json"],
    );
    let summary = summary(retry, load_log).await;
    assert_eq!(summary["refused"], 0, "nothing is refused when retried: {summary}");
    assert_eq!(summary["errors"], serde_json::json!({}), "{summary}");
    let retried = read_acks(retry_log);
    let by_id: HashMap<Uuid, &Ack> = retried.iter().map(|a| (a.command_id, a)).collect();
    for ack in acked {
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
    let first_time: HashSet<Uuid> = acked.iter().map(|a| a.command_id).collect();
    // Written without its acknowledgement reaching the load: found as a retry.
    tally.in_flight_written += retried
        .iter()
        .filter(|a| a.replayed && !first_time.contains(&a.command_id))
        .count() as u64;
    let mut audit = servers[0].audit(Role::Auditor).await;
    check_streams(&mut audit, &retried, true, tally).await;
    retried
}

/// The live projection's answers that a rebuild must reproduce.
pub(crate) async fn projection_view(
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
pub(crate) async fn rebuild(server: &Server) {
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

/// Checks that `server`'s live projection equals one rebuilt from the whole log, as of `cutoff`,
/// and returns it.
pub(crate) async fn check_projection(
    server: &Server,
    cutoff: prost_types::Timestamp,
    what: &str,
) -> (Vec<pb::GetIndexFiguresResponse>, Vec<pb::DossierRow>, u64) {
    let live = projection_view(server, cutoff).await;
    rebuild(server).await;
    let rebuilt = projection_view(server, cutoff).await;
    assert_eq!(live.2, rebuilt.2, "{what}: dossiers in the projection");
    assert_eq!(live.1, rebuilt.1, "{what}: the dossier list");
    assert_eq!(live.0, rebuilt.0, "{what}: the figures");
    assert!(live.2 > 0, "{what}: the projection holds the dossiers");
    live
}

/// The acknowledgement lines written whole so far (the load may be writing the next one).
pub(crate) fn acks_written(ack_log: &Path) -> usize {
    std::fs::read(ack_log).map_or(0, |bytes| bytes.iter().filter(|&&b| b == b'\n').count())
}

/// Waits (off the runtime's threads) until the load has written at least `lines`
/// acknowledgements.
pub(crate) fn wait_for_acks(ack_log: &Path, lines: usize, load: &mut Child, log: &Path) {
    let patience = Instant::now() + Duration::from_secs(120);
    while acks_written(ack_log) < lines {
        if let Some(status) = load.try_wait().unwrap() {
            panic!(
                "hoso-load exited ({status}) before {lines} acknowledgements:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < patience,
            "hoso-load got fewer than {lines} acknowledgements in two minutes:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
