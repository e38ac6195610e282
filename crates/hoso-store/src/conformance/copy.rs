//! What every [`ImportStore`] must do, and [`crate::copy`] over it. Each case takes a source
//! (any store, empty) and one or more empty targets, and panics on the first broken promise.

use std::collections::BTreeSet;

use chrono::TimeDelta;

use super::{event, occurred};
use crate::{
    CopyStep, EMPTY_HEAD_HASH, EventStore, ExpectedVersion, ImportStore, Json, NewEvent, RecordedEvent, StoreError,
    StreamRead, VerifyScope, copy, head_hash,
};

/// Fills `store` with a varied history of `appends` appends: seven streams interleaved (some
/// with non-ASCII ids), appends of one to three events, JSON whose keys are out of order and
/// spaced out, `occurred_at` below the microsecond. Returns each append's stream and events.
pub async fn fill<S: EventStore>(store: &S, appends: usize) -> Vec<(String, Vec<NewEvent>)> {
    let mut made = Vec::with_capacity(appends);
    for i in 0..appends {
        let stream = if i % 7 == 3 {
            format!("hồ-sơ/{}", i % 5)
        } else {
            format!("dossier-{}", i % 7)
        };
        let mut events: Vec<NewEvent> = (0..1 + i % 3)
            .map(|j| {
                let mut e = event(&format!("a{i}-{j}"));
                e.occurred_at = occurred(i as i64);
                e
            })
            .collect();
        if i % 5 == 0 {
            events[0].data = Json::parse(format!("{{ \"z\": {i},  \"a\" : [1, 2.50, \"ư\"] }}")).expect("JSON");
        }
        store
            .append(&stream, ExpectedVersion::Any, events.clone())
            .await
            .expect("the source takes the append");
        made.push((stream, events));
    }
    made
}

async fn all<S: EventStore>(store: &S) -> Vec<RecordedEvent> {
    store.read_all(0, usize::MAX).await.expect("read $all")
}

async fn assert_verifies<S: EventStore>(store: &S) {
    let report = store.verify(VerifyScope::All).await.expect("verify");
    assert_eq!(report.first_problem, None, "the store verifies");
    assert_eq!(report.records_checked, store.head());
}

/// A copy holds every event with every envelope field as the source has it (whole log, each
/// stream, by id), verifies, and reports the head hash both stores share; afterwards the target
/// answers a retry of a copied append as the source would, and takes new appends after the
/// copied ones.
pub async fn a_copy_keeps_every_envelope_field<S: EventStore, T: ImportStore>(source: S, target: T) {
    let appends = fill(&source, 60).await;
    let n = source.head();
    let mut steps = Vec::new();
    let report = copy(&source, &target, &mut |step| steps.push(step))
        .await
        .expect("the copy succeeds");
    assert_eq!(
        (report.resumed_from, report.position, report.records_checked),
        (0, n, n)
    );
    assert_eq!(
        report.head_hash,
        head_hash(&source, 0, EMPTY_HEAD_HASH, n).await.unwrap()
    );
    assert!(steps.contains(&CopyStep::Copying { done: n, total: n }), "{steps:?}");
    assert_eq!(steps.last(), Some(&CopyStep::Verifying));
    let copied = all(&target).await;
    assert_eq!(copied.len() as u64, n);
    assert_eq!(copied, all(&source).await, "every envelope field is the source's");
    assert_eq!(target.head(), n);
    let streams: BTreeSet<&String> = appends.iter().map(|(stream, _)| stream).collect();
    for stream in streams {
        assert_eq!(
            target.read_stream(stream, StreamRead::forward()).await.unwrap(),
            source.read_stream(stream, StreamRead::forward()).await.unwrap()
        );
        assert_eq!(
            target.stream_version(stream).await.unwrap(),
            source.stream_version(stream).await.unwrap()
        );
    }
    for event in copied.iter().step_by(17) {
        assert_eq!(target.event_by_id(event.event_id).await.unwrap().as_ref(), Some(event));
    }
    assert_verifies(&target).await;

    // A desk's retry of an append made on the source gets the source's answer from the copy.
    let (stream, events) = &appends[10];
    let original = source.event_by_id(events[0].event_id).await.unwrap().unwrap();
    let retried = target
        .append(stream, ExpectedVersion::Any, events.clone())
        .await
        .unwrap();
    assert!(retried.already_stored);
    assert_eq!(
        retried.positions,
        Some((original.position, original.position + events.len() as u64 - 1))
    );
    // A new append continues the copied log, recorded after it.
    let last = copied.last().unwrap().recorded_at;
    let after = target
        .append("dossier-after-copy", ExpectedVersion::NoStream, vec![event("after")])
        .await
        .unwrap();
    assert_eq!(after.positions, Some((n, n)));
    assert!(target.read_all(n, 1).await.unwrap()[0].recorded_at > last);
    assert_verifies(&target).await;
}

/// An import that breaks a rule is refused naming the event and the rule, and writes nothing
/// of its batch: a gap, an altered event or hash, a version out of turn, an id already stored
/// or twice in the batch, a `recorded_at` that goes back or is finer than a microsecond, data
/// that is not JSON. The valid rest is taken afterwards.
pub async fn an_import_that_breaks_a_rule_writes_nothing<S: EventStore, T: ImportStore>(source: S, target: T) {
    fill(&source, 12).await;
    let events = all(&source).await;
    assert_eq!(target.import(events[..5].to_vec()).await.unwrap(), 5);
    let next = events[5].clone();
    let with = |change: &dyn Fn(&mut RecordedEvent)| {
        let mut event = next.clone();
        change(&mut event);
        event
    };
    let cases: Vec<(&str, Vec<RecordedEvent>, u64)> = vec![
        ("without a gap", vec![events[6].clone()], 6),
        (
            "hash does not match",
            vec![with(&|e| e.data = br#"{"tag":"altered"}"#.to_vec())],
            5,
        ),
        ("hash does not match", vec![with(&|e| e.hash[0] ^= 1)], 5),
        ("next version here is", vec![with(&|e| e.version += 1)], 5),
        (
            "already stored, at position 0",
            vec![with(&|e| e.event_id = events[0].event_id)],
            5,
        ),
        (
            "appears earlier in the same batch",
            vec![next.clone(), {
                let mut e = events[6].clone();
                e.event_id = next.event_id;
                e
            }],
            6,
        ),
        (
            "never decreases",
            vec![with(&|e| e.recorded_at = events[4].recorded_at - TimeDelta::seconds(1))],
            5,
        ),
        (
            "not a whole microsecond",
            vec![with(&|e| e.recorded_at += TimeDelta::nanoseconds(1))],
            5,
        ),
        ("data is not JSON", vec![with(&|e| e.data = b"{not json".to_vec())], 5),
        (
            "hash does not match",
            vec![next.clone(), {
                let mut e = events[6].clone();
                e.hash = [7; 32];
                e
            }],
            6,
        ),
    ];
    for (rule, batch, position) in cases {
        match target.import(batch).await {
            Err(StoreError::Refused(message)) => assert!(
                message.contains(rule) && message.contains(&format!("position {position}")),
                "the refusal names the rule {rule:?} and position {position}: {message}"
            ),
            other => panic!("an import breaking {rule:?} is refused, got {other:?}"),
        }
        assert_eq!(target.head(), 5, "nothing of a refused batch is written ({rule})");
    }
    assert_eq!(target.read_all(5, 10).await.unwrap(), Vec::new());
    assert_eq!(target.event_by_id(next.event_id).await.unwrap(), None);
    assert_eq!(target.import(events[5..].to_vec()).await.unwrap(), events.len() as u64);
    assert_eq!(all(&target).await, events);
    assert_verifies(&target).await;
}

/// A copy into a target that holds the source's first events (what a copy that stopped leaves)
/// copies only the rest; run again, it copies nothing. A target that holds anything else, or
/// more than the source, is refused, naming where it differs, and left as it is.
pub async fn a_copy_resumes_and_refuses_a_target_that_diverged<S: EventStore, T: ImportStore>(
    source: S,
    target: T,
    diverged: T,
) {
    fill(&source, 40).await;
    let events = all(&source).await;
    let n = events.len() as u64;
    let k = n / 2;
    target.import(events[..k as usize].to_vec()).await.unwrap();
    let report = copy(&source, &target, &mut |_| {}).await.unwrap();
    assert_eq!((report.resumed_from, report.position), (k, n));
    assert_eq!(all(&target).await, events);
    let again = copy(&source, &target, &mut |_| {}).await.unwrap();
    assert_eq!((again.resumed_from, again.position), (n, n));
    assert_eq!(again.head_hash, report.head_hash);

    diverged.import(events[..k as usize].to_vec()).await.unwrap();
    diverged
        .append("dossier-own", ExpectedVersion::Any, vec![event("own")])
        .await
        .unwrap();
    let own = diverged.read_all(k, 1).await.unwrap();
    match copy(&source, &diverged, &mut |_| {}).await {
        Err(StoreError::Refused(message)) => assert!(
            message.contains(&format!("position {k} differs")) && message.contains("empty store"),
            "{message}"
        ),
        other => panic!("a target that diverged is refused, got {other:?}"),
    }
    assert_eq!(diverged.head(), k + 1, "the refused target is left as it is");
    assert_eq!(diverged.read_all(k, 1).await.unwrap(), own);
    // The full copy holds more than this (shorter) source: refused too.
    match copy(&diverged, &target, &mut |_| {}).await {
        Err(StoreError::Refused(message)) => assert!(message.contains("more than the source's"), "{message}"),
        other => panic!("a target longer than the source is refused, got {other:?}"),
    }
    assert_eq!(all(&target).await, events);
}
