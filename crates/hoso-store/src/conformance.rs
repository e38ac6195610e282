//! The conformance suite: what every [`EventStore`] implementation must do.
//!
//! Each case is an async function that takes a fresh, empty store and panics on the first
//! broken promise. [`conformance_tests!`](crate::conformance_tests) turns the whole list into
//! `#[tokio::test]`s for one implementation, so a new backend (PostgreSQL) proves itself by
//! one macro call:
//!
//! ```ignore
//! hoso_store::conformance_tests!(|| async { (MemoryStore::new(), ()) });
//! ```
//!
//! The factory returns the store and a guard (a temporary directory, a database) that lives
//! as long as the test.
//!
//! Two checks need more than a fresh store and are called by each implementation's own tests:
//! [`model`] (the property test against a model, behind the `model` feature) and
//! [`tampering_with_a_record_is_found`] (which alters stored bytes behind the store's back). The
//! cases of [`copy`] take two stores, for the implementations of [`crate::ImportStore`].

pub mod copy;
#[cfg(feature = "model")]
pub mod model;

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::{
    AppendResult, EventStore, ExpectedVersion, Json, NewEvent, RecordedEvent, StoreError, StreamRead, VerifyScope,
};

/// Appends 30 events, one per append, to five streams; then `tamper` changes the tag `"e17"` in
/// the data of the event at position 17 (given to it) into `"e18"` behind the store's back and
/// returns the store to verify (reopened, if need be). `verify` must name that record, whole
/// and per stream, with every record before it intact and another stream clean.
pub async fn tampering_with_a_record_is_found<S, F, Fut>(store: S, tamper: F)
where
    S: EventStore,
    F: FnOnce(S, RecordedEvent) -> Fut,
    Fut: Future<Output = S>,
{
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
    assert_eq!(tag_of(&target), "e17");
    let store = tamper(store, target.clone()).await;

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

/// Generates one `#[tokio::test]` per conformance case for the store made by `$make`, a
/// closure returning a future of `(store, guard)`.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@cases $make;
            append_assigns_versions_and_positions,
            expected_version_is_checked,
            conflict_writes_nothing,
            empty_append_checks_version_and_writes_nothing,
            retry_returns_original_result,
            reused_event_id_is_refused,
            limits_are_enforced,
            names_are_validated,
            streams_read_forward_and_backward,
            all_reads_in_batches_in_commit_order,
            stream_as_of_cutoff,
            recorded_at_increases_per_append,
            envelope_round_trips,
            ten_thousand_event_stream,
            racing_appenders_one_winner_per_version,
            racing_identical_appends_one_writes,
            concurrent_streams_share_flushes_without_gaps,
            subscription_catches_up_then_goes_live,
            slow_subscriber_does_not_block_writers,
            verify_accepts_an_intact_store,
            head_hash_chains_every_event_up_to_a_cutoff
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, _guard) = ($make)().await;
                $crate::conformance::$case(store).await;
            }
        )*
    };
}

/// A fixed instant for `occurred_at`, so tests do not depend on the clock.
pub fn occurred(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000 + seconds, 123_456_789).expect("in range")
}

/// A test event of about 300 bytes of JSON whose content is determined by `tag`.
pub fn event(tag: &str) -> NewEvent {
    NewEvent {
        event_id: Uuid::new_v4(),
        event_type: "TestEvent".to_owned(),
        schema_version: 1,
        data: json!({ "tag": tag, "receipt_code": "G09.20-20260609-0092637", "procedure": "1.001234",
                      "agency": "000.00.04.G18", "fee_vnd": 50_000, "note": "x".repeat(120) })
        .into(),
        metadata: json!({ "actor": "officer-7", "desk": "G09.20", "correlation_id": tag }).into(),
        occurred_at: occurred(0),
    }
}

fn events(n: usize, tag: &str) -> Vec<NewEvent> {
    (0..n).map(|i| event(&format!("{tag}-{i}"))).collect()
}

fn tag_of(record: &RecordedEvent) -> String {
    record.data_json().expect("stored data is JSON")["tag"]
        .as_str()
        .expect("tag")
        .to_owned()
}

fn assert_conflict(result: Result<AppendResult, StoreError>, expected_actual: Option<u64>) {
    match result {
        Err(StoreError::Conflict { actual, .. }) => {
            assert_eq!(actual, expected_actual, "conflict names the actual version")
        }
        other => panic!("expected a version conflict, got {other:?}"),
    }
}

/// Versions start at 0 per stream; positions are global, gap-free and in commit order.
pub async fn append_assigns_versions_and_positions<S: EventStore>(store: S) {
    let a = store
        .append("a", ExpectedVersion::NoStream, events(3, "a"))
        .await
        .unwrap();
    assert_eq!(
        a,
        AppendResult {
            current_version: Some(2),
            positions: Some((0, 2)),
            already_stored: false
        }
    );
    let b = store.append("b", ExpectedVersion::Any, events(2, "b")).await.unwrap();
    assert_eq!(
        b,
        AppendResult {
            current_version: Some(1),
            positions: Some((3, 4)),
            already_stored: false
        }
    );
    let a2 = store
        .append("a", ExpectedVersion::Exact(2), events(1, "a2"))
        .await
        .unwrap();
    assert_eq!(
        a2,
        AppendResult {
            current_version: Some(3),
            positions: Some((5, 5)),
            already_stored: false
        }
    );
    assert_eq!(store.head(), 6);
    assert_eq!(store.stream_version("a").await.unwrap(), Some(3));
    assert_eq!(store.stream_version("b").await.unwrap(), Some(1));
    assert_eq!(store.stream_version("none").await.unwrap(), None);
    let a = store.read_stream("a", StreamRead::forward()).await.unwrap();
    let versions: Vec<_> = a.iter().map(|r| (r.version, r.position)).collect();
    assert_eq!(versions, [(0, 0), (1, 1), (2, 2), (3, 5)]);
}

/// Each expected-version kind accepts exactly the states it names, and a mismatch names the
/// stream's actual version.
pub async fn expected_version_is_checked<S: EventStore>(store: S) {
    assert_conflict(
        store.append("s", ExpectedVersion::StreamExists, events(1, "x")).await,
        None,
    );
    assert_conflict(store.append("s", ExpectedVersion::Exact(0), events(1, "x")).await, None);
    store
        .append("s", ExpectedVersion::NoStream, events(2, "s"))
        .await
        .unwrap();
    assert_conflict(
        store.append("s", ExpectedVersion::NoStream, events(1, "x")).await,
        Some(1),
    );
    assert_conflict(
        store.append("s", ExpectedVersion::Exact(0), events(1, "x")).await,
        Some(1),
    );
    assert_conflict(
        store.append("s", ExpectedVersion::Exact(2), events(1, "x")).await,
        Some(1),
    );
    store
        .append("s", ExpectedVersion::StreamExists, events(1, "s"))
        .await
        .unwrap();
    store
        .append("s", ExpectedVersion::Exact(2), events(1, "s"))
        .await
        .unwrap();
    store.append("s", ExpectedVersion::Any, events(1, "s")).await.unwrap();
    assert_eq!(store.stream_version("s").await.unwrap(), Some(4));
    let err = store
        .append("s", ExpectedVersion::Exact(9), events(1, "x"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "version conflict on stream s: expected version 9, but the stream is at version 4"
    );
}

/// A refused append leaves no trace: not in the stream, not in `$all`, not by its event id.
pub async fn conflict_writes_nothing<S: EventStore>(store: S) {
    store
        .append("s", ExpectedVersion::NoStream, events(1, "s"))
        .await
        .unwrap();
    let refused = events(3, "refused");
    let ids: Vec<_> = refused.iter().map(|e| e.event_id).collect();
    assert_conflict(
        store.append("s", ExpectedVersion::NoStream, refused.clone()).await,
        Some(0),
    );
    assert_eq!(store.head(), 1);
    assert_eq!(store.read_all(0, 100).await.unwrap().len(), 1);
    for id in ids {
        assert_eq!(store.event_by_id(id).await.unwrap(), None);
    }
    // The refused events can be appended later, correctly this time.
    let ok = store.append("s", ExpectedVersion::Exact(0), refused).await.unwrap();
    assert_eq!(ok.positions, Some((1, 3)));
}

/// An empty append checks the expected version and returns the stream's version.
pub async fn empty_append_checks_version_and_writes_nothing<S: EventStore>(store: S) {
    let none = store.append("s", ExpectedVersion::NoStream, vec![]).await.unwrap();
    assert_eq!(
        none,
        AppendResult {
            current_version: None,
            positions: None,
            already_stored: false
        }
    );
    assert_conflict(store.append("s", ExpectedVersion::StreamExists, vec![]).await, None);
    store
        .append("s", ExpectedVersion::NoStream, events(2, "s"))
        .await
        .unwrap();
    let empty = store.append("s", ExpectedVersion::Exact(1), vec![]).await.unwrap();
    assert_eq!(
        empty,
        AppendResult {
            current_version: Some(1),
            positions: None,
            already_stored: false
        }
    );
    assert_conflict(store.append("s", ExpectedVersion::Exact(0), vec![]).await, Some(1));
    assert_eq!(store.head(), 2);
}

/// Re-sending the same events returns the first answer and writes nothing, even when the
/// expected version is stale by then.
pub async fn retry_returns_original_result<S: EventStore>(store: S) {
    let batch = events(3, "first");
    let first = store
        .append("s", ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    store
        .append("s", ExpectedVersion::Exact(2), events(2, "later"))
        .await
        .unwrap();
    store
        .append("other", ExpectedVersion::Any, events(1, "other"))
        .await
        .unwrap();
    let head = store.head();
    assert!(!first.already_stored, "the first append wrote");
    let first = AppendResult {
        already_stored: true,
        ..first
    };
    let retry = store
        .append("s", ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    assert_eq!(retry, first);
    let retry_any = store.append("s", ExpectedVersion::Any, batch.clone()).await.unwrap();
    assert_eq!(retry_any, first);
    // A retry serialized by another version of the desk software: the same JSON, with its keys
    // in another order and spaced out, is the same event.
    let mut respelled = batch;
    for event in &mut respelled {
        let value = event.data.to_value();
        let object = value.as_object().expect("test data is an object");
        let mut keys: Vec<_> = object.keys().collect();
        keys.reverse();
        let text = keys
            .iter()
            .map(|k| format!("{} : {}", serde_json::to_string(k).unwrap(), object[*k]))
            .collect::<Vec<_>>()
            .join(" , ");
        event.data = Json::parse(format!(" {{ {text} }} ")).unwrap();
        assert_ne!(event.data, Json::from(value.clone()), "the text differs");
    }
    let retry_respelled = store.append("s", ExpectedVersion::NoStream, respelled).await.unwrap();
    assert_eq!(retry_respelled, first);
    assert_eq!(store.head(), head, "a retry writes nothing");
    assert_eq!(store.read_stream("s", StreamRead::forward()).await.unwrap().len(), 5);
}

/// An event id may name one event only: other content, another stream, part of an append, a
/// mix of old and new events, or the same id twice in one append are refused.
pub async fn reused_event_id_is_refused<S: EventStore>(store: S) {
    let batch = events(2, "orig");
    store
        .append("s", ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    let head = store.head();

    let mut changed = batch.clone();
    changed[1].data = json!({ "tag": "changed" }).into();
    let err = store.append("s", ExpectedVersion::Any, changed).await.unwrap_err();
    assert!(
        matches!(err, StoreError::EventIdReused { event_id, .. } if event_id == batch[1].event_id),
        "{err:?}"
    );

    let mut changed_time = batch.clone();
    changed_time[0].occurred_at = occurred(60);
    let err = store.append("s", ExpectedVersion::Any, changed_time).await.unwrap_err();
    assert!(matches!(err, StoreError::EventIdReused { .. }), "{err:?}");

    let err = store
        .append("t", ExpectedVersion::Any, batch.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::EventIdReused { reason, .. } if reason.contains("stream s")),
        "{err:?}"
    );

    let err = store
        .append("s", ExpectedVersion::Any, batch[..1].to_vec())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::EventIdReused { reason, .. } if reason.contains("more events")),
        "{err:?}"
    );
    let err = store
        .append("s", ExpectedVersion::Any, batch[1..].to_vec())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::EventIdReused { reason, .. } if reason.contains("more events")),
        "{err:?}"
    );

    let mut mixed = batch.clone();
    mixed.push(event("new"));
    let err = store.append("s", ExpectedVersion::Any, mixed).await.unwrap_err();
    assert!(matches!(err, StoreError::EventIdReused { .. }), "{err:?}");

    let twice = event("twice");
    let err = store
        .append("u", ExpectedVersion::Any, vec![twice.clone(), twice.clone()])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::DuplicateEventInAppend { event_id } if event_id == twice.event_id),
        "{err:?}"
    );

    assert_eq!(store.head(), head, "no refused append wrote anything");
}

/// Oversized events and appends are refused with the sizes in the error.
pub async fn limits_are_enforced<S: EventStore>(store: S) {
    let mut big = event("big");
    big.data = json!({ "blob": "x".repeat(1 << 20) }).into();
    let err = store
        .append("s", ExpectedVersion::Any, vec![big.clone()])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::EventTooLarge { event_id, max, size } if event_id == big.event_id && max == 1 << 20 && size > max),
        "{err:?}"
    );
    // Just under the limit is fine: data plus metadata is what counts.
    let mut fits = event("fits");
    fits.metadata = json!({}).into();
    fits.data = json!("y".repeat((1 << 20) - 2 - 2)).into();
    store.append("s", ExpectedVersion::Any, vec![fits]).await.unwrap();

    let err = store
        .append("s", ExpectedVersion::Any, events(1_001, "many"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::TooManyEvents {
                count: 1_001,
                max: 1_000
            }
        ),
        "{err:?}"
    );
    store
        .append("s", ExpectedVersion::Any, events(1_000, "max"))
        .await
        .unwrap();
    assert_eq!(store.head(), 1_001);
}

/// Stream ids and event types must be 1 to 255 bytes without control characters.
pub async fn names_are_validated<S: EventStore>(store: S) {
    for bad in ["", "tab\there", &"x".repeat(256)] {
        let err = store
            .append(bad, ExpectedVersion::Any, events(1, "x"))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidStreamId { .. }), "{bad:?}: {err:?}");
    }
    let err = store.read_stream("", StreamRead::forward()).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidStreamId { .. }), "{err:?}");
    let mut e = event("x");
    e.event_type = String::new();
    let err = store.append("s", ExpectedVersion::Any, vec![e]).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidEventType { .. }), "{err:?}");
    store
        .append(&"x".repeat(255), ExpectedVersion::Any, events(1, "x"))
        .await
        .unwrap();
    store
        .append("hồ-sơ/G09.20-20260609-0092637", ExpectedVersion::Any, events(1, "x"))
        .await
        .unwrap();
    assert_eq!(store.head(), 2);
}

/// Forward and backward reads from any version, bounded by a count.
pub async fn streams_read_forward_and_backward<S: EventStore>(store: S) {
    for i in 0..5 {
        store
            .append("s", ExpectedVersion::Any, events(2, &format!("s{i}")))
            .await
            .unwrap();
        store
            .append("t", ExpectedVersion::Any, events(1, &format!("t{i}")))
            .await
            .unwrap();
    }
    let versions = |rs: Vec<RecordedEvent>| rs.iter().map(|r| r.version).collect::<Vec<_>>();
    assert_eq!(
        versions(store.read_stream("s", StreamRead::forward()).await.unwrap()),
        (0..10).collect::<Vec<_>>()
    );
    assert_eq!(
        versions(store.read_stream("s", StreamRead::forward().from(7)).await.unwrap()),
        [7, 8, 9]
    );
    assert_eq!(
        versions(
            store
                .read_stream("s", StreamRead::forward().from(3).max_count(2))
                .await
                .unwrap()
        ),
        [3, 4]
    );
    assert_eq!(
        versions(
            store
                .read_stream("s", StreamRead::backward().max_count(3))
                .await
                .unwrap()
        ),
        [9, 8, 7]
    );
    assert_eq!(
        versions(store.read_stream("s", StreamRead::backward().from(1)).await.unwrap()),
        [1, 0]
    );
    assert_eq!(
        versions(store.read_stream("s", StreamRead::forward().from(10)).await.unwrap()),
        Vec::<u64>::new()
    );
    assert_eq!(
        versions(
            store
                .read_stream("s", StreamRead::forward().max_count(0))
                .await
                .unwrap()
        ),
        Vec::<u64>::new()
    );
    assert!(
        store
            .read_stream("unknown", StreamRead::forward())
            .await
            .unwrap()
            .is_empty()
    );
    let t = store.read_stream("t", StreamRead::forward()).await.unwrap();
    assert!(t.iter().all(|r| r.stream_id == "t"));
    assert_eq!(
        t.iter().map(tag_of).collect::<Vec<_>>(),
        ["t0-0", "t1-0", "t2-0", "t3-0", "t4-0"]
    );
}

/// `$all` reads in batches from any position, gap-free, in commit order.
pub async fn all_reads_in_batches_in_commit_order<S: EventStore>(store: S) {
    let mut expected = Vec::new();
    for i in 0..40 {
        let stream = format!("s{}", i % 7);
        let batch = events(i % 3 + 1, &format!("b{i}"));
        expected.extend(batch.iter().map(|e| e.event_id));
        store.append(&stream, ExpectedVersion::Any, batch).await.unwrap();
    }
    let mut read = Vec::new();
    let mut from = 0;
    loop {
        let batch = store.read_all(from, 7).await.unwrap();
        if batch.is_empty() {
            break;
        }
        assert!(batch.len() <= 7);
        for r in &batch {
            assert_eq!(r.position, from, "positions are gap-free");
            from += 1;
        }
        read.extend(batch.iter().map(|r| r.event_id));
    }
    assert_eq!(read, expected);
    assert_eq!(store.read_all(from + 5, 10).await.unwrap(), vec![]);
    assert_eq!(
        store
            .read_all(3, 2)
            .await
            .unwrap()
            .iter()
            .map(|r| r.position)
            .collect::<Vec<_>>(),
        [3, 4]
    );
}

/// "As of" a cut-off, a stream reads as it stood then, by `recorded_at`.
pub async fn stream_as_of_cutoff<S: EventStore>(store: S) {
    store
        .append("s", ExpectedVersion::Any, events(2, "early"))
        .await
        .unwrap();
    let early = store.read_stream("s", StreamRead::forward()).await.unwrap();
    let cutoff = early[1].recorded_at;
    store
        .append("other", ExpectedVersion::Any, events(1, "o"))
        .await
        .unwrap();
    store
        .append("s", ExpectedVersion::Any, events(3, "late"))
        .await
        .unwrap();
    let as_of = store
        .read_stream("s", StreamRead::forward().as_of(cutoff))
        .await
        .unwrap();
    assert_eq!(as_of, early);
    let back = store
        .read_stream("s", StreamRead::backward().as_of(cutoff))
        .await
        .unwrap();
    assert_eq!(back.iter().map(|r| r.version).collect::<Vec<_>>(), [1, 0]);
    let before = store
        .read_stream("s", StreamRead::forward().as_of(cutoff - TimeDelta::microseconds(1)))
        .await
        .unwrap();
    assert!(
        before.is_empty(),
        "the first append was recorded exactly at the cut-off"
    );
    assert_eq!(
        store
            .read_stream("s", StreamRead::forward().as_of(Utc::now()))
            .await
            .unwrap()
            .len(),
        5
    );
}

/// The head hash at a position is the chain over every event's hash before it, computed in
/// pieces or at once alike; the position at a cut-off counts the events recorded by then.
pub async fn head_hash_chains_every_event_up_to_a_cutoff<S: EventStore>(store: S) {
    assert_eq!(
        crate::head_hash(&store, 0, crate::EMPTY_HEAD_HASH, 0).await.unwrap(),
        crate::EMPTY_HEAD_HASH
    );
    store.append("a", ExpectedVersion::Any, events(2, "a")).await.unwrap();
    store.append("b", ExpectedVersion::Any, events(1, "b")).await.unwrap();
    let cutoff = store.read_all(2, 1).await.unwrap()[0].recorded_at;
    store.append("a", ExpectedVersion::Any, events(3, "c")).await.unwrap();
    let all = store.read_all(0, 100).await.unwrap();
    let mut by_hand = crate::EMPTY_HEAD_HASH;
    let mut heads = vec![by_hand];
    for event in &all {
        use sha2::Digest as _;
        let mut hasher = sha2::Sha256::new();
        hasher.update(by_hand);
        hasher.update(event.hash);
        by_hand = hasher.finalize().into();
        heads.push(by_hand);
    }
    for to in 0..=6 {
        let whole = crate::head_hash(&store, 0, crate::EMPTY_HEAD_HASH, to).await.unwrap();
        assert_eq!(whole, heads[to as usize], "the head hash at {to}");
        let from_three = crate::head_hash(&store, 3, heads[3], to.max(3)).await.unwrap();
        assert_eq!(from_three, heads[to.max(3) as usize], "continued from 3 to {to}");
    }
    assert_ne!(heads[5], heads[6], "every event changes the head hash");
    match crate::head_hash(&store, 0, crate::EMPTY_HEAD_HASH, 7).await {
        Err(StoreError::Corrupted { position: 6, reason }) => {
            assert!(reason.contains("ends at position 6"), "{reason}")
        }
        other => panic!("a head hash past the log's end must fail, got {other:?}"),
    }
    assert_eq!(crate::position_at(&store, cutoff, 6).await.unwrap(), 3);
    assert_eq!(
        crate::position_at(&store, cutoff, 2).await.unwrap(),
        2,
        "bounded by upper"
    );
    assert_eq!(
        crate::position_at(&store, cutoff - TimeDelta::days(1), 6)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        crate::position_at(&store, Utc::now() + TimeDelta::days(1), 6)
            .await
            .unwrap(),
        6
    );
}

/// Every append gets one `recorded_at`, later than the previous append's.
pub async fn recorded_at_increases_per_append<S: EventStore>(store: S) {
    for i in 0..50 {
        store
            .append(&format!("s{}", i % 3), ExpectedVersion::Any, events(i % 4 + 1, "r"))
            .await
            .unwrap();
    }
    let all = store.read_all(0, 1_000).await.unwrap();
    for pair in all.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let same_append = a.stream_id == b.stream_id && a.recorded_at == b.recorded_at;
        assert!(same_append || b.recorded_at > a.recorded_at, "{a:?} then {b:?}");
    }
}

/// What goes in comes out: ids, types, schema versions, JSON and `occurred_at` to the
/// microsecond; each record's hash is in the envelope.
pub async fn envelope_round_trips<S: EventStore>(store: S) {
    let mut e = event("envelope");
    e.event_type = "DossierReceived".to_owned();
    e.schema_version = 3;
    e.occurred_at = occurred(42);
    let before = Utc::now();
    store
        .append("dossier-1", ExpectedVersion::NoStream, vec![e.clone()])
        .await
        .unwrap();
    let r = store.event_by_id(e.event_id).await.unwrap().expect("stored");
    assert_eq!(r.stream_id, "dossier-1");
    assert_eq!((r.version, r.position), (0, 0));
    assert_eq!(r.event_type, "DossierReceived");
    assert_eq!(r.schema_version, 3);
    assert_eq!(r.data, e.data.as_str().as_bytes(), "the data is stored as given");
    assert_eq!(
        r.metadata,
        e.metadata.as_str().as_bytes(),
        "the metadata is stored as given"
    );
    assert_eq!(
        r.occurred_at,
        DateTime::from_timestamp(1_750_000_042, 123_456_000).unwrap()
    );
    assert!(r.recorded_at >= before - TimeDelta::seconds(1) && r.recorded_at <= Utc::now());
    assert_eq!(r.hash_hex().len(), 64);
    assert_eq!(store.event_by_id(Uuid::new_v4()).await.unwrap(), None);
    let second = event("second");
    store
        .append("dossier-1", ExpectedVersion::Exact(0), vec![second.clone()])
        .await
        .unwrap();
    let r2 = store.event_by_id(second.event_id).await.unwrap().unwrap();
    assert_ne!(r2.hash, r.hash);
}

/// A 10,000-event stream appends, reads in both directions and verifies.
pub async fn ten_thousand_event_stream<S: EventStore>(store: S) {
    for chunk in 0..10 {
        let expected = if chunk == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(chunk * 1_000 - 1)
        };
        store
            .append("long", expected, events(1_000, &format!("c{chunk}")))
            .await
            .unwrap();
    }
    let all = store.read_stream("long", StreamRead::forward()).await.unwrap();
    assert_eq!(all.len(), 10_000);
    assert!(all.iter().enumerate().all(|(i, r)| r.version == i as u64));
    let tail = store
        .read_stream("long", StreamRead::backward().max_count(3))
        .await
        .unwrap();
    assert_eq!(
        tail.iter().map(|r| r.version).collect::<Vec<_>>(),
        [9_999, 9_998, 9_997]
    );
    let middle = store
        .read_stream("long", StreamRead::forward().from(4_321).max_count(300))
        .await
        .unwrap();
    assert_eq!(middle.first().unwrap().version, 4_321);
    assert_eq!(middle.len(), 300);
    let report = store.verify(VerifyScope::Stream("long".to_owned())).await.unwrap();
    assert_eq!((report.records_checked, report.first_problem), (10_000, None));
}

/// Of many copies of one append sent at once, exactly one is told it wrote; every copy gets
/// the same versions and positions, and the events are stored once.
pub async fn racing_identical_appends_one_writes<S: EventStore>(store: S) {
    const COPIES: usize = 50;
    let batch = events(2, "once");
    let start = Arc::new(tokio::sync::Barrier::new(COPIES));
    let mut handles = Vec::new();
    for _ in 0..COPIES {
        let (store, batch, start) = (store.clone(), batch.clone(), Arc::clone(&start));
        handles.push(tokio::spawn(async move {
            start.wait().await;
            store.append("s", ExpectedVersion::NoStream, batch).await.unwrap()
        }));
    }
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.await.unwrap());
    }
    let wrote = results.iter().filter(|r| !r.already_stored).count();
    assert_eq!(wrote, 1, "exactly one copy wrote: {results:?}");
    assert!(
        results
            .iter()
            .all(|r| r.positions == Some((0, 1)) && r.current_version == Some(1))
    );
    assert_eq!(store.head(), 2);
}

/// Sixteen appenders race on one stream with exact expected versions: exactly one wins each
/// version, every loser is told the actual version.
pub async fn racing_appenders_one_winner_per_version<S: EventStore>(store: S) {
    const TASKS: u64 = 16;
    const VERSIONS: u64 = 60;
    let wins = Arc::new(AtomicU64::new(0));
    // All racers start together: a fast store could otherwise finish every version in the
    // first task before the last one is even spawned.
    let start = Arc::new(tokio::sync::Barrier::new(TASKS as usize));
    let mut handles = Vec::new();
    for task in 0..TASKS {
        let store = store.clone();
        let wins = Arc::clone(&wins);
        let start = Arc::clone(&start);
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let mut conflicts = 0u64;
            start.wait().await;
            loop {
                let current = store.stream_version("race").await.unwrap();
                if current.is_some_and(|v| v + 1 >= VERSIONS) {
                    return (mine, conflicts);
                }
                let expected = current.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
                let e = event(&format!("task{task}"));
                match store.append("race", expected, vec![e.clone()]).await {
                    Ok(result) => {
                        wins.fetch_add(1, Ordering::SeqCst);
                        mine.push((result.current_version.unwrap(), e.event_id));
                    }
                    Err(StoreError::Conflict { actual, .. }) => {
                        conflicts += 1;
                        assert!(
                            actual > current || current.is_none() && actual.is_some(),
                            "the stream moved on"
                        );
                    }
                    Err(other) => panic!("unexpected error {other:?}"),
                }
            }
        }));
    }
    let mut winners = Vec::new();
    let mut conflicts = 0;
    for handle in handles {
        let (mine, lost) = handle.await.unwrap();
        winners.extend(mine);
        conflicts += lost;
    }
    winners.sort();
    assert_eq!(wins.load(Ordering::SeqCst), VERSIONS);
    assert_eq!(
        winners.iter().map(|(v, _)| *v).collect::<Vec<_>>(),
        (0..VERSIONS).collect::<Vec<_>>()
    );
    let stored = store.read_stream("race", StreamRead::forward()).await.unwrap();
    let stored: Vec<_> = stored.iter().map(|r| (r.version, r.event_id)).collect();
    assert_eq!(stored, winners, "each version holds its winner's event");
    assert!(conflicts > 0, "with sixteen racers some must have lost");
}

/// Many appenders on distinct streams all succeed, sharing flushes, with `$all` gap-free.
pub async fn concurrent_streams_share_flushes_without_gaps<S: EventStore>(store: S) {
    let mut handles = Vec::new();
    for task in 0..32 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let stream = format!("stream-{task}");
            for i in 0..20u64 {
                let expected = if i == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact(i * 2 - 1)
                };
                store
                    .append(&stream, expected, events(2, &format!("{task}-{i}")))
                    .await
                    .unwrap();
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    let all = store.read_all(0, 10_000).await.unwrap();
    assert_eq!(all.len(), 32 * 20 * 2);
    assert!(all.iter().enumerate().all(|(i, r)| r.position == i as u64));
    let ids: HashSet<_> = all.iter().map(|r| r.event_id).collect();
    assert_eq!(ids.len(), all.len());
}

/// A subscription delivers stored events, then live ones as they are appended, with no gap
/// and no duplicate across the switch.
pub async fn subscription_catches_up_then_goes_live<S: EventStore>(store: S) {
    for i in 0..30 {
        store
            .append(&format!("s{}", i % 4), ExpectedVersion::Any, events(10, "pre"))
            .await
            .unwrap();
    }
    let mut from_start = store.subscribe_all(0);
    let mut from_middle = store.subscribe_all(150);
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..200 {
                store
                    .append(&format!("live{}", i % 5), ExpectedVersion::Any, events(2, "live"))
                    .await
                    .unwrap();
            }
        })
    };
    for expected in 0..700u64 {
        let e = from_start.next().await.unwrap();
        assert_eq!(e.position, expected);
    }
    for expected in 150..700u64 {
        let e = from_middle.next().await.unwrap();
        assert_eq!(e.position, expected);
    }
    writer.await.unwrap();
    assert!(from_start.is_caught_up());
    assert_eq!(from_start.position(), 700);
    // Live: the next append reaches a waiting subscriber.
    let waiting = tokio::spawn(async move { from_start.next().await.unwrap().position });
    store
        .append("after", ExpectedVersion::Any, events(1, "after"))
        .await
        .unwrap();
    assert_eq!(waiting.await.unwrap(), 700);
}

/// A subscriber that does not read holds writers up for nothing and then catches up.
pub async fn slow_subscriber_does_not_block_writers<S: EventStore>(store: S) {
    let mut slow = store.subscribe_all(0);
    for i in 0..100 {
        store
            .append(&format!("s{}", i % 10), ExpectedVersion::Any, events(50, "bulk"))
            .await
            .unwrap();
    }
    assert_eq!(store.head(), 5_000);
    for expected in 0..5_000u64 {
        assert_eq!(slow.next().await.unwrap().position, expected);
    }
    assert!(slow.is_caught_up());
}

/// `verify` walks an intact store without complaint, whole or one stream at a time.
pub async fn verify_accepts_an_intact_store<S: EventStore>(store: S) {
    let empty = store.verify(VerifyScope::All).await.unwrap();
    assert_eq!((empty.records_checked, empty.first_problem), (0, None));
    for i in 0..20 {
        store
            .append(&format!("s{}", i % 3), ExpectedVersion::Any, events(3, "v"))
            .await
            .unwrap();
    }
    let report = store.verify(VerifyScope::All).await.unwrap();
    assert_eq!(report.first_problem, None);
    assert_eq!((report.records_checked, report.streams_checked), (60, 3));
    let one = store.verify(VerifyScope::Stream("s1".to_owned())).await.unwrap();
    assert_eq!((one.records_checked, one.first_problem), (21, None));
    let none = store.verify(VerifyScope::Stream("unknown".to_owned())).await.unwrap();
    assert_eq!((none.records_checked, none.streams_checked), (0, 0));
}
