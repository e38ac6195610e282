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
                reason: format!("the index engine reports corruption at {at:?}"),
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
