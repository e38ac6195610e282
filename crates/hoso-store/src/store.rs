//! The two implementations of [`EventStore`]: in memory, and durable on sled.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;
use uuid::Uuid;

use crate::kv::{Kv, MemKv};
use crate::log::{Log, LogOptions};
use crate::segment::{FileSegments, MemSegments, Segments};
use crate::sled_kv::{self, SledKv};
use crate::{
    AppendResult, EventStore, ExpectedVersion, ImportStore, Limits, NewEvent, Position, RecordedEvent, StoreError,
    StreamRead, VerifyReport, VerifyScope, Version,
};

/// Runs a read that may touch many records off the async worker threads.
async fn blocking<S: Segments, K: Kv, T: Send + 'static>(
    log: &Arc<Log<S, K>>,
    f: impl FnOnce(&Log<S, K>) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let log = Arc::clone(log);
    tokio::task::spawn_blocking(move || f(&log))
        .await
        .map_err(|err| StoreError::Io(format!("a store read task failed: {err}")))?
}

macro_rules! delegate_event_store {
    ($store:ty) => {
        impl EventStore for $store {
            async fn append(
                &self,
                stream_id: &str,
                expected: ExpectedVersion,
                events: Vec<NewEvent>,
            ) -> Result<AppendResult, StoreError> {
                self.log.append(stream_id, expected, events).await
            }

            async fn read_stream(&self, stream_id: &str, read: StreamRead) -> Result<Vec<RecordedEvent>, StoreError> {
                self.log.read_stream(stream_id, &read)
            }

            async fn read_all(&self, from: Position, max_count: usize) -> Result<Vec<RecordedEvent>, StoreError> {
                if max_count <= 64 {
                    return self.log.read_all(from, max_count);
                }
                blocking(&self.log, move |log| log.read_all(from, max_count)).await
            }

            async fn event_by_id(&self, event_id: Uuid) -> Result<Option<RecordedEvent>, StoreError> {
                self.log.event_by_id(event_id)
            }

            async fn stream_version(&self, stream_id: &str) -> Result<Option<Version>, StoreError> {
                self.log.stream_version(stream_id)
            }

            fn head(&self) -> Position {
                self.log.head()
            }

            fn store_id(&self) -> Uuid {
                self.id
            }

            fn watch_head(&self) -> watch::Receiver<Position> {
                self.log.watch_head()
            }

            fn write_refusal(&self) -> Option<String> {
                self.log.write_refusal()
            }

            fn quarantined(&self) -> Vec<crate::Quarantined> {
                self.log.quarantined()
            }

            fn write_metrics(&self) -> Option<crate::WriteMetrics> {
                Some(self.log.write_metrics())
            }

            fn index_backlog(&self) -> Option<u64> {
                Some(self.log.index_backlog())
            }

            async fn verify(&self, scope: VerifyScope) -> Result<VerifyReport, StoreError> {
                blocking(&self.log, move |log| log.verify(&scope)).await
            }
        }

        impl ImportStore for $store {
            async fn import(&self, events: Vec<RecordedEvent>) -> Result<Position, StoreError> {
                self.log.import(events).await
            }
        }
    };
}

/// An event store held in memory: for tests and tools. Nothing survives the process, but it
/// keeps every rule the durable store keeps (it shares its code above the engine).
#[derive(Clone)]
pub struct MemoryStore {
    log: Arc<Log<MemSegments, MemKv>>,
    id: Uuid,
}

impl MemoryStore {
    /// An empty store with default limits.
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    /// An empty store with the given limits.
    pub fn with_limits(limits: Limits) -> Self {
        let options = LogOptions {
            limits,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            id_tables: None,
        };
        let log =
            Log::open(MemSegments::default(), MemKv::default(), options).expect("an empty in-memory log always opens");
        MemoryStore {
            log: Arc::new(log),
            id: Uuid::new_v4(),
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

delegate_event_store!(MemoryStore);

/// Options of the sled store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SledOptions {
    /// Request limits.
    pub limits: Limits,
    /// sled's page cache (it holds the indexes only), in bytes. Default 512 MiB.
    pub cache_capacity_bytes: u64,
    /// A segment file is closed and the next one started once it holds this many bytes.
    /// Default 256 MiB. Segments are never deleted: together they are the log.
    pub segment_bytes: u64,
    /// How many bytes past the end of the log are kept zero-filled in the background, so
    /// that appends overwrite zeros instead of growing the file (fdatasync is then cheaper).
    /// Default 16 MiB; 0 switches it off.
    pub zero_fill_ahead_bytes: u64,
    /// The event-id index is kept in tables of this many ids (`ids/`), each written once its
    /// records are durable; the ids of the records after the last table are held in memory.
    /// Default 262,144 (about 6 MiB per table, up to about 10 MiB of memory).
    pub id_table_events: u64,
}

/// The size at which a segment is closed, unless configured otherwise.
const DEFAULT_SEGMENT_BYTES: u64 = 256 << 20;

impl Default for SledOptions {
    fn default() -> Self {
        SledOptions {
            limits: Limits::default(),
            cache_capacity_bytes: 512 << 20,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            zero_fill_ahead_bytes: 16 << 20,
            id_table_events: 1 << 18,
        }
    }
}

/// The id of the store in `dir` (its file `store-id`, a UUID), made and written durably if it
/// has none: a new store, or one made before stores had ids.
fn store_id(dir: &Path) -> Result<Uuid, StoreError> {
    let path = dir.join("store-id");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            return Uuid::parse_str(text.trim()).map_err(|err| {
                StoreError::Io(format!(
                    "the store id in {} is damaged ({err}); write the id of this store back into it (a projection snapshot names it), or remove the file to give the store a new id (its projection snapshot is then replayed once)",
                    path.display()
                ))
            });
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(StoreError::Io(format!("cannot read {}: {err}", path.display()))),
    }
    let id = Uuid::new_v4();
    let temp = dir.join("store-id.tmp");
    let written = std::fs::write(&temp, format!("{id}\n"))
        .and_then(|()| std::fs::File::open(&temp)?.sync_all())
        .and_then(|()| std::fs::rename(&temp, &path))
        .and_then(|()| std::fs::File::open(dir)?.sync_all());
    written.map_err(|err| StoreError::Io(format!("cannot write the store id to {}: {err}", path.display())))?;
    Ok(id)
}

/// The durable event store in one directory: the records in append-only segment files
/// (`log/`), the indexes in an embedded sled database beside them.
///
/// Appends go through one writer thread that encodes every queued append into one buffer,
/// writes it to the current segment and fsyncs once for the whole group before answering any
/// of them. A background indexer moves their index entries to sled afterwards.
#[derive(Clone)]
pub struct SledStore {
    log: Arc<Log<FileSegments, SledKv>>,
    id: Uuid,
}

impl SledStore {
    /// Opens (or creates) the store in directory `path`.
    ///
    /// Indexes found damaged (sled's files or records, which a start refused on a full disk can
    /// leave half-written) are removed and rebuilt from the segments, logged at WARN with what
    /// was removed and how long the rebuild took; damage to the log itself refuses the open.
    pub fn open(path: impl AsRef<Path>, options: SledOptions) -> Result<Self, StoreError> {
        let path = path.as_ref();
        std::fs::create_dir_all(path)
            .map_err(|err| StoreError::Io(format!("cannot create the store directory {}: {err}", path.display())))?;
        let id = store_id(path)?;
        let unfinished = sled_kv::remove_unfinished_snapshots(path)?;
        if !unfinished.is_empty() {
            tracing::warn!(
                store = %path.display(),
                files = ?unfinished,
                "removed the index engine's unfinished snapshot files (left by a write that never completed, such as a start on a full disk)"
            );
        }
        match Self::open_once(path, options, id) {
            Err(StoreError::Corrupted { reason, .. }) if reason.starts_with(crate::core::INDEX_DAMAGED) => {
                let started = std::time::Instant::now();
                let removed = sled_kv::remove_indexes(path)?;
                let store = Self::open_once(path, options, id)?;
                tracing::warn!(
                    store = %path.display(),
                    damage = %reason,
                    removed = ?removed,
                    records = store.head(),
                    seconds = started.elapsed().as_secs_f64(),
                    "the store's indexes were damaged and are rebuilt from the segments: the log was scanned on open and the indexer writes the new index in the background"
                );
                Ok(store)
            }
            other => other,
        }
    }

    fn open_once(path: &Path, options: SledOptions, id: Uuid) -> Result<Self, StoreError> {
        let kv = SledKv::open(path, options.cache_capacity_bytes)?;
        let segments = FileSegments::open(
            &path.join("log"),
            options.zero_fill_ahead_bytes,
            options.segment_bytes.max(1),
        )?;
        let options = LogOptions {
            limits: options.limits,
            segment_bytes: options.segment_bytes.max(1),
            id_tables: Some((path.join("ids"), options.id_table_events.max(1))),
        };
        Ok(SledStore {
            log: Arc::new(Log::open(segments, kv, options)?),
            id,
        })
    }

    /// Answers the queued appends, stops the writer, indexes what is left and flushes sled. Later appends through any
    /// clone fail with [`StoreError::Closed`]; the files are released once every clone is
    /// dropped.
    pub fn close(&self) {
        self.log.close();
    }

    /// Makes the next fsync fail, to test how the store refuses writes after a disk error.
    #[cfg(feature = "failpoints")]
    pub fn fail_next_flush(&self) {
        self.log
            .faults()
            .fail_next_flush
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Makes every write of the log fail for lack of space (`true`), after writing half of its
    /// bytes, until called with `false`: a disk that fills up and is freed again.
    #[cfg(feature = "failpoints")]
    pub fn set_disk_full(&self, full: bool) {
        self.log
            .faults()
            .disk_full
            .store(full, std::sync::atomic::Ordering::SeqCst);
    }

    /// Makes the indexer's next batch fail, as sled's flush fails on a full disk.
    #[cfg(feature = "failpoints")]
    pub fn fail_next_index(&self) {
        self.log
            .faults()
            .fail_next_index
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Keeps the background indexer from indexing any record at or past `position` until
    /// called again (`Position::MAX` releases it), to test reads and recovery while it lags.
    /// Appends stall once the backlog reaches the writer's bound (65,536 records).
    #[cfg(feature = "failpoints")]
    pub fn hold_indexer_at(&self, position: Position) {
        self.log.hold_indexer_at(position);
    }

    /// A watch of the first position whose index entries sled does not hold yet.
    #[cfg(feature = "failpoints")]
    pub fn watch_indexed(&self) -> watch::Receiver<Position> {
        self.log.watch_indexed()
    }
}

delegate_event_store!(SledStore);
