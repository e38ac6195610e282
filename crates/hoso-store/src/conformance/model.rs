//! The property test against a model: random interleavings of appends from several tasks,
//! checked against a plain in-memory model replayed in commit order. Each implementation runs
//! [`check`] on plans drawn from [`tasks`] in a `proptest!` block of its own tests.

use std::collections::HashMap;

use proptest::prelude::*;

use super::event;
use crate::{AppendResult, EventStore, ExpectedVersion, NewEvent, StoreError, StreamRead};

/// The expected version an operation appends with.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    /// `Any`.
    Any,
    /// `NoStream`.
    NoStream,
    /// `StreamExists`.
    StreamExists,
    /// Exact, with the version the task just read.
    ExactCurrent,
    /// Exact(0), which is usually stale.
    ExactZero,
}

/// One append of a task.
#[derive(Debug, Clone)]
pub struct Op {
    stream: usize,
    n_events: usize,
    expect: Expect,
}

fn op() -> impl Strategy<Value = Op> {
    let expect = prop_oneof![
        Just(Expect::Any),
        Just(Expect::NoStream),
        Just(Expect::StreamExists),
        Just(Expect::ExactCurrent),
        Just(Expect::ExactZero),
    ];
    (0..4usize, 0..4usize, expect).prop_map(|(stream, n_events, expect)| Op {
        stream,
        n_events,
        expect,
    })
}

/// Plans of two to four tasks, each of one to 24 appends to four streams.
pub fn tasks() -> impl Strategy<Value = Vec<Vec<Op>>> {
    prop::collection::vec(prop::collection::vec(op(), 1..25), 2..5)
}

struct Attempt {
    stream: String,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
    outcome: Result<AppendResult, StoreError>,
}

async fn run_task<S: EventStore>(store: S, task: usize, ops: Vec<Op>) -> Vec<Attempt> {
    let mut attempts = Vec::new();
    for (i, op) in ops.into_iter().enumerate() {
        let stream = format!("stream-{}", op.stream);
        let expected = match op.expect {
            Expect::Any => ExpectedVersion::Any,
            Expect::NoStream => ExpectedVersion::NoStream,
            Expect::StreamExists => ExpectedVersion::StreamExists,
            Expect::ExactZero => ExpectedVersion::Exact(0),
            Expect::ExactCurrent => match store.stream_version(&stream).await.unwrap() {
                Some(v) => ExpectedVersion::Exact(v),
                None => ExpectedVersion::NoStream,
            },
        };
        let events: Vec<_> = (0..op.n_events).map(|k| event(&format!("t{task}-op{i}-{k}"))).collect();
        let outcome = store.append(&stream, expected, events.clone()).await;
        attempts.push(Attempt {
            stream,
            expected,
            events,
            outcome,
        });
    }
    attempts
}

/// Runs `plan` on `store`, one task per entry, and checks the outcome against the model.
pub async fn check<S: EventStore>(store: S, plan: Vec<Vec<Op>>) {
    let handles: Vec<_> = plan
        .into_iter()
        .enumerate()
        .map(|(task, ops)| tokio::spawn(run_task(store.clone(), task, ops)))
        .collect();
    let mut attempts = Vec::new();
    for handle in handles {
        attempts.extend(handle.await.unwrap());
    }

    // Replay the successful, non-empty appends in commit order through a trivial model.
    let mut written: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| matches!(a.outcome, Ok(AppendResult { positions: Some(_), .. })))
        .collect();
    written.sort_by_key(|a| a.outcome.as_ref().unwrap().positions.unwrap().0);
    let mut model: HashMap<&str, Vec<&NewEvent>> = HashMap::new();
    let mut global = 0u64;
    for a in written {
        let result = a.outcome.as_ref().unwrap();
        let stream = model.entry(a.stream.as_str()).or_default();
        let len = stream.len() as u64;
        let allowed = match a.expected {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => len == 0,
            ExpectedVersion::StreamExists => len > 0,
            ExpectedVersion::Exact(v) => len == v + 1,
        };
        assert!(allowed, "{:?} was accepted on a stream of {len} events", a.expected);
        let n = a.events.len() as u64;
        assert_eq!(
            result.positions,
            Some((global, global + n - 1)),
            "positions follow commit order"
        );
        assert_eq!(result.current_version, Some(len + n - 1));
        stream.extend(a.events.iter());
        global += n;
    }
    for a in &attempts {
        match &a.outcome {
            Ok(_) => {}
            Err(StoreError::Conflict { actual, .. }) => {
                let final_len = model.get(a.stream.as_str()).map_or(0, Vec::len) as u64;
                assert!(
                    actual.is_none_or(|v| v < final_len),
                    "a conflict names a version the stream had"
                );
            }
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }

    assert_eq!(store.head(), global);
    let all = store.read_all(0, usize::MAX).await.unwrap();
    assert!(
        all.iter().enumerate().all(|(i, r)| r.position == i as u64),
        "$all is gap-free"
    );
    for (stream, expected) in &model {
        let stored = store.read_stream(stream, StreamRead::forward()).await.unwrap();
        assert_eq!(stored.len(), expected.len());
        for (version, (r, e)) in stored.iter().zip(expected).enumerate() {
            assert_eq!(r.version, version as u64);
            assert_eq!(r.event_id, e.event_id);
            assert_eq!(r.data, e.data.as_str().as_bytes());
        }
    }
}
