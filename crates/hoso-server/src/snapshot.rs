//! The projection's snapshot on disk ([`crate::DataDir::snapshot`]), the read model
//! and its checkpoint in one file (`hoso-projections` owns the bytes), so that a restart loads it
//! and catches up from its checkpoint instead of replaying the whole log.
//!
//! Written atomically: a temporary file in the same directory is written and synced, renamed
//! over the snapshot, and the directory is synced, so the file is always a whole snapshot, old
//! or new. Read only when it holds together (magic, version, length, CRC), names this store's
//! log (the store's id, and the hash of the event at its checkpoint: a snapshot copied from
//! another store, or kept over a log restored from another backup, names another), and its
//! checkpoint is not ahead of the store's head (a store restored from an older backup);
//! otherwise it is set aside with a warning and the model is rebuilt from the log, which is
//! always the truth.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use hoso_projections::Dossiers;
use hoso_store::{EventStore, Position};
use uuid::Uuid;

/// Writes `bytes` to `path` atomically and durably: a temporary file beside it, synced, renamed
/// over it, and the directory synced (created first if need be).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("the snapshot path has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut temp_name = path
        .file_name()
        .context("the snapshot path has no file name")?
        .to_owned();
    temp_name.push(".tmp");
    let temp = dir.join(temp_name);
    let mut file = std::fs::File::create(&temp).with_context(|| format!("cannot create {}", temp.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", temp.display()))?;
    drop(file);
    std::fs::rename(&temp, path).with_context(|| format!("cannot rename {} to {}", temp.display(), path.display()))?;
    // The rename is durable once the directory is.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync the directory {}", dir.display()))?;
    Ok(())
}

/// The model of the snapshot at `path` if it is one of `store`'s log (see [`load`]) and the
/// event at its checkpoint has the hash it names; an empty model otherwise, the snapshot set
/// aside with a warning.
pub async fn load_for<S: EventStore>(path: PathBuf, store: &S) -> Dossiers {
    let (id, head) = (store.store_id(), store.head());
    let loading = path.clone();
    let model = tokio::task::spawn_blocking(move || load(&loading, id, head))
        .await
        .unwrap_or_default();
    let Some(last) = model.checkpoint().checked_sub(1) else {
        return model;
    };
    let reason = match store.read_all(last, 1).await {
        Ok(records) if records.first().is_some_and(|r| r.hash == model.checkpoint_hash()) => return model,
        Ok(_) => format!(
            "the event at its checkpoint (position {last}) is not the one it was taken after: the log has changed since (restored from another backup?)"
        ),
        Err(err) => format!("the event at its checkpoint (position {last}) cannot be read: {err}"),
    };
    discard(&path, &reason);
    Dossiers::new()
}

/// The model of the snapshot at `path`, if there is one that is whole, of the store `store_id`
/// and not ahead of the store's `head`; an empty model otherwise (logged: info when there is
/// none, a warning when it was set aside, and then it is renamed `*.discarded` for a look).
pub fn load(path: &Path, store_id: Uuid, head: Position) -> Dossiers {
    let started = Instant::now();
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!(path = %path.display(), "no projection snapshot: the projection replays the log");
            return Dossiers::new();
        }
        Err(err) => {
            tracing::warn!(path = %path.display(), error = %err, "the projection snapshot cannot be read: the projection replays the log");
            return Dossiers::new();
        }
    };
    let reason = match Dossiers::decode_snapshot(&bytes, store_id) {
        Ok(model) if model.checkpoint() <= head => {
            tracing::info!(
                events = model.checkpoint(),
                dossiers = model.histories().len(),
                bytes = bytes.len(),
                seconds = started.elapsed().as_secs_f64(),
                "projection snapshot loaded; catching up from its checkpoint"
            );
            return model;
        }
        Ok(model) => format!(
            "its checkpoint {} is ahead of the log's head {head} (was the store restored from an older backup?)",
            model.checkpoint()
        ),
        Err(err) => err.to_string(),
    };
    discard(path, &reason);
    Dossiers::new()
}

/// Sets the snapshot at `path` aside (renamed `*.discarded`), with a warning saying why.
pub fn discard(path: &Path, reason: &str) {
    tracing::warn!(path = %path.display(), reason, "the projection snapshot is discarded: the projection replays the log from position 0");
    let mut aside = path.as_os_str().to_owned();
    aside.push(".discarded");
    if let Err(err) = std::fs::rename(path, &aside) {
        tracing::warn!(path = %path.display(), error = %err, "the discarded projection snapshot cannot be renamed");
    }
}
