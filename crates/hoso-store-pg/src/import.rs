//! Writing events recorded by another store verbatim ([`hoso_store::ImportStore`], for
//! `hoso copy`): one transaction per batch, under the lock of the log's head row as every
//! append, checked by the rules every store shares (`hoso_store::check_imported`).

use std::collections::{HashMap, HashSet};

use hoso_store::{Limits, Position, RecordedEvent, StoreError, Version};
use tokio_postgres::{Client, Config};
use uuid::Uuid;

use crate::conn::{self, bigint};
use crate::rows::{self, EventRows, RowText};
use crate::writer::CHANNEL;

/// The application name every connection of a [`crate::PgStore`] gives unless its URL names
/// one: what [`serving_sessions`] looks for.
pub(crate) const APPLICATION_NAME: &str = "hoso";

fn refused(event: &RecordedEvent, rule: &str) -> StoreError {
    StoreError::Refused(format!(
        "the event at position {} (stream {}, version {}, id {}) cannot be imported: {rule}; nothing of its batch was written",
        event.position, event.stream_id, event.version, event.event_id
    ))
}

/// JSON text, which `check_imported` found it to be, as PostgreSQL's `text` takes it.
fn text<'a>(event: &RecordedEvent, bytes: &'a [u8]) -> Result<&'a str, StoreError> {
    std::str::from_utf8(bytes).map_err(|_| refused(event, "its data or metadata is not UTF-8"))
}

/// Imports `events` in one transaction; returns the new head.
pub(crate) async fn import(
    client: &mut Client,
    limits: &Limits,
    events: &[RecordedEvent],
) -> Result<Position, StoreError> {
    let failed = |err: tokio_postgres::Error| {
        conn::unavailable(
            &err,
            "the import into PostgreSQL failed (nothing of its batch was committed)",
        )
    };
    let tx = client.transaction().await.map_err(failed)?;
    let head = tx
        .query_one(
            "SELECT next_position, last_recorded_at FROM hoso_log_head FOR UPDATE",
            &[],
        )
        .await
        .map_err(failed)?;
    let next: i64 = head.try_get(0).map_err(failed)?;
    let last: i64 = head.try_get(1).map_err(failed)?;
    let next = next.unsigned_abs();
    // 0 stands for "no append yet" in the head row.
    let mut last_recorded_at = if last == 0 { None } else { conn::from_micros(last) };

    let mut ids = HashSet::with_capacity(events.len());
    for event in events {
        if !ids.insert(event.event_id) {
            return Err(refused(event, "its event id appears earlier in the same batch"));
        }
    }
    let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
    let mut streams: Vec<&str> = events.iter().map(|e| e.stream_id.as_str()).collect();
    streams.sort_unstable();
    streams.dedup();
    let stored = tx
        .query(
            "SELECT position, event_id FROM hoso_events WHERE event_id = ANY($1)",
            &[&ids],
        )
        .await
        .map_err(failed)?;
    if let Some(row) = stored.first() {
        let position: i64 = row.try_get(0).map_err(failed)?;
        let id: Uuid = row.try_get(1).map_err(failed)?;
        if let Some(event) = events.iter().find(|e| e.event_id == id) {
            return Err(refused(
                event,
                &format!("its event id is already stored, at position {position}"),
            ));
        }
    }
    let head_rows = tx
        .query(
            "SELECT s.stream_id, e.version, e.hash FROM unnest($1::text[]) AS s(stream_id) \
             CROSS JOIN LATERAL (SELECT version, hash FROM hoso_events \
                 WHERE hoso_events.stream_id = s.stream_id ORDER BY version DESC LIMIT 1) AS e",
            &[&streams],
        )
        .await
        .map_err(failed)?;
    let mut heads: HashMap<String, (Version, [u8; 32])> = HashMap::with_capacity(head_rows.len());
    for row in &head_rows {
        let stream: String = row.try_get(0).map_err(failed)?;
        let version: i64 = row.try_get(1).map_err(failed)?;
        let hash: Vec<u8> = row.try_get(2).map_err(failed)?;
        let hash: [u8; 32] = hash.try_into().map_err(|_| StoreError::Corrupted {
            position: next,
            reason: format!("the last event of stream {stream} has a hash that is not 32 bytes"),
        })?;
        heads.insert(stream, (version.unsigned_abs(), hash));
    }

    let n = events.len();
    let mut rows = EventRows::with_capacity(n);
    for (i, event) in events.iter().enumerate() {
        let stream = event.stream_id.as_str();
        let prev = hoso_store::check_imported(
            event,
            next + i as u64,
            last_recorded_at,
            heads.get(stream).copied(),
            limits,
        )?;
        let computed = hoso_store::record_hash(&prev, event);
        hoso_store::check_imported_hash(event, &computed)?;
        rows.push(
            event,
            RowText {
                stream_id: stream,
                event_type: &event.event_type,
                data: text(event, &event.data)?,
                metadata: text(event, &event.metadata)?,
            },
        );
        heads.insert(stream.to_owned(), (event.version, event.hash));
        last_recorded_at = Some(event.recorded_at);
    }
    let new_head = next + n as u64;
    tx.execute(&rows::insert_statement(), &rows.params())
        .await
        .map_err(failed)?;
    let last_micros = last_recorded_at.map_or(last, |at| at.timestamp_micros());
    tx.execute(
        "UPDATE hoso_log_head SET next_position = $1, last_recorded_at = $2",
        &[&bigint(new_head), &last_micros],
    )
    .await
    .map_err(failed)?;
    tx.execute(&format!("SELECT pg_notify('{CHANNEL}', $1)"), &[&new_head.to_string()])
        .await
        .map_err(failed)?;
    tx.commit().await.map_err(failed)?;
    Ok(new_head)
}

/// How many sessions of hoso servers (connections named [`APPLICATION_NAME`]) are open on the
/// database at `url`, other than this one's: a copy refuses to write into a database that a
/// server is serving from.
pub async fn serving_sessions(url: &str) -> Result<u64, StoreError> {
    let mut config: Config = url
        .parse()
        .map_err(|err| StoreError::Io(format!("invalid PostgreSQL connection string: {err}")))?;
    config.application_name("hoso copy");
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    let client = conn::connect(&config).await?;
    let row = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()",
            &[&APPLICATION_NAME],
        )
        .await
        .map_err(|err| conn::unavailable(&err, "cannot list the database's sessions"))?;
    let count: i64 = row
        .try_get(0)
        .map_err(|err| conn::unavailable(&err, "cannot list the database's sessions"))?;
    Ok(count.unsigned_abs())
}
