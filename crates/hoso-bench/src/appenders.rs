//! The appenders of hoso's two stores, driven alike through the `EventStore` trait: the same
//! events, streams and expected versions for the embedded store and for `PgStore`.

use std::time::Instant;

use anyhow::Result;
use chrono::Utc;
use hoso_store::{EventStore, ExpectedVersion, Json, NewEvent};
use uuid::Uuid;

use crate::{Window, payload};

/// Events per stream before an appender moves to a new stream (about one dossier's life).
pub(crate) const STREAM_LEN: u64 = 20;

/// The metadata of every benchmark event.
#[derive(serde::Serialize)]
struct Metadata {
    actor: &'static str,
    desk: &'static str,
}

pub(crate) fn new_event(ids: &mut EventIds, tag: u64) -> NewEvent {
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
pub(crate) struct EventIds {
    state: u64,
}

impl EventIds {
    pub(crate) fn new() -> EventIds {
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
/// expected version, until the window closes. Returns the latencies of the appends sent after
/// the warm-up, sorted, in microseconds.
pub(crate) async fn run<S: EventStore>(store: &S, appenders: usize, batch: usize, window: Window) -> Result<Vec<u32>> {
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
    latencies_us.sort_unstable();
    Ok(latencies_us)
}
