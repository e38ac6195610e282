//! The durable engine: sled for storage and lookups, plus a journal for group commit.
//!
//! sled's own `flush` costs about a millisecond, too much to pay per group of appends. So
//! every atomic batch applied to sled is also appended to a journal file, and a group of
//! appends is acknowledged once the journal is fdatasync'd (a fraction of a millisecond).
//! sled is flushed in the background when a journal segment fills up, after which that
//! segment is deleted. On open, journal entries that sled lost are re-applied in order.
//!
//! Journal segments live in `<store>/journal/<sequence>.journal`, each a series of entries:
//! `u32 payload length ‖ u32 CRC-32 of the payload ‖ payload`, where the payload is
//! `u32 count ‖ (u32 key length ‖ key ‖ u32 value length ‖ value) × count`, the writes of
//! one atomic batch. All integers are big-endian.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use crate::StoreError;
use crate::kv::{self, Kv};

/// A segment is closed and handed to the checkpointer once it grows past this size.
const SEGMENT_BYTES: u64 = 64 << 20;
const ENTRY_HEADER: usize = 8;

pub(crate) struct SledKv {
    db: sled::Db,
    journal: Mutex<Journal>,
    checkpointer: Mutex<Option<(mpsc::Sender<PathBuf>, JoinHandle<()>)>>,
}

struct Journal {
    dir: PathBuf,
    file: Arc<File>,
    sequence: u64,
    len: u64,
    buffer: Vec<u8>,
}

impl From<sled::Error> for StoreError {
    fn from(err: sled::Error) -> Self {
        match err {
            sled::Error::Corruption { at, .. } => StoreError::Corrupted {
                position: 0,
                reason: format!("the storage engine reports corruption at {at:?}"),
            },
            other => StoreError::Io(other.to_string()),
        }
    }
}

fn io(context: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> StoreError {
    move |err| StoreError::Io(format!("{context}: {err}"))
}

impl SledKv {
    pub(crate) fn open(path: &Path, cache_capacity_bytes: u64) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_capacity_bytes)
            // The journal makes appends durable; sled is flushed when a segment fills up.
            .flush_every_ms(None)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|err| match err {
                sled::Error::Io(err) => StoreError::Io(format!("cannot open the store at {}: {err}", path.display())),
                other => other.into(),
            })?;
        let dir = path.join("journal");
        fs::create_dir_all(&dir).map_err(io(format!("cannot create {}", dir.display())))?;
        let last_sequence = recover(&db, &dir)?;

        let sequence = last_sequence + 1;
        let file = create_segment(&dir, sequence)?;
        let (tx, rx) = mpsc::channel();
        let checkpoint_db = db.clone();
        let handle = std::thread::Builder::new()
            .name("hoso-store-checkpoint".to_owned())
            .spawn(move || checkpoint(checkpoint_db, rx))
            .map_err(io("cannot start the checkpoint thread"))?;
        Ok(SledKv {
            db,
            journal: Mutex::new(Journal {
                dir,
                file: Arc::new(file),
                sequence,
                len: 0,
                buffer: Vec::new(),
            }),
            checkpointer: Mutex::new(Some((tx, handle))),
        })
    }

    fn journal(&self) -> Result<std::sync::MutexGuard<'_, Journal>, StoreError> {
        self.journal
            .lock()
            .map_err(|_| StoreError::Io("the journal lock was poisoned by a panic".to_owned()))
    }
}

impl Drop for SledKv {
    fn drop(&mut self) {
        if let Ok(mut checkpointer) = self.checkpointer.lock()
            && let Some((tx, handle)) = checkpointer.take()
        {
            drop(tx);
            let _ = handle.join();
        }
        // Leave sled flushed and the journal empty, so that the next open replays nothing.
        if self.db.flush().is_ok()
            && let Ok(journal) = self.journal.lock()
            && let Ok(entries) = fs::read_dir(&journal.dir)
        {
            for entry in entries.flatten() {
                if entry.file_name().to_str().is_some_and(|n| n.ends_with(".journal")) {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
    }
}

fn segment_path(dir: &Path, sequence: u64) -> PathBuf {
    dir.join(format!("{sequence:016}.journal"))
}

fn create_segment(dir: &Path, sequence: u64) -> Result<File, StoreError> {
    let path = segment_path(dir, sequence);
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(io(format!("cannot create journal segment {}", path.display())))?;
    // The new file's name must be durable before anything in it is acknowledged.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("cannot sync directory {}", dir.display())))?;
    Ok(file)
}

/// Re-applies journal entries that sled lost, flushes sled, removes the old segments and
/// returns the highest segment sequence seen.
fn recover(db: &sled::Db, dir: &Path) -> Result<u64, StoreError> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(format!("cannot read {}", dir.display())))? {
        let entry = entry.map_err(io(format!("cannot read {}", dir.display())))?;
        let name = entry.file_name();
        let Some(sequence) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".journal"))
            .and_then(|n| n.parse().ok())
        else {
            continue;
        };
        segments.push((sequence, entry.path()));
    }
    segments.sort();
    let Some(&(last_sequence, _)) = segments.last() else {
        return Ok(0);
    };

    // sled holds a prefix of the batches, in journal order: skip what it has.
    let mut stored_end = 0u64;
    let start = kv::event_key(0);
    let end = kv::event_key(u64::MAX);
    if let Some(last) = db
        .range::<&[u8], _>((Bound::Included(&start[..]), Bound::Excluded(&end[..])))
        .next_back()
    {
        let (key, _) = last?;
        stored_end = kv::parse_u64(&key[1..]).map_or(0, |p| p + 1);
    }
    for (i, (_, path)) in segments.iter().enumerate() {
        let is_last = i + 1 == segments.len();
        let bytes = fs::read(path).map_err(io(format!("cannot read journal segment {}", path.display())))?;
        let mut at = 0;
        while at < bytes.len() {
            let Some((writes, next)) = parse_entry(&bytes, at) else {
                if is_last {
                    // A torn tail: the append it held was never acknowledged.
                    break;
                }
                return Err(StoreError::Corrupted {
                    position: 0,
                    reason: format!("journal segment {} is damaged at byte {at}", path.display()),
                });
            };
            at = next;
            let first_event = writes
                .iter()
                .filter(|(k, _)| k.first() == Some(&b'e'))
                .filter_map(|(k, _)| kv::parse_u64(&k[1..]))
                .min();
            if first_event.is_some_and(|p| p < stored_end) {
                continue;
            }
            // A batch without events (the format version) is replayed only where sled lacks it.
            if first_event.is_none() && writes.iter().any(|(k, _)| db.contains_key(k).unwrap_or(true)) {
                continue;
            }
            if let Some(p) = first_event {
                stored_end = stored_end.max(p + writes.iter().filter(|(k, _)| k.first() == Some(&b'e')).count() as u64);
            }
            let mut batch = sled::Batch::default();
            for (k, v) in writes {
                batch.insert(k, v);
            }
            db.apply_batch(batch)?;
        }
    }
    db.flush()?;
    for (_, path) in &segments {
        fs::remove_file(path).map_err(io(format!("cannot remove journal segment {}", path.display())))?;
    }
    Ok(last_sequence)
}

type Writes = Vec<(Vec<u8>, Vec<u8>)>;

fn encode_entry(writes: &Writes, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; ENTRY_HEADER]);
    // Keys and values are far below 4 GiB: events are limited to a few MiB.
    out.extend_from_slice(&(writes.len() as u32).to_be_bytes());
    for (k, v) in writes {
        out.extend_from_slice(&(k.len() as u32).to_be_bytes());
        out.extend_from_slice(k);
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        out.extend_from_slice(v);
    }
    let payload_len = (out.len() - start - ENTRY_HEADER) as u32;
    let crc = crc32fast::hash(&out[start + ENTRY_HEADER..]);
    out[start..start + 4].copy_from_slice(&payload_len.to_be_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
}

/// Parses the entry at `at`; `None` if it is torn or damaged.
fn parse_entry(bytes: &[u8], at: usize) -> Option<(Writes, usize)> {
    let u32_at = |i: usize| Some(u32::from_be_bytes(bytes.get(i..i + 4)?.try_into().ok()?) as usize);
    let len = u32_at(at)?;
    let crc = u32_at(at + 4)? as u32;
    let payload = bytes.get(at + ENTRY_HEADER..(at + ENTRY_HEADER).checked_add(len)?)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    let mut i = 4;
    let count = u32::from_be_bytes(payload.get(..4)?.try_into().ok()?) as usize;
    let mut writes = Vec::with_capacity(count.min(4096));
    let take = |i: &mut usize| -> Option<Vec<u8>> {
        let n = u32::from_be_bytes(payload.get(*i..*i + 4)?.try_into().ok()?) as usize;
        let v = payload.get(*i + 4..(*i + 4).checked_add(n)?)?.to_vec();
        *i += 4 + n;
        Some(v)
    };
    for _ in 0..count {
        let k = take(&mut i)?;
        let v = take(&mut i)?;
        writes.push((k, v));
    }
    (i == payload.len()).then_some((writes, at + ENTRY_HEADER + len))
}

/// Flushes sled whenever segments are closed, then deletes them: what they hold is in sled.
fn checkpoint(db: sled::Db, closed: mpsc::Receiver<PathBuf>) {
    while let Ok(first) = closed.recv() {
        let mut paths = vec![first];
        paths.extend(closed.try_iter());
        // Every batch in a closed segment was applied to sled before the segment was closed,
        // so this flush covers them. If it fails the segments stay and are replayed on open.
        if db.flush().is_ok() {
            for path in paths {
                let _ = fs::remove_file(path);
            }
        }
    }
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
        let mut journal = self.journal()?;
        encode_entry(&writes, &mut journal.buffer);
        let mut batch = sled::Batch::default();
        for (k, v) in writes {
            batch.insert(k, v);
        }
        Ok(self.db.apply_batch(batch)?)
    }

    fn write_out(&self) -> Result<(), StoreError> {
        let mut journal = self.journal()?;
        if journal.buffer.is_empty() {
            return Ok(());
        }
        let buffer = std::mem::take(&mut journal.buffer);
        (&*journal.file)
            .write_all(&buffer)
            .map_err(io("cannot write the journal"))?;
        journal.len += buffer.len() as u64;
        journal.buffer = buffer;
        journal.buffer.clear();
        if journal.len >= SEGMENT_BYTES {
            // Close the segment: make it durable, start the next one, and let the
            // checkpointer retire it once sled has flushed what it holds.
            journal.file.sync_data().map_err(io("cannot sync the journal"))?;
            let closed = segment_path(&journal.dir, journal.sequence);
            journal.sequence += 1;
            journal.file = Arc::new(create_segment(&journal.dir, journal.sequence)?);
            journal.len = 0;
            if let Ok(checkpointer) = self.checkpointer.lock()
                && let Some((tx, _)) = checkpointer.as_ref()
            {
                let _ = tx.send(closed);
            }
        }
        Ok(())
    }

    fn sync(&self) -> Result<(), StoreError> {
        let file = Arc::clone(&self.journal()?.file);
        file.sync_data().map_err(io("cannot sync the journal"))
    }

    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.db.is_empty())
    }
}
