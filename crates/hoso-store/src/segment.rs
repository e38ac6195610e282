//! The log's own files: append-only segments of framed records, and reading them back.
//!
//! Segments are `<store>/log/<sequence>.segment`, the sequence starting at 1 and written with
//! ten digits so that names sort in log order. A segment is a series of entries
//! `u32 record length ‖ u32 CRC-32 of the record ‖ record` (big-endian), the record being the
//! encoding of `record`. Records follow each other in `$all` order, across segments; nothing
//! is ever rewritten or deleted, except a torn tail that recovery cuts off.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;

use crate::background::FsyncWindow;
use crate::{Position, StoreError};

/// Bytes before each record: its length and its CRC-32.
pub(crate) const ENTRY_HEADER: usize = 8;

/// Where a record is: its segment, the offset of its entry in the segment, and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Location {
    pub(crate) segment: u32,
    pub(crate) offset: u64,
    pub(crate) len: u32,
}

impl Location {
    /// Encoded size: segment (u32) ‖ offset (u64) ‖ length (u32).
    pub(crate) const BYTES: usize = 16;

    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.segment.to_be_bytes());
        out.extend_from_slice(&self.offset.to_be_bytes());
        out.extend_from_slice(&self.len.to_be_bytes());
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<Location> {
        if bytes.len() != Self::BYTES {
            return None;
        }
        Some(Location {
            segment: u32::from_be_bytes(bytes[0..4].try_into().ok()?),
            offset: u64::from_be_bytes(bytes[4..12].try_into().ok()?),
            len: u32::from_be_bytes(bytes[12..16].try_into().ok()?),
        })
    }

    /// The offset just past this entry.
    pub(crate) fn end(&self) -> u64 {
        self.offset + ENTRY_HEADER as u64 + u64::from(self.len)
    }
}

/// Checks one entry's header against `record`: the CRC-32 matches.
fn crc_matches(header: &[u8], record: &[u8]) -> bool {
    header.len() >= ENTRY_HEADER && header[4..8] == crc32fast::hash(record).to_be_bytes()
}

/// The segment files of one log: created, appended to, synced and read by offset.
pub(crate) trait Segments: Send + Sync + 'static {
    /// The sequences of every segment, in order.
    fn list(&self) -> Result<Vec<u32>, StoreError>;
    /// Whether the segment exists.
    fn exists(&self, segment: u32) -> bool;
    /// The segment's length in bytes.
    fn len(&self, segment: u32) -> Result<u64, StoreError>;
    /// Creates an empty segment whose name is durable once this returns.
    fn create(&self, segment: u32) -> Result<(), StoreError>;
    /// Writes `bytes` at `offset` (the writer only ever writes at the end).
    fn write_at(&self, segment: u32, offset: u64, bytes: &[u8]) -> Result<(), StoreError>;
    /// Makes everything written to the segment durable (fdatasync).
    fn sync(&self, segment: u32) -> Result<(), StoreError>;
    /// Reads from `offset` into `buf` as far as the segment goes; returns the bytes read.
    fn read_at(&self, segment: u32, offset: u64, buf: &mut [u8]) -> Result<usize, StoreError>;
    /// Cuts the segment to `len` bytes, durably.
    fn truncate(&self, segment: u32, len: u64) -> Result<(), StoreError>;
    /// The segment's name, for error messages.
    fn name(&self, segment: u32) -> String;
    /// Tells where the writer's next entry goes: the bytes past it may be zero-filled ahead
    /// of the writer, so that its writes do not grow the file.
    fn writing_at(&self, segment: u32, offset: u64);
    /// Waits until an fsync of the log is in flight, or a few milliseconds: the time when
    /// background work delays no append (see `background`).
    fn background_turn(&self);
    /// Keeps `bytes` cut off the log in a quarantine file named `name`, durably, beside the
    /// log; returns the file's path.
    fn quarantine(&self, name: &str, bytes: &[u8]) -> Result<String, StoreError>;
    /// The quarantine files kept so far: their names and sizes.
    fn quarantined(&self) -> Result<Vec<(String, u64)>, StoreError>;
}

/// How the message of an `Io` error begins when a write of the log failed for lack of space
/// (ENOSPC or EDQUOT): the one write failure after which the writer may resume by itself.
pub(crate) const NO_SPACE: &str = "no space left for the log: ";

/// Whether `err` is a write of the log that failed for lack of space.
pub(crate) fn is_no_space(err: &StoreError) -> bool {
    matches!(err, StoreError::Io(message) if message.starts_with(NO_SPACE))
}

/// The error of a failed write of a segment, marked with `NO_SPACE` when space ran out.
fn write_failed(name: &str, err: std::io::Error) -> StoreError {
    use std::io::ErrorKind;
    match err.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => {
            StoreError::Io(format!("{NO_SPACE}cannot write segment {name}: {err}"))
        }
        _ => StoreError::Io(format!("cannot write segment {name}: {err}")),
    }
}

/// An I/O error with its context. On paths taken for every append or read, call it inside
/// `map_err(|err| ...)` so that the context is only formatted for an error.
fn io(context: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> StoreError {
    move |err| StoreError::Io(format!("{context}: {err}"))
}

/// Segments as files in one directory, with a background thread that keeps the bytes
/// ahead of the writer zero-filled (as PostgreSQL does with its WAL): `fdatasync` after a
/// write that grows a file also has to commit the file's new size, which costs about twice
/// as much on the disks we measured.
pub(crate) struct FileSegments {
    inner: Arc<Files>,
    zero_filler: Mutex<Option<JoinHandle<()>>>,
}

struct Files {
    dir: PathBuf,
    files: RwLock<HashMap<u32, Arc<File>>>,
    space: Mutex<Space>,
    changed: Condvar,
    /// How far ahead of the writer to keep zeros (0: not at all).
    ahead: u64,
    /// No zeros are written past this offset (the segment size).
    limit: u64,
    /// Open while a segment is being fsynced.
    window: FsyncWindow,
}

/// Where the writer is and how far the zeros go.
#[derive(Default)]
struct Space {
    /// The writer has said where it writes.
    active: bool,
    segment: u32,
    /// The end of what the writer has written or is writing.
    reserved: u64,
    /// Everything from `reserved` to here is zeros on stable storage.
    zeroed: u64,
    /// A range being zero-filled: the writer does not write into it meanwhile.
    zeroing: Option<(u32, u64, u64)>,
    closed: bool,
}

/// Zeros are written in pieces of this size, so the writer never waits long for one.
const ZERO_CHUNK: u64 = 1 << 20;
/// The zeros written: static, so each piece costs no allocation (a fresh megabyte from the
/// allocator is a page fault and a page clearing every time).
static ZEROS: [u8; ZERO_CHUNK as usize] = [0; ZERO_CHUNK as usize];
/// A piece of zeros is written in writes of this size, and fsynced once: a buffered write holds
/// the file's inode lock while it copies into new page-cache pages, so the writer's own writes
/// wait for at most one small write (BENCHMARKS.md, "Store tuning constants").
const ZERO_WRITE: u64 = 64 << 10;

impl FileSegments {
    /// Opens the segment directory; `ahead` bytes past the writer are kept zero-filled, up to
    /// `limit` bytes into a segment.
    pub(crate) fn open(dir: &Path, ahead: u64, limit: u64) -> Result<Self, StoreError> {
        fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
        let inner = Arc::new(Files {
            dir: dir.to_owned(),
            files: RwLock::new(HashMap::new()),
            space: Mutex::new(Space::default()),
            changed: Condvar::new(),
            ahead,
            limit,
            window: FsyncWindow::default(),
        });
        let zero_filler = if ahead > 0 {
            let files = Arc::clone(&inner);
            let handle = std::thread::Builder::new()
                .name("hoso-store-zero".to_owned())
                .spawn(move || files.zero_fill_ahead())
                .map_err(io("cannot start the zero-fill thread"))?;
            Some(handle)
        } else {
            None
        };
        Ok(FileSegments {
            inner,
            zero_filler: Mutex::new(zero_filler),
        })
    }
}

impl Drop for FileSegments {
    fn drop(&mut self) {
        if let Ok(mut space) = self.inner.space.lock() {
            space.closed = true;
        }
        self.inner.changed.notify_all();
        if let Ok(mut handle) = self.zero_filler.lock()
            && let Some(handle) = handle.take()
        {
            let _ = handle.join();
        }
    }
}

impl Files {
    fn path(&self, segment: u32) -> PathBuf {
        self.dir.join(format!("{segment:010}.segment"))
    }

    fn file(&self, segment: u32) -> Result<Arc<File>, StoreError> {
        if let Some(file) = self.files.read().map_err(|_| poisoned())?.get(&segment) {
            return Ok(Arc::clone(file));
        }
        let path = self.path(segment);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io(format!("cannot open segment {}", path.display())))?;
        let file = Arc::new(file);
        self.files
            .write()
            .map_err(|_| poisoned())?
            .insert(segment, Arc::clone(&file));
        Ok(file)
    }

    /// The next piece of zeros to write, if fewer than half of `ahead` bytes past the writer
    /// are zeros.
    fn zeros_due(&self, space: &Space) -> Option<(u64, u64)> {
        let from = space.zeroed.max(space.reserved);
        let target = (space.reserved + self.ahead).min(self.limit);
        (space.active && space.zeroed < space.reserved + self.ahead / 2 && from < target)
            .then(|| (from, target.min(from + ZERO_CHUNK)))
    }

    /// The zero-fill thread: whenever fewer than half of `ahead` bytes past the writer are
    /// zeros, writes and fsyncs the next piece of zeros.
    fn zero_fill_ahead(&self) {
        crate::background::lower_this_thread();
        let Ok(mut space) = self.space.lock() else {
            return;
        };
        // Whether this piece of zeros has waited for an fsync to start.
        let mut waited = false;
        // The zero-fill's own handle on the segment it fills. An fsync reports a writeback
        // error once per open file description (Linux's errseq), and the zero-fill's fdatasync
        // writes back the whole file, the log's pages included: on the log's handle, it would
        // take a failure of the log's pages for itself (it only stops zero-filling on one), and
        // the syncer's next fdatasync would return success for data that was lost. On a handle
        // of its own, the failure is reported to the syncer's handle too.
        let mut own: Option<(u32, File)> = None;
        loop {
            if space.closed {
                return;
            }
            if !waited && self.zeros_due(&space).is_some() {
                drop(space);
                self.window.wait();
                waited = true;
                let Ok(next) = self.space.lock() else {
                    return;
                };
                space = next;
                continue;
            }
            waited = false;
            if let Some((from, to)) = self.zeros_due(&space) {
                let segment = space.segment;
                space.zeroing = Some((segment, from, to));
                drop(space);
                if own.as_ref().is_none_or(|(s, _)| *s != segment) {
                    own = OpenOptions::new()
                        .write(true)
                        .open(self.path(segment))
                        .ok()
                        .map(|f| (segment, f));
                }
                // Whether the zeros are on stable storage (any failure, opening included, only
                // stops the zero-filling).
                let zeroed = own.as_ref().is_some_and(|(_, f)| {
                    let mut at = from;
                    while at < to {
                        let end = (at + ZERO_WRITE).min(to);
                        if f.write_all_at(&ZEROS[..(end - at) as usize], at).is_err() {
                            return false;
                        }
                        at = end;
                    }
                    f.sync_data().is_ok()
                });
                let Ok(next) = self.space.lock() else {
                    return;
                };
                space = next;
                space.zeroing = None;
                if space.segment == segment {
                    if zeroed {
                        space.zeroed = to;
                    } else {
                        // Not a failure of the log: its writes just grow the file again.
                        space.active = false;
                    }
                }
                self.changed.notify_all();
                continue;
            }
            let Ok(next) = self.changed.wait(space) else {
                return;
            };
            space = next;
        }
    }
}

fn poisoned() -> StoreError {
    StoreError::Io("a segment lock was poisoned by a panic".to_owned())
}

impl FileSegments {
    /// `<store>/quarantine`, beside `<store>/log`.
    fn quarantine_dir(&self) -> PathBuf {
        self.inner.dir.with_file_name("quarantine")
    }
}

impl Segments for FileSegments {
    fn quarantine(&self, name: &str, bytes: &[u8]) -> Result<String, StoreError> {
        let dir = self.quarantine_dir();
        fs::create_dir_all(&dir).map_err(io(format!("cannot create {}", dir.display())))?;
        let path = dir.join(name);
        let mut file = File::create(&path).map_err(io(format!("cannot create {}", path.display())))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(io(format!("cannot write {}", path.display())))?;
        // The name is durable once the directory is; only then may the bytes be cut.
        for d in [&dir, dir.parent().unwrap_or(&dir)] {
            File::open(d)
                .and_then(|d| d.sync_all())
                .map_err(io(format!("cannot sync the directory {}", d.display())))?;
        }
        Ok(path.display().to_string())
    }

    fn quarantined(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let dir = self.quarantine_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(io(format!("cannot read {}", dir.display()))(err)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io(format!("cannot read {}", dir.display())))?;
            let len = entry
                .metadata()
                .map_err(io(format!("cannot stat {}", entry.path().display())))?
                .len();
            out.push((entry.file_name().to_string_lossy().into_owned(), len));
        }
        out.sort();
        Ok(out)
    }

    fn list(&self) -> Result<Vec<u32>, StoreError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.inner.dir).map_err(io(format!("cannot read {}", self.inner.dir.display())))? {
            let entry = entry.map_err(io(format!("cannot read {}", self.inner.dir.display())))?;
            if let Some(sequence) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".segment"))
                .and_then(|n| n.parse().ok())
            {
                out.push(sequence);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    fn exists(&self, segment: u32) -> bool {
        self.inner.files.read().is_ok_and(|files| files.contains_key(&segment)) || self.inner.path(segment).exists()
    }

    fn len(&self, segment: u32) -> Result<u64, StoreError> {
        let file = self.inner.file(segment)?;
        let meta = file
            .metadata()
            .map_err(|err| io(format!("cannot stat {}", self.name(segment)))(err))?;
        Ok(meta.len())
    }

    fn create(&self, segment: u32) -> Result<(), StoreError> {
        let path = self.inner.path(segment);
        let file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io(format!("cannot create segment {}", path.display())))?;
        // The new file's name must be durable before anything in it is acknowledged.
        File::open(&self.inner.dir)
            .and_then(|d| d.sync_all())
            .map_err(io(format!("cannot sync directory {}", self.inner.dir.display())))?;
        self.inner
            .files
            .write()
            .map_err(|_| poisoned())?
            .insert(segment, Arc::new(file));
        self.writing_at(segment, 0);
        Ok(())
    }

    fn write_at(&self, segment: u32, offset: u64, bytes: &[u8]) -> Result<(), StoreError> {
        let end = offset + bytes.len() as u64;
        {
            let mut space = self.inner.space.lock().map_err(|_| poisoned())?;
            // Never write where zeros are being written.
            while space
                .zeroing
                .is_some_and(|(s, from, to)| s == segment && from < end && offset < to)
            {
                space = self.inner.changed.wait(space).map_err(|_| poisoned())?;
            }
            if space.segment == segment && end > space.reserved {
                space.reserved = end;
                // Only a wake-up with work to do: most writes leave enough zeros ahead, and
                // each wake-up costs the writer a system call.
                if self.inner.ahead > 0 && space.zeroing.is_none() && self.inner.zeros_due(&space).is_some() {
                    self.inner.changed.notify_all();
                }
            }
        }
        self.inner
            .file(segment)?
            .write_all_at(bytes, offset)
            .map_err(|err| write_failed(&self.name(segment), err))
    }

    fn sync(&self, segment: u32) -> Result<(), StoreError> {
        let file = self.inner.file(segment)?;
        self.inner.window.open();
        let synced = file.sync_data();
        self.inner.window.close();
        synced.map_err(|err| io(format!("cannot fsync segment {}", self.name(segment)))(err))
    }

    fn read_at(&self, segment: u32, offset: u64, buf: &mut [u8]) -> Result<usize, StoreError> {
        let file = self.inner.file(segment)?;
        let mut done = 0;
        while done < buf.len() {
            match file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => return Err(io(format!("cannot read segment {}", self.name(segment)))(err)),
            }
        }
        Ok(done)
    }

    fn truncate(&self, segment: u32, len: u64) -> Result<(), StoreError> {
        let file = self.inner.file(segment)?;
        file.set_len(len)
            .and_then(|()| file.sync_all())
            .map_err(io(format!("cannot truncate segment {}", self.name(segment))))
    }

    fn name(&self, segment: u32) -> String {
        self.inner.path(segment).display().to_string()
    }

    fn writing_at(&self, segment: u32, offset: u64) {
        let len = self.len(segment).unwrap_or(offset);
        if let Ok(mut space) = self.inner.space.lock() {
            space.active = true;
            space.segment = segment;
            space.reserved = offset;
            space.zeroed = len.max(offset);
        }
        self.inner.changed.notify_all();
    }

    fn background_turn(&self) {
        self.inner.window.wait();
    }
}

/// Segments held in memory, for `MemoryStore`: the same entries, nothing survives the process.
#[derive(Default)]
pub(crate) struct MemSegments {
    segments: RwLock<BTreeMap<u32, Vec<u8>>>,
    quarantine: RwLock<BTreeMap<String, Vec<u8>>>,
}

impl Segments for MemSegments {
    fn quarantine(&self, name: &str, bytes: &[u8]) -> Result<String, StoreError> {
        self.quarantine
            .write()
            .map_err(|_| poisoned())?
            .insert(name.to_owned(), bytes.to_vec());
        Ok(format!("in-memory quarantine {name}"))
    }

    fn quarantined(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let quarantine = self.quarantine.read().map_err(|_| poisoned())?;
        Ok(quarantine
            .iter()
            .map(|(name, bytes)| (name.clone(), bytes.len() as u64))
            .collect())
    }

    fn list(&self) -> Result<Vec<u32>, StoreError> {
        Ok(self.segments.read().map_err(|_| poisoned())?.keys().copied().collect())
    }

    fn exists(&self, segment: u32) -> bool {
        self.segments.read().is_ok_and(|s| s.contains_key(&segment))
    }

    fn len(&self, segment: u32) -> Result<u64, StoreError> {
        let segments = self.segments.read().map_err(|_| poisoned())?;
        Ok(segments.get(&segment).map_or(0, |s| s.len() as u64))
    }

    fn create(&self, segment: u32) -> Result<(), StoreError> {
        self.segments
            .write()
            .map_err(|_| poisoned())?
            .insert(segment, Vec::new());
        Ok(())
    }

    fn write_at(&self, segment: u32, offset: u64, bytes: &[u8]) -> Result<(), StoreError> {
        let mut segments = self.segments.write().map_err(|_| poisoned())?;
        let data = segments.entry(segment).or_default();
        let offset = offset as usize;
        if data.len() < offset + bytes.len() {
            data.resize(offset + bytes.len(), 0);
        }
        data[offset..offset + bytes.len()].copy_from_slice(bytes);
        Ok(())
    }

    fn sync(&self, _segment: u32) -> Result<(), StoreError> {
        Ok(())
    }

    fn read_at(&self, segment: u32, offset: u64, buf: &mut [u8]) -> Result<usize, StoreError> {
        let segments = self.segments.read().map_err(|_| poisoned())?;
        let Some(data) = segments.get(&segment) else {
            return Ok(0);
        };
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn truncate(&self, segment: u32, len: u64) -> Result<(), StoreError> {
        if let Some(data) = self.segments.write().map_err(|_| poisoned())?.get_mut(&segment) {
            data.truncate(len as usize);
        }
        Ok(())
    }

    fn name(&self, segment: u32) -> String {
        format!("in-memory segment {segment}")
    }

    fn writing_at(&self, _segment: u32, _offset: u64) {}

    fn background_turn(&self) {}
}

/// Reads one record by its location and checks its entry header and CRC.
pub(crate) fn read_record<S: Segments>(segments: &S, position: Position, loc: Location) -> Result<Vec<u8>, StoreError> {
    let (mut bytes, crc_ok) = read_entry(segments, position, loc)?;
    if !crc_ok {
        return Err(StoreError::Corrupted {
            position,
            reason: format!(
                "the entry at byte {} of {} does not match its CRC",
                loc.offset,
                segments.name(loc.segment)
            ),
        });
    }
    bytes.drain(..ENTRY_HEADER);
    Ok(bytes)
}

/// Reads one entry (header and record) by its location; the flag says whether the length and
/// CRC in the header match the record.
pub(crate) fn read_entry<S: Segments>(
    segments: &S,
    position: Position,
    loc: Location,
) -> Result<(Vec<u8>, bool), StoreError> {
    let mut bytes = vec![0; ENTRY_HEADER + loc.len as usize];
    let n = segments.read_at(loc.segment, loc.offset, &mut bytes)?;
    if n < bytes.len() {
        return Err(StoreError::Corrupted {
            position,
            reason: format!(
                "the entry at byte {} of {} is cut short",
                loc.offset,
                segments.name(loc.segment)
            ),
        });
    }
    let ok = bytes[0..4] == loc.len.to_be_bytes() && crc_matches(&bytes[..ENTRY_HEADER], &bytes[ENTRY_HEADER..]);
    Ok((bytes, ok))
}

/// What a sequential read found next.
pub(crate) enum Next<'r> {
    /// A whole entry; its CRC may not match (`crc_ok`).
    Entry {
        loc: Location,
        record: &'r [u8],
        crc_ok: bool,
    },
    /// The bytes here are not a whole entry: part of a header, or a length that runs past
    /// the end of the segment.
    Incomplete {
        segment: u32,
        offset: u64,
        reason: &'static str,
    },
    /// The log ends here: zeros or the end of the file, and no later segment.
    End,
}

/// Reads entries one after the other, across segments, through a large buffer.
pub(crate) struct SegmentReader<'s, S: Segments> {
    segments: &'s S,
    segment: u32,
    /// Offset in the segment of `buf[0]`.
    base: u64,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The segment's end has been reached: no more bytes after `end`.
    eof: bool,
    chunk: usize,
}

impl<'s, S: Segments> SegmentReader<'s, S> {
    pub(crate) fn new(segments: &'s S, segment: u32, offset: u64, chunk: usize) -> Self {
        SegmentReader {
            segments,
            segment,
            base: offset,
            buf: Vec::new(),
            start: 0,
            end: 0,
            eof: false,
            chunk,
        }
    }

    /// Makes at least `n` bytes available after `start` if the segment has them; returns how
    /// many are available.
    fn fill(&mut self, n: usize) -> Result<usize, StoreError> {
        while self.end - self.start < n && !self.eof {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.base += self.start as u64;
                self.end -= self.start;
                self.start = 0;
            }
            let want = n.max(self.chunk);
            if self.buf.len() < want {
                self.buf.resize(want, 0);
            }
            let offset = self.base + self.end as u64;
            let read = self.segments.read_at(self.segment, offset, &mut self.buf[self.end..])?;
            if read == 0 {
                self.eof = true;
            }
            self.end += read;
        }
        Ok(self.end - self.start)
    }

    /// The segment and offset of the next entry.
    pub(crate) fn at(&self) -> (u32, u64) {
        (self.segment, self.base + self.start as u64)
    }

    pub(crate) fn next(&mut self) -> Result<Next<'_>, StoreError> {
        loop {
            let available = self.fill(ENTRY_HEADER)?;
            let header = &self.buf[self.start..self.start + available.min(ENTRY_HEADER)];
            if header.iter().all(|&b| b == 0) && (available == 0 || available >= ENTRY_HEADER || self.eof) {
                // The segment's entries end here (zeros, or the end of the file): go on with
                // the next segment, if there is one. The writer starts one only after this
                // one is complete on stable storage.
                if self.segments.exists(self.segment + 1) {
                    self.segment += 1;
                    self.base = 0;
                    self.start = 0;
                    self.end = 0;
                    self.eof = false;
                    continue;
                }
                return Ok(Next::End);
            }
            let (segment, offset) = self.at();
            if available < ENTRY_HEADER {
                return Ok(Next::Incomplete {
                    segment,
                    offset,
                    reason: "a partial entry header",
                });
            }
            let len = u32::from_be_bytes(header[0..4].try_into().expect("4 bytes"));
            if len == 0 {
                return Ok(Next::Incomplete {
                    segment,
                    offset,
                    reason: "an entry of length zero with a checksum",
                });
            }
            let total = ENTRY_HEADER + len as usize;
            // A damaged length may claim gigabytes: past what the buffer holds, check the
            // segment's size before making room (found by the `store_open` fuzz target).
            if total > self.chunk.max(self.end - self.start)
                && total as u64 > self.segments.len(segment)?.saturating_sub(offset)
            {
                return Ok(Next::Incomplete {
                    segment,
                    offset,
                    reason: "an entry that runs past the end of the segment",
                });
            }
            if self.fill(total)? < total {
                return Ok(Next::Incomplete {
                    segment,
                    offset,
                    reason: "an entry that runs past the end of the segment",
                });
            }
            let entry = &self.buf[self.start..self.start + total];
            let crc_ok = crc_matches(&entry[..ENTRY_HEADER], &entry[ENTRY_HEADER..]);
            self.start += total;
            let loc = Location { segment, offset, len };
            return Ok(Next::Entry {
                loc,
                record: &self.buf[self.start - total + ENTRY_HEADER..self.start],
                crc_ok,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `store_open` fuzz target: a damaged length claiming gigabytes made the
    /// reader zero-fill a buffer that large before finding the segment shorter (49 s and 3 GiB
    /// for one flipped run of bytes).
    #[test]
    fn a_damaged_length_is_not_read_into_memory() {
        let segments = MemSegments::default();
        segments.create(1).unwrap();
        let mut bytes = 0xbebe_bebe_u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0xbe; 60]);
        segments.write_at(1, 0, &bytes).unwrap();
        let mut reader = SegmentReader::new(&segments, 1, 0, 4096);
        let reason = match reader.next().unwrap() {
            Next::Incomplete { reason, .. } => reason,
            Next::End => "the end",
            Next::Entry { .. } => "an entry",
        };
        assert_eq!(reason, "an entry that runs past the end of the segment");
        assert!(reader.buf.len() <= 4096, "{} bytes buffered", reader.buf.len());
    }
}
