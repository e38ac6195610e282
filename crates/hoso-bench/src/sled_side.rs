//! The embedded store's side: the sled event store, driven through the `EventStore` trait.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use hoso_store::{EventStore, ExpectedVersion, SledOptions, SledStore};

use crate::appenders::{self, EventIds, STREAM_LEN, new_event};
use crate::{AppendFigures, ScanFigures, Window};

/// The embedded store's side of an append configuration (`appenders::run`), on a fresh store
/// in `dir`.
pub(crate) async fn appends(
    dir: &Path,
    appenders: usize,
    batch: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<AppendFigures> {
    let store = SledStore::open(dir, SledOptions::default())?;
    let window = Window::starting_now(warmup, duration);
    let latencies_us = appenders::run(&store, appenders, batch, window).await?;
    let elapsed = window.elapsed();
    // Untimed, as PostgreSQL's checkpoint after its run: the indexer catches up and sled is
    // flushed. Printed, so that a backlog left out of the figures would show.
    let closing = Instant::now();
    store.close();
    eprintln!(
        "  close (indexer catching up, sled flush): {:.2} s",
        closing.elapsed().as_secs_f64()
    );
    Ok(AppendFigures {
        appenders,
        batch,
        appends: latencies_us.len() as u64,
        elapsed,
        latencies_us,
    })
}

/// Fills a store with `n` events, then reads all of `$all`, once without and once with JSON
/// decoding of the data. Returns both scans and the store's bytes on disk per event.
pub(crate) async fn scan(dir: &Path, n: u64) -> Result<(ScanFigures, ScanFigures, f64)> {
    let store = SledStore::open(dir, SledOptions::default())?;
    let mut tasks = tokio::task::JoinSet::new();
    let per_task = n.div_ceil(16);
    for task in 0..16u64 {
        let store = store.clone();
        let count = per_task.min(n.saturating_sub(task * per_task));
        tasks.spawn(async move {
            let mut written = 0;
            let mut stream_no = 0;
            let mut ids = EventIds::new();
            while written < count {
                let k = (count - written).min(STREAM_LEN);
                let events = (0..k)
                    .map(|i| new_event(&mut ids, task * per_task + written + i))
                    .collect();
                store
                    .append(&format!("scan-{task}-{stream_no}"), ExpectedVersion::NoStream, events)
                    .await?;
                written += k;
                stream_no += 1;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    store.close();
    drop(store);
    let bytes = dir_size(dir)? as f64 / n as f64;
    let log_bytes = dir_size(&dir.join("log"))? as f64 / n as f64;
    eprintln!(
        "  disk: {bytes:.0} bytes/event, of which segments {log_bytes:.0} and sled {:.0}",
        bytes - log_bytes
    );

    // Reopen so the scan starts from what a restarted service has: the files, a cold cache.
    let store = SledStore::open(dir, SledOptions::default())?;
    let plain = scan_once(&store, false).await?;
    let decoded = scan_once(&store, true).await?;
    Ok((plain, decoded, bytes))
}

async fn scan_once(store: &SledStore, decode: bool) -> Result<ScanFigures> {
    let start = Instant::now();
    let mut from = 0;
    let mut fields = 0u64;
    loop {
        let batch = store.read_all(from, 10_000).await?;
        let Some(last) = batch.last() else { break };
        from = last.position + 1;
        if decode {
            for event in &batch {
                let value: serde_json::Value = serde_json::from_slice(&event.data)?;
                fields += value.as_object().map_or(0, |o| o.len() as u64);
            }
        }
    }
    std::hint::black_box(fields);
    Ok(ScanFigures {
        events: from,
        elapsed: start.elapsed(),
    })
}

fn dir_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}
