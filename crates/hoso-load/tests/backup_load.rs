//! A backup under load: `hoso-load` drives the real server with generated dossier lives (every
//! kind of command, several clients) and an acknowledgement log while `hoso backup` runs twice
//! into one directory (a full copy, then an incremental one). The backup is restored and served:
//! - it holds exactly the events below its position, and every chain verifies;
//! - every command acknowledged before the second run started lies below that position;
//! - every command acknowledged below it (before, during or after the run) has its events in its
//!   dossier's stream exactly once, at the acknowledged versions and positions.
//!
//! The server is the `hoso` binary of the same build, found beside `hoso-load` (see
//! `crash_load.rs`, whose acknowledgement-log reading this test repeats rather than shares, so
//! that the two suites change independently).

use std::collections::{BTreeMap, HashMap};
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

/// The `hoso` binary beside this package's `hoso-load`; missing, the test says how to build it.
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

/// One line of the acknowledgement log: a command, its dossier, where its events went.
#[derive(Debug)]
struct Ack {
    command_id: Uuid,
    receipt_code: String,
    first_version: u64,
    events: u64,
    first_position: u64,
}

impl Ack {
    /// The position after its last event.
    fn end(&self) -> u64 {
        self.first_position + self.events
    }
}

/// The whole lines of an acknowledgement log (the load may be writing the last one).
fn read_acks(path: &Path) -> Vec<Ack> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let whole = text.rfind('\n').map_or("", |end| &text[..end]);
    whole
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let [id, code, version, events, position, _replayed] = fields.as_slice() else {
                panic!("a malformed acknowledgement line: {line:?}");
            };
            Ack {
                command_id: id.parse().unwrap(),
                receipt_code: (*code).to_owned(),
                first_version: version.parse().unwrap(),
                events: events.parse().unwrap(),
                first_position: position.parse().unwrap(),
            }
        })
        .collect()
}

/// `hoso-load` against `server` with an acknowledgement log, until killed.
fn load(server: &Server, ack_log: &Path, log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_hoso-load"))
        .args(["--server", &format!("http://{}", server.addr)])
        .arg("--tokens")
        .arg(hoso_server::DataDir::new(server.dir()).dev_tokens())
        .args(["--run-id", "B", "--seed", "19", "--clients", "8", "--connections", "2"])
        .args(["--lag-sample-ms", "0", "--duration", "10m"])
        .arg("--ack-log")
        .arg(ack_log)
        .env_remove("HOSO_TOKEN")
        .env_remove("HOSO_LOAD_TOKENS")
        .env_remove("HOSO_AGENCY_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
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

/// Waits (off the runtime's threads) until the load has acknowledged `n` commands.
fn wait_for_acks(ack_log: &Path, n: usize, load: &mut Child, log: &Path) {
    let patience = Instant::now() + Duration::from_secs(120);
    while read_acks(ack_log).len() < n {
        if let Some(status) = load.try_wait().unwrap() {
            panic!(
                "hoso-load exited ({status}):\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < patience,
            "hoso-load got fewer than {n} acknowledgements in two minutes:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_every_command_acknowledged_below_its_position() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let dest = temp.path().join("backup");
    let (ack_log, load_log) = (temp.path().join("acks.log"), temp.path().join("load.log"));
    let mut server = Server::start_in(&data);
    let mut child = load(&server, &ack_log, &load_log);
    let (before, backed_up) = tokio::task::block_in_place(|| {
        wait_for_acks(&ack_log, 200, &mut child, &load_log);
        hoso(&[
            "backup".as_ref(),
            dest.as_os_str(),
            "--data-dir".as_ref(),
            data.as_os_str(),
        ]);
        wait_for_acks(&ack_log, 600, &mut child, &load_log);
        let before = read_acks(&ack_log);
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
    let acked = read_acks(&ack_log);
    for ack in &before {
        assert!(
            ack.end() <= backed_up,
            "command {} was acknowledged before the backup started, at positions {}..{}, but the backup holds 0..{backed_up}",
            ack.command_id,
            ack.first_position,
            ack.end()
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

    let mut by_dossier: BTreeMap<&str, Vec<&Ack>> = BTreeMap::new();
    for ack in acked.iter().filter(|a| a.end() <= backed_up) {
        by_dossier.entry(&ack.receipt_code).or_default().push(ack);
    }
    let (mut checked, mut problems) = (0, Vec::new());
    for (code, acks) in by_dossier {
        let mut replay = audit
            .replay_dossier(pb::ReplayDossierRequest {
                dossier: by_code(code),
                as_of: None,
            })
            .await
            .unwrap_or_else(|status| panic!("dossier {code} is missing from the restored backup: {status:?}"))
            .into_inner();
        let mut stored: HashMap<Uuid, Vec<(u64, u64)>> = HashMap::new();
        while let Some(item) = replay.message().await.unwrap() {
            let event = item.event.unwrap();
            stored
                .entry(event.event_id.parse().unwrap())
                .or_default()
                .push((event.version, event.position));
        }
        for ack in acks {
            for j in 0..ack.events {
                let id = hoso_server::app::event_id(ack.command_id, j as usize);
                let wanted = (ack.first_version + j, ack.first_position + j);
                match stored.get(&id).map(Vec::as_slice) {
                    Some([found]) if *found == wanted => checked += 1,
                    other => problems.push(format!(
                        "event {j} of command {} in {code}: acknowledged at {wanted:?}, restored as {other:?}",
                        ack.command_id
                    )),
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    eprintln!(
        "backup under load: {} commands acknowledged, {} before the backup; the backup holds 0..{backed_up}, with the {checked} events of every command acknowledged below it",
        acked.len(),
        before.len()
    );
}
