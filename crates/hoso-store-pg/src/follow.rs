//! The head follower: learns of appends made by other processes (and other stores of this one).
//!
//! A notification on [`CHANNEL`] is only a wake-up: on each one, and every poll interval
//! whatever happens, the follower reads `next_position` from `hoso_log_head` and moves the
//! head. The row is the truth, so a notification lost (a dropped connection, a pooler that
//! does not pass `LISTEN` on) delays a subscriber by one poll interval at most and loses nothing.

use std::sync::Arc;
use std::time::Duration;

use hoso_store::StoreError;
use tokio::sync::{mpsc, watch};
use tokio_postgres::{AsyncMessage, Config, NoTls};

use crate::conn;
use crate::writer::{CHANNEL, Shared};

/// How long the follower waits before it connects again after a failure.
const RECONNECT_AFTER: Duration = Duration::from_millis(500);

/// Follows the head until `stop` is set or dropped.
pub(crate) async fn run(
    config: Config,
    shared: Arc<Shared>,
    listen: bool,
    poll_interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|stopped| *stopped) => return,
            result = follow(&config, &shared, listen, poll_interval) => {
                if let Err(err) = result {
                    tracing::warn!(error = %err, "the PostgreSQL store lost its follower connection; reconnecting");
                }
            }
        }
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => return,
            () = tokio::time::sleep(RECONNECT_AFTER) => {}
        }
    }
}

/// One connection's life: listen, then read the head on every wake-up and every interval.
async fn follow(config: &Config, shared: &Shared, listen: bool, poll_interval: Duration) -> Result<(), StoreError> {
    let (client, mut connection) = config
        .connect(NoTls)
        .await
        .map_err(|err| conn::unavailable(&err, "cannot connect to PostgreSQL"))?;
    let (wake, mut woken) = mpsc::unbounded_channel();
    // The connection is driven here rather than awaited whole, to hear its notifications.
    tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => {
                    if wake.send(()).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => {
                    tracing::warn!(error = %err, "the PostgreSQL store's follower connection failed");
                    return;
                }
                None => return,
            }
        }
    });
    if listen {
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .map_err(|err| conn::unavailable(&err, "cannot listen for appends"))?;
    }
    let read_head = client
        .prepare("SELECT next_position FROM hoso_log_head")
        .await
        .map_err(|err| conn::unavailable(&err, "cannot prepare the head's read"))?;
    loop {
        let head: i64 = client
            .query_one(&read_head, &[])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(|err| conn::unavailable(&err, "cannot read the log's head"))?;
        shared.advance_head(head.unsigned_abs());
        tokio::select! {
            woke = woken.recv() => {
                if woke.is_none() {
                    return Err(StoreError::Unavailable("the follower's connection to PostgreSQL closed".to_owned()));
                }
                // One read answers every notification that arrived meanwhile.
                while woken.try_recv().is_ok() {}
            }
            () = tokio::time::sleep(poll_interval) => {}
        }
    }
}
