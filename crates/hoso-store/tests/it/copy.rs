//! Copying a log between stores (`hoso_store::copy` over `ImportStore`): the import rules and
//! the copy cases of the conformance suite on the in-memory and the durable store, and a copy
//! into the durable store that is interrupted, reopened and taken up where it stopped.

use hoso_store::conformance::copy::{
    a_copy_keeps_every_envelope_field, a_copy_resumes_and_refuses_a_target_that_diverged,
    an_import_that_breaks_a_rule_writes_nothing, fill,
};
use hoso_store::{CopyStep, EventStore, MemoryStore, SledOptions, SledStore, copy};

/// Small segments, so that a copy fills several.
fn options() -> SledOptions {
    SledOptions {
        segment_bytes: 64 << 10,
        ..SledOptions::default()
    }
}

fn sled() -> (SledStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (SledStore::open(dir.path(), options()).unwrap(), dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_into_the_durable_store_keeps_every_envelope_field() {
    let (target, _dir) = sled();
    a_copy_keeps_every_envelope_field(MemoryStore::new(), target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_out_of_the_durable_store_keeps_every_envelope_field() {
    let (source, _dir) = sled();
    a_copy_keeps_every_envelope_field(source, MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_durable_store_refuses_an_import_that_breaks_a_rule() {
    let (target, _dir) = sled();
    an_import_that_breaks_a_rule_writes_nothing(MemoryStore::new(), target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_refuses_an_import_that_breaks_a_rule() {
    an_import_that_breaks_a_rule_writes_nothing(MemoryStore::new(), MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_into_the_durable_store_resumes_and_refuses_a_target_that_diverged() {
    let ((target, _a), (diverged, _b)) = (sled(), sled());
    a_copy_resumes_and_refuses_a_target_that_diverged(MemoryStore::new(), target, diverged).await;
}

/// A copy stopped after its first batch (its future dropped, as when the process is stopped)
/// leaves a target that reopens holding a prefix of the source; the next run checks that prefix
/// and copies only the rest, and the target then equals the source. A copy survives a reopen
/// of its target: the imported events are durable and indexed like appended ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_copy_is_taken_up_where_the_target_ends() {
    let (source, _source_dir) = sled();
    fill(&source, 2_000).await;
    let n = source.head();
    assert!(n > 3_000, "several batches to copy: {n}");
    let dir = tempfile::tempdir().unwrap();
    let target = SledStore::open(dir.path(), options()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let mut stop = Some(stop);
    let mut progress = |step| {
        if let CopyStep::Copying { done, .. } = step
            && done > 0
            && let Some(stop) = stop.take()
        {
            let _ = stop.send(());
        }
    };
    tokio::select! {
        biased;
        _ = stopped => {}
        finished = copy(&source, &target, &mut progress) => panic!("the copy was to be stopped: {finished:?}"),
    }
    target.close();
    drop(target);

    let target = SledStore::open(dir.path(), options()).unwrap();
    let held = target.head();
    assert!(held > 0 && held < n, "the stopped copy left a prefix: {held} of {n}");
    let mut checked = 0;
    let report = copy(&source, &target, &mut |step| {
        if let CopyStep::Checking { done, .. } = step {
            checked = done;
        }
    })
    .await
    .unwrap();
    assert_eq!((report.resumed_from, report.position), (held, n));
    assert_eq!(checked, held, "the prefix was compared with the source");
    assert_eq!(
        target.read_all(0, usize::MAX).await.unwrap(),
        source.read_all(0, usize::MAX).await.unwrap()
    );
    target.close();
}
