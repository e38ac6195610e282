//! `hoso-fuzz`: runs the fuzz targets of `hoso_fuzz` (see `docs/fuzzing.md`).
//!
//! - `hoso-fuzz run --seconds N [--target NAME]... [--seed S]`: fuzzes each target (every one
//!   when none is named) for N seconds; exits 1 at the first finding, whose input it writes to
//!   `crates/hoso-fuzz/regressions/<target>/`.
//! - `hoso-fuzz replay`: runs every corpus and regression input once.
//! - `hoso-fuzz seeds`: writes the seed corpus again.
//! - `hoso-fuzz check TARGET FILE...`: runs files through a target and prints each outcome.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use hoso_fuzz::engine::{self, Options};
use hoso_fuzz::targets::{Context, Target};

#[derive(Parser)]
#[command(about = "Fuzz targets of hoso on the stable toolchain (docs/fuzzing.md)")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Fuzz each target for a while; stop at the first finding.
    Run {
        /// Seconds for each target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// A target to run (store_open, snapshot, convert, import_line, due_date); all by default.
        #[arg(long = "target")]
        targets: Vec<String>,
        /// The random seed; printed when not given, so that a run can be repeated.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Run every input of the corpus and of the regressions once.
    Replay,
    /// Write the seed corpus again (after a format changed).
    Seeds,
    /// Run files through a target and print each outcome (to study a finding).
    Check {
        /// The target.
        target: String,
        /// The input files.
        files: Vec<std::path::PathBuf>,
    },
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("hoso-fuzz: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn targets(names: &[String]) -> Result<Vec<Target>> {
    if names.is_empty() {
        return Ok(Target::ALL.to_vec());
    }
    names
        .iter()
        .map(|name| match Target::from_name(name) {
            Some(target) => Ok(target),
            None => bail!(
                "no target is named {name:?}; the targets are: {}",
                Target::ALL.map(Target::name).join(", ")
            ),
        })
        .collect()
}

/// Runs the command; `Ok(false)` when something was found.
fn run() -> Result<bool> {
    match Cli::parse().command {
        Cmd::Seeds => {
            hoso_fuzz::seeds::write(&hoso_fuzz::crate_dir())?;
            println!("hoso-fuzz: wrote {}", hoso_fuzz::crate_dir().join("corpus").display());
            Ok(true)
        }
        Cmd::Check { target, files } => {
            let target = targets(&[target])?[0];
            let mut ctx = Context::new()?;
            let mut clean = true;
            for file in files {
                let input = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
                let began = std::time::Instant::now();
                let outcome = engine::run_one(target, &mut ctx, &input);
                clean &= outcome.is_ok();
                println!(
                    "{}: {outcome:?} ({:.3} s)",
                    file.display(),
                    began.elapsed().as_secs_f64()
                );
            }
            Ok(clean)
        }
        Cmd::Replay => {
            let mut ctx = Context::new()?;
            let mut clean = true;
            for target in Target::ALL {
                let inputs = engine::corpus_of(target)?;
                for (path, input) in &inputs {
                    if let Err(finding) = engine::run_one(target, &mut ctx, input) {
                        println!("{}: {}: {finding}", target.name(), path.display());
                        clean = false;
                    }
                }
                println!("{}: {} inputs replayed", target.name(), inputs.len());
            }
            Ok(clean)
        }
        Cmd::Run {
            seconds,
            targets: names,
            seed,
        } => {
            let seed = seed.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
            });
            println!("hoso-fuzz: seed {seed}, {seconds} s a target");
            for target in targets(&names)? {
                let report = engine::fuzz(
                    target,
                    Options {
                        duration: Duration::from_secs(seconds),
                        seed,
                    },
                )?;
                println!(
                    "{}: {} inputs, {} distinct outcomes",
                    target.name(),
                    report.runs,
                    report.outcomes
                );
                if let Some((finding, path)) = report.finding {
                    println!("{}: FOUND {finding}", target.name());
                    println!(
                        "{}: the input is in {}; fix the cause, keep the file as a regression (the test suite replays it), and rerun",
                        target.name(),
                        path.display()
                    );
                    return Ok(false);
                }
            }
            Ok(true)
        }
    }
}
