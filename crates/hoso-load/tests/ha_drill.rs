//! The HA drill: a PostgreSQL primary with a synchronous streaming standby (made by
//! `pg_basebackup`, both from the system's binaries), two `hoso serve` over it with a connection
//! string naming both hosts and `target_session_attrs=read-write`, and `hoso-load` spreading its
//! commands over both servers with an acknowledgement log. Mid-load the primary is lost (every
//! one of its processes killed with SIGKILL, as when its machine goes) and the standby promoted;
//! the servers find the new primary by themselves. Then:
//! - no command was refused, and commands were accepted again after the promotion;
//! - every acknowledged command's events are in its dossier's stream exactly once, at the
//!   versions and positions the acknowledgement gave;
//! - the same run sent again (every command retried with its command id, on either server)
//!   writes nothing twice, and the log holds exactly the events of the acknowledged commands;
//! - every hash chain verifies;
//! - each server's live projection equals one rebuilt from the whole log, and the two agree.
//!
//! It prints the time from the kill to the first command recorded on the new primary (by the
//! `recorded_at` the new primary's clock gave it), reported in BENCHMARKS.md, never asserted.
//!
//! The servers are the `hoso` binary beside `hoso-load`, built with the `postgres` feature (a
//! workspace test run with `--all-features` builds it; alone: `cargo build -p hoso --features
//! postgres`). Without PostgreSQL's binaries the drill fails saying what to install.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

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

/// The standby's name, as the primary's `synchronous_standby_names` lists it.
const STANDBY_NAME: &str = "hoso_standby";

/// Acknowledgements before the kill, and after the promotion before the load is stopped: enough
/// for every client to be mid-dossier at the kill and for both servers to have written again.
const ACKS_BEFORE_KILL: usize = 300;
const ACKS_AFTER_PROMOTION: usize = 300;

/// Where PostgreSQL's binaries are, as `deploy/pg-throwaway.sh` looks for them.
fn pg_bindir() -> PathBuf {
    let needed = ["initdb", "pg_ctl", "postgres", "pg_basebackup", "psql"];
    let complete = |dir: &Path| needed.iter().all(|bin| dir.join(bin).is_file());
    let mut candidates: Vec<PathBuf> = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        .into_iter()
        .collect();
    if let Ok(versions) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut dirs: Vec<PathBuf> = versions.flatten().map(|v| v.path().join("bin")).collect();
        dirs.sort();
        candidates.extend(dirs.into_iter().rev());
    }
    candidates.into_iter().find(|dir| complete(dir)).unwrap_or_else(|| {
        panic!(
            "the HA drill needs PostgreSQL's binaries ({}), in `pg_config --bindir` or /usr/lib/postgresql/*/bin: \
             install the Debian package postgresql (it brings postgresql-client with pg_basebackup and psql), \
             as `cargo xtask test` does when run as root",
            needed.join(", ")
        )
    })
}

/// Runs `command`, panicking with its output when it fails.
fn run(command: &mut Command, what: &str) -> Output {
    let out = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("cannot run {what}: {err}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One PostgreSQL server of the pair.
struct Instance {
    data: PathBuf,
    port: u16,
}

/// A primary and its synchronous standby in a temporary directory; every server still running
/// is stopped when dropped, even when the drill fails.
struct Pair {
    bindir: PathBuf,
    /// PostgreSQL refuses to run as root: then it runs as this user.
    owner: Option<String>,
    dir: PathBuf,
    primary: Instance,
    standby: Instance,
    _temp: tempfile::TempDir,
}

impl Pair {
    fn start() -> Pair {
        let bindir = pg_bindir();
        let root = String::from_utf8(run(Command::new("id").arg("-u"), "id -u").stdout).unwrap();
        let owner = (root.trim() == "0").then(|| {
            let known = |user: &str| Command::new("id").arg(user).output().is_ok_and(|o| o.status.success());
            if known("postgres") { "postgres" } else { "nobody" }.to_owned()
        });
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("pg");
        std::fs::create_dir(&dir).unwrap();
        if let Some(owner) = &owner {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            run(Command::new("chown").arg(owner).arg(&dir), "chown");
        }
        let pair = Pair {
            bindir,
            owner,
            primary: Instance {
                data: dir.join("primary"),
                port: free_port(),
            },
            standby: Instance {
                data: dir.join("standby"),
                port: free_port(),
            },
            dir,
            _temp: temp,
        };
        pair.start_primary();
        pair.start_standby();
        pair.wait_for_synchronous_standby();
        pair
    }

    /// A command of PostgreSQL's, run as the owner of the data directories.
    fn pg(&self, bin: &str) -> Command {
        let path = self.bindir.join(bin);
        match &self.owner {
            Some(owner) => {
                let mut command = Command::new("runuser");
                command.args(["-u", owner, "--"]).arg(path);
                command
            }
            None => Command::new(path),
        }
    }

    fn pg_ctl_start(&self, instance: &Instance, options: &str, name: &str) {
        let log = self.dir.join(format!("{name}.log"));
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=on -c synchronous_commit=on \
             -c shared_buffers=64MB -c max_connections=100 {options}",
            instance.port,
            self.dir.display()
        );
        let started = self
            .pg("pg_ctl")
            .arg("-D")
            .arg(&instance.data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            started.status.success(),
            "the {name} PostgreSQL server did not start:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// The primary, which waits for the standby's flush before it acknowledges a commit. The
    /// setting is given on the command line, not in a file that `pg_basebackup` would copy: the
    /// promoted standby must not wait for a standby of its own that does not exist.
    fn start_primary(&self) {
        run(
            self.pg("initdb").arg("-D").arg(&self.primary.data).args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-locale",
            ]),
            "initdb",
        );
        self.pg_ctl_start(
            &self.primary,
            &format!("-c synchronous_standby_names={STANDBY_NAME}"),
            "primary",
        );
    }

    /// The standby: a base backup of the primary that streams its WAL (`-R` makes it a standby),
    /// under the name the primary waits for.
    fn start_standby(&self) {
        let conninfo = format!(
            "host=127.0.0.1 port={} user=postgres application_name={STANDBY_NAME}",
            self.primary.port
        );
        run(
            self.pg("pg_basebackup")
                .args(["-d", &conninfo, "-D"])
                .arg(&self.standby.data)
                .args(["-R", "-X", "stream", "-c", "fast"]),
            "pg_basebackup",
        );
        self.pg_ctl_start(&self.standby, "", "standby");
    }

    fn psql(&self, instance: &Instance, sql: &str) -> String {
        let out = run(
            Command::new(self.bindir.join("psql"))
                .args([
                    "-X",
                    "-A",
                    "-t",
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                ])
                .args(["-p", &instance.port.to_string(), "-c", sql]),
            "psql",
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    fn wait_for_synchronous_standby(&self) {
        let patience = Instant::now() + Duration::from_secs(60);
        let query = format!("SELECT sync_state FROM pg_stat_replication WHERE application_name = '{STANDBY_NAME}'");
        while self.psql(&self.primary, &query) != "sync" {
            assert!(
                Instant::now() < patience,
                "the standby did not become the primary's synchronous standby within 60 s:\n{}",
                std::fs::read_to_string(self.dir.join("standby.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A connection string naming both servers; only the one that takes writes is used.
    fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/postgres?target_session_attrs=read-write&connect_timeout=5",
            self.primary.port, self.standby.port
        )
    }

    /// Loses the primary as when its machine goes: the postmaster is stopped (so that it starts
    /// no new backend), then every process it started is killed with SIGKILL, and it last. A
    /// backend that sees the postmaster gone stops waiting for the standby and makes its commit
    /// visible on the old primary alone, to the servers' readers still connected there: so the
    /// postmaster stays alive until no backend is left to see it die (killed first, it let one
    /// drill in many see such a commit). Returns when the signals were sent: nothing the old
    /// primary records can be later than that.
    fn kill_primary(&self) -> SystemTime {
        let pid_file = self.primary.data.join("postmaster.pid");
        let text = std::fs::read_to_string(&pid_file).unwrap();
        let postmaster = text.lines().next().unwrap().trim().to_owned();
        run(Command::new("kill").args(["-STOP", &postmaster]), "kill -STOP");
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // The parent's pid is the second field after the command, which is in parentheses.
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1));
            if parent == Some(postmaster.as_str()) {
                pids.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        // `kill` signals its arguments in order: the postmaster last.
        pids.push(postmaster.clone());
        run(Command::new("kill").arg("-KILL").args(&pids), "kill -KILL");
        let killed_at = SystemTime::now();
        // The postmaster is gone once its pid no longer answers to signal 0.
        let patience = Instant::now() + Duration::from_secs(30);
        while Command::new("kill")
            .args(["-0", &postmaster])
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
        {
            assert!(Instant::now() < patience, "the primary's postmaster outlived SIGKILL");
            std::thread::sleep(Duration::from_millis(5));
        }
        killed_at
    }

    fn promote_standby(&self) {
        run(
            self.pg("pg_ctl")
                .arg("-D")
                .arg(&self.standby.data)
                .args(["-w", "-t", "60", "promote"]),
            "pg_ctl promote",
        );
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for instance in [&self.primary, &self.standby] {
            if instance.data.join("postmaster.pid").exists() {
                let _ = self
                    .pg("pg_ctl")
                    .arg("-D")
                    .arg(&instance.data)
                    .args(["-m", "immediate", "-w", "stop"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

/// A load run, killed if the drill fails before it ends.
struct LoadRun(Option<std::process::Child>);

impl Drop for LoadRun {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A `hoso serve` over `url`, on `dir`.
fn serve(dir: &Path, url: &str) -> Server {
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("hoso.toml");
    std::fs::write(&config, format!("store = {url:?}\n")).unwrap();
    Server::spawn(dir, Some(&config), true)
}

fn micros_since_epoch(at: SystemTime) -> i64 {
    i64::try_from(at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_micros()).unwrap()
}

/// Waits until `server`'s head reaches `head` (it follows the other server's appends within a
/// notification, or one poll interval).
async fn wait_for_head(server: &Server, head: u64) {
    let patience = Instant::now() + Duration::from_secs(30);
    loop {
        let at = server.head().await;
        if at == head {
            return;
        }
        assert!(
            Instant::now() < patience,
            "the server at {} is at head {at}, not {head}, 30 s on",
            server.addr
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_is_promoted_under_load_and_every_acknowledged_command_is_there_once() {
    let _ = server_binary();
    let pg = Pair::start();
    let temp = tempfile::tempdir().unwrap();
    let url = pg.url();
    let a = serve(&temp.path().join("a"), &url);
    // The second server takes the first one's development tokens, so that one load speaks to both.
    let b_dir = temp.path().join("b");
    std::fs::create_dir_all(&b_dir).unwrap();
    let (a_data, b_data) = (hoso_server::DataDir::new(a.dir()), hoso_server::DataDir::new(&b_dir));
    std::fs::copy(a_data.dev_tokens(), b_data.dev_tokens()).unwrap();
    std::fs::copy(a_data.dev_token_hashes(), b_data.dev_token_hashes()).unwrap();
    let b = serve(&b_dir, &url);
    let servers = [&a, &b];

    let (run_id, seed) = ("HA", 19);
    let ack_log = temp.path().join("ack.log");
    let load_log = temp.path().join("load.log");
    let mut load_run = LoadRun(Some(load(
        &servers,
        run_id,
        seed,
        &ack_log,
        &load_log,
        &["--duration", "10m", "--json"],
    )));
    let running = load_run.0.as_mut().unwrap();

    // The primary is lost mid-load; the standby is promoted at once, as an operator or a
    // cluster manager would once the old primary is fenced off.
    let (killed_at, promoted_after) = tokio::task::block_in_place(|| {
        wait_for_acks(&ack_log, ACKS_BEFORE_KILL, running, &load_log);
        let killed_at = pg.kill_primary();
        pg.promote_standby();
        (
            killed_at,
            SystemTime::now().duration_since(killed_at).unwrap_or_default(),
        )
    });
    // Commands are accepted again, through either server: the load goes on by itself.
    tokio::task::block_in_place(|| {
        let before = acks_written(&ack_log);
        wait_for_acks(&ack_log, before + ACKS_AFTER_PROMOTION, running, &load_log);
    });
    run(
        Command::new("kill").args(["-INT", &running.id().to_string()]),
        "kill -INT hoso-load",
    );
    let first_run = summary(load_run.0.take().unwrap(), &load_log).await;
    assert_eq!(
        first_run["refused"],
        0,
        "no command is refused across the failover: {first_run}\n{}",
        std::fs::read_to_string(&load_log).unwrap_or_default()
    );
    let acked = read_acks(&ack_log);
    let mut tally = Tally {
        acknowledged: acked.len() as u64,
        ..Tally::default()
    };

    // Every acknowledged command is there, once, at its versions and positions.
    let mut audit = a.audit(Role::Auditor).await;
    check_streams(&mut audit, &acked, false, &mut tally).await;
    // Sent again, over both servers: nothing written twice, and nothing else in the log.
    let retried = send_again_and_check(
        &servers,
        run_id,
        seed,
        &acked,
        &temp.path().join("retry.log"),
        &load_log,
        &mut tally,
    )
    .await;
    let events: u64 = retried.iter().map(|ack| ack.events).sum();
    let head: u64 = pg
        .psql(&pg.standby, "SELECT next_position FROM hoso_log_head")
        .parse()
        .unwrap();
    if head != events {
        tally.duplicated(format!(
            "the log holds {head} events; the acknowledged commands wrote {events}"
        ));
    }
    assert!(
        tally.problems.is_empty(),
        "{} lost, {} duplicated:\n{}",
        tally.lost,
        tally.duplicated,
        tally.problems.join("\n")
    );
    let report = audit
        .verify_chain(pb::VerifyChainRequest { dossier: None })
        .await
        .unwrap()
        .into_inner();
    assert!(report.ok, "the chain does not verify: {:?}", report.first_problem);
    assert_eq!(report.records_checked, head, "every record is verified");

    // Each server's projection followed the log across the failover.
    for server in servers {
        wait_for_head(server, head).await;
    }
    let cutoff = hoso_api::convert::utc_to_timestamp(chrono::Utc::now());
    let on_a = check_projection(&a, cutoff, "server A").await;
    let on_b = check_projection(&b, cutoff, "server B").await;
    assert_eq!(on_a, on_b, "both servers' projections hold the same record");

    // The first command the new primary recorded, by its clock (the same machine's as the kill's).
    let first_after = pg.psql(
        &pg.standby,
        &format!(
            "SELECT min(recorded_at) FROM hoso_events WHERE recorded_at > {}",
            micros_since_epoch(killed_at)
        ),
    );
    let first_after: i64 = first_after
        .parse()
        .unwrap_or_else(|_| panic!("no command was recorded after the kill: {first_after:?}"));
    let to_first_command = Duration::from_micros((first_after - micros_since_epoch(killed_at)).unsigned_abs());
    eprintln!(
        "HA drill: primary killed after {ACKS_BEFORE_KILL}+ acknowledgements; standby promoted {:.0} ms after the kill; \
         first command recorded on the new primary {:.0} ms after the kill; {} commands acknowledged in the run \
         ({} answered as retries of commands written before the kill), {} written without an acknowledgement, \
         errors the load retried: {}; {head} events in the log",
        promoted_after.as_secs_f64() * 1e3,
        to_first_command.as_secs_f64() * 1e3,
        tally.acknowledged,
        acked.iter().filter(|ack| ack.replayed).count(),
        tally.in_flight_written,
        first_run["errors"],
    );
}
