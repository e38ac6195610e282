//! A full disk, for real: a size-limited tmpfs (mounted here, as root; skipped with a message
//! where it cannot be). After a write fails for lack of space, every acknowledged append is
//! still readable, by stream, by id and in `$all`, while writes are refused; once space is
//! freed, writes resume without a reopen. (Where no tmpfs can be mounted, `faults.rs` injects
//! the same failures.)

use std::path::Path;
use std::process::Command;

use hoso_store::conformance::event;
use hoso_store::{EventStore, ExpectedVersion, SledOptions, SledStore, StreamRead};

/// A tmpfs of `size` mounted at `dir`, unmounted when dropped; `None` where this process may not
/// mount one (not root, no tmpfs).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_go_on_after_a_write_failed_on_a_full_disk() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_fs) = Tmpfs::mount(dir.path(), "24m") else {
        eprintln!("SKIPPED reads_go_on_after_a_write_failed_on_a_full_disk: cannot mount a tmpfs here (needs root)");
        return;
    };
    let options = SledOptions {
        cache_capacity_bytes: 256 << 10,
        zero_fill_ahead_bytes: 0,
        segment_bytes: 4 << 20,
        ..SledOptions::default()
    };
    // Space to free later, as an operator would.
    let filler = dir.path().join("filler");
    std::fs::write(&filler, vec![1u8; 3 << 20]).unwrap();
    let store = SledStore::open(dir.path().join("store"), options).unwrap();
    let mut acknowledged = Vec::new();
    let started = std::time::Instant::now();
    let mut failure = None;
    'fill: for round in 0..100_000u32 {
        for s in 0..50u32 {
            let mut e = event(&format!("r{round}"));
            e.data = hoso_store::Json::from(serde_json::json!({ "pad": "x".repeat(400), "round": round }));
            match store
                .append(&format!("s{s}"), ExpectedVersion::Any, vec![e.clone()])
                .await
            {
                Ok(result) => acknowledged.push((format!("s{s}"), e.event_id, result.positions.unwrap().0)),
                Err(err) => {
                    failure = Some(err.to_string());
                    break 'fill;
                }
            }
        }
        assert!(started.elapsed().as_secs() < 120, "the disk never filled");
    }
    let failure = failure.expect("a write failed");
    // Whichever ran out of space first says what to do: the log resumes by itself, a failed
    // index engine (sled keeps its error until reopened) needs a restart.
    let refusal = store.write_refusal().unwrap_or_else(|| panic!("refused: {failure}"));
    if refusal.contains("the indexer failed") {
        assert!(refusal.contains("restart the server"), "{refusal}");
    } else {
        assert!(
            refusal.contains("resume by themselves once space is freed"),
            "{refusal}"
        );
    }
    // Give sled's background flush its turn to fail too.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let mut failed = Vec::new();
    for s in 0..50u32 {
        let stream = format!("s{s}");
        let want: Vec<_> = acknowledged.iter().filter(|a| a.0 == stream).map(|a| a.1).collect();
        match store.read_stream(&stream, StreamRead::forward()).await {
            Ok(read) => assert_eq!(read.iter().map(|r| r.event_id).collect::<Vec<_>>(), want, "{stream}"),
            Err(err) => failed.push(format!("{stream}: {err}")),
        }
    }
    for (_, id, position) in acknowledged.iter().step_by(97) {
        match store.event_by_id(*id).await {
            Ok(Some(found)) => assert_eq!(found.position, *position),
            Ok(None) => failed.push(format!("{id}: not found")),
            Err(err) => failed.push(format!("{id}: {err}")),
        }
    }
    match store.read_all(0, acknowledged.len()).await {
        Ok(all) => assert_eq!(all.len(), acknowledged.len()),
        Err(err) => failed.push(format!("read_all: {err}")),
    }
    assert!(
        failed.is_empty(),
        "{} of the reads failed after the write failure ({failure}), {} appends acknowledged: {:?}",
        failed.len(),
        acknowledged.len(),
        &failed[..failed.len().min(5)]
    );

    // A restart while the disk is still full may be refused, but must not brick the store: once
    // space is freed it opens, with every acknowledged append, and takes appends again.
    store.close();
    drop(store);
    let still_full = SledStore::open(dir.path().join("store"), options);
    eprintln!(
        "open while the disk is full: {:?}",
        still_full.as_ref().map(|_| "opened")
    );
    if let Ok(store) = &still_full {
        store.close();
    }
    drop(still_full);
    std::fs::remove_file(&filler).unwrap();
    let store = SledStore::open(dir.path().join("store"), options).expect("opens once space is freed");
    let all = store.read_all(0, acknowledged.len() + 10).await.unwrap();
    // Every acknowledged append, in order; an append that failed may have reached the disk.
    assert!(all.len() >= acknowledged.len());
    assert_eq!(
        all[..acknowledged.len()].iter().map(|r| r.event_id).collect::<Vec<_>>(),
        acknowledged.iter().map(|a| a.1).collect::<Vec<_>>(),
    );
    store
        .append("s0", ExpectedVersion::Any, vec![event("after")])
        .await
        .unwrap();
    assert_eq!(
        store.verify(hoso_store::VerifyScope::All).await.unwrap().first_problem,
        None
    );
}

/// Fills the store's disk until an append fails and returns the acknowledged appends (stream,
/// event id, position) with the failure.
async fn fill(store: &SledStore) -> (Vec<(String, uuid::Uuid, u64)>, String) {
    let mut acknowledged = Vec::new();
    for round in 0..100_000u32 {
        for s in 0..50u32 {
            let mut e = event(&format!("r{round}"));
            e.data = hoso_store::Json::from(serde_json::json!({ "pad": "x".repeat(400), "round": round }));
            match store
                .append(&format!("s{s}"), ExpectedVersion::Any, vec![e.clone()])
                .await
            {
                Ok(result) => acknowledged.push((format!("s{s}"), e.event_id, result.positions.unwrap().0)),
                Err(err) => return (acknowledged, err.to_string()),
            }
        }
    }
    panic!("the disk never filled");
}

/// Once space is freed, the store takes appends again without a reopen (it probes on an append
/// after a short back-off), at the next position; every acknowledged append is readable, and
/// the reopened store verifies. The tmpfs holds the log's segments only (a log volume of its
/// own): on a shared disk sled may run out of space first, and a failed index engine needs a
/// reopen (`reads_go_on_after_a_write_failed_on_a_full_disk`).
#[tokio::test(flavor = "multi_thread")]
async fn writes_resume_without_a_restart_once_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("store").join("log");
    std::fs::create_dir_all(&log).unwrap();
    let Some(_fs) = Tmpfs::mount(&log, "8m") else {
        eprintln!(
            "SKIPPED writes_resume_without_a_restart_once_space_is_freed: cannot mount a tmpfs here (needs root)"
        );
        return;
    };
    let options = SledOptions {
        cache_capacity_bytes: 256 << 10,
        segment_bytes: 2 << 20,
        ..SledOptions::default()
    };
    let filler = log.join("filler");
    std::fs::write(&filler, vec![1u8; 2 << 20]).unwrap();
    let store = SledStore::open(dir.path().join("store"), options).unwrap();
    let (mut acknowledged, failure) = fill(&store).await;
    let refusal = store.write_refusal().unwrap_or_else(|| panic!("refused: {failure}"));
    assert!(
        refusal.contains("resume by themselves once space is freed"),
        "{failure} / {refusal}"
    );
    std::fs::remove_file(&filler).unwrap();

    let mut taken = None;
    for attempt in 0..50 {
        let e = event(&format!("after {attempt}"));
        match store.append("s0", ExpectedVersion::Any, vec![e.clone()]).await {
            Ok(result) => {
                taken = Some((e.event_id, result.positions.unwrap().0));
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    let (id, position) = taken.unwrap_or_else(|| panic!("writes never resumed: {:?}", store.write_refusal()));
    assert_eq!(position, acknowledged.len() as u64, "the next position, no gap");
    assert_eq!(store.write_refusal(), None);
    acknowledged.push(("s0".to_owned(), id, position));
    let all = store.read_all(0, acknowledged.len() + 10).await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.event_id).collect::<Vec<_>>(),
        acknowledged.iter().map(|a| a.1).collect::<Vec<_>>(),
        "exactly the acknowledged appends"
    );
    for (stream, id, position) in acknowledged.iter().step_by(97) {
        let found = store.event_by_id(*id).await.unwrap().expect("found by id");
        assert_eq!((&found.stream_id, found.position), (stream, *position));
    }

    store.close();
    drop(store);
    let store = SledStore::open(dir.path().join("store"), options).expect("reopens");
    let all = store.read_all(0, acknowledged.len() + 10).await.unwrap();
    assert_eq!(all.len(), acknowledged.len());
    let report = store.verify(hoso_store::VerifyScope::All).await.unwrap();
    assert_eq!(report.first_problem, None);
}
