//! `cargo run -p hoso-bench --release --bin projections`: the projection benchmark of issue #5.
//!
//! Fills a fresh sled store with a province-year of dossiers from `hoso-gen` (2025, about
//! 750,000 dossiers and 7 events each, every event decided by the domain's own rules), then
//! measures, in one run:
//! - the full rebuild rate of the dossier read model from `$all` (events/s), and the memory it
//!   holds (resident set growth) and the process's peak;
//! - the time to compute one month's index 766 figures for the province and every agency;
//! - the projection's snapshot: its size, the time to encode it and to load it back (which a
//!   restart spends instead of the full rebuild).
//!
//! Not part of the test suite: run by hand, figures go to `BENCHMARKS.md`.

use std::path::PathBuf;

/// The allocator the `hoso` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use clap::Parser;
use hoso_domain::{BusinessCalendar, Command, Context as Decision, DossierState, GreenLane};
use hoso_projections::figures::report;
use hoso_projections::{Dossiers, Period};
use hoso_store::{EventStore, ExpectedVersion, NewEvent, SledOptions, SledStore};

/// The projection benchmark.
#[derive(Parser)]
struct Args {
    /// The seed of the generated province (`hoso gen --seed`).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Concurrent appenders while filling the store.
    #[arg(long, default_value_t = 16)]
    appenders: u64,
    /// Where the store is created (a directory on the disk being measured).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Use this store and keep it afterwards: filled on the first run, reused as it is by the
    /// next ones (to measure the rebuild again without filling again).
    #[arg(long, conflicts_with = "dir")]
    keep: Option<PathBuf>,
    /// The first month of arrivals, YYYY-MM (years other than the shipped 2025 and 2026 are
    /// judged by their provisional calendars).
    #[arg(long, default_value = "2025-01", value_parser = parse_month)]
    start: NaiveDate,
    /// Months of arrivals from `--start`; they must end by the current month, since the domain
    /// refuses what happens in the future.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=240))]
    months: u32,
    /// Only fill the store (with --keep: for the server's scaling runs), measure nothing.
    #[arg(long, requires = "keep")]
    fill_only: bool,
}

fn parse_month(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d")
        .map_err(|_| format!("{text:?} is not a month; write it as YYYY-MM, e.g. 2025-01"))
}

/// The events of one dossier, decided by the domain.
fn events(
    commands: &[(Command, String)],
    calendar: &BusinessCalendar,
    lane: &GreenLane,
    now: DateTime<Utc>,
) -> Vec<NewEvent> {
    let context = Decision::new(now, calendar, lane);
    let mut state = DossierState::new();
    let mut out = Vec::new();
    for (command, _) in commands {
        let Ok(decided) = hoso_domain::decide(&state, command, &context) else {
            continue;
        };
        for event in decided {
            state = hoso_domain::evolve(state, &event);
            out.push(NewEvent {
                event_id: uuid::Uuid::new_v4(),
                event_type: event.event_type().to_owned(),
                schema_version: event.schema_version(),
                data: hoso_store::Json::of(&event.data()).expect("event data serializes"),
                metadata: serde_json::json!({"actor": "bench", "desk": "G09.20"}).into(),
                occurred_at: event.occurred_at(),
            });
        }
    }
    out
}

fn memory_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = args
        .keep
        .clone()
        .unwrap_or_else(|| base.join(format!("hoso-bench-projections-{}", std::process::id())));
    let store = SledStore::open(&dir, SledOptions::default())
        .with_context(|| format!("cannot open a store in {}", dir.display()))?;
    let calendar = BusinessCalendar::vietnam();
    let now = Utc::now();
    let end = args
        .start
        .checked_add_months(chrono::Months::new(args.months))
        .context("--start and --months end past the calendar")?;
    anyhow::ensure!(
        end.and_time(chrono::NaiveTime::MIN).and_utc() <= now + chrono::Months::new(1),
        "{} months from {} end after the current month, and the domain refuses what happens in \
         the future; choose an earlier --start",
        args.months,
        args.start.format("%Y-%m")
    );

    if store.head() > 0 {
        eprintln!("reusing the {} events already in {}", store.head(), dir.display());
    } else {
        let province = hoso_gen::Province::new(args.seed);
        let params = hoso_gen::Params {
            seed: args.seed,
            start: args.start,
            months: args.months,
            scale: hoso_gen::Scale::Province,
            rates: hoso_gen::Rates::default(),
        };
        eprintln!(
            "filling the store with {} months of `hoso gen --seed {}` from {} ...",
            args.months,
            args.seed,
            args.start.format("%Y-%m")
        );
        let started = Instant::now();
        let (tx, rx) = tokio::sync::mpsc::channel::<(String, Vec<NewEvent>)>(4096);
        let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..args.appenders {
            let (store, rx) = (store.clone(), std::sync::Arc::clone(&rx));
            tasks.spawn(async move {
                loop {
                    let next = rx.lock().await.recv().await;
                    let Some((stream, events)) = next else {
                        return anyhow::Ok(());
                    };
                    store.append(&stream, ExpectedVersion::NoStream, events).await?;
                }
            });
        }
        let (calendar_, lane) = (calendar.clone(), province.green_lane.clone());
        let producer = tokio::task::spawn_blocking(move || {
            for dossier in hoso_gen::Workload::new(&province, params, calendar_.clone()) {
                let events = events(&dossier.commands, &calendar_, &lane, now);
                if tx
                    .blocking_send((format!("dossier-{}", dossier.receipt_code), events))
                    .is_err()
                {
                    break;
                }
            }
        });
        producer.await?;
        while let Some(result) = tasks.join_next().await {
            result??;
        }
        eprintln!("  {} events in {:.1} s", store.head(), started.elapsed().as_secs_f64());
    }
    let head = store.head();
    if args.fill_only {
        store.close();
        return Ok(());
    }

    let before = memory_kib("VmRSS:");
    let started = Instant::now();
    let mut model = Dossiers::new();
    let mut last = Instant::now();
    model
        .catch_up(&store, |done, total| {
            if last.elapsed() > Duration::from_secs(1) {
                eprintln!("  rebuild: {done}/{total}");
                last = Instant::now();
            }
        })
        .await?;
    let rebuild = started.elapsed();
    let held = memory_kib("VmRSS:").saturating_sub(before);
    // Before the snapshot is loaded beside the model.
    let peak = memory_kib("VmHWM:");

    let started = Instant::now();
    let snapshot = model.encode_snapshot(uuid::Uuid::nil());
    let encode = started.elapsed();
    let started = Instant::now();
    let loaded = Dossiers::decode_snapshot(&snapshot, uuid::Uuid::nil())?;
    let decode = started.elapsed();
    anyhow::ensure!(loaded == model, "the snapshot does not load back as the model");
    drop(loaded);

    let period = Period::month("2025-09").expect("a month");
    // Every event generated so far was recorded before this cut-off.
    let cutoff = Utc::now();
    let mut times = Vec::new();
    let mut figures = None;
    for _ in 0..5 {
        let started = Instant::now();
        figures = Some(report(&model, period, cutoff));
        times.push(started.elapsed());
    }
    times.sort();
    let figures = figures.expect("five runs");

    println!("| figure | value |");
    println!("|---|---:|");
    println!("| events in the log | {head} |");
    println!("| dossiers | {} |", model.histories().len());
    println!(
        "| full rebuild | {:.2} s, {:.0} events/s |",
        rebuild.as_secs_f64(),
        head as f64 / rebuild.as_secs_f64()
    );
    println!("| memory held by the read model (RSS growth) | {} MiB |", held / 1024);
    println!(
        "| projection snapshot | {} MiB, encoded in {:.2} s, loaded in {:.2} s ({:.0} events/s) |",
        snapshot.len() / (1024 * 1024),
        encode.as_secs_f64(),
        decode.as_secs_f64(),
        head as f64 / decode.as_secs_f64()
    );
    println!("| peak RSS of the process (during the rebuild) | {} MiB |", peak / 1024);
    println!(
        "| index 766 figures for 2025-09, province and {} agencies (median of 5) | {:.1} ms |",
        figures.agencies.len(),
        times[2].as_secs_f64() * 1000.0
    );
    println!(
        "| on time in 2025-09 | {}/{} ({}) |",
        figures.province.on_time.ratio.numerator,
        figures.province.on_time.ratio.denominator,
        figures.province.on_time.ratio.percent_text()
    );
    drop(model);
    store.close();
    drop(store);
    if args.keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
