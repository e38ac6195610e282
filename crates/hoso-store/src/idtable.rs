//! The event-id index: immutable tables of `(event id, position)` pairs, one per fixed-size
//! range of positions, written once the range is durable.
//!
//! An id lookup happens for every append whose ids may be stored already (retries) and for
//! `event_by_id`, but an id index entry is written for every event. In sled that write cost
//! as much as the rest of an append; a table costs a sort and a sequential write. Each table is
//! a file `<store>/ids/<first position, 20 digits>.ids`: its entries, 24 bytes each (event id,
//! 16 bytes ‖ position, u64 big-endian), sorted by event id, then a 40-byte footer: `hosoids1`
//! ‖ first position (u64) ‖ count (u64) ‖ segment (u32) and offset (u64) where the entry of
//! the position after the table starts ‖ CRC-32 of all bytes before it. A table covers the
//! positions `first..first + count`, each once; the tables cover `0..end` without gap. The ids
//! of later positions are in the memtable.
//!
//! Tables are derived data: one that is damaged or out of sequence is deleted on open, with
//! every later one, and its ids are read again from the segments.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::filter::KeyFilter;
use crate::{Position, StoreError};

/// Bytes of one entry: event id ‖ position.
const ENTRY: usize = 24;
const FOOTER: usize = 40;
const MAGIC: &[u8; 8] = b"hosoids1";
/// Entries per block: the first id of each block is kept in memory, so a lookup reads one
/// block.
const BLOCK: usize = 128;

/// One table: its range, where the log goes on after it, and what a lookup needs in memory.
pub(crate) struct IdTable {
    pub(crate) first: Position,
    pub(crate) count: u64,
    /// Segment and offset where the entry of `first + count` starts.
    pub(crate) resume: (u32, u64),
    file: File,
    path: PathBuf,
    /// A filter of this table's ids: a stored id (a retry, `verify`, `event_by_id`) passes the
    /// store's filter of every table's ids, and this one spares the block reads of the tables
    /// that do not hold it.
    filter: KeyFilter,
    /// The first id of each block of `BLOCK` entries.
    fences: Vec<[u8; 16]>,
}

/// An I/O error with its context. On paths taken for every lookup, call it inside
/// `map_err(|err| ...)` so that the context is only formatted for an error.
fn io(context: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> StoreError {
    move |err| StoreError::Io(format!("{context}: {err}"))
}

fn table_path(dir: &Path, first: Position) -> PathBuf {
    dir.join(format!("{first:020}.ids"))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("cannot sync directory {}", dir.display())))
}

impl IdTable {
    /// Writes the table of `entries` (sorted here by id; `bytes` is scratch space), the ids of positions `first..first + entries.len()`,
    /// durably (a temporary file, fsync, rename, directory fsync), and opens it.
    pub(crate) fn write(
        dir: &Path,
        first: Position,
        entries: &mut [(Uuid, Position)],
        resume: (u32, u64),
        bytes: &mut Vec<u8>,
    ) -> Result<IdTable, StoreError> {
        entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let count = entries.len() as u64;
        bytes.clear();
        bytes.reserve(entries.len() * ENTRY + FOOTER);
        for (id, position) in entries.iter() {
            bytes.extend_from_slice(id.as_bytes());
            bytes.extend_from_slice(&position.to_be_bytes());
        }
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&first.to_be_bytes());
        bytes.extend_from_slice(&count.to_be_bytes());
        bytes.extend_from_slice(&resume.0.to_be_bytes());
        bytes.extend_from_slice(&resume.1.to_be_bytes());
        let crc = crc32fast::hash(bytes);
        bytes.extend_from_slice(&crc.to_be_bytes());

        let path = table_path(dir, first);
        let tmp = path.with_extension("tmp");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&tmp)
            .map_err(io(format!("cannot create {}", tmp.display())))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(io(format!("cannot write {}", tmp.display())))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(io(format!("cannot rename {}", tmp.display())))?;
        sync_dir(dir)?;
        let file = File::open(&path).map_err(io(format!("cannot open {}", path.display())))?;
        Ok(Self::from_bytes(file, path, bytes, None).expect("a table just written is well-formed"))
    }

    /// Checks a table's bytes and builds its filter and fences, adding its ids to `all` too if
    /// given; `None` if it is damaged.
    fn from_bytes(file: File, path: PathBuf, bytes: &[u8], mut all: Option<&mut KeyFilter>) -> Option<IdTable> {
        let body_len = bytes.len().checked_sub(FOOTER)?;
        let footer = &bytes[body_len..];
        let crc = u32::from_be_bytes(footer[36..40].try_into().ok()?);
        if &footer[..8] != MAGIC || crc32fast::hash(&bytes[..bytes.len() - 4]) != crc {
            return None;
        }
        let first = u64::from_be_bytes(footer[8..16].try_into().ok()?);
        let count = u64::from_be_bytes(footer[16..24].try_into().ok()?);
        let resume = (
            u32::from_be_bytes(footer[24..28].try_into().ok()?),
            u64::from_be_bytes(footer[28..36].try_into().ok()?),
        );
        if body_len as u64 != count.checked_mul(ENTRY as u64)? {
            return None;
        }
        let mut filter = KeyFilter::with_capacity(count);
        let mut fences = Vec::with_capacity(body_len / ENTRY / BLOCK + 1);
        for (i, entry) in bytes[..body_len].chunks_exact(ENTRY).enumerate() {
            let id: [u8; 16] = entry[..16].try_into().ok()?;
            filter.insert(&Uuid::from_bytes(id));
            if let Some(all) = all.as_deref_mut() {
                all.insert(&Uuid::from_bytes(id));
            }
            if i % BLOCK == 0 {
                fences.push(id);
            }
        }
        Some(IdTable {
            first,
            count,
            resume,
            file,
            path,
            filter,
            fences,
        })
    }

    /// The position of `event_id` if this table holds it: one block read, unless its filter
    /// rules the id out.
    pub(crate) fn lookup(&self, event_id: Uuid) -> Result<Option<Position>, StoreError> {
        if !self.filter.may_contain(&event_id) {
            return Ok(None);
        }
        let id = event_id.as_bytes();
        let Some(block) = self.fences.partition_point(|fence| fence <= id).checked_sub(1) else {
            return Ok(None);
        };
        let start = block * BLOCK;
        let n = (self.count as usize - start).min(BLOCK);
        let mut buf = vec![0; n * ENTRY];
        self.file
            .read_exact_at(&mut buf, (start * ENTRY) as u64)
            .map_err(|err| io(format!("cannot read {}", self.path.display()))(err))?;
        let entries: Vec<&[u8]> = buf.chunks_exact(ENTRY).collect();
        Ok(entries
            .binary_search_by(|entry| entry[..16].cmp(id))
            .ok()
            .map(|i| u64::from_be_bytes(entries[i][16..].try_into().expect("8 bytes"))))
    }

    /// The position after the table's range.
    pub(crate) fn end(&self) -> Position {
        self.first + self.count
    }
}

/// Opens the tables in `dir` (created if missing): temporary files of an interrupted write are
/// removed, and so is the first table that is damaged or does not start where the previous one
/// ends, with every table after it. The ids of the tables kept are added to `filter`.
pub(crate) fn open_all(dir: &Path, filter: &mut KeyFilter) -> Result<Vec<IdTable>, StoreError> {
    fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(format!("cannot read {}", dir.display())))? {
        let entry = entry.map_err(io(format!("cannot read {}", dir.display())))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".tmp") {
            fs::remove_file(entry.path()).map_err(io(format!("cannot remove {}", entry.path().display())))?;
        } else if let Some(first) = name.strip_suffix(".ids").and_then(|n| n.parse::<u64>().ok()) {
            names.push((first, entry.path()));
        }
    }
    names.sort_unstable();
    let mut tables: Vec<IdTable> = Vec::new();
    let mut discard = false;
    for (first, path) in names {
        if !discard {
            let bytes = fs::read(&path).map_err(io(format!("cannot read {}", path.display())))?;
            let file = File::open(&path).map_err(io(format!("cannot open {}", path.display())))?;
            let expected_first = tables.last().map_or(0, IdTable::end);
            match IdTable::from_bytes(file, path.clone(), &bytes, Some(&mut *filter)) {
                Some(table) if table.first == first && first == expected_first && table.count > 0 => {
                    tables.push(table);
                    continue;
                }
                _ => discard = true,
            }
        }
        fs::remove_file(&path).map_err(io(format!("cannot remove {}", path.display())))?;
    }
    sync_dir(dir)?;
    Ok(tables)
}

/// The ids of indexed positions that no table holds yet, kept beside the tables so that a
/// reopen need not read them from the segments: one file `<first position, 20 digits>.unfiled`
/// per table range to come, appended to by the indexer with each batch (before the batch's
/// index end is written) and removed once the range's table is written. Each frame is: first
/// position (u64) ‖ count (u32) ‖ the ids, 16 bytes each ‖ CRC-32 of the bytes before it.
///
/// The files are not fsync'd: they only save work. A frame lost with the page cache, torn or
/// damaged ends what is read of its file; recovery then reads the missing ids from the records.
pub(crate) struct Unfiled {
    dir: PathBuf,
    /// The range being appended to and its file.
    open: Option<(Position, File)>,
    frame: Vec<u8>,
}

fn unfiled_path(dir: &Path, first: Position) -> PathBuf {
    dir.join(format!("{first:020}.unfiled"))
}

impl Unfiled {
    pub(crate) fn new(dir: &Path) -> Self {
        Unfiled {
            dir: dir.to_owned(),
            open: None,
            frame: Vec::new(),
        }
    }

    /// Appends the ids of positions `first..first + ids.len()`, all in the range of the table
    /// that will start at `range`.
    pub(crate) fn append(
        &mut self,
        range: Position,
        first: Position,
        ids: &[(Uuid, Position)],
    ) -> Result<(), StoreError> {
        if self.open.as_ref().is_none_or(|(open, _)| *open != range) {
            let path = unfiled_path(&self.dir, range);
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io(format!("cannot open {}", path.display())))?;
            self.open = Some((range, file));
        }
        let Some((_, file)) = &mut self.open else {
            unreachable!("opened above");
        };
        self.frame.clear();
        self.frame.extend_from_slice(&first.to_be_bytes());
        // An indexer batch holds at most a few thousand ids.
        self.frame.extend_from_slice(&(ids.len() as u32).to_be_bytes());
        for (id, _) in ids {
            self.frame.extend_from_slice(id.as_bytes());
        }
        let crc = crc32fast::hash(&self.frame);
        self.frame.extend_from_slice(&crc.to_be_bytes());
        file.write_all(&self.frame)
            .map_err(|err| io(format!("cannot write {}", unfiled_path(&self.dir, range).display()))(err))
    }

    /// Removes the file of the range whose table starts at `range` (the table holds its ids).
    pub(crate) fn filed(&mut self, range: Position) -> Result<(), StoreError> {
        if self.open.as_ref().is_some_and(|(open, _)| *open == range) {
            self.open = None;
        }
        remove_if_present(&unfiled_path(&self.dir, range))
    }
}

fn remove_if_present(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(io(format!("cannot remove {}", path.display()))(err))
        }
        _ => Ok(()),
    }
}

/// The frames of the unfiled-id files from position `from` on (the end of the tables), as
/// (first position, ids), in file order; files of ranges the tables cover are removed. Each
/// file is read up to its first torn or damaged frame.
pub(crate) fn read_unfiled(dir: &Path, from: Position) -> Result<Vec<(Position, Vec<Uuid>)>, StoreError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(format!("cannot read {}", dir.display())))? {
        let entry = entry.map_err(io(format!("cannot read {}", dir.display())))?;
        let name = entry.file_name();
        if let Some(first) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".unfiled"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            names.push((first, entry.path()));
        }
    }
    names.sort_unstable();
    let mut frames = Vec::new();
    for (first, path) in names {
        if first < from {
            remove_if_present(&path)?;
            continue;
        }
        let bytes = fs::read(&path).map_err(io(format!("cannot read {}", path.display())))?;
        let mut at = 0;
        while let Some(header) = bytes.get(at..at + 12) {
            let position = u64::from_be_bytes(header[..8].try_into().expect("8 bytes"));
            let count = u32::from_be_bytes(header[8..].try_into().expect("4 bytes")) as usize;
            let end = at + 12 + count * 16;
            let Some(frame) = bytes.get(at..end + 4) else { break };
            let crc = u32::from_be_bytes(frame[frame.len() - 4..].try_into().expect("4 bytes"));
            if crc32fast::hash(&frame[..frame.len() - 4]) != crc {
                break;
            }
            let ids = frame[12..12 + count * 16]
                .chunks_exact(16)
                .map(|id| Uuid::from_slice(id).expect("16 bytes"))
                .collect();
            frames.push((position, ids));
            at = end + 4;
        }
    }
    Ok(frames)
}

#[cfg(test)]
mod tests;
