//! The hoso side: the sled event store, driven through the `EventStore` trait.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use chrono::Utc;
use hoso_store::{EventStore, ExpectedVersion, Json, NewEvent, SledOptions, SledStore};
use uuid::Uuid;

use crate::{AppendFigures, ScanFigures, Window, payload};

/// Events per stream before an appender moves to a new stream (about one dossier's life).
const STREAM_LEN: u64 = 20;

/// The metadata of every benchmark event.
#[derive(serde::Serialize)]
struct Metadata {
    actor: &'static str,
    desk: &'static str,
}

fn new_event(ids: &mut EventIds, tag: u64) -> NewEvent {
    NewEvent {
        event_id: ids.next(),
        event_type: "DossierProcessed".to_owned(),
        schema_version: 1,
        data: Json::of(&payload(tag)).expect("the payload serializes"),
        metadata: Json::of(&Metadata {
            actor: "officer-7",
            desk: "G09.20",
        })
        .expect("the metadata serializes"),
        occurred_at: Utc::now(),
    }
}

/// Random (version 4) event ids without a system call each: `Uuid::new_v4` asks the kernel for
/// every id, which the service never does (its ids derive from command ids) and which was 3% of
/// the machine at 16 appenders. The bits come from SplitMix64 over a counter seeded by one
/// `new_v4`, so they are as spread as random ids for the store's filters and id tables.
struct EventIds {
    state: u64,
}

impl EventIds {
    fn new() -> EventIds {
        EventIds {
            state: Uuid::new_v4().as_u64_pair().0,
        }
    }

    fn next(&mut self) -> Uuid {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.mix().to_le_bytes());
        bytes[8..].copy_from_slice(&self.mix().to_le_bytes());
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    fn mix(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// `appenders` tasks append `batch` events at a time, each to its own streams with an exact
/// expected version, for `warmup` and then `duration`; only the appends sent after the warm-up
/// are measured.
pub(crate) async fn appends(
    dir: &Path,
    appenders: usize,
    batch: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<AppendFigures> {
    let store = SledStore::open(dir, SledOptions::default())?;
    let window = Window::starting_now(warmup, duration);
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..appenders {
        let store = store.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut stream_no = 0u64;
            let mut version: Option<u64> = None;
            let mut tag = 0u64;
            let mut ids = EventIds::new();
            while window.running() {
                if version.is_some_and(|v| v + 1 >= STREAM_LEN) {
                    stream_no += 1;
                    version = None;
                }
                let stream = format!("dossier-{task}-{stream_no}");
                let expected = version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
                let events: Vec<_> = (0..batch)
                    .map(|_| {
                        tag += 1;
                        new_event(&mut ids, tag)
                    })
                    .collect();
                let sent = Instant::now();
                let result = store.append(&stream, expected, events).await?;
                if window.measures(sent) {
                    latencies.push(sent.elapsed().as_micros() as u32);
                }
                version = result.current_version;
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies_us = Vec::new();
    while let Some(done) = tasks.join_next().await {
        latencies_us.extend(done??);
    }
    let elapsed = window.elapsed();
    latencies_us.sort_unstable();
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
