//! Backup and restore of a [`SledStore`](crate::SledStore) directory, read from its files while a
//! server may be appending to it.
//!
//! A backup reads the segments read-only and copies each up to the end of its last whole entry
//! whose CRC matches: exactly what recovery would keep if the server were killed at that instant,
//! made durable first by an fdatasync of the segment from the backup's own read-only descriptor.
//! The writer starts a segment only once the previous one is complete on disk, so every segment
//! before the last one seen is a closed one, and an entry in flight at the end of the last one
//! is simply left for the next run. The copy is then opened as a store (its indexes are built
//! from the segments, as for any store whose indexes are missing) and verified, and only then
//! is its manifest, `backup.json`, written with the position it holds. The method and why it is
//! safe are in `docs/design.md`, "Backup and restore".

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::segment::ENTRY_HEADER;
use crate::{EventStore, Position, SledOptions, SledStore, StoreError, VerifyScope};

/// The manifest of a backup directory.
pub const MANIFEST: &str = "backup.json";

/// Bytes copied between two calls of the progress callback, and per read.
const COPY_CHUNK: usize = 1 << 20;

/// Bytes at the end of a segment already copied that are compared with the source before
/// appending to it: a source whose log was cut back and rewritten differs there.
const TAIL_CHECK: u64 = 4096;

/// What `backup.json` records: whose log this is, how far it goes and how long each segment is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Manifest {
    store_id: Uuid,
    position: Position,
    segments: BTreeMap<String, u64>,
}

/// The outcome of a backup run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// The id of the backed-up store.
    pub store_id: Uuid,
    /// The copy holds every event at positions `0..position`.
    pub position: Position,
    /// Bytes this run copied (only what was new since the last run into the same directory).
    pub bytes_copied: u64,
    /// Bytes of segments the backup holds in all.
    pub bytes_total: u64,
    /// Each segment file of the copy and its length.
    pub segments: BTreeMap<String, u64>,
}

/// The outcome of a restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// The id of the restored store (the backed-up store's id).
    pub store_id: Uuid,
    /// The restored store holds every event at positions `0..position`.
    pub position: Position,
    /// Records verified after the restore.
    pub records_checked: u64,
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> StoreError {
    move |err| StoreError::Io(format!("{what}: {err}"))
}

fn read_store_id(dir: &Path) -> Result<Uuid, StoreError> {
    let path = dir.join("store-id");
    let text = fs::read_to_string(&path).map_err(|err| {
        StoreError::Io(format!(
            "{} is not a hoso store directory (cannot read its store id {}: {err}); give the server's data directory",
            dir.display(),
            path.display()
        ))
    })?;
    Uuid::parse_str(text.trim())
        .map_err(|err| StoreError::Io(format!("the store id in {} is damaged: {err}", path.display())))
}

/// The segment files of `log`, in log order.
fn segment_names(log: &Path) -> Result<Vec<String>, StoreError> {
    let mut names = Vec::new();
    let entries = match fs::read_dir(log) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(names),
        Err(err) => return Err(StoreError::Io(format!("cannot list {}: {err}", log.display()))),
    };
    for entry in entries {
        let entry = entry.map_err(io(format!("cannot list {}", log.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".segment") {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Where a scan of a segment stopped.
struct Scanned {
    /// Offset just past the last whole entry whose CRC matches.
    end: u64,
    /// Entries from the scan's start to `end`.
    entries: u64,
    /// Why it stopped before the end of the file, if it did on something that is not zeros.
    damage: Option<String>,
}

/// Why a store's log can be cut back under a backup, and what the operator does about it.
fn cut_back_remedy(dest: &Path) -> String {
    format!(
        "this happens when a write fails (a full disk, a disk error) after the last backup copied records the store then dropped, never having acknowledged them (docs/operations.md, \"Backing up the store\"); the store is sound, keep serving from it; take a new backup into an empty directory, then discard {}: its last records were never acknowledged and the store may hold other events at their positions now",
        dest.display()
    )
}

/// Walks the entries of the segment file `file` from `from` (an entry's start) up to `limit`.
fn scan(file: &File, from: u64, limit: u64) -> Result<Scanned, StoreError> {
    let mut at = from;
    let mut entries = 0;
    let mut header = [0u8; ENTRY_HEADER];
    let mut record = Vec::new();
    let stop = |at, entries, damage: Option<&str>| Scanned {
        end: at,
        entries,
        damage: damage.map(|d| format!("{d} at byte {at}")),
    };
    loop {
        if at + ENTRY_HEADER as u64 > limit {
            let damage = (at < limit).then_some("a partial entry header");
            return Ok(stop(at, entries, damage));
        }
        file.read_exact_at(&mut header, at)
            .map_err(|err| StoreError::Io(format!("cannot read a segment at byte {at}: {err}")))?;
        if header.iter().all(|&b| b == 0) {
            return Ok(stop(at, entries, None));
        }
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let end = at + ENTRY_HEADER as u64 + u64::from(len);
        if len == 0 || end > limit {
            return Ok(stop(
                at,
                entries,
                Some("an entry that runs past the end of the segment"),
            ));
        }
        record.resize(len as usize, 0);
        file.read_exact_at(&mut record, at + ENTRY_HEADER as u64)
            .map_err(|err| StoreError::Io(format!("cannot read a segment at byte {at}: {err}")))?;
        if header[4..8] != crc32fast::hash(&record).to_be_bytes() {
            return Ok(stop(at, entries, Some("an entry whose CRC does not match")));
        }
        at = end;
        entries += 1;
    }
}

fn file_len(path: &Path) -> Result<u64, StoreError> {
    match fs::metadata(path) {
        Ok(meta) => Ok(meta.len()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(err) => Err(StoreError::Io(format!("cannot read {}: {err}", path.display()))),
    }
}

/// Copies bytes `from..to` of `src` to the same offsets of `dst` (created if missing) and syncs it.
fn copy_range(src: &Path, dst: &Path, from: u64, to: u64, progress: &mut dyn FnMut(u64)) -> Result<(), StoreError> {
    let input = File::open(src).map_err(io(format!("cannot open {}", src.display())))?;
    let output = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(dst)
        .map_err(io(format!("cannot open {}", dst.display())))?;
    let mut buf = vec![0; COPY_CHUNK];
    let mut at = from;
    while at < to {
        let n = usize::try_from(to - at).unwrap_or(COPY_CHUNK).min(COPY_CHUNK);
        input
            .read_exact_at(&mut buf[..n], at)
            .map_err(io(format!("cannot read {} at byte {at}", src.display())))?;
        output
            .write_all_at(&buf[..n], at)
            .map_err(io(format!("cannot write {} at byte {at}", dst.display())))?;
        at += n as u64;
        progress(n as u64);
    }
    output
        .set_len(to)
        .map_err(io(format!("cannot size {}", dst.display())))?;
    output.sync_all().map_err(io(format!("cannot sync {}", dst.display())))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("cannot sync the directory {}", dir.display())))
}

fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let temp = path.with_extension("tmp");
    let mut file = File::create(&temp).map_err(io(format!("cannot write {}", temp.display())))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&temp, path))
        .map_err(io(format!("cannot write {}", path.display())))?;
    match path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

fn read_manifest(dir: &Path) -> Result<Option<Manifest>, StoreError> {
    let path = dir.join(MANIFEST);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|err| {
            StoreError::Io(format!(
                "the backup manifest {} is damaged ({err}); take a new backup into an empty directory",
                path.display()
            ))
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(StoreError::Io(format!("cannot read {}: {err}", path.display()))),
    }
}

fn is_empty_dir(dir: &Path) -> Result<bool, StoreError> {
    match fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(err) => Err(StoreError::Io(format!("cannot list {}: {err}", dir.display()))),
    }
}

/// Removes everything in the backup `dest` but its segments, store id and manifest: the indexes an
/// unfinished run built over bytes since cut off, which the next open builds again.
fn remove_indexes(dest: &Path) -> Result<(), StoreError> {
    let entries = fs::read_dir(dest).map_err(io(format!("cannot list {}", dest.display())))?;
    for entry in entries {
        let entry = entry.map_err(io(format!("cannot list {}", dest.display())))?;
        let name = entry.file_name();
        if name == "log" || name == "store-id" || name == MANIFEST {
            continue;
        }
        let path = entry.path();
        let removed = if path.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        removed.map_err(io(format!("cannot remove {}", path.display())))?;
    }
    Ok(())
}

/// Opens the store in `dir`, checks that it holds exactly `position` events with nothing cut
/// off, verifies every record and both indexes, and closes it.
async fn open_and_verify(dir: &Path, position: Option<Position>) -> Result<(Position, u64), StoreError> {
    let options = SledOptions {
        zero_fill_ahead_bytes: 0,
        ..SledOptions::default()
    };
    let store = SledStore::open(dir, options)?;
    let checked = async {
        if let Some(cut) = store.quarantined().first() {
            return Err(StoreError::Corrupted {
                position: store.head(),
                reason: format!("the copy's log is damaged: opening it cut off {cut}"),
            });
        }
        let head = store.head();
        if let Some(position) = position.filter(|&p| p != head) {
            return Err(StoreError::Corrupted {
                position: head,
                reason: format!("the copy holds {head} events where its manifest says {position}"),
            });
        }
        let report = store.verify(VerifyScope::All).await?;
        if let Some(problem) = report.first_problem {
            return Err(StoreError::Corrupted {
                position: problem.position,
                reason: format!("the copy does not verify: {problem}"),
            });
        }
        Ok((head, report.records_checked))
    }
    .await;
    store.close();
    checked
}

/// Backs up the store in `data_dir` into `dest`, which is empty, missing, or holds an earlier
/// backup of the same store (then only what is new is copied). `progress` is told the bytes
/// copied so far and the bytes to copy in this run.
///
/// Safe while a server appends to `data_dir`: the segments are only read.
pub async fn backup(
    data_dir: &Path,
    dest: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<BackupReport, StoreError> {
    let store_id = read_store_id(data_dir)?;
    let previous = read_manifest(dest)?;
    match &previous {
        Some(manifest) if manifest.store_id != store_id => {
            return Err(StoreError::Refused(format!(
                "{} holds a backup of another store ({}), not of the store in {} ({store_id}); back up into an empty directory",
                dest.display(),
                manifest.store_id,
                data_dir.display()
            )));
        }
        None if !is_empty_dir(dest)? => {
            return Err(StoreError::Refused(format!(
                "{} is not empty and holds no backup ({MANIFEST}); back up into an empty directory or an earlier backup of this store",
                dest.display()
            )));
        }
        _ => {}
    }
    let (src_log, dst_log) = (data_dir.join("log"), dest.join("log"));
    fs::create_dir_all(&dst_log).map_err(io(format!("cannot create {}", dst_log.display())))?;
    let names = segment_names(&src_log)?;
    let copied_before = previous.map(|m| m.segments).unwrap_or_default();
    // Plan: for every segment, the end to copy up to; a segment followed by another one in the
    // previous backup was closed then and is complete in the copy.
    let mut plan = Vec::new();
    let mut unfinished = false;
    for (i, name) in names.iter().enumerate() {
        let had = copied_before.get(name).copied();
        let closed_before = had.is_some() && names.get(i + 1).is_some_and(|next| copied_before.contains_key(next));
        let src = src_log.join(name);
        let dst = dst_log.join(name);
        let have = had.unwrap_or(0);
        let held = file_len(&dst)?;
        if held < have {
            return Err(StoreError::Corrupted {
                position: 0,
                reason: format!(
                    "the backup is damaged: {} is {held} bytes where its manifest says {have}; take a new backup into an empty directory",
                    dst.display()
                ),
            });
        }
        if held > have {
            // A run that did not finish copied these bytes; its manifest was never written.
            OpenOptions::new()
                .write(true)
                .open(&dst)
                .and_then(|f| f.set_len(have).and_then(|()| f.sync_all()))
                .map_err(io(format!(
                    "cannot cut {} back to its manifest's length",
                    dst.display()
                )))?;
            unfinished = true;
        }
        if closed_before {
            plan.push((name.clone(), have, have));
            continue;
        }
        let file = File::open(&src).map_err(io(format!("cannot open {}", src.display())))?;
        let limit = file
            .metadata()
            .map_err(io(format!("cannot read {}", src.display())))?
            .len();
        if have > limit {
            return Err(StoreError::Refused(format!(
                "{} is shorter than its copy in {}: the store's log was cut back since the last backup; {}",
                src.display(),
                dest.display(),
                cut_back_remedy(dest)
            )));
        }
        if have > 0 {
            let from = have.saturating_sub(TAIL_CHECK);
            let mut a = vec![0; usize::try_from(have - from).unwrap_or(0)];
            let mut b = a.clone();
            file.read_exact_at(&mut a, from)
                .map_err(io(format!("cannot read {}", src.display())))?;
            File::open(&dst)
                .and_then(|f| f.read_exact_at(&mut b, from))
                .map_err(io(format!("cannot read {}", dst.display())))?;
            if a != b {
                return Err(StoreError::Refused(format!(
                    "the end of {} differs from its copy in {}: the store's log was rewritten since the last backup; {}",
                    src.display(),
                    dest.display(),
                    cut_back_remedy(dest)
                )));
            }
        }
        let scanned = scan(&file, have, limit)?;
        // The writer may not have synced the last group scanned yet: syncing it here makes
        // everything the copy takes durable in the store itself before it is copied.
        file.sync_data()
            .map_err(io(format!("cannot sync {} before copying it", src.display())))?;
        let last = i + 1 == names.len();
        if let (Some(damage), false) = (&scanned.damage, last) {
            return Err(StoreError::Corrupted {
                position: 0,
                reason: format!("{} (a closed segment) is damaged: {damage}", src.display()),
            });
        }
        plan.push((name.clone(), have, scanned.end));
    }
    if unfinished {
        remove_indexes(dest)?;
    }
    let to_copy: u64 = plan.iter().map(|(_, from, to)| to - from).sum();
    let mut copied = 0;
    progress(0, to_copy);
    for (name, from, to) in &plan {
        if to > from {
            copy_range(&src_log.join(name), &dst_log.join(name), *from, *to, &mut |n| {
                copied += n;
                progress(copied, to_copy);
            })?;
        }
    }
    sync_dir(&dst_log)?;
    if !dest.join("store-id").exists() {
        write_durably(&dest.join("store-id"), format!("{store_id}\n").as_bytes())?;
    }
    let (position, _) = open_and_verify(dest, None).await?;
    let segments: BTreeMap<String, u64> = plan.into_iter().map(|(name, _, to)| (name, to)).collect();
    for (name, len) in &segments {
        let actual = file_len(&dst_log.join(name))?;
        if actual != *len {
            return Err(StoreError::Io(format!(
                "{} is {actual} bytes after opening the copy, where {len} were copied",
                dst_log.join(name).display()
            )));
        }
    }
    let manifest = Manifest {
        store_id,
        position,
        segments: segments.clone(),
    };
    let text = serde_json::to_vec_pretty(&manifest)
        .map_err(|err| StoreError::Io(format!("cannot encode the backup manifest: {err}")))?;
    write_durably(&dest.join(MANIFEST), &text)?;
    Ok(BackupReport {
        store_id,
        position,
        bytes_copied: copied,
        bytes_total: segments.values().sum(),
        segments,
    })
}

/// Restores the backup in `src` into `data_dir`, which must be empty or missing: copies the
/// segments the manifest names, checks every entry's CRC on the way, then opens the new store
/// (its indexes are built from the segments) and verifies it. On failure `data_dir` is left
/// empty, or missing if it was.
pub async fn restore(src: &Path, data_dir: &Path) -> Result<RestoreReport, StoreError> {
    if !is_empty_dir(data_dir)? {
        return Err(StoreError::Refused(format!(
            "{} is not empty; restore into an empty or new directory (a restore never overwrites a store)",
            data_dir.display()
        )));
    }
    let manifest = read_manifest(src)?.ok_or_else(|| {
        StoreError::Refused(format!(
            "{} is not a hoso backup: it has no {MANIFEST} (a backup run that did not finish writes none)",
            src.display()
        ))
    })?;
    let existed = data_dir.exists();
    let result = restore_into(src, data_dir, &manifest).await;
    if result.is_err() {
        // The directory was empty or missing: what is in it now is only this restore's work.
        let _ = fs::remove_dir_all(data_dir);
        if existed {
            let _ = fs::create_dir_all(data_dir);
        }
    }
    result
}

async fn restore_into(src: &Path, data_dir: &Path, manifest: &Manifest) -> Result<RestoreReport, StoreError> {
    let (src_log, dst_log): (PathBuf, PathBuf) = (src.join("log"), data_dir.join("log"));
    let mut entries = 0;
    for (name, &len) in &manifest.segments {
        let path = src_log.join(name);
        let file = File::open(&path).map_err(|err| StoreError::Corrupted {
            position: entries,
            reason: format!("the backup is damaged: cannot open {}: {err}", path.display()),
        })?;
        let actual = file_len(&path)?;
        if actual < len {
            return Err(StoreError::Corrupted {
                position: entries,
                reason: format!(
                    "the backup is damaged: {} is {actual} bytes, its manifest says {len}",
                    path.display()
                ),
            });
        }
        let scanned = scan(&file, 0, len)?;
        if scanned.end != len {
            let damage = scanned
                .damage
                .unwrap_or_else(|| format!("zeros at byte {}", scanned.end));
            return Err(StoreError::Corrupted {
                position: entries + scanned.entries,
                reason: format!("the backup is damaged: {} holds {damage}", path.display()),
            });
        }
        entries += scanned.entries;
    }
    if entries != manifest.position {
        return Err(StoreError::Corrupted {
            position: entries,
            reason: format!(
                "the backup is damaged: its segments hold {entries} events, its manifest says {}",
                manifest.position
            ),
        });
    }
    fs::create_dir_all(&dst_log).map_err(io(format!("cannot create {}", dst_log.display())))?;
    for (name, &len) in &manifest.segments {
        copy_range(&src_log.join(name), &dst_log.join(name), 0, len, &mut |_| {})?;
    }
    sync_dir(&dst_log)?;
    write_durably(
        &data_dir.join("store-id"),
        format!("{}\n", manifest.store_id).as_bytes(),
    )?;
    let (position, records_checked) = open_and_verify(data_dir, Some(manifest.position)).await?;
    Ok(RestoreReport {
        store_id: manifest.store_id,
        position,
        records_checked,
    })
}
