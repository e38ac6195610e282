//! The durable index engine: sled, holding only the indexes and the metadata (small values).
//!
//! Nothing on the acknowledgement path writes to sled: the background indexer applies index
//! entries in large atomic batches once their records are durable in the segments. sled
//! flushes itself in the background every `FLUSH_EVERY_MS`; after a crash it recovers a
//! prefix of the batches, and recovery re-indexes the rest from the segments, so the index
//! never needs to be flushed on the acknowledgement path.

use std::ops::Bound;
use std::path::Path;

use crate::StoreError;
use crate::kv::Kv;

/// sled's own background flush interval.
const FLUSH_EVERY_MS: u64 = 1_000;

pub(crate) struct SledKv {
    db: sled::Db,
}

impl From<sled::Error> for StoreError {
    fn from(err: sled::Error) -> Self {
        match err {
            sled::Error::Corruption { at, .. } => StoreError::Corrupted {
                position: 0,
                reason: format!(
                    "{}the index engine reports corruption at {at:?}",
                    crate::core::INDEX_DAMAGED
                ),
            },
            other => StoreError::Io(other.to_string()),
        }
    }
}

impl SledKv {
    /// Opens sled's database in `path`. A store closed a moment ago may still be letting go of
    /// its lock file (sled's I/O threads drop their handles shortly after the database), so a
    /// lock that is held is tried again for up to `LOCK_PATIENCE` before giving up.
    pub(crate) fn open(path: &Path, cache_capacity_bytes: u64) -> Result<Self, StoreError> {
        const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);
        let started = std::time::Instant::now();
        loop {
            let opened = sled::Config::new()
                .path(path)
                .cache_capacity(cache_capacity_bytes)
                .flush_every_ms(Some(FLUSH_EVERY_MS))
                .mode(sled::Mode::HighThroughput)
                .open();
            match opened {
                Ok(db) => return Ok(SledKv { db }),
                Err(sled::Error::Io(err)) if lock_held(&err) && started.elapsed() < LOCK_PATIENCE => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                // sled's own words for a held lock quote Rust's debug form of the OS error: say
                // what it means and what to do instead.
                Err(sled::Error::Io(err)) if lock_held(&err) => {
                    return Err(StoreError::Io(format!(
                        "cannot open the store at {}: another process (another hoso server?) is using this data directory; stop it, or give this server its own data directory",
                        path.display()
                    )));
                }
                Err(sled::Error::Io(err)) => {
                    return Err(StoreError::Io(format!(
                        "cannot open the store at {}: {err}",
                        path.display()
                    )));
                }
                Err(other) => return Err(other.into()),
            }
        }
    }
}

/// Removes what is left of a snapshot sled never finished writing (`snap.*.generating`: sled
/// renames a snapshot only after syncing it, and keeps the previous one until then). A start
/// refused on a full disk leaves one, 0 bytes long, and sled reads the newest snapshot file,
/// that one, as corruption on every later open. Returns the files removed. (The lock taken
/// here is released when `lock` is dropped on return, before sled takes it.)
pub(crate) fn remove_unfinished_snapshots(path: &Path) -> Result<Vec<String>, StoreError> {
    let mut removed = Vec::new();
    // Only while no other process has the database open (sled holds a lock on `db`): a running
    // server's snapshot in progress is not a leftover.
    let lock = std::fs::File::open(path.join("db")).ok();
    if let Some(db) = &lock
        && rustix::fs::flock(db, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err()
    {
        return Ok(removed);
    }
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(err) => return Err(StoreError::Io(format!("cannot list {}: {err}", path.display()))),
    };
    for entry in entries {
        let entry = entry.map_err(|err| StoreError::Io(format!("cannot list {}: {err}", path.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            std::fs::remove_file(entry.path())
                .map_err(|err| StoreError::Io(format!("cannot remove {}: {err}", entry.path().display())))?;
            removed.push(name);
        }
    }
    Ok(removed)
}

/// Removes the index engine's files (sled's `conf`, `db`, `snap.*`, `blobs/`) and the id tables
/// (`ids/`) from a store directory: all of it derived from the segments, which are kept.
/// Returns the names removed.
pub(crate) fn remove_indexes(path: &Path) -> Result<Vec<String>, StoreError> {
    let mut removed = Vec::new();
    let entries =
        std::fs::read_dir(path).map_err(|err| StoreError::Io(format!("cannot list {}: {err}", path.display())))?;
    for entry in entries {
        let entry = entry.map_err(|err| StoreError::Io(format!("cannot list {}: {err}", path.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(matches!(name.as_str(), "conf" | "db" | "blobs" | "ids") || name.starts_with("snap.")) {
            continue;
        }
        let target = entry.path();
        let result = if target.is_dir() {
            std::fs::remove_dir_all(&target)
        } else {
            std::fs::remove_file(&target)
        };
        result.map_err(|err| StoreError::Io(format!("cannot remove {}: {err}", target.display())))?;
        removed.push(name);
    }
    std::fs::File::open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(|err| StoreError::Io(format!("cannot sync the directory {}: {err}", path.display())))?;
    Ok(removed)
}

/// Whether sled could not open because its lock file is held. sled 0.34 reports that as an
/// error of kind `Other` whose message names the lock (with the `WouldBlock` of the `flock`
/// inside), so the kind alone does not tell.
fn lock_held(err: &std::io::Error) -> bool {
    err.kind() == std::io::ErrorKind::WouldBlock || err.to_string().contains("could not acquire lock")
}

impl Kv for SledKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(key)?.map(|v| v.to_vec()))
    }

    fn scan<F>(&self, start: &[u8], end: &[u8], reverse: bool, mut visit: F) -> Result<(), StoreError>
    where
        F: FnMut(&[u8], &[u8]) -> Result<bool, StoreError>,
    {
        let range = self
            .db
            .range::<&[u8], _>((Bound::Included(start), Bound::Excluded(end)));
        if reverse {
            for entry in range.rev() {
                let (k, v) = entry?;
                if !visit(&k, &v)? {
                    break;
                }
            }
        } else {
            for entry in range {
                let (k, v) = entry?;
                if !visit(&k, &v)? {
                    break;
                }
            }
        }
        Ok(())
    }

    fn apply(&self, writes: Vec<(Vec<u8>, Vec<u8>)>) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (k, v) in writes {
            batch.insert(k, v);
        }
        Ok(self.db.apply_batch(batch)?)
    }

    fn remove(&self, keys: Vec<Vec<u8>>) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for k in keys {
            batch.remove(k);
        }
        Ok(self.db.apply_batch(batch)?)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.db.is_empty())
    }
}
