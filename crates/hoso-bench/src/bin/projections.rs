//! `cargo run -p hoso-bench --release --bin projections`: the projection benchmark of issue #5.
//!
//! Fills a fresh sled store with a province-year of dossiers (750,000 by default, about 7
//! events each, every event decided by the domain's own rules), then measures, in one run:
//! - the full rebuild rate of the dossier read model from `$all` (events/s), and the memory it
//!   holds (resident set growth) and the process's peak;
//! - the time to compute one month's index 766 figures for the province and every agency.
//!
//! Not part of the test suite: run by hand, figures go to `BENCHMARKS.md`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use clap::Parser;
use hoso_domain::command::*;
use hoso_domain::event::{PaymentGateway, ProcessingStep, ReturnMethod, Satisfaction};
use hoso_domain::{
    ApplicantRef, BusinessCalendar, Channel, Command, Context as Decision, DossierState, GreenLane, StatutoryTime,
};
use hoso_projections::figures::report;
use hoso_projections::{Dossiers, Period};
use hoso_store::{EventStore, ExpectedVersion, NewEvent, SledOptions, SledStore};

/// The projection benchmark.
#[derive(Parser)]
struct Args {
    /// Dossiers to generate (a province receives about 750,000 a year).
    #[arg(long, default_value_t = 750_000)]
    dossiers: u64,
    /// Concurrent appenders while filling the store.
    #[arg(long, default_value_t = 16)]
    appenders: u64,
    /// Where the store is created (a directory on the disk being measured).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// A small deterministic generator (xorshift64*): the same seed gives the same province.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const AGENCIES: [&str; 8] = [
    "000.00.04.G18",
    "000.00.05.G18",
    "000.00.06.G18",
    "000.00.07.G18",
    "000.00.08.G18",
    "000.00.09.G18",
    "000.00.10.G18",
    "000.00.11.G18",
];

/// One dossier's commands, oldest first.
fn dossier(seq: u64, rng: &mut Rng) -> Vec<Command> {
    let day = rng.below(360) as i64;
    let received = hoso_domain::calendar::from_local(
        NaiveDate::from_ymd_opt(2025, 1, 2)
            .unwrap()
            .and_hms_opt(8, 0, 0)
            .unwrap()
            + TimeDelta::days(day)
            + TimeDelta::minutes(rng.below(8 * 60) as i64),
    );
    let fee = if rng.chance(40) { 50_000 } else { 0 };
    let mut at = received;
    let mut step = |rng: &mut Rng, hours: u64| -> DateTime<Utc> {
        at += TimeDelta::minutes(10 + rng.below(hours * 60) as i64);
        at
    };
    let mut commands: Vec<Command> = vec![
        ReceiveDossier {
            occurred_at: received,
            receipt_code: format!(
                "G09.20-{}-{:07}",
                hoso_domain::calendar::to_local(received).format("%Y%m%d"),
                seq % 10_000_000
            ),
            procedure: ProcedureInput {
                code: format!("1.{:06}", rng.below(2000)),
                name: "Thủ tục hành chính".into(),
                statutory_time: StatutoryTime::working_days(3 + rng.below(10) as u32),
                full_online_eligible: rng.chance(70),
                paper_result: rng.chance(60),
                fee_vnd: fee,
            },
            receiving_desk: "G09.20".into(),
            handling_agency: AGENCIES[rng.below(AGENCIES.len() as u64) as usize].into(),
            channel: if rng.chance(87) {
                Channel::Online
            } else {
                Channel::InPerson
            },
            applicant: ApplicantRef(uuid::Uuid::from_u64_pair(seq, rng.next())),
        }
        .into(),
    ];
    commands.push(
        DigitizeDossier {
            occurred_at: step(rng, 2),
            files: vec![FileInput {
                component: "Đơn".into(),
                content_hash: "ab".repeat(32),
            }],
            reused: if rng.chance(80) {
                vec![ReuseInput {
                    component: "CCCD".into(),
                    source: "CSDLQG".into(),
                }]
            } else {
                vec![]
            },
            result_digitized: false,
        }
        .into(),
    );
    if rng.chance(10) {
        commands.push(
            RequestSupplement {
                occurred_at: step(rng, 8),
                missing_components: vec!["Bản vẽ".into()],
                officer: "cb".into(),
            }
            .into(),
        );
        commands.push(
            ReceiveSupplement {
                occurred_at: step(rng, 48),
            }
            .into(),
        );
    }
    if fee > 0 && rng.chance(85) {
        commands.push(
            PayOnline {
                occurred_at: step(rng, 4),
                amount_vnd: fee,
                gateway: PaymentGateway::NationalPortal,
                transaction_ref: format!("TX{seq}"),
            }
            .into(),
        );
    }
    if rng.chance(3) {
        commands.push(
            Withdraw {
                occurred_at: step(rng, 24),
                reason: "rút".into(),
            }
            .into(),
        );
        return commands;
    }
    let process = |at, step| ProcessDossier {
        occurred_at: at,
        step,
        officer: "cb".into(),
        to_unit: None,
        reason: None,
    };
    commands.push(process(step(rng, 24), ProcessingStep::Appraised).into());
    // About 95% finish within their statutory time.
    let hours = if rng.chance(95) { 16 } else { 24 * 20 };
    commands.push(process(step(rng, hours), ProcessingStep::Approved).into());
    if rng.chance(84) {
        commands.push(
            IssueEResult {
                occurred_at: step(rng, 2),
                result_id: format!("KQ{seq}"),
                content_hash: "cd".repeat(32),
                signer: "ky".into(),
            }
            .into(),
        );
    }
    commands.push(
        ReturnResult {
            occurred_at: step(rng, 24),
            method: ReturnMethod::Online,
        }
        .into(),
    );
    if rng.chance(60) {
        let rating = if rng.chance(96) {
            Satisfaction::Satisfied
        } else {
            Satisfaction::Unsatisfied
        };
        commands.push(
            RateSatisfaction {
                occurred_at: step(rng, 24),
                rating,
            }
            .into(),
        );
    }
    commands
}

/// The events of one dossier, decided by the domain.
fn events(commands: &[Command], calendar: &BusinessCalendar, lane: &GreenLane, now: DateTime<Utc>) -> Vec<NewEvent> {
    let context = Decision::new(now, calendar, lane);
    let mut state = DossierState::new();
    let mut out = Vec::new();
    for command in commands {
        let Ok(decided) = hoso_domain::decide(&state, command, &context) else {
            continue;
        };
        for event in decided {
            state = hoso_domain::evolve(state, &event);
            out.push(NewEvent {
                event_id: uuid::Uuid::new_v4(),
                event_type: event.event_type().to_owned(),
                schema_version: event.schema_version(),
                data: event.to_json(),
                metadata: serde_json::json!({"actor": "bench", "desk": "G09.20"}),
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
    let dir = base.join(format!("hoso-bench-projections-{}", std::process::id()));
    let store = SledStore::open(&dir, SledOptions::default())
        .with_context(|| format!("cannot open a store in {}", dir.display()))?;
    let calendar = BusinessCalendar::vietnam();
    let lane = GreenLane::new();
    let now = Utc::now();

    eprintln!("filling the store with {} dossiers ...", args.dossiers);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for appender in 0..args.appenders {
        let store = store.clone();
        let (calendar, lane) = (calendar.clone(), lane.clone());
        let (n, step) = (args.dossiers, args.appenders);
        tasks.spawn(async move {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (appender + 1));
            let mut seq = appender;
            while seq < n {
                let commands = dossier(seq, &mut rng);
                let events = events(&commands, &calendar, &lane, now);
                let Some(Command::ReceiveDossier(receipt)) = commands.first() else {
                    unreachable!()
                };
                let stream = format!("dossier-{}", receipt.receipt_code);
                store.append(&stream, ExpectedVersion::NoStream, events).await?;
                seq += step;
            }
            anyhow::Ok(())
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    let head = store.head();
    eprintln!("  {head} events in {:.1} s", started.elapsed().as_secs_f64());

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
    println!("| peak RSS of the process | {} MiB |", memory_kib("VmHWM:") / 1024);
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
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
