//! Fail points: after an fsync fails, the store refuses every write until it is reopened,
//! and nothing that was not acknowledged becomes visible meanwhile.

use hoso_store::conformance::event;
use hoso_store::{EventStore, ExpectedVersion, SledOptions, SledStore, StoreError, StreamRead};

#[tokio::test]
async fn an_fsync_failure_refuses_writes_until_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path(), SledOptions::default()).unwrap();
    let acked = event("acked");
    store
        .append("s", ExpectedVersion::NoStream, vec![acked.clone()])
        .await
        .unwrap();

    assert_eq!(store.write_refusal(), None, "a healthy store accepts writes");
    store.fail_next_flush();
    let err = store
        .append("s", ExpectedVersion::Exact(0), vec![event("lost")])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::WritesRefused { first_failure } if first_failure.contains("fsync")),
        "{err:?}"
    );
    assert_eq!(store.head(), 1, "the unacknowledged append is not visible");
    assert_eq!(store.read_stream("s", StreamRead::forward()).await.unwrap().len(), 1);

    let err = store
        .append("other", ExpectedVersion::Any, vec![event("later")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::WritesRefused { .. }), "{err:?}");
    assert!(err.to_string().contains("reopen"), "{err}");
    assert!(
        store.write_refusal().is_some_and(|why| why.contains("fsync")),
        "the refusal names the first failure: {:?}",
        store.write_refusal()
    );

    store.close();
    drop(store);
    let store = SledStore::open(dir.path(), SledOptions::default()).unwrap();
    let first = store.read_stream("s", StreamRead::forward()).await.unwrap();
    assert_eq!(first[0].event_id, acked.event_id, "the acknowledged event survived");
    store
        .append("other", ExpectedVersion::Any, vec![event("after reopen")])
        .await
        .unwrap();
}
