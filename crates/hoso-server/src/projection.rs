//! The live projection: the dossier read model kept up to date from the store's subscription,
//! and rebuilt from the whole log on demand beside the live one, then swapped in.
//!
//! The model lives in memory. When the server starts it is loaded from its snapshot
//! ([`crate::snapshot`]: the model and its checkpoint in one file, written atomically) and caught
//! up from the snapshot's checkpoint, or replayed from position 0 when there is no usable
//! snapshot. Nothing can be counted twice or skipped: the checkpoint is saved with the state it
//! belongs to, every event after it is applied once, in `$all` order, and an event out of order
//! stops the projection. Queries wait until the model has applied everything that was durable
//! when they arrived, so a figure never misses an event recorded by its cut-off.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hoso_projections::{Dossiers, ProjectionError};
use hoso_store::{EventStore, Position, StoreError};
use tokio::sync::{RwLock, RwLockReadGuard, watch};

/// Progress of a rebuild.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RebuildProgress {
    /// Events applied so far.
    pub done: Position,
    /// Events to apply.
    pub total: Position,
    /// Rate so far.
    pub events_per_second: f64,
    /// Estimated time left.
    pub seconds_left: f64,
    /// Whether the rebuilt model has been swapped in.
    pub swapped: bool,
}

/// Why the projection stopped following the log: an event it cannot read or apply. No retry
/// fixes that; the log must be repaired (docs/operations.md) and the projection rebuilt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// The position of the event it could not get past.
    pub position: Position,
    /// Whether stored bytes are damaged or lost (`Corrupted`, an undecodable event): the
    /// answer is DATA_LOSS; otherwise FAILED_PRECONDITION.
    pub data_loss: bool,
    /// What is wrong, naming the segment file and byte offset where the store knows them.
    pub reason: String,
}

impl Stopped {
    fn of(err: &ProjectionError, position: Position) -> Stopped {
        match err {
            ProjectionError::Store(StoreError::Corrupted { position, reason }) => Stopped {
                position: *position,
                data_loss: true,
                reason: format!("the record at position {position} is damaged: {reason}"),
            },
            ProjectionError::Undecodable { position, .. } => Stopped {
                position: *position,
                data_loss: true,
                reason: err.to_string(),
            },
            other => Stopped {
                position,
                data_loss: false,
                reason: other.to_string(),
            },
        }
    }

    /// What a client is told (as DATA_LOSS, or FAILED_PRECONDITION: `crate::error::to_status`),
    /// never "retry", because retrying cannot help.
    pub fn message(&self) -> String {
        format!(
            "the projection stopped at position {}: {}; the figures cannot be computed until an operator repairs the log and rebuilds the projection (docs/operations.md: the projection stopped)",
            self.position, self.reason
        )
    }
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stopped at position {}: {}", self.position, self.reason)
    }
}

/// The projection's reads failing while the store's database is unavailable: waits between
/// attempts, doubling up to a bound, and logs the outage's start and end once each.
#[derive(Default)]
struct Outage {
    since: Option<Instant>,
    wait: Duration,
}

impl Outage {
    const FIRST_WAIT: Duration = Duration::from_millis(50);
    const LONGEST_WAIT: Duration = Duration::from_secs(2);

    async fn wait(&mut self, reason: &str) {
        if self.since.is_none() {
            tracing::warn!(%reason, "the projection cannot read the log: the store's database is unavailable; reading again until it is back");
            self.since = Some(Instant::now());
            self.wait = Self::FIRST_WAIT;
        }
        tokio::time::sleep(self.wait).await;
        self.wait = (self.wait * 2).min(Self::LONGEST_WAIT);
    }

    fn over(&mut self) {
        if let Some(since) = self.since.take() {
            tracing::info!(
                seconds = since.elapsed().as_secs_f64(),
                "the projection reads the log again"
            );
        }
    }
}

/// The live projection.
pub struct Projection {
    model: RwLock<Dossiers>,
    applied: watch::Sender<Position>,
    rebuilding: AtomicBool,
    /// Set when following the log stopped on an event it cannot get past; cleared by a rebuild
    /// that got past it.
    stopped: Mutex<Option<Stopped>>,
    /// The checkpoint of the snapshot on disk (loaded or last saved); held while one is saved.
    saved: Mutex<Position>,
    /// When the snapshot on disk was last known current (written, loaded as of its file's
    /// time, or found up to date); the start until then.
    snapshot_current_at: Mutex<Instant>,
    /// For each event applied while following the log, seconds from its `recorded_at` to its
    /// application (`/metrics`).
    lag: prometheus_client::metrics::histogram::Histogram,
}

/// The buckets of the projection's lag: 1 ms to about 65 s.
fn lag_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 17)
}

/// A snapshot written by [`Projection::save_snapshot`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SavedSnapshot {
    /// Its checkpoint.
    pub events: Position,
    /// Its dossiers.
    pub dossiers: usize,
    /// Its size.
    pub bytes: usize,
    /// How long encoding it took (under the model's read lock).
    pub encode_seconds: f64,
    /// How long encoding and writing it took.
    pub seconds: f64,
}

impl Projection {
    /// An empty projection; call [`Projection::follow`] to keep it up to date.
    pub fn new() -> Arc<Projection> {
        Arc::new(Projection {
            model: RwLock::new(Dossiers::new()),
            applied: watch::channel(0).0,
            rebuilding: AtomicBool::new(false),
            stopped: Mutex::new(None),
            saved: Mutex::new(0),
            snapshot_current_at: Mutex::new(Instant::now()),
            lag: prometheus_client::metrics::histogram::Histogram::new(lag_buckets()),
        })
    }

    /// The histogram of the lag from an event's recording to its application (clones share it).
    pub fn lag_histogram(&self) -> prometheus_client::metrics::histogram::Histogram {
        self.lag.clone()
    }

    /// How long ago the snapshot on disk was last known current (since the start if never).
    pub fn snapshot_current_for(&self) -> Duration {
        self.snapshot_current_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }

    fn snapshot_current_since(&self, at: Instant) {
        *self.snapshot_current_at.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }

    /// Loads the snapshot at `path` (an empty model if there is none, or none usable: see
    /// [`crate::snapshot::load_for`]), to start [`Projection::follow`] from.
    pub async fn load_snapshot<S: EventStore>(&self, path: PathBuf, store: &S) -> Dossiers {
        let written = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        let model = crate::snapshot::load_for(path, store).await;
        *self.saved.lock().unwrap_or_else(|e| e.into_inner()) = model.checkpoint();
        let age = written.and_then(|at| at.elapsed().ok());
        if model.checkpoint() > 0
            && let Some(at) = age.and_then(|age| Instant::now().checked_sub(age))
        {
            self.snapshot_current_since(at);
        }
        model
    }

    /// Saves the model to `path` atomically, if its checkpoint moved since the snapshot on disk
    /// (`None` otherwise). The model is encoded under its read lock, on a blocking thread, and
    /// written after the lock is released; saves are serialized, and one that was started runs
    /// to its end even if its caller goes away.
    /// The snapshot names the log of the store `store_id`.
    pub async fn save_snapshot(
        self: &Arc<Self>,
        path: PathBuf,
        store_id: uuid::Uuid,
    ) -> anyhow::Result<Option<SavedSnapshot>> {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut saved = this.saved.lock().unwrap_or_else(|e| e.into_inner());
            let started = Instant::now();
            let model = this.model.blocking_read();
            let events = model.checkpoint();
            if events <= *saved {
                this.snapshot_current_since(started);
                return Ok(None);
            }
            let dossiers = model.histories().len();
            let bytes = model.encode_snapshot(store_id);
            drop(model);
            let encode_seconds = started.elapsed().as_secs_f64();
            crate::snapshot::write_atomically(&path, &bytes)?;
            *saved = events;
            this.snapshot_current_since(Instant::now());
            Ok(Some(SavedSnapshot {
                events,
                dossiers,
                bytes: bytes.len(),
                encode_seconds,
                seconds: started.elapsed().as_secs_f64(),
            }))
        })
        .await?
    }

    /// Follows the store from `start` (an empty model, or one loaded from a snapshot), forever
    /// (until the store closes or an event cannot be applied, which is logged).
    ///
    /// `start` first catches up with the log from its checkpoint in batches, beside the live
    /// model (which keeps answering status queries), logging its progress; it is then swapped in
    /// and follows the subscription event by event. While the store's database is unavailable
    /// (PostgreSQL restarting or failing over) it reads again, more and more slowly, from where
    /// it was: that failure is not the log's.
    pub async fn follow<S: EventStore>(self: Arc<Self>, store: S, start: Dossiers) {
        let mut outage = Outage::default();
        if start.checkpoint() > 0 || store.head() > 0 {
            let started = Instant::now();
            let mut last = Instant::now();
            let mut fresh = start;
            let from = fresh.checkpoint();
            loop {
                let caught_up = fresh
                    .catch_up(&store, |done, total| {
                        if last.elapsed() >= Duration::from_secs(2) {
                            last = Instant::now();
                            tracing::info!(done, total, "the projection is catching up with the log");
                        }
                    })
                    .await;
                match caught_up {
                    Ok(_) => break,
                    Err(ProjectionError::Store(StoreError::Unavailable(reason))) => outage.wait(&reason).await,
                    Err(err) => {
                        self.stop(Stopped::of(&err, fresh.checkpoint()));
                        return;
                    }
                }
            }
            outage.over();
            let mut live = self.model.write().await;
            // A rebuild may have been swapped in meanwhile, further ahead.
            if live.checkpoint() < fresh.checkpoint() {
                *live = fresh;
            }
            let applied = live.checkpoint();
            drop(live);
            self.applied.send_replace(applied);
            tracing::info!(
                events = applied,
                from,
                seconds = started.elapsed().as_secs_f64(),
                "the projection caught up with the log"
            );
        }
        let from = self.model.read().await.checkpoint();
        let mut subscription = store.subscribe_all(from);
        loop {
            let record = match subscription.next().await {
                Ok(record) => {
                    outage.over();
                    record
                }
                Err(StoreError::Closed) => return,
                Err(StoreError::Unavailable(reason)) => {
                    outage.wait(&reason).await;
                    continue;
                }
                Err(err) => {
                    let at = self.applied();
                    self.stop(Stopped::of(&ProjectionError::Store(err), at));
                    return;
                }
            };
            let mut model = self.model.write().await;
            // After a rebuild was swapped in, the model may already hold this event.
            if record.position < model.checkpoint() {
                continue;
            }
            if let Err(err) = model.apply(&record) {
                drop(model);
                self.stop(Stopped::of(&err, record.position));
                return;
            }
            let applied = model.checkpoint();
            drop(model);
            // Observed before the queries waiting for this event are woken. A clock step back
            // makes a negative lag: counted as none.
            let lag = (chrono::Utc::now() - record.recorded_at).to_std().unwrap_or_default();
            self.lag.observe(lag.as_secs_f64());
            self.applied.send_replace(applied);
        }
    }

    fn stop(&self, stopped: Stopped) {
        tracing::error!(
            position = stopped.position,
            reason = %stopped.reason,
            "the projection stopped following the log: reports answer DATA_LOSS until the log is repaired and the projection rebuilt (docs/operations.md: the projection stopped)"
        );
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = Some(stopped);
    }

    /// Why the projection stopped following the log, `None` while it follows it.
    pub fn stopped(&self) -> Option<Stopped> {
        self.stopped.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The events applied so far.
    pub fn applied(&self) -> Position {
        *self.applied.borrow()
    }

    /// Whether a rebuild is running.
    pub fn is_rebuilding(&self) -> bool {
        self.rebuilding.load(Ordering::SeqCst)
    }

    /// The model once it has applied every event before `position`; `Err(applied)` if it has
    /// not within `patience`.
    pub async fn read_at(
        &self,
        position: Position,
        patience: Duration,
    ) -> Result<RwLockReadGuard<'_, Dossiers>, Position> {
        let mut applied = self.applied.subscribe();
        let caught_up =
            tokio::time::timeout(patience, async { applied.wait_for(|&p| p >= position).await.is_ok() }).await;
        if caught_up == Ok(true) {
            Ok(self.model.read().await)
        } else {
            Err(self.applied())
        }
    }

    /// Rebuilds the model from the whole log beside the live one, reporting progress, then
    /// swaps it in. Refused while another rebuild runs.
    ///
    /// A rebuild that cannot get past an event answers why ([`Stopped`]); one that gets to the
    /// head clears the live projection's [`Projection::stopped`] but does not restart its
    /// following (a restart of the server does).
    pub async fn rebuild<S: EventStore>(
        &self,
        store: &S,
        mut progress: impl FnMut(RebuildProgress),
    ) -> Result<(), Stopped> {
        if self.rebuilding.swap(true, Ordering::SeqCst) {
            return Err(Stopped {
                position: self.applied(),
                data_loss: false,
                reason: "a rebuild is already running".to_owned(),
            });
        }
        let result = async {
            let started = Instant::now();
            let report = |done: Position, total: Position, swapped: bool| {
                let seconds = started.elapsed().as_secs_f64().max(1e-9);
                let rate = done as f64 / seconds;
                RebuildProgress {
                    done,
                    total,
                    events_per_second: rate,
                    seconds_left: if rate > 0.0 {
                        total.saturating_sub(done) as f64 / rate
                    } else {
                        0.0
                    },
                    swapped,
                }
            };
            let mut fresh = Dossiers::new();
            if let Err(err) = fresh
                .catch_up(store, |done, total| progress(report(done, total, false)))
                .await
            {
                let stopped = Stopped::of(&err, fresh.checkpoint());
                self.stop(stopped.clone());
                return Err(stopped);
            }
            // The last events, under the write lock, so that nothing lands between the catch-up
            // and the swap.
            let mut live = self.model.write().await;
            let position = match fresh.catch_up(store, |_, _| {}).await {
                Ok(position) => position,
                Err(err) => {
                    drop(live);
                    let stopped = Stopped::of(&err, fresh.checkpoint());
                    self.stop(stopped.clone());
                    return Err(stopped);
                }
            };
            *live = fresh;
            drop(live);
            self.applied.send_replace(position);
            *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = None;
            progress(report(position, position, true));
            Ok(())
        }
        .await;
        self.rebuilding.store(false, Ordering::SeqCst);
        result
    }

    /// The number of dossiers in the model.
    pub async fn dossiers(&self) -> usize {
        self.model.read().await.histories().len()
    }
}
