//! The PostgreSQL baseline: a plain events table with a unique (stream, version) key, where an
//! append inserts version expected+1, with fsync and synchronous_commit on.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{StreamExt, pin_mut};
use tokio_postgres::{Client, NoTls};

use tokio_postgres::types::Json;

use crate::{AppendFigures, Payload, ScanFigures, Window, payload};

const SCHEMA: &str = "
    DROP TABLE IF EXISTS events;
    CREATE TABLE events (
        global_position bigserial PRIMARY KEY,
        stream_id text NOT NULL,
        version bigint NOT NULL,
        type text NOT NULL,
        data jsonb NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (stream_id, version)
    );";

/// A PostgreSQL server: a throwaway one this run started, or one given by URL.
pub(crate) struct Server {
    url: String,
    throwaway_dir: Option<PathBuf>,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/pg-throwaway.sh")
}

impl Server {
    pub(crate) fn external(url: String) -> Self {
        Server {
            url,
            throwaway_dir: None,
        }
    }

    /// Starts a throwaway server with `deploy/pg-throwaway.sh`.
    pub(crate) async fn start() -> Result<Self> {
        eprintln!("starting a throwaway PostgreSQL ...");
        let out = tokio::process::Command::new(script())
            .arg("start")
            .output()
            .await
            .context("cannot run deploy/pg-throwaway.sh")?;
        if !out.status.success() {
            bail!(
                "deploy/pg-throwaway.sh failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let stdout = String::from_utf8(out.stdout)?;
        let mut lines = stdout.lines();
        let url = lines.next().context("no URL printed")?.to_owned();
        let dir = lines.next().context("no directory printed")?.into();
        Ok(Server {
            url,
            throwaway_dir: Some(dir),
        })
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) async fn stop(&self) {
        if let Some(dir) = &self.throwaway_dir {
            let _ = tokio::process::Command::new(script())
                .arg("stop")
                .arg(dir)
                .status()
                .await;
        }
    }
}

pub(crate) async fn connect(url: &str) -> Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .with_context(|| format!("connect {url}"))?;
    tokio::spawn(connection);
    Ok(client)
}

/// Server settings that decide durability, printed with the figures.
pub(crate) async fn settings(url: &str) -> Result<String> {
    let client = connect(url).await?;
    let mut out = Vec::new();
    for name in [
        "server_version",
        "fsync",
        "synchronous_commit",
        "wal_sync_method",
        "shared_buffers",
    ] {
        let row = client.query_one(&format!("SHOW {name}"), &[]).await?;
        out.push(format!("{name}={}", row.get::<_, String>(0)));
    }
    Ok(out.join(", "))
}

/// As `sled_side::appends`: a warm-up, then the measured appends.
pub(crate) async fn appends(
    url: &str,
    appenders: usize,
    batch: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<AppendFigures> {
    connect(url).await?.batch_execute(SCHEMA).await?;
    let values: Vec<String> = (0..batch)
        .map(|i| format!("(${}, ${}, ${}, ${})", 4 * i + 1, 4 * i + 2, 4 * i + 3, 4 * i + 4))
        .collect();
    let sql = format!(
        "INSERT INTO events (stream_id, version, type, data) VALUES {}",
        values.join(", ")
    );
    let window = Window::starting_now(warmup, duration);
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..appenders {
        let client = connect(url).await?;
        let sql = sql.clone();
        tasks.spawn(async move {
            let statement = client.prepare(&sql).await?;
            let mut latencies = Vec::new();
            let mut stream_no = 0u64;
            let mut next_version = 0i64;
            let mut tag = 0u64;
            let event_type = "DossierProcessed".to_owned();
            while window.running() {
                if next_version >= 20 {
                    stream_no += 1;
                    next_version = 0;
                }
                let stream = format!("dossier-{task}-{stream_no}");
                let rows: Vec<(i64, Json<Payload>)> = (0..batch as i64)
                    .map(|i| {
                        tag += 1;
                        (next_version + i, Json(payload(tag)))
                    })
                    .collect();
                let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::with_capacity(4 * batch);
                for (version, data) in &rows {
                    params.push(&stream);
                    params.push(version);
                    params.push(&event_type);
                    params.push(data);
                }
                let sent = Instant::now();
                client.execute(&statement, &params).await?;
                if window.measures(sent) {
                    latencies.push(sent.elapsed().as_micros() as u32);
                }
                next_version += batch as i64;
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
    // Do what the server deferred now, untimed, as hoso's close finishes its indexing, so that
    // neither side's leftover work lands in the other's measurement: the vacuum and analyze
    // that autovacuum would start on the filled table within a minute (it did, during hoso's
    // next configuration), then write out the dirty buffers.
    let client = connect(url).await?;
    client.batch_execute("VACUUM ANALYZE events").await?;
    client.batch_execute("CHECKPOINT").await?;
    Ok(AppendFigures {
        appenders,
        batch,
        appends: latencies_us.len() as u64,
        elapsed,
        latencies_us,
    })
}

/// Fills the table with `n` events server-side, then reads it all in position order, once
/// without and once with JSON decoding of the data. Returns both and bytes on disk per event.
pub(crate) async fn scan(url: &str, n: u64) -> Result<(ScanFigures, ScanFigures, f64)> {
    let client = connect(url).await?;
    client.batch_execute(SCHEMA).await?;
    let template = Json(payload(0));
    client
        .execute(
            "INSERT INTO events (stream_id, version, type, data)
             SELECT 'scan-' || (g / 20), g % 20, 'DossierProcessed',
                    jsonb_set($1::jsonb, '{receipt_code}', to_jsonb('G09.20-20260609-' || lpad(g::text, 7, '0')))
             FROM generate_series(0, $2::bigint - 1) AS g",
            &[&template, &(n as i64)],
        )
        .await?;
    // Each on its own: VACUUM may not run inside the implicit transaction of a multi-statement.
    client.batch_execute("VACUUM ANALYZE events").await?;
    client.batch_execute("CHECKPOINT").await?;
    let bytes: i64 = client
        .query_one("SELECT pg_total_relation_size('events')", &[])
        .await?
        .get(0);
    let plain = scan_once(&client, false).await?;
    let decoded = scan_once(&client, true).await?;
    Ok((plain, decoded, bytes as f64 / n as f64))
}

async fn scan_once(client: &Client, decode: bool) -> Result<ScanFigures> {
    let start = Instant::now();
    let rows = client
        .query_raw(
            "SELECT global_position, stream_id, version, type, data::text, recorded_at FROM events ORDER BY global_position",
            std::iter::empty::<i64>(),
        )
        .await?;
    pin_mut!(rows);
    let mut events = 0u64;
    let mut fields = 0u64;
    while let Some(row) = rows.next().await {
        let row = row?;
        let data: &str = row.get(4);
        if decode {
            let value: serde_json::Value = serde_json::from_str(data)?;
            fields += value.as_object().map_or(0, |o| o.len() as u64);
        }
        events += 1;
    }
    std::hint::black_box(fields);
    Ok(ScanFigures {
        events,
        elapsed: start.elapsed(),
    })
}
