//! hoso-bench: measures hoso and its PostgreSQL baseline side by side, in one run, on one
//! machine, with equal durability, and prints the figures as a Markdown table for
//! `BENCHMARKS.md`.
//!
//! `cargo run -p hoso-bench --release -- store` benchmarks the event store: durable appends at
//! several concurrencies and batch sizes, a full `$all` scan, and disk bytes per event. Its
//! sides are hoso's embedded store, a plain PostgreSQL table (the baseline) and hoso's
//! PostgreSQL store (`PgStore`) on the same server, so the ratio of the last two is the cost
//! of ordering, ids and chains. It starts a throwaway PostgreSQL with `deploy/pg-throwaway.sh`
//! unless given `--pg URL`.
//!
//! This crate is not part of the default build or the test suite: it is run by hand.

mod appenders;
mod pg;
mod pgstore_side;
mod report;
mod sled_side;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

/// The allocator the `hoso` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Benchmarks of hoso against the PostgreSQL baseline.
#[derive(Parser)]
#[command(name = "hoso-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The event store: durable appends, `$all` scan, disk bytes per event.
    Store(StoreArgs),
}

/// Settings of the store benchmark.
#[derive(clap::Args, Clone)]
struct StoreArgs {
    /// Seconds each append configuration is measured.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds each append configuration runs before it is measured, on both sides: the
    /// figures are those of a store that has been taking appends, as a service's has.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Concurrent appenders to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    appenders: Vec<usize>,
    /// Events per append to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,10")]
    batches: Vec<usize>,
    /// Events in the log that is scanned.
    #[arg(long, default_value_t = 2_260_000)]
    scan_events: u64,
    /// PostgreSQL to compare with; by default a throwaway server is started and stopped.
    #[arg(long)]
    pg: Option<String>,
    /// The sides to measure: `embedded` (hoso's embedded store), `plain` (the plain PostgreSQL
    /// table) and `pgstore` (hoso's PostgreSQL store). Ratios are printed for the pairs run.
    #[arg(long, value_delimiter = ',', default_value = "embedded,plain,pgstore")]
    sides: Vec<Side>,
    /// Where the stores are created (a directory on the disk being measured).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// A side of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Side {
    /// hoso's embedded store (`SledStore`).
    Embedded,
    /// The plain PostgreSQL table: one INSERT per append, no ids, metadata, head row or hashes.
    Plain,
    /// hoso's PostgreSQL store (`PgStore`), on the same server as the plain table.
    Pgstore,
}

/// One append configuration's figures, for each side that ran.
#[derive(Debug, Clone, Default)]
pub(crate) struct AppendRow {
    pub(crate) embedded: Option<AppendFigures>,
    pub(crate) plain: Option<AppendFigures>,
    pub(crate) pgstore: Option<AppendFigures>,
}

/// The scan's figures of a side: without decoding, with decoding, disk bytes per event.
pub(crate) type ScanSide = (ScanFigures, ScanFigures, f64);

/// When one side runs an append configuration: a warm-up, then the measured time. Both sides
/// use it, so that they are measured alike.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    measured_from: Instant,
    until: Instant,
}

impl Window {
    pub(crate) fn starting_now(warmup: Duration, measured: Duration) -> Self {
        let measured_from = Instant::now() + warmup;
        Window {
            measured_from,
            until: measured_from + measured,
        }
    }

    /// Whether appenders should send another append.
    pub(crate) fn running(&self) -> bool {
        Instant::now() < self.until
    }

    /// Whether an append sent at `sent` counts (it was sent after the warm-up).
    pub(crate) fn measures(&self, sent: Instant) -> bool {
        sent >= self.measured_from
    }

    /// The measured time so far (once every appender has stopped: the measured time).
    pub(crate) fn elapsed(&self) -> Duration {
        self.measured_from.elapsed()
    }
}

/// One append configuration's figures.
#[derive(Debug, Clone)]
pub(crate) struct AppendFigures {
    pub(crate) appenders: usize,
    pub(crate) batch: usize,
    pub(crate) appends: u64,
    pub(crate) elapsed: Duration,
    pub(crate) latencies_us: Vec<u32>,
}

impl AppendFigures {
    pub(crate) fn appends_per_sec(&self) -> f64 {
        self.appends as f64 / self.elapsed.as_secs_f64()
    }
    pub(crate) fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let idx = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        f64::from(self.latencies_us[idx]) / 1000.0
    }
}

/// A full scan's figures.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScanFigures {
    pub(crate) events: u64,
    pub(crate) elapsed: Duration,
}

impl ScanFigures {
    pub(crate) fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
}

/// The ~300-byte JSON data of a benchmark event, the same on both sides: each serializes it
/// straight from this struct to JSON text, as the service does with its events.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Payload {
    receipt_code: String,
    procedure: &'static str,
    agency: &'static str,
    desk: &'static str,
    channel: u8,
    fee_vnd: u32,
    due_at: &'static str,
    applicant_ref: &'static str,
    note: &'static str,
}

/// The data of the benchmark event numbered `tag`.
pub(crate) fn payload(tag: u64) -> Payload {
    Payload {
        receipt_code: format!("G09.20-20260609-{:07}", tag % 10_000_000),
        procedure: "1.001234",
        agency: "000.00.04.G18",
        desk: "G09.20",
        channel: 2,
        fee_vnd: 50_000,
        due_at: "2026-06-12T10:00:00Z",
        applicant_ref: "a3f1c2d4e5b6a7980112233445566778",
        note: NOTE,
    }
}

const NOTE: &str = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

fn main() {
    if let Err(err) = run() {
        eprintln!("hoso-bench: {err:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Store(args) => runtime.block_on(store(args)),
    }
}

async fn store(args: StoreArgs) -> Result<()> {
    let base = match &args.dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir(),
    };
    let work = base.join(format!("hoso-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let needs_pg = args.sides.iter().any(|side| *side != Side::Embedded);
    let throwaway = match &args.pg {
        Some(url) => pg::Server::external(url.clone()),
        None if !needs_pg => pg::Server::external(String::new()),
        None => pg::Server::start().await?,
    };
    let result = store_inner(&args, &work, &throwaway, needs_pg).await;
    throwaway.stop().await;
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn print_rate(figures: &AppendFigures) {
    eprintln!(
        "  {:.0} appends/s, p50 {:.2} ms, p99 {:.2} ms",
        figures.appends_per_sec(),
        figures.percentile_ms(0.5),
        figures.percentile_ms(0.99)
    );
}

async fn store_inner(args: &StoreArgs, work: &std::path::Path, server: &pg::Server, needs_pg: bool) -> Result<()> {
    let seconds = Duration::from_secs(args.seconds);
    let warmup = Duration::from_secs(args.warmup);
    let memory_at_start = report::memory_now();
    eprintln!("memory at the start: {memory_at_start}");
    let pg_settings = if needs_pg {
        pg::settings(server.url()).await?
    } else {
        String::new()
    };
    let runs = |side| args.sides.contains(&side);
    let mut rows = Vec::new();
    for &batch in &args.batches {
        for &appenders in &args.appenders {
            eprintln!("appends: {appenders} appenders, {batch} events each");
            let mut row = AppendRow::default();
            if runs(Side::Embedded) {
                eprintln!("  hoso, embedded store ...");
                // A fresh store per run, removed after it: earlier runs leave nothing behind.
                let dir = work.join(format!("append-{appenders}-{batch}"));
                let figures = sled_side::appends(&dir, appenders, batch, warmup, seconds).await?;
                std::fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
                print_rate(&figures);
                row.embedded = Some(figures);
            }
            if runs(Side::Plain) {
                eprintln!("  PostgreSQL, plain table ...");
                let figures = pg::appends(server.url(), appenders, batch, warmup, seconds).await?;
                print_rate(&figures);
                row.plain = Some(figures);
            }
            if runs(Side::Pgstore) {
                eprintln!("  hoso, PgStore ...");
                let figures = pgstore_side::appends(server.url(), appenders, batch, warmup, seconds).await?;
                print_rate(&figures);
                row.pgstore = Some(figures);
            }
            rows.push(row);
        }
    }
    let mut ours_scan = None;
    let mut plain_scan = None;
    if args.scan_events > 0 && runs(Side::Embedded) {
        eprintln!("scan: filling hoso (sled) with {} events ...", args.scan_events);
        let (plain, decoded, bytes) = sled_side::scan(&work.join("scan"), args.scan_events).await?;
        eprintln!(
            "  {:.0} events/s plain, {:.0} decoded, {bytes:.0} bytes/event",
            plain.events_per_sec(),
            decoded.events_per_sec()
        );
        ours_scan = Some((plain, decoded, bytes));
    }
    if args.scan_events > 0 && runs(Side::Plain) {
        eprintln!("scan: filling PostgreSQL with {} events ...", args.scan_events);
        plain_scan = Some(pg::scan(server.url(), args.scan_events).await?);
    }
    report::print(&rows, ours_scan, plain_scan, args, &pg_settings, &memory_at_start);
    Ok(())
}
