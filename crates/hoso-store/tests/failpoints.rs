//! Fail points: after an fsync fails, the store refuses every write until it is reopened,
//! and nothing that was not acknowledged becomes visible meanwhile; while the background
//! indexer lags, reads answer from the memtable exactly as from sled, and a kill then loses
//! nothing.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use hoso_store::conformance::event;
use hoso_store::{
    EventStore, ExpectedVersion, NewEvent, Position, SledOptions, SledStore, StoreError, StreamRead, VerifyScope,
};
use uuid::Uuid;

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

/// Waits until sled holds the index entries of every position before `position`.
async fn indexed_through(store: &SledStore, position: Position) {
    let mut indexed = store.watch_indexed();
    indexed.wait_for(|&p| p >= position).await.expect("the indexer runs");
    assert_eq!(*indexed.borrow(), position, "the indexer stops at its hold");
}

/// The event at `version` of `stream`, with an id and content fixed by those two.
fn fixed_event(stream: &str, version: u64) -> NewEvent {
    let mut e = event(&format!("{stream}/{version}"));
    e.event_id = Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("{stream}/{version}").as_bytes());
    e.occurred_at = hoso_store::conformance::occurred(0);
    e
}

/// Appends 100 events in 25 appends of 4 across five streams: positions 4k..4k+3 go to
/// stream `s{k % 5}`, versions 4(k / 5) .. 4(k / 5) + 3.
async fn append_hundred(store: &SledStore) -> Vec<(String, ExpectedVersion, Vec<NewEvent>)> {
    let mut appends = Vec::new();
    for k in 0..25u64 {
        let stream = format!("s{}", k % 5);
        let first = 4 * (k / 5);
        let events: Vec<_> = (first..first + 4).map(|v| fixed_event(&stream, v)).collect();
        let expected = first
            .checked_sub(1)
            .map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
        let result = store.append(&stream, expected, events.clone()).await.unwrap();
        assert_eq!(result.positions, Some((4 * k, 4 * k + 3)));
        appends.push((stream, expected, events));
    }
    appends
}

/// Every read answers the same whether an index entry is still in the memtable or in sled.
async fn check_reads(store: &SledStore, appends: &[(String, ExpectedVersion, Vec<NewEvent>)]) {
    assert_eq!(store.head(), 100);
    let all = store.read_all(0, 1000).await.unwrap();
    assert_eq!(all.len(), 100);
    for (k, (stream, _, events)) in appends.iter().enumerate() {
        for (i, e) in events.iter().enumerate() {
            let record = &all[4 * k + i];
            assert_eq!((record.event_id, &record.stream_id), (e.event_id, stream));
            let by_id = store.event_by_id(e.event_id).await.unwrap().expect("found by id");
            assert_eq!(&by_id, record);
        }
    }
    for from in [0, 31, 32, 33, 39, 40, 41, 63, 64, 99] {
        assert_eq!(
            store.read_all(from, 7).await.unwrap(),
            all[from as usize..(from as usize + 7).min(100)]
        );
    }
    for s in 0..5 {
        let stream = format!("s{s}");
        let forward = store.read_stream(&stream, StreamRead::forward()).await.unwrap();
        let want: Vec<_> = all.iter().filter(|r| r.stream_id == stream).cloned().collect();
        assert_eq!(forward, want);
        let mut backward = store.read_stream(&stream, StreamRead::backward()).await.unwrap();
        backward.reverse();
        assert_eq!(backward, want);
        let middle = store
            .read_stream(&stream, StreamRead::forward().from(6).max_count(7))
            .await
            .unwrap();
        assert_eq!(middle, want[6..13]);
        let cutoff = want[9].recorded_at;
        let as_of = store
            .read_stream(&stream, StreamRead::backward().as_of(cutoff))
            .await
            .unwrap();
        // Version 9 was appended with versions 8 to 11, at one recorded_at.
        assert_eq!(as_of.first().map(|r| r.version), Some(11));
        assert_eq!(as_of.len(), 12);
        assert_eq!(store.stream_version(&stream).await.unwrap(), Some(19));
        let report = store.verify(VerifyScope::Stream(stream.clone())).await.unwrap();
        assert_eq!((report.records_checked, report.first_problem), (20, None));
    }
    let report = store.verify(VerifyScope::All).await.unwrap();
    assert_eq!((report.records_checked, report.first_problem), (100, None));
    // Retries are recognised wherever the original append's entries are.
    for k in [0usize, 9, 10, 24] {
        let (stream, expected, events) = &appends[k];
        let result = store.append(stream, *expected, events.clone()).await.unwrap();
        assert_eq!(result.positions, Some((4 * k as u64, 4 * k as u64 + 3)));
    }
    assert_eq!(store.head(), 100, "retries write nothing");
}

/// The indexer is held at position 40 while 100 events are appended: reads, retries and
/// verification give the same answers before and after it catches up.
#[tokio::test]
async fn reads_are_the_same_while_the_indexer_lags() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path(), SledOptions::default()).unwrap();
    store.hold_indexer_at(40);
    let appends = append_hundred(&store).await;
    indexed_through(&store, 40).await;
    check_reads(&store, &appends).await;

    store.hold_indexer_at(Position::MAX);
    let mut indexed = store.watch_indexed();
    indexed.wait_for(|&p| p == 100).await.unwrap();
    check_reads(&store, &appends).await;
}

const CHILD_ENV: &str = "HOSO_FAILPOINTS_CHILD";

/// The child half of the next test: appends with the indexer held at 40, says so, and waits
/// to be killed.
fn lagging_child(dir: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = SledStore::open(dir, SledOptions::default()).unwrap();
        store.hold_indexer_at(40);
        append_hundred(&store).await;
        indexed_through(&store, 40).await;
        println!("ready");
        std::future::pending::<()>().await;
    });
}

/// A SIGKILL while sled holds only part of the index: the reopened store re-indexes the rest
/// from the segments and loses nothing.
#[test]
fn a_kill_while_the_indexer_lags_loses_nothing() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        lagging_child(&dir);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_kill_while_the_indexer_lags_loses_nothing", "--nocapture"])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let ready = stdout.lines().map_while(Result::ok).any(|line| line == "ready");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(ready, "the child got its appends acknowledged");

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = SledStore::open(dir.path(), SledOptions::default()).unwrap();
        let appends: Vec<_> = (0..25u64)
            .map(|k| {
                let stream = format!("s{}", k % 5);
                let first = 4 * (k / 5);
                let events: Vec<_> = (first..first + 4).map(|v| fixed_event(&stream, v)).collect();
                let expected = first
                    .checked_sub(1)
                    .map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
                (stream, expected, events)
            })
            .collect();
        check_reads(&store, &appends).await;
        let next = store
            .append("s0", ExpectedVersion::Exact(19), vec![event("after the kill")])
            .await
            .unwrap();
        assert_eq!(next.positions, Some((100, 100)));
    });
}
