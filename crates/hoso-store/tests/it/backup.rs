//! Backup and restore of the durable store: a backup taken while appends run holds every append
//! acknowledged before it, byte for byte; a later run copies only what is new; a damaged or
//! misdirected backup is refused with the damage named.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hoso_store::conformance::event;
use hoso_store::{EventStore, ExpectedVersion, SledOptions, SledStore, StoreError, backup, restore};

/// Small segments, so that a backup spans several, closed and active.
fn options() -> SledOptions {
    SledOptions {
        segment_bytes: 64 << 10,
        ..SledOptions::default()
    }
}

async fn fill(store: &SledStore, stream: &str, n: usize) {
    for i in 0..n {
        store
            .append(stream, ExpectedVersion::Any, vec![event(&format!("{stream}-{i}"))])
            .await
            .unwrap();
    }
}

async fn take(data: &Path, dest: &Path) -> hoso_store::BackupReport {
    backup(data, dest, &mut |_, _| {}).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_under_appends_restores_every_acknowledged_event_byte_for_byte() {
    let (data, dest, restored) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let store = SledStore::open(data.path(), options()).unwrap();
    fill(&store, "warm", 300).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut appenders = Vec::new();
    for a in 0..4 {
        let (store, stop) = (store.clone(), stop.clone());
        appenders.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                store
                    .append(&format!("s{a}"), ExpectedVersion::Any, vec![event(&format!("{a}-{i}"))])
                    .await
                    .unwrap();
                i += 1;
                tokio::task::yield_now().await;
            }
            i
        }));
    }
    // Every append acknowledged before the backup starts is below the durable head read here.
    let acknowledged = store.head();
    let report = take(data.path(), dest.path()).await;
    stop.store(true, Ordering::Relaxed);
    for appender in appenders {
        appender.await.unwrap();
    }
    assert!(report.position >= acknowledged, "{} < {acknowledged}", report.position);
    assert!(
        report.segments.len() > 1,
        "the backup spans {} segment(s)",
        report.segments.len()
    );

    let restored_report = restore(dest.path(), &restored.path().join("store")).await.unwrap();
    assert_eq!(restored_report.position, report.position);
    assert_eq!(restored_report.store_id, store.store_id());
    let copy = SledStore::open(restored.path().join("store"), options()).unwrap();
    assert_eq!(copy.head(), report.position);
    assert_eq!(copy.store_id(), store.store_id());
    let want = store.read_all(0, report.position as usize).await.unwrap();
    let got = copy.read_all(0, report.position as usize + 10).await.unwrap();
    assert_eq!(got.len() as u64, report.position);
    assert!(got == want, "the restored envelopes differ from the source's");
}

#[tokio::test]
async fn a_second_backup_copies_only_what_is_new() {
    let (data, dest) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = SledStore::open(data.path(), options()).unwrap();
    fill(&store, "a", 400).await;
    let first = take(data.path(), dest.path()).await;
    assert_eq!(first.position, 400);
    assert_eq!(first.bytes_copied, first.bytes_total);

    let unchanged = take(data.path(), dest.path()).await;
    assert_eq!(unchanged.bytes_copied, 0);
    assert_eq!(unchanged.position, 400);

    fill(&store, "b", 50).await;
    let second = take(data.path(), dest.path()).await;
    assert_eq!(second.position, 450);
    assert!(second.bytes_copied > 0);
    assert_eq!(second.bytes_copied, second.bytes_total - first.bytes_total);
    assert!(
        second.bytes_copied < first.bytes_total / 2,
        "{} bytes copied again",
        second.bytes_copied
    );
    // Segments closed before the first run are not touched again.
    for (name, len) in &first.segments {
        if second.segments.keys().next_back() != Some(name) {
            assert_eq!(second.segments.get(name), Some(len), "{name}");
        }
    }
}

#[tokio::test]
async fn a_damaged_backup_is_refused_naming_the_damage() {
    let (data, dest, target) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let store = SledStore::open(data.path(), options()).unwrap();
    fill(&store, "a", 100).await;
    take(data.path(), dest.path()).await;
    let segment = dest.path().join("log").join("0000000001.segment");
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[5000] ^= 0x20;
    std::fs::write(&segment, bytes).unwrap();

    let err = restore(dest.path(), target.path()).await.unwrap_err();
    let StoreError::Corrupted { reason, .. } = &err else {
        panic!("{err}");
    };
    assert!(reason.contains("0000000001.segment"), "{reason}");
    assert!(reason.contains("CRC"), "{reason}");
    assert_eq!(
        std::fs::read_dir(target.path()).unwrap().count(),
        0,
        "the failed restore left files"
    );
}

#[tokio::test]
async fn restore_refuses_a_store_and_backup_refuses_another_stores_backup() {
    let (one, two, dest) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let first = SledStore::open(one.path(), options()).unwrap();
    fill(&first, "a", 10).await;
    let second = SledStore::open(two.path(), options()).unwrap();
    fill(&second, "a", 10).await;
    take(one.path(), dest.path()).await;

    let err = backup(two.path(), dest.path(), &mut |_, _| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("another store"), "{err}");
    let err = restore(dest.path(), two.path()).await.unwrap_err().to_string();
    assert!(err.contains("not empty"), "{err}");
    let err = restore(one.path(), &dest.path().join("x"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("backup.json"), "{err}");
}

#[tokio::test]
async fn a_run_that_did_not_finish_is_taken_up_by_the_next() {
    let (data, dest, target) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let store = SledStore::open(data.path(), options()).unwrap();
    fill(&store, "a", 100).await;
    let first = take(data.path(), dest.path()).await;
    // An unfinished run: bytes copied past the manifest's length, and no manifest written.
    let (name, len) = first.segments.iter().next_back().unwrap();
    let segment = dest.path().join("log").join(name);
    let mut file = std::fs::OpenOptions::new().append(true).open(&segment).unwrap();
    std::io::Write::write_all(&mut file, &[0xab; 100]).unwrap();
    drop(file);
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), len + 100);

    fill(&store, "b", 20).await;
    let second = take(data.path(), dest.path()).await;
    assert_eq!(second.position, 120);
    assert_eq!(second.bytes_copied, second.bytes_total - first.bytes_total);
    let restored = restore(dest.path(), target.path()).await.unwrap();
    assert_eq!(restored.position, 120);
}
