//! Crash test in the style of sled's own: this binary re-executes itself as a child that
//! appends from several tasks and prints every acknowledged append; the parent kills it with
//! SIGKILL at a random moment, reopens the store and checks that every acknowledged event is
//! there and intact, positions are gap-free, the chains verify, and nothing half-written is
//! visible. Rounds: `HOSO_CRASH_ROUNDS` (default 20); seed: `HOSO_CRASH_SEED`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::DateTime;
use hoso_store::{EventStore, ExpectedVersion, NewEvent, SledOptions, SledStore, StreamRead, VerifyScope};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::json;
use uuid::Uuid;

const CHILD_ENV: &str = "HOSO_CRASH_CHILD";
const TASKS: usize = 8;

fn main() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(Path::new(&dir));
        return;
    }
    let args = Arguments::from_args();
    let trials = vec![Trial::test("sigkill_during_appends_loses_nothing_acknowledged", parent)];
    libtest_mimic::run(&args, trials).exit();
}

/// The event at `version` of `stream`: its id and content are fixed by those two, so the
/// parent can tell an intact event from a torn one.
fn expected_event(stream: &str, version: u64) -> NewEvent {
    let id = Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("{stream}/{version}").as_bytes());
    NewEvent {
        event_id: id,
        event_type: "CrashTestEvent".to_owned(),
        schema_version: 1,
        data: json!({ "stream": stream, "version": version, "fill": "z".repeat(100 + (version as usize * 37) % 400) })
            .into(),
        metadata: json!({ "actor": "crash-test" }).into(),
        occurred_at: DateTime::from_timestamp(1_750_000_000 + version as i64, 0).unwrap(),
    }
}

/// Small id tables, so that kills also land while tables are written and while sled lags
/// behind them.
fn options() -> SledOptions {
    SledOptions {
        id_table_events: 500,
        ..SledOptions::default()
    }
}

fn child(dir: &Path) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = SledStore::open(dir, options()).expect("child opens the store");
        let pid = std::process::id();
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..TASKS {
            let store = store.clone();
            tasks.spawn(async move {
                let stream = format!("crash-{pid}-{task}");
                let mut next = 0u64;
                loop {
                    let n = 1 + (next as usize + task) % 4;
                    let events: Vec<_> = (next..next + n as u64).map(|v| expected_event(&stream, v)).collect();
                    let expected = if next == 0 {
                        ExpectedVersion::NoStream
                    } else {
                        ExpectedVersion::Exact(next - 1)
                    };
                    let result = store.append(&stream, expected, events).await.expect("append");
                    let (first, last) = result.positions.unwrap();
                    // One line per acknowledged append; stdout is line-buffered.
                    println!("ack {stream} {next} {} {first} {last}", next + n as u64 - 1);
                    next += n as u64;
                }
            });
        }
        // The tasks append until the parent kills this process; one that stops has failed.
        if let Some(stopped) = tasks.join_next().await {
            eprintln!("crash child: an append task stopped: {stopped:?}");
            std::process::exit(2);
        }
    });
}

/// One acknowledged append.
struct Ack {
    stream: String,
    first_version: u64,
    last_version: u64,
    first_position: u64,
    last_position: u64,
}

fn parse_ack(line: &str) -> Option<Ack> {
    let mut parts = line.split_whitespace();
    if parts.next()? != "ack" {
        return None;
    }
    let stream = parts.next()?.to_owned();
    let mut num = || parts.next()?.parse::<u64>().ok();
    Some(Ack {
        stream,
        first_version: num()?,
        last_version: num()?,
        first_position: num()?,
        last_position: num()?,
    })
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn parent() -> Result<(), Failed> {
    let rounds: usize = std::env::var("HOSO_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("HOSO_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            use std::hash::{BuildHasher, RandomState};
            RandomState::new().hash_one(std::process::id()) | 1
        });
    eprintln!("crash test: {rounds} rounds, HOSO_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir()?;
    let exe = std::env::current_exe()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut acked: Vec<Ack> = Vec::new();
    let mut total_killed_with_acks = 0;

    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().expect("piped");
        let (first_ack_tx, first_ack_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines.is_empty() {
                    let _ = first_ack_tx.send(());
                }
                lines.push(line);
            }
            lines
        });
        // Let the child get going, then kill it at a random moment.
        first_ack_rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| "the child acknowledged nothing in 30 s")?;
        std::thread::sleep(Duration::from_millis(rng.next() % 250));
        child.kill()?;
        child.wait()?;
        let lines = reader.join().map_err(|_| "reader thread panicked")?;
        let before = acked.len();
        // The last line may be cut short by the kill; a partial line does not parse.
        acked.extend(lines.iter().filter_map(|l| parse_ack(l)));
        if acked.len() > before {
            total_killed_with_acks += 1;
        }
        runtime.block_on(check(dir.path(), &acked, round))?;
    }
    eprintln!(
        "crash test: {rounds} rounds ({total_killed_with_acks} killed mid-work), {} acknowledged appends, none lost",
        acked.len()
    );
    Ok(())
}

async fn check(dir: &Path, acked: &[Ack], round: usize) -> Result<(), Failed> {
    let store = SledStore::open(dir, options())?;
    let report = store.verify(VerifyScope::All).await?;
    if let Some(problem) = report.first_problem {
        return Err(format!("round {round}: verify found {problem}").into());
    }
    if report.records_checked != store.head() {
        return Err(format!(
            "round {round}: {} records but head {}",
            report.records_checked,
            store.head()
        )
        .into());
    }
    // Every stream holds whole, intact, consecutive events.
    let all = store.read_all(0, usize::MAX).await?;
    let mut lengths: HashMap<&str, u64> = HashMap::new();
    for (i, record) in all.iter().enumerate() {
        if record.position != i as u64 {
            return Err(format!("round {round}: gap before position {i}").into());
        }
        let expected = expected_event(&record.stream_id, record.version);
        let len = lengths.entry(&record.stream_id).or_default();
        if record.version != *len
            || record.event_id != expected.event_id
            || record.data != expected.data.as_str().as_bytes()
        {
            return Err(format!("round {round}: record at {} is not the expected event", record.position).into());
        }
        *len += 1;
    }
    // Every acknowledged append is there, at the position it was acknowledged with.
    for ack in acked {
        let stored = store
            .read_stream(
                &ack.stream,
                StreamRead::forward()
                    .from(ack.first_version)
                    .max_count((ack.last_version - ack.first_version + 1) as usize),
            )
            .await?;
        let positions: Vec<_> = stored.iter().map(|r| r.position).collect();
        let want: Vec<_> = (ack.first_position..=ack.last_position).collect();
        if positions != want {
            return Err(format!(
                "round {round}: acknowledged append to {} versions {}..={} lost or moved (found positions {positions:?})",
                ack.stream, ack.first_version, ack.last_version
            )
            .into());
        }
    }
    store.close();
    Ok(())
}
