//! Fault injection: a disk that fills up on a write, an fsync that fails, an index engine whose
//! flush fails, and records damaged at the end or in the middle of the log. Each test ends by
//! checking that every acknowledged append is present, and that the store says what the
//! operator must do. (A real full disk, on a size-limited tmpfs, is in `disk_full.rs`.)

use std::path::Path;
use std::time::Duration;

use hoso_store::conformance::event;
use hoso_store::{EventStore, ExpectedVersion, SledOptions, SledStore, StoreError, StreamRead, VerifyScope};
use uuid::Uuid;

/// Small segments, so that a full disk also strikes around a segment's roll.
fn options(segment_bytes: u64) -> SledOptions {
    SledOptions {
        segment_bytes,
        ..SledOptions::default()
    }
}

/// An acknowledged append: its stream, its event id and its position.
type Acked = (String, Uuid, u64);

async fn append_some(store: &SledStore, tag: &str, n: u32, acked: &mut Vec<Acked>) {
    for i in 0..n {
        let stream = format!("s{}", i % 3);
        let e = event(&format!("{tag}{i}"));
        let result = store
            .append(&stream, ExpectedVersion::Any, vec![e.clone()])
            .await
            .unwrap();
        acked.push((stream, e.event_id, result.positions.unwrap().0));
    }
}

/// Every acknowledged append is present, in order and without gaps, by position, by id and in
/// its stream, and nothing else is.
async fn check_acknowledged(store: &SledStore, acked: &[Acked]) {
    let all = store.read_all(0, acked.len() + 10).await.unwrap();
    assert_eq!(
        all.iter().map(|r| (r.event_id, r.position)).collect::<Vec<_>>(),
        acked.iter().map(|a| (a.1, a.2)).collect::<Vec<_>>(),
        "the log holds exactly the acknowledged appends"
    );
    assert!(
        acked.iter().enumerate().all(|(i, a)| a.2 == i as u64),
        "positions are gap-free"
    );
    for (stream, id, position) in acked {
        let found = store.event_by_id(*id).await.unwrap().expect("found by id");
        assert_eq!((&found.stream_id, found.position), (stream, *position));
    }
    for s in 0..3 {
        let stream = format!("s{s}");
        let read = store.read_stream(&stream, StreamRead::forward()).await.unwrap();
        let want: Vec<_> = acked.iter().filter(|a| a.0 == stream).map(|a| a.1).collect();
        assert_eq!(read.iter().map(|r| r.event_id).collect::<Vec<_>>(), want, "{stream}");
        assert!(
            read.iter().enumerate().all(|(v, r)| r.version == v as u64),
            "{stream}: versions gap-free"
        );
    }
}

/// Appends `e` until the store takes it (at most `attempts` times, `PROBE_BACKOFF` apart at
/// most): the store resumes on an append once its back-off has passed.
async fn append_when_taken(store: &SledStore, stream: &str, e: hoso_store::NewEvent, acked: &mut Vec<Acked>) {
    for _ in 0..50 {
        match store.append(stream, ExpectedVersion::Any, vec![e.clone()]).await {
            Ok(result) => {
                acked.push((stream.to_owned(), e.event_id, result.positions.unwrap().0));
                return;
            }
            Err(StoreError::WritesRefused { .. }) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(other) => panic!("{other:?}"),
        }
    }
    panic!("the store never took writes again: {:?}", store.write_refusal());
}

/// A write that fails for lack of space refuses appends, says that writes resume by themselves,
/// and keeps refusing while the disk is full (its probes fail); once space is back, appends are
/// taken again without a reopen, at the next position, and the half-written append that failed
/// never becomes visible. With segments of 1 byte, every append starts a segment, so the
/// failed write also leaves a segment started after the durable end.
#[tokio::test(flavor = "multi_thread")]
async fn writes_resume_without_a_reopen_once_space_is_back() {
    for segment_bytes in [64 << 20, 1] {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path(), options(segment_bytes)).unwrap();
        let mut acked = Vec::new();
        append_some(&store, "before", 20, &mut acked).await;

        store.set_disk_full(true);
        let lost = event("lost");
        let err = store
            .append("s0", ExpectedVersion::Any, vec![lost.clone()])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::WritesRefused { .. }), "{err:?}");
        let refusal = store.write_refusal().expect("refused");
        assert!(refusal.contains("no space left"), "{refusal}");
        assert!(
            refusal.contains("resume by themselves once space is freed"),
            "{refusal}"
        );
        assert_eq!(store.head(), 20, "the failed append is not visible");
        check_acknowledged(&store, &acked).await;

        // Still full: past the back-off, the probe fails and appends stay refused.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let err = store
            .append("s1", ExpectedVersion::Any, vec![event("still full")])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::WritesRefused { .. }), "{err:?}");
        assert!(store.write_refusal().is_some());

        store.set_disk_full(false);
        append_when_taken(&store, "s0", event("after"), &mut acked).await;
        assert_eq!(acked.last().unwrap().2, 20, "the next append takes the next position");
        assert_eq!(store.write_refusal(), None);
        append_some(&store, "later", 10, &mut acked).await;
        assert_eq!(store.event_by_id(lost.event_id).await.unwrap(), None);
        check_acknowledged(&store, &acked).await;

        store.close();
        drop(store);
        let store = SledStore::open(dir.path(), options(segment_bytes)).unwrap();
        check_acknowledged(&store, &acked).await;
        let report = store.verify(VerifyScope::All).await.unwrap();
        assert_eq!((report.records_checked, report.first_problem), (31, None));
        assert_eq!(
            store.quarantined(),
            vec![],
            "nothing half-written was left for recovery to cut"
        );
    }
}

/// A failed fsync is never retried: the page cache may have dropped the pages it failed to
/// write. Appends stay refused past any back-off, the refusal says to restart, and the
/// reopened store holds every acknowledged append and takes appends again.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_fsync_refuses_writes_until_reopened_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path(), options(64 << 20)).unwrap();
    let mut acked = Vec::new();
    append_some(&store, "before", 10, &mut acked).await;
    store.fail_next_flush();
    let err = store
        .append("s0", ExpectedVersion::Any, vec![event("lost")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::WritesRefused { .. }), "{err:?}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let err = store
        .append("s0", ExpectedVersion::Any, vec![event("later")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::WritesRefused { .. }), "{err:?}");
    let refusal = store.write_refusal().expect("refused");
    assert!(
        refusal.contains("fsync") && refusal.contains("restart the server"),
        "{refusal}"
    );
    assert_eq!(store.head(), 10);
    check_acknowledged(&store, &acked).await;

    store.close();
    drop(store);
    let store = SledStore::open(dir.path(), options(64 << 20)).unwrap();
    // The append whose fsync failed may have reached the disk; every acknowledged one did.
    let all = store.read_all(0, 100).await.unwrap();
    assert!(all.len() == 10 || all.len() == 11, "{}", all.len());
    let tail = all.len() == 11;
    if !tail {
        check_acknowledged(&store, &acked).await;
    } else {
        assert_eq!(
            all[..10].iter().map(|r| r.event_id).collect::<Vec<_>>(),
            acked.iter().map(|a| a.1).collect::<Vec<_>>()
        );
    }
    store
        .append("s0", ExpectedVersion::Any, vec![event("after reopen")])
        .await
        .unwrap();
    assert_eq!(store.write_refusal(), None);
}

/// The index engine's flush fails (as sled's does on a full disk): appends are refused until a
/// reopen, which says so; reads go on meanwhile, and the reopened store re-indexes from the
/// segments and holds every acknowledged append.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_index_flush_refuses_writes_until_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path(), options(64 << 20)).unwrap();
    // The indexer is held back while the appends are acknowledged, then fails its batch.
    store.hold_indexer_at(0);
    let mut acked = Vec::new();
    append_some(&store, "before", 10, &mut acked).await;
    store.fail_next_index();
    store.hold_indexer_at(u64::MAX);
    let mut looked = 0;
    while store.write_refusal().is_none() {
        looked += 1;
        assert!(looked < 500, "the indexer never ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refusal = store.write_refusal().unwrap();
    assert!(
        refusal.contains("the indexer failed") && refusal.contains("restart the server"),
        "{refusal}"
    );
    let err = store
        .append("s0", ExpectedVersion::Any, vec![event("refused")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::WritesRefused { .. }), "{err:?}");
    check_acknowledged(&store, &acked).await;

    store.close();
    drop(store);
    let store = SledStore::open(dir.path(), options(64 << 20)).unwrap();
    check_acknowledged(&store, &acked).await;
    append_some(&store, "after", 5, &mut acked).await;
    check_acknowledged(&store, &acked).await;
}

/// The segment file of sequence `n` in a store directory.
fn segment(dir: &Path, n: u32) -> std::path::PathBuf {
    dir.join("log").join(format!("{n:010}.segment"))
}

/// The offsets at which the entries of a segment start, and its end.
fn entry_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offsets = vec![0];
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        at += 8 + len;
        offsets.push(at);
    }
    offsets
}

/// A damaged last record, acknowledged and not yet indexed (a crash before the indexer reached
/// it): recovery cuts it, keeps its bytes in quarantine and reports it as possibly
/// acknowledged; every append before it is present and appends go on at its position.
#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_last_record_is_quarantined_and_every_other_append_kept() {
    let dir = tempfile::tempdir().unwrap();
    let no_zeros = SledOptions {
        zero_fill_ahead_bytes: 0,
        ..options(64 << 20)
    };
    let mut acked = Vec::new();
    {
        let store = SledStore::open(dir.path(), no_zeros).unwrap();
        append_some(&store, "a", 12, &mut acked).await;
        store.close();
    }
    let path = segment(dir.path(), 1);
    let mut bytes = std::fs::read(&path).unwrap();
    let offsets = entry_offsets(&bytes);
    let last = offsets[offsets.len() - 2];
    bytes[last + 30] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    // As after a crash before the indexer reached it: recovery scans it.
    for name in ["conf", "db", "blobs", "ids"] {
        let p = dir.path().join(name);
        let _ = std::fs::remove_file(&p).or_else(|_| std::fs::remove_dir_all(&p));
    }

    let store = SledStore::open(dir.path(), no_zeros).unwrap();
    let quarantined = store.quarantined();
    assert_eq!(quarantined.len(), 1);
    assert!(quarantined[0].may_have_been_acknowledged);
    assert_eq!((quarantined[0].position, quarantined[0].offset), (11, last as u64));
    let lost = acked.pop().unwrap();
    assert_eq!(store.event_by_id(lost.1).await.unwrap(), None);
    check_acknowledged(&store, &acked).await;
    let s = lost.0.clone();
    append_when_taken(&store, &s, event("again"), &mut acked).await;
    assert_eq!(acked.last().unwrap().2, 11);
    check_acknowledged(&store, &acked).await;
}

/// A damaged record in the middle of an indexed log: the store opens, reading it fails with
/// `Corrupted` naming its position, segment and offset (never a wrong answer), `verify` reports
/// it, and every other acknowledged append is read as it was.
#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_middle_record_is_reported_and_every_other_append_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked = Vec::new();
    {
        let store = SledStore::open(dir.path(), options(64 << 20)).unwrap();
        append_some(&store, "a", 12, &mut acked).await;
        store.close();
    }
    let path = segment(dir.path(), 1);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = entry_offsets(&bytes)[5];
    bytes[at + 30] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    let store = SledStore::open(dir.path(), options(64 << 20)).unwrap();
    let damaged = acked[5].clone();
    let err = store.event_by_id(damaged.1).await.unwrap_err();
    match &err {
        StoreError::Corrupted { position, reason } => {
            assert_eq!(*position, 5);
            assert!(reason.contains("0000000001.segment"), "{reason}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    let err = store.read_all(0, 100).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupted { position: 5, .. }), "{err:?}");
    let report = store.verify(VerifyScope::All).await.unwrap();
    let problem = report.first_problem.expect("verify reports the damage");
    assert_eq!(problem.position, 5, "{problem:?}");
    for (i, (stream, id, position)) in acked.iter().enumerate() {
        if i == 5 {
            continue;
        }
        let found = store.event_by_id(*id).await.unwrap().expect("found by id");
        assert_eq!((&found.stream_id, found.position), (stream, *position));
    }
    assert_eq!(store.read_all(6, 100).await.unwrap().len(), 6);
    assert_eq!(store.read_all(0, 5).await.unwrap().len(), 5);
}

/// The backup's known limit (docs/design.md, "Backup and restore"): it copies whole entries up
/// to the end of the log without knowing the store's durable head, so it takes the half of an
/// append that a full disk cut short and that was never acknowledged. The store drops those
/// records when it resumes and writes others at their positions; the next backup run into the
/// same directory notices and refuses, saying what happened and what to do, and a new backup
/// into an empty directory holds exactly the acknowledged appends.
#[tokio::test(flavor = "multi_thread")]
async fn a_backup_that_took_records_the_store_then_dropped_is_refused_next_time() {
    let (dir, backups) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = SledStore::open(dir.path(), options(64 << 20)).unwrap();
    let mut acked = Vec::new();
    append_some(&store, "before", 20, &mut acked).await;

    // Ten events in one append: the full disk writes half of them, whole, then fails the write.
    store.set_disk_full(true);
    let failed: Vec<_> = (0..10).map(|i| event(&format!("never acknowledged {i}"))).collect();
    let err = store
        .append("s0", ExpectedVersion::Any, failed.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::WritesRefused { .. }), "{err:?}");
    let dest = backups.path().join("backup");
    let taken = hoso_store::backup(dir.path(), &dest, &mut |_, _| {}).await.unwrap();
    assert!(
        taken.position > 20,
        "the backup took whole records of the failed append: {}",
        taken.position
    );

    store.set_disk_full(false);
    append_when_taken(&store, "s1", event("after"), &mut acked).await;
    assert_eq!(
        acked.last().unwrap().2,
        20,
        "the store dropped the failed append's records"
    );
    append_some(&store, "later", 30, &mut acked).await;

    match hoso_store::backup(dir.path(), &dest, &mut |_, _| {}).await {
        Err(StoreError::Refused(message)) => {
            assert!(
                message.contains("since the last backup") && message.contains("never having acknowledged them"),
                "the refusal says what happened: {message}"
            );
            assert!(
                message.contains("keep serving from it")
                    && message.contains("take a new backup into an empty directory"),
                "the refusal says what to do: {message}"
            );
        }
        other => panic!("the next backup run is refused, got {other:?}"),
    }
    let fresh = hoso_store::backup(dir.path(), &backups.path().join("new"), &mut |_, _| {})
        .await
        .unwrap();
    assert_eq!(fresh.position, acked.len() as u64);
    check_acknowledged(&store, &acked).await;
    for e in &failed {
        assert_eq!(store.event_by_id(e.event_id).await.unwrap(), None);
    }
    store.close();
}
