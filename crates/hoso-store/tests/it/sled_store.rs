//! What only the durable store has: its files survive a reopen, they carry a format version,
//! and tampering with them is found by `verify`.

use hoso_store::conformance::event;
use hoso_store::{EventStore, ExpectedVersion, SledOptions, SledStore, StoreError, StreamRead, VerifyScope};

fn open(path: &std::path::Path) -> SledStore {
    SledStore::open(path, SledOptions::default()).unwrap()
}

#[tokio::test]
async fn reopen_keeps_everything_and_recorded_at_keeps_increasing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for i in 0..10 {
        store
            .append(
                &format!("s{}", i % 3),
                ExpectedVersion::Any,
                vec![event("a"), event("b")],
            )
            .await
            .unwrap();
    }
    let before = store.read_all(0, 100).await.unwrap();
    store.close();
    drop(store);

    let store = open(dir.path());
    assert_eq!(store.head(), 20);
    assert_eq!(store.read_all(0, 100).await.unwrap(), before);
    assert_eq!(store.stream_version("s0").await.unwrap(), Some(7));
    // The chain continues across the reopen.
    store
        .append("s0", ExpectedVersion::Exact(7), vec![event("after")])
        .await
        .unwrap();
    let last = store
        .read_stream("s0", StreamRead::backward().max_count(1))
        .await
        .unwrap();
    assert_eq!(last[0].position, 20);
    assert!(last[0].recorded_at > before.last().unwrap().recorded_at);
    let report = store.verify(VerifyScope::All).await.unwrap();
    assert_eq!((report.records_checked, report.first_problem), (21, None));
}

#[tokio::test]
async fn appends_after_close_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.close();
    let err = store
        .append("s", ExpectedVersion::Any, vec![event("late")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Closed), "{err:?}");
}

#[test]
fn unknown_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));
    {
        let db = sled::open(dir.path()).unwrap();
        db.insert(b"mformat", &99u32.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    let err = SledStore::open(dir.path(), SledOptions::default())
        .err()
        .expect("refused");
    assert!(
        matches!(
            err,
            StoreError::UnsupportedFormat {
                found: 99,
                supported: 1
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the store on disk has format version 99; this build reads format version 1 only"
    );
}

#[test]
fn a_foreign_sled_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        db.insert(b"something", b"else").unwrap();
        db.flush().unwrap();
    }
    let err = SledStore::open(dir.path(), SledOptions::default())
        .err()
        .expect("refused");
    assert!(err.to_string().contains("not written by hoso"), "{err}");
}

/// Flips one byte of one stored record behind the store's back: `verify` names that record,
/// whole-store and per stream, and reading it still works (verification is the alarm).
#[tokio::test]
async fn tampering_with_one_byte_is_found_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for i in 0..30 {
        store
            .append(
                &format!("dossier-{}", i % 5),
                ExpectedVersion::Any,
                vec![event(&format!("e{i}"))],
            )
            .await
            .unwrap();
    }
    let target = store.read_all(17, 1).await.unwrap().remove(0);
    store.close();
    drop(store);

    {
        let db = sled::open(dir.path()).unwrap();
        let mut key = vec![b'e'];
        key.extend_from_slice(&17u64.to_be_bytes());
        let mut bytes = db.get(&key).unwrap().expect("record 17 is stored").to_vec();
        // A byte inside the JSON data: "e17" becomes "e18".
        let at = bytes.windows(3).position(|w| w == b"e17").expect("tag in the data");
        bytes[at + 2] = b'8';
        db.insert(key, bytes).unwrap();
        db.flush().unwrap();
    }

    let store = open(dir.path());
    let report = store.verify(VerifyScope::All).await.unwrap();
    let problem = report.first_problem.expect("tampering is found");
    assert_eq!(problem.position, 17);
    assert_eq!(problem.stream_id.as_deref(), Some(target.stream_id.as_str()));
    assert_eq!(problem.version, Some(target.version));
    assert!(problem.reason.contains("do not match its hash"), "{problem}");
    assert_eq!(report.records_checked, 17, "everything before it is intact");

    let one = store
        .verify(VerifyScope::Stream(target.stream_id.clone()))
        .await
        .unwrap();
    assert_eq!(one.first_problem.map(|p| p.position), Some(17));
    let other = if target.stream_id == "dossier-0" {
        "dossier-1"
    } else {
        "dossier-0"
    };
    let clean = store.verify(VerifyScope::Stream(other.to_owned())).await.unwrap();
    assert_eq!(clean.first_problem, None);
}

/// A record whose length field is damaged does not decode: `verify` names it too.
#[tokio::test]
async fn a_truncated_record_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .append("s", ExpectedVersion::Any, vec![event("a"), event("b"), event("c")])
        .await
        .unwrap();
    store.close();
    drop(store);
    {
        let db = sled::open(dir.path()).unwrap();
        let mut key = vec![b'e'];
        key.extend_from_slice(&1u64.to_be_bytes());
        let bytes = db.get(&key).unwrap().unwrap().to_vec();
        db.insert(key, &bytes[..bytes.len() - 10]).unwrap();
        db.flush().unwrap();
    }
    let store = open(dir.path());
    let problem = store
        .verify(VerifyScope::All)
        .await
        .unwrap()
        .first_problem
        .expect("found");
    assert_eq!(problem.position, 1);
    let err = store.read_all(0, 10).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupted { position: 1, .. }), "{err:?}");
}
