//! Records set aside, kept durably in the connector's state directory: one JSON file per dossier
//! in `set-aside/` (the record the portal kept refusing, the reason, and the dossier's later
//! records queued behind it), and one empty file per operator's resend request in `resend/`.
//!
//! Files, not the log nor a sled tree: `hoso portal-sync status` and `resend` run in another
//! shell while the connector runs (sled locks its directory), and each change is a write to a
//! temporary file, an fsync and a rename, so a SIGKILL leaves the old file or the new one.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::record::SyncRecord;

/// The resend request for every dossier set aside.
pub const RESEND_ALL: &str = "all";

/// A dossier whose records wait for an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAside {
    /// The dossier's receipt code.
    pub receipt_code: String,
    /// Why the first record was set aside: the last failure.
    pub reason: String,
    /// How many sends of the first record failed.
    pub attempts: u32,
    /// When it was set aside (last).
    pub set_aside_at: DateTime<Utc>,
    /// The records, oldest first: the refused one, then those queued behind it.
    pub records: Vec<SyncRecord>,
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// Opens `root`, making its subdirectories if needed.
    pub fn open(root: &Path) -> Result<StateDir> {
        let dir = StateDir { root: root.to_owned() };
        for sub in [dir.set_aside_dir(), dir.resend_dir()] {
            std::fs::create_dir_all(&sub)
                .with_context(|| format!("cannot make the state directory {}", sub.display()))?;
        }
        Ok(dir)
    }

    fn set_aside_dir(&self) -> PathBuf {
        self.root.join("set-aside")
    }

    fn resend_dir(&self) -> PathBuf {
        self.root.join("resend")
    }

    fn file(&self, receipt_code: &str) -> PathBuf {
        self.set_aside_dir().join(format!("{}.json", file_stem(receipt_code)))
    }

    /// Every dossier set aside, by receipt code.
    pub fn list(&self) -> Result<Vec<SetAside>> {
        let mut all = Vec::new();
        for entry in read_dir(&self.set_aside_dir())? {
            if entry.extension().is_some_and(|ext| ext == "json") {
                all.push(read(&entry)?);
            }
        }
        all.sort_by(|a, b| a.receipt_code.cmp(&b.receipt_code));
        Ok(all)
    }

    /// The dossier's records set aside, if any.
    pub fn get(&self, receipt_code: &str) -> Result<Option<SetAside>> {
        let path = self.file(receipt_code);
        if !path.exists() {
            return Ok(None);
        }
        read(&path).map(Some)
    }

    /// Writes the dossier's file durably (replacing it), or removes it when no record is left.
    pub fn put(&self, aside: &SetAside) -> Result<()> {
        let path = self.file(&aside.receipt_code);
        if aside.records.is_empty() {
            return match std::fs::remove_file(&path) {
                Ok(()) => sync_dir(&self.set_aside_dir()),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(err) => Err(err).with_context(|| format!("cannot remove {}", path.display())),
            };
        }
        let text = serde_json::to_vec_pretty(aside).context("cannot encode the records set aside")?;
        let temp = path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&temp).with_context(|| format!("cannot write {}", temp.display()))?;
        file.write_all(&text)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", temp.display()))?;
        std::fs::rename(&temp, &path).with_context(|| format!("cannot replace {}", path.display()))?;
        sync_dir(&self.set_aside_dir())
    }

    /// Queues `record` behind the dossier's records set aside, once: a record already there, or
    /// one older than the first, comes again from the feed after a restart and is not added.
    pub fn queue_behind(&self, record: SyncRecord) -> Result<()> {
        let mut aside = self.get(&record.receipt_code)?.with_context(|| {
            format!(
                "dossier {} has no records set aside to queue behind",
                record.receipt_code
            )
        })?;
        // A record before the first one set aside was sent before it was (the feed sends it
        // again when the connector restarts before acknowledging it).
        let handled_before = aside
            .records
            .first()
            .is_some_and(|first| record.source.position < first.source.position);
        if !handled_before
            && aside
                .records
                .iter()
                .all(|r| r.idempotency_key != record.idempotency_key)
        {
            aside.records.push(record);
            self.put(&aside)?;
        }
        Ok(())
    }

    /// Asks the running connector (or the next one started) to resend a dossier's records, or
    /// every dossier's with [`RESEND_ALL`].
    pub fn request_resend(&self, receipt_code: &str) -> Result<()> {
        let path = self.resend_dir().join(file_stem(receipt_code));
        std::fs::write(&path, receipt_code).with_context(|| format!("cannot write {}", path.display()))?;
        sync_dir(&self.resend_dir())
    }

    /// The resend requests left, by receipt code (or [`RESEND_ALL`]).
    pub fn resend_requests(&self) -> Result<Vec<String>> {
        let mut codes = Vec::new();
        for path in read_dir(&self.resend_dir())? {
            let code = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
            codes.push(code.trim().to_owned());
        }
        codes.sort();
        Ok(codes)
    }

    /// Forgets a resend request once it is taken up.
    pub fn resend_taken(&self, receipt_code: &str) -> Result<()> {
        let path = self.resend_dir().join(file_stem(receipt_code));
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(err).with_context(|| format!("cannot remove {}", path.display())),
        }
    }
}

/// A receipt code as a file name: receipt codes are letters, digits, `.` and `-`; anything else
/// is replaced so that no code can name a path outside the directory.
fn file_stem(receipt_code: &str) -> String {
    receipt_code
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-') {
                ch
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_owned()
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry.with_context(|| format!("cannot read {}", dir.display()))?.path();
        if path.extension().is_none_or(|ext| ext != "tmp") {
            paths.push(path);
        }
    }
    Ok(paths)
}

fn read(path: &Path) -> Result<SetAside> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("{} is not a file of records set aside", path.display()))
}

/// Makes a rename or removal in `dir` durable.
fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Source;

    fn record(code: &str, key: &str) -> SyncRecord {
        SyncRecord {
            idempotency_key: key.to_owned(),
            receipt_code: code.to_owned(),
            procedure_code: "1.001234".to_owned(),
            status: 2,
            received_at: DateTime::UNIX_EPOCH,
            due_at: None,
            finished_at: None,
            returned_at: None,
            handling_agency: "000.00.04.G18".to_owned(),
            channel: 2,
            progress: vec![],
            source: Source {
                position: 1,
                version: 0,
                event_type: "DossierReceived".to_owned(),
            },
        }
    }

    #[test]
    fn records_queue_behind_once_and_the_file_goes_when_none_is_left() {
        let temp = tempfile::tempdir().unwrap();
        let dir = StateDir::open(temp.path()).unwrap();
        let code = "G09.20-20260609-0000001";
        let mut aside = SetAside {
            receipt_code: code.to_owned(),
            reason: "the portal answered HTTP 422".to_owned(),
            attempts: 3,
            set_aside_at: DateTime::UNIX_EPOCH,
            records: vec![record(code, "a")],
        };
        dir.put(&aside).unwrap();
        dir.queue_behind(record(code, "b")).unwrap();
        dir.queue_behind(record(code, "b")).unwrap();
        let kept = dir.get(code).unwrap().unwrap();
        let keys: Vec<&str> = kept.records.iter().map(|r| r.idempotency_key.as_str()).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(dir.list().unwrap(), [kept]);
        let err = dir.queue_behind(record("other", "c")).unwrap_err().to_string();
        assert!(err.contains("no records set aside"), "{err}");

        aside.records.clear();
        dir.put(&aside).unwrap();
        assert!(dir.get(code).unwrap().is_none());
        assert!(dir.list().unwrap().is_empty());
    }

    #[test]
    fn resend_requests_are_kept_until_taken_and_cannot_escape_the_directory() {
        let temp = tempfile::tempdir().unwrap();
        let dir = StateDir::open(temp.path()).unwrap();
        dir.request_resend("../../etc/passwd").unwrap();
        dir.request_resend(RESEND_ALL).unwrap();
        assert!(temp.path().join("resend").join("_.._etc_passwd").exists());
        assert_eq!(dir.resend_requests().unwrap(), ["../../etc/passwd", RESEND_ALL]);
        dir.resend_taken(RESEND_ALL).unwrap();
        dir.resend_taken("../../etc/passwd").unwrap();
        assert!(dir.resend_requests().unwrap().is_empty());
    }
}
