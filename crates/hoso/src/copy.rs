//! `hoso copy --from STORE --to STORE`: the log of one store copied into another, verbatim
//! (positions, event ids, `recorded_at` and hashes kept byte for byte), resumable and verified:
//! the way a province moves from the embedded store to PostgreSQL and back (docs/operations.md,
//! "Moving to PostgreSQL and back").

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hoso_server::config::redact_store_url;
use hoso_store::{CopyReport, CopyStep, EventStore, ImportStore, SledOptions, SledStore};

use crate::out::outln;

/// `hoso copy`.
#[derive(clap::Args)]
pub(crate) struct CopyArgs {
    /// The store to copy: a data directory (its embedded store, `DIR/store`, or a backup made
    /// by `hoso backup`) or a PostgreSQL URL, postgres://USER@HOST:PORT/DB. An embedded store
    /// cannot be copied while its server runs: copy a backup of it instead.
    #[arg(long)]
    from: String,
    /// The store to copy into: a data directory (the store goes in `DIR/store`) or a PostgreSQL
    /// URL. It must be empty, or hold what an interrupted copy of the same source left (the
    /// copy then goes on after it), and no server may be serving it.
    #[arg(long)]
    to: String,
}

/// Where a store is, as given on the command line.
enum Location {
    Embedded(PathBuf),
    Postgres(String),
}

impl Location {
    fn parse(given: &str) -> Location {
        if given.starts_with("postgres://") || given.starts_with("postgresql://") {
            Location::Postgres(given.to_owned())
        } else {
            Location::Embedded(PathBuf::from(given))
        }
    }

    /// How the store is named in messages: a URL without its password.
    fn shown(&self) -> String {
        match self {
            Location::Embedded(dir) => dir.display().to_string(),
            Location::Postgres(url) => redact_store_url(url),
        }
    }
}

/// An open store of either kind.
enum Opened {
    Embedded(SledStore),
    #[cfg(feature = "postgres")]
    Postgres(hoso_store_pg::PgStore),
}

impl Opened {
    fn close(&self) {
        match self {
            Opened::Embedded(store) => store.close(),
            #[cfg(feature = "postgres")]
            Opened::Postgres(store) => store.close(),
        }
    }
}

/// Options of an embedded store opened for a copy: nothing written ahead of its log, so that a
/// backup directory copied from stays as its manifest describes it.
fn embedded_options() -> SledOptions {
    SledOptions {
        zero_fill_ahead_bytes: 0,
        ..SledOptions::default()
    }
}

/// The store directory of the data directory `dir` when it holds one: `DIR/store`, or `DIR`
/// itself when it is a store directory (a backup, or a store given directly).
fn existing_store(dir: &Path) -> Option<PathBuf> {
    let inner = dir.join("store");
    if inner.join("store-id").is_file() {
        Some(inner)
    } else if dir.join("store-id").is_file() {
        Some(dir.to_path_buf())
    } else {
        None
    }
}

fn open_embedded(dir: &Path) -> Result<SledStore> {
    SledStore::open(dir, embedded_options()).with_context(|| format!("cannot open the store in {}", dir.display()))
}

async fn open_source(location: &Location) -> Result<Opened> {
    match location {
        Location::Embedded(dir) => {
            let Some(store) = existing_store(dir) else {
                bail!(
                    "--from {} holds no hoso store (no store-id in it or in its store/ directory): give a server's data directory, a store directory or a backup",
                    dir.display()
                );
            };
            let opened = open_embedded(&store).context(
                "the source must not be served while it is copied: stop its server, or copy a backup of it (`hoso backup`, which a serving server allows)",
            )?;
            Ok(Opened::Embedded(opened))
        }
        Location::Postgres(url) => open_postgres(url, "--from").await,
    }
}

async fn open_target(location: &Location) -> Result<Opened> {
    match location {
        Location::Embedded(dir) => {
            let store = existing_store(dir).unwrap_or_else(|| dir.join("store"));
            let opened = open_embedded(&store)
                .context("no server may serve the target of a copy: stop it, or copy into another data directory")?;
            Ok(Opened::Embedded(opened))
        }
        Location::Postgres(url) => {
            refuse_served(url).await?;
            open_postgres(url, "--to").await
        }
    }
}

#[cfg(feature = "postgres")]
async fn refuse_served(url: &str) -> Result<()> {
    let shown = redact_store_url(url);
    let sessions = hoso_store_pg::serving_sessions(url)
        .await
        .with_context(|| format!("cannot check whether a server serves the target {shown}"))?;
    if sessions > 0 {
        bail!(
            "the target {shown} is being served: {sessions} connection(s) of hoso servers (application name \"hoso\") are open on it; no server may serve the target of a copy: stop them, then copy"
        );
    }
    Ok(())
}

#[cfg(feature = "postgres")]
async fn open_postgres(url: &str, flag: &str) -> Result<Opened> {
    let store = hoso_store_pg::PgStore::connect(url, hoso_store_pg::PgOptions::default())
        .await
        .with_context(|| format!("cannot open the PostgreSQL store {flag} {}", redact_store_url(url)))?;
    Ok(Opened::Postgres(store))
}

#[cfg(not(feature = "postgres"))]
async fn refuse_served(_url: &str) -> Result<()> {
    Ok(())
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(url: &str, flag: &str) -> Result<Opened> {
    bail!(
        "{flag} {} is a PostgreSQL URL, but this hoso was built without PostgreSQL support: build it with `cargo build --release -p hoso --features postgres`",
        redact_store_url(url)
    )
}

/// Shows a copy's progress on standard error: a bar on a terminal, a line per tenth otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    phase: Option<&'static str>,
    tenths: u64,
}

impl Progress {
    fn new() -> Result<Progress> {
        let bar = if std::io::stderr().is_terminal() {
            let style = indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} events ({per_sec})")
                .context("the progress bar template is wrong")?
                .progress_chars("#>-");
            Some(indicatif::ProgressBar::new(0).with_style(style))
        } else {
            None
        };
        Ok(Progress {
            bar,
            phase: None,
            tenths: 0,
        })
    }

    fn show(&mut self, step: CopyStep) {
        let (phase, done, total) = match step {
            CopyStep::Checking { done, total } => ("checking the target's events against the source's", done, total),
            CopyStep::Copying { done, total } => ("copying", done, total),
            CopyStep::Verifying => {
                if let Some(bar) = &self.bar {
                    bar.finish_and_clear();
                }
                eprintln!("verifying the target: its chains, and its head hash against the source's");
                return;
            }
        };
        if total == 0 {
            return;
        }
        if self.phase != Some(phase) {
            self.phase = Some(phase);
            self.tenths = 0;
            match &self.bar {
                Some(bar) => {
                    bar.set_message(phase);
                    bar.set_length(total);
                    bar.reset();
                }
                None => eprintln!("{phase}: {done} of {total} events"),
            }
        }
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None => {
                let tenths = done * 10 / total;
                if tenths > self.tenths {
                    self.tenths = tenths;
                    eprintln!("{phase}: {done} of {total} events");
                }
            }
        }
    }
}

async fn copy_between<S: EventStore, T: ImportStore>(source: &S, target: &T) -> Result<CopyReport> {
    let mut progress = Progress::new()?;
    let report = hoso_store::copy(source, target, &mut |step| progress.show(step)).await;
    if let Some(bar) = &progress.bar {
        bar.finish_and_clear();
    }
    Ok(report?)
}

async fn copy_opened(source: &Opened, target: &Opened) -> Result<CopyReport> {
    match (source, target) {
        (Opened::Embedded(s), Opened::Embedded(t)) => copy_between(s, t).await,
        #[cfg(feature = "postgres")]
        (Opened::Embedded(s), Opened::Postgres(t)) => copy_between(s, t).await,
        #[cfg(feature = "postgres")]
        (Opened::Postgres(s), Opened::Embedded(t)) => copy_between(s, t).await,
        #[cfg(feature = "postgres")]
        (Opened::Postgres(s), Opened::Postgres(t)) => copy_between(s, t).await,
    }
}

pub(crate) fn copy(args: CopyArgs) -> Result<()> {
    let (from, to) = (Location::parse(&args.from), Location::parse(&args.to));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(async {
        let source = open_source(&from).await?;
        let target = match open_target(&to).await {
            Ok(target) => target,
            Err(err) => {
                source.close();
                return Err(err);
            }
        };
        let report = copy_opened(&source, &target).await;
        source.close();
        target.close();
        report.with_context(|| format!("cannot copy {} into {}", from.shown(), to.shown()))
    })?;
    let hash: String = report.head_hash.iter().map(|b| format!("{b:02x}")).collect();
    outln!(
        "copied {} into {}: the target holds positions 0..{} ({} events copied by this run after the {} it held), verified: {} records, head hash {hash}",
        from.shown(),
        to.shown(),
        report.position,
        report.position - report.resumed_from,
        report.resumed_from,
        report.records_checked
    );
    Ok(())
}
