//! Connections to PostgreSQL, what their failures mean to a caller, and rows as events.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hoso_store::{Position, RecordedEvent, StoreError};
use tokio_postgres::{Client, Config, NoTls, Row, Statement};

/// The columns of `hoso_events` in the order [`decode`] reads them.
pub(crate) const COLUMNS: &str = "position, stream_id, version, event_id, event_type, schema_version, data, metadata, occurred_at, recorded_at, hash";

/// Fills in the timeouts the connection string leaves out, so that a primary whose machine is
/// gone is given up in seconds: such a host refuses no connection and closes none, and TCP's own
/// defaults would let a new connection wait on it for minutes and an open one for hours.
pub(crate) fn failover_defaults(config: &mut Config) {
    // Each host of a multi-host string is tried in turn: a dead one first costs this much.
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(3));
    }
    // Sent data (a commit, a query) unacknowledged this long closes the connection.
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(Duration::from_secs(15));
    }
    // An idle connection (the follower's LISTEN, a reply awaited) is probed after 10 s and
    // closed after three unanswered probes 3 s apart; libpq's 2-hour default marks it unset.
    if config.get_keepalives() && config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
        config.keepalives_idle(Duration::from_secs(10));
    }
    if config.get_keepalives_interval().is_none() {
        config.keepalives_interval(Duration::from_secs(3));
    }
    if config.get_keepalives_retries().is_none() {
        config.keepalives_retries(3);
    }
}

/// Opens a connection and drives it on a task of its own until it closes.
pub(crate) async fn connect(config: &Config) -> Result<Client, StoreError> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|err| unavailable(&err, "cannot connect to PostgreSQL"))?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::warn!(error = %err, "a connection of the PostgreSQL store ended");
        }
    });
    // A connection lives as long as the store, and PostgreSQL keeps a prepared statement's
    // generic plan for good once chosen: chosen while the log was small, the writer's lookup
    // of event ids stayed a sequential scan of the whole log as it grew. Planning each
    // execution for the log as it is costs microseconds.
    client
        .batch_execute("SET plan_cache_mode = force_custom_plan")
        .await
        .map_err(|err| unavailable(&err, "cannot set up a connection to PostgreSQL"))?;
    Ok(client)
}

/// Whether PostgreSQL refused a statement for breaking an integrity constraint (SQLSTATE class
/// 23): under the store's protocol that never happens, so the database holds what the store did
/// not write.
pub(crate) fn is_integrity_violation(err: &tokio_postgres::Error) -> bool {
    err.code().is_some_and(|code| code.code().starts_with("23"))
}

/// A failure to reach or use PostgreSQL: the caller may retry (an append with the same event
/// ids, which is idempotent), and an operator should look if it lasts.
pub(crate) fn unavailable(err: &tokio_postgres::Error, doing: &str) -> StoreError {
    StoreError::Unavailable(describe(err, doing))
}

/// `doing`, then what PostgreSQL said (its message and SQLSTATE), or what failed on the way.
pub(crate) fn describe(err: &tokio_postgres::Error, doing: &str) -> String {
    match err.as_db_error() {
        Some(db) => format!("{doing}: {} (SQLSTATE {})", db.message(), db.code().code()),
        None => format!("{doing}: {err}"),
    }
}

/// Maps a failed query of a read.
pub(crate) fn read_failed(err: tokio_postgres::Error) -> StoreError {
    unavailable(&err, "a read from PostgreSQL failed")
}

fn corrupted(position: Position, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupted {
        position,
        reason: reason.into(),
    }
}

/// A row of `hoso_events` (selected as [`COLUMNS`]) as an event.
pub(crate) fn decode(row: &Row) -> Result<RecordedEvent, StoreError> {
    let raw_position: i64 = row
        .try_get(0)
        .map_err(|err| corrupted(0, format!("a row without a position: {err}")))?;
    let position =
        u64::try_from(raw_position).map_err(|_| corrupted(0, format!("negative position {raw_position}")))?;
    let bad = |what: &str, err: &dyn std::fmt::Display| corrupted(position, format!("{what} does not decode: {err}"));
    let version: i64 = row.try_get(2).map_err(|err| bad("the version", &err))?;
    let schema_version: i64 = row.try_get(5).map_err(|err| bad("the schema version", &err))?;
    let data: String = row.try_get(6).map_err(|err| bad("the data", &err))?;
    let metadata: String = row.try_get(7).map_err(|err| bad("the metadata", &err))?;
    let occurred_at: i64 = row.try_get(8).map_err(|err| bad("occurred_at", &err))?;
    let recorded_at: i64 = row.try_get(9).map_err(|err| bad("recorded_at", &err))?;
    let hash: Vec<u8> = row.try_get(10).map_err(|err| bad("the hash", &err))?;
    Ok(RecordedEvent {
        stream_id: row.try_get(1).map_err(|err| bad("the stream id", &err))?,
        version: u64::try_from(version).map_err(|err| bad("the version", &err))?,
        position,
        event_id: row.try_get(3).map_err(|err| bad("the event id", &err))?,
        event_type: row.try_get(4).map_err(|err| bad("the event type", &err))?,
        schema_version: u32::try_from(schema_version).map_err(|err| bad("the schema version", &err))?,
        data: data.into_bytes(),
        metadata: metadata.into_bytes(),
        occurred_at: from_micros(occurred_at).ok_or_else(|| corrupted(position, "occurred_at out of range"))?,
        recorded_at: from_micros(recorded_at).ok_or_else(|| corrupted(position, "recorded_at out of range"))?,
        hash: hash
            .try_into()
            .map_err(|_| corrupted(position, "the hash is not 32 bytes"))?,
    })
}

pub(crate) fn from_micros(us: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
}

/// A count or bound as PostgreSQL's `bigint`, saturating: positions and versions never reach
/// 2^63, and a larger bound means "no bound".
pub(crate) fn bigint(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A reader connection with the statements of every read prepared once.
pub(crate) struct Reader {
    pub(crate) client: Client,
    pub(crate) read_all: Statement,
    pub(crate) stream_forward: Statement,
    pub(crate) stream_backward: Statement,
    pub(crate) by_id: Statement,
    pub(crate) stream_version: Statement,
}

impl Reader {
    async fn open(config: &Config) -> Result<Reader, StoreError> {
        let client = connect(config).await?;
        let prepare = |sql: String| {
            let client = &client;
            async move {
                client
                    .prepare(&sql)
                    .await
                    .map_err(|err| unavailable(&err, "cannot prepare a read"))
            }
        };
        let read_all = prepare(format!(
            "SELECT {COLUMNS} FROM hoso_events WHERE position >= $1 ORDER BY position LIMIT $2"
        ))
        .await?;
        let stream_forward = prepare(format!(
            "SELECT {COLUMNS} FROM hoso_events WHERE stream_id = $1 AND version >= $2 AND recorded_at <= $3 \
             ORDER BY version LIMIT $4"
        ))
        .await?;
        let stream_backward = prepare(format!(
            "SELECT {COLUMNS} FROM hoso_events WHERE stream_id = $1 AND version <= $2 AND recorded_at <= $3 \
             ORDER BY version DESC LIMIT $4"
        ))
        .await?;
        let by_id = prepare(format!("SELECT {COLUMNS} FROM hoso_events WHERE event_id = $1")).await?;
        let stream_version =
            prepare("SELECT version FROM hoso_events WHERE stream_id = $1 ORDER BY version DESC LIMIT 1".to_owned())
                .await?;
        Ok(Reader {
            client,
            read_all,
            stream_forward,
            stream_backward,
            by_id,
            stream_version,
        })
    }
}

/// A few reader connections, taken in turn; each is reopened when found closed, so reads
/// recover by themselves after PostgreSQL restarts or fails over.
pub(crate) struct Readers {
    config: Config,
    slots: Vec<tokio::sync::Mutex<Option<Arc<Reader>>>>,
    next: AtomicUsize,
}

impl Readers {
    pub(crate) fn new(config: Config, count: usize) -> Readers {
        Readers {
            config,
            slots: (0..count.max(1)).map(|_| tokio::sync::Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// A connection to read through (queries of several callers share it, pipelined).
    pub(crate) async fn get(&self) -> Result<Arc<Reader>, StoreError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut slot = self.slots[i].lock().await;
        if let Some(reader) = slot.as_ref()
            && !reader.client.is_closed()
        {
            return Ok(Arc::clone(reader));
        }
        let reader = Arc::new(Reader::open(&self.config).await?);
        *slot = Some(Arc::clone(&reader));
        Ok(reader)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failover_timeouts_fill_in_what_the_connection_string_leaves_out_and_never_override_it() {
        let mut config: Config = "postgres://hoso@pg-a,pg-b/hoso?target_session_attrs=read-write"
            .parse()
            .unwrap();
        failover_defaults(&mut config);
        assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(3)));
        assert_eq!(config.get_tcp_user_timeout(), Some(&Duration::from_secs(15)));
        assert_eq!(config.get_keepalives_idle(), Duration::from_secs(10));
        assert_eq!(config.get_keepalives_interval(), Some(Duration::from_secs(3)));
        assert_eq!(config.get_keepalives_retries(), Some(3));

        let mut config: Config = "postgres://hoso@pg-a,pg-b/hoso?connect_timeout=20&tcp_user_timeout=60\
            &keepalives_idle=30&keepalives_interval=7&keepalives_retries=9"
            .parse()
            .unwrap();
        failover_defaults(&mut config);
        assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(20)));
        assert_eq!(config.get_tcp_user_timeout(), Some(&Duration::from_secs(60)));
        assert_eq!(config.get_keepalives_idle(), Duration::from_secs(30));
        assert_eq!(config.get_keepalives_interval(), Some(Duration::from_secs(7)));
        assert_eq!(config.get_keepalives_retries(), Some(9));
    }
}
