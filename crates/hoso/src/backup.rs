//! `hoso backup` and `hoso restore`: a consistent, incremental, verified copy of the embedded
//! store of a data directory, taken while the server serves, and a new data directory made from
//! one (docs/operations.md, "Backup and restore").

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::out::outln;

/// `hoso backup DEST`.
#[derive(clap::Args)]
pub(crate) struct BackupArgs {
    /// The backup directory: empty or new, or an earlier backup of the same store (then only
    /// what is new is copied).
    dest: PathBuf,
    /// The server's data directory (its store is `DIR/store`); the server may be running.
    #[arg(long, env = "HOSO_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
}

/// `hoso restore SRC DATA_DIR`.
#[derive(clap::Args)]
pub(crate) struct RestoreArgs {
    /// A backup directory made by `hoso backup`.
    src: PathBuf,
    /// The new data directory: empty or new; the store is restored into `DATA_DIR/store`.
    data_dir: PathBuf,
}

/// The store of a data directory: `DIR/store`, or `DIR` itself when given a store directory.
fn store_dir(data_dir: &Path) -> PathBuf {
    let inner = data_dir.join("store");
    if inner.is_dir() { inner } else { data_dir.to_path_buf() }
}

pub(crate) fn backup(args: BackupArgs) -> Result<()> {
    let store = store_dir(&args.data_dir);
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("copying [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec})")
            .context("the progress bar template is wrong")?
            .progress_chars("#>-"),
    );
    let runtime = crate::client::runtime()?;
    let report = runtime
        .block_on(hoso_store::backup(&store, &args.dest, &mut |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        }))
        .with_context(|| {
            format!(
                "cannot back up the store in {} to {}",
                store.display(),
                args.dest.display()
            )
        })?;
    bar.finish_and_clear();
    outln!(
        "backup of store {} in {}: holds positions 0..{} ({} events), verified; copied {} of its {} bytes in {} segment(s)",
        report.store_id,
        args.dest.display(),
        report.position,
        report.position,
        report.bytes_copied,
        report.bytes_total,
        report.segments.len()
    );
    Ok(())
}

pub(crate) fn restore(args: RestoreArgs) -> Result<()> {
    if std::fs::read_dir(&args.data_dir).is_ok_and(|mut entries| entries.next().is_some()) {
        bail!(
            "{} is not empty; restore into an empty or new directory (a restore never overwrites a data directory)",
            args.data_dir.display()
        );
    }
    let store = args.data_dir.join("store");
    let runtime = crate::client::runtime()?;
    let report = runtime
        .block_on(hoso_store::restore(&args.src, &store))
        .with_context(|| format!("cannot restore {} into {}", args.src.display(), store.display()))?;
    outln!(
        "restored store {} into {}: holds positions 0..{} ({} events, verified); start it with `hoso serve --data-dir {}`",
        report.store_id,
        store.display(),
        report.position,
        report.records_checked,
        args.data_dir.display()
    );
    Ok(())
}
