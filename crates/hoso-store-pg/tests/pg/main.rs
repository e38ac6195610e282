//! Tests of the PostgreSQL store against a throwaway server (support.rs): the conformance
//! suite, the model test and the tamper test of the embedded store, then what only a store
//! shared by several processes over a network has to show.

mod copy;
mod support;

use std::collections::HashSet;
use std::time::Duration;

use hoso_store::conformance::event;
use hoso_store::{EventStore, ExpectedVersion, StoreError, StreamRead, VerifyScope};
use hoso_store_pg::{PgOptions, PgStore, SCHEMA_VERSION};

mod conformance {
    hoso_store::conformance_tests!(|| async { crate::support::fresh_store().await });
}

mod model {
    use hoso_store::conformance::model::{check, tasks};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

        #[test]
        fn pg_store_matches_the_model(plan in tasks()) {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let (store, _url) = crate::support::fresh_store().await;
                check(store, plan).await;
            });
        }
    }
}

/// Changes one byte of one stored event's data in its row behind the store's back: `verify`
/// names that event, whole-store and per stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_with_one_byte_is_found_and_named() {
    let (store, url) = support::fresh_store().await;
    hoso_store::conformance::tampering_with_a_record_is_found(store, |store, target| async move {
        let changed = support::connect(&url)
            .await
            .execute(
                "UPDATE hoso_events SET data = replace(data, '\"e17\"', '\"e18\"') WHERE position = $1",
                &[&(target.position as i64)],
            )
            .await
            .unwrap();
        assert_eq!(changed, 1);
        store
    })
    .await;
}

/// The child side of `several_processes_append_in_one_gap_free_order`: appends when run by it,
/// does nothing when run alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_appender() {
    let (Ok(url), Ok(tag)) = (std::env::var("HOSO_PG_CHILD_URL"), std::env::var("HOSO_PG_CHILD_TAG")) else {
        return;
    };
    let store = PgStore::connect(&url, PgOptions::default()).await.unwrap();
    let mut tasks = Vec::new();
    for task in 0..CHILD_TASKS {
        let store = store.clone();
        let stream = format!("process-{tag}-task-{task}");
        tasks.push(tokio::spawn(async move {
            for i in 0..CHILD_APPENDS {
                let expected = if i == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact(i * 2 - 1)
                };
                store
                    .append(&stream, expected, vec![event("a"), event("b")])
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

const CHILD_PROCESSES: u64 = 3;
const CHILD_TASKS: u64 = 4;
const CHILD_APPENDS: u64 = 25;

/// Three processes append concurrently while this one reads `$all` behind the store's back,
/// by plain SQL, as fast as it can: every read sees a gap-free prefix of the log (a position
/// is never visible before a lower one), and in the end the log holds every append once, in
/// positions whose `recorded_at` rises with every append, and verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_processes_append_in_one_gap_free_order() {
    let url = support::fresh_database().await;
    let store = PgStore::connect(&url, PgOptions::default()).await.unwrap();
    let children: Vec<_> = (0..CHILD_PROCESSES)
        .map(|tag| {
            std::process::Command::new(std::env::current_exe().unwrap())
                .args(["child_appender", "--exact", "--nocapture"])
                .env("HOSO_PG_CHILD_URL", &url)
                .env("HOSO_PG_CHILD_TAG", tag.to_string())
                .spawn()
                .unwrap()
        })
        .collect();
    let total = CHILD_PROCESSES * CHILD_TASKS * CHILD_APPENDS * 2;
    let reader = support::connect(&url).await;
    let mut seen: i64 = 0;
    let mut reads = 0;
    while (seen as u64) < total {
        let rows = reader
            .query(
                "SELECT position FROM hoso_events WHERE position >= $1 ORDER BY position",
                &[&seen],
            )
            .await
            .unwrap();
        for row in rows {
            let position: i64 = row.get(0);
            assert_eq!(position, seen, "a position became visible before a lower one");
            seen += 1;
        }
        reads += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a child process failed");
    }
    assert!(reads > 3, "the reader read while the appends ran ({reads} reads)");

    let all = store.read_all(0, usize::MAX).await.unwrap();
    assert_eq!(all.len() as u64, total);
    assert_eq!(all.iter().map(|r| r.event_id).collect::<HashSet<_>>().len(), all.len());
    for pair in all.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let same_append = a.stream_id == b.stream_id && a.version + 1 == b.version && a.recorded_at == b.recorded_at;
        assert!(same_append || b.recorded_at > a.recorded_at, "{a:?} then {b:?}");
    }
    let report = store.verify(VerifyScope::All).await.unwrap();
    assert_eq!(report.first_problem, None);
    assert_eq!(
        (report.records_checked, report.streams_checked),
        (total, CHILD_PROCESSES * CHILD_TASKS)
    );
}

/// An append retried after the store was closed and opened again returns the original result
/// and writes nothing; the same id with other content is refused; the head is the database's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_idempotent_across_a_restart() {
    let (store, url) = support::fresh_store().await;
    let batch = vec![event("one"), event("two")];
    let first = store
        .append("dossier-1", ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    store
        .append("dossier-1", ExpectedVersion::Exact(1), vec![event("three")])
        .await
        .unwrap();
    store.close();
    drop(store);

    let store = PgStore::connect(&url, PgOptions::default()).await.unwrap();
    assert_eq!(store.head(), 3);
    let retry = store
        .append("dossier-1", ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    assert!(!first.already_stored && retry.already_stored);
    assert_eq!(
        retry,
        hoso_store::AppendResult {
            already_stored: true,
            ..first
        }
    );
    let mut changed = batch;
    changed[0].data = serde_json::json!({ "tag": "changed" }).into();
    let err = store
        .append("dossier-1", ExpectedVersion::Any, changed)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::EventIdReused { .. }), "{err:?}");
    assert_eq!(store.head(), 3);
    assert_eq!(store.read_all(0, 10).await.unwrap().len(), 3);
}

/// A database whose schema is newer than this build is refused, naming both versions; stores
/// opening a fresh database together apply the schema once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_is_applied_once_and_a_newer_one_refused() {
    let url = support::fresh_database().await;
    let opening: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PgStore::connect(&url, PgOptions::default()).await })
        })
        .collect();
    for open in opening {
        open.await.unwrap().unwrap().close();
    }
    let client = support::connect(&url).await;
    let version: i32 = client
        .query_one("SELECT version FROM hoso_schema_version", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(version as u32, SCHEMA_VERSION);

    let newer = SCHEMA_VERSION as i32 + 1;
    client
        .execute("UPDATE hoso_schema_version SET version = $1", &[&newer])
        .await
        .unwrap();
    let err = PgStore::connect(&url, PgOptions::default())
        .await
        .err()
        .expect("a newer schema is refused");
    assert!(
        matches!(err, StoreError::UnsupportedFormat { found, supported } if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&newer.to_string()) && message.contains(&SCHEMA_VERSION.to_string()),
        "{message}"
    );
}

/// Another process's appends reach a subscriber through a notification, and with
/// notifications lost (none listened for) through the poll of the head: nothing is lost either
/// way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_processes_appends_reach_subscribers_with_or_without_notifications() {
    let (writer, url) = support::fresh_store().await;
    let notified = PgStore::connect(
        &url,
        PgOptions {
            poll_interval: Duration::from_secs(3_600),
            ..PgOptions::default()
        },
    )
    .await
    .unwrap();
    let polling = PgStore::connect(
        &url,
        PgOptions {
            listen: false,
            poll_interval: Duration::from_millis(100),
            ..PgOptions::default()
        },
    )
    .await
    .unwrap();
    let mut by_notification = notified.subscribe_all(0);
    let mut by_poll = polling.subscribe_all(0);
    // The follower listens only once it is connected; give it that moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..20 {
        writer
            .append(&format!("s{}", i % 3), ExpectedVersion::Any, vec![event("x")])
            .await
            .unwrap();
    }
    for expected in 0..20 {
        let got = tokio::time::timeout(Duration::from_secs(10), by_notification.next())
            .await
            .expect("a notification wakes the subscriber")
            .unwrap();
        assert_eq!(got.position, expected);
        let got = tokio::time::timeout(Duration::from_secs(10), by_poll.next())
            .await
            .expect("the poll finds the append")
            .unwrap();
        assert_eq!(got.position, expected);
    }
    assert_eq!(notified.head(), 20);
}

/// A row written behind the store's back where its next append goes breaks a constraint of
/// the log: that append fails as corruption and the store refuses appends from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_row_refuses_writes_as_corruption() {
    let (store, url) = support::fresh_store().await;
    store.append("s", ExpectedVersion::Any, vec![event("a")]).await.unwrap();
    support::connect(&url)
        .await
        .batch_execute(
            "INSERT INTO hoso_events SELECT 1, 'intruder', 0, gen_random_uuid(), 'X', 1, '{}', '{}', 0, 0, hash \
             FROM hoso_events WHERE position = 0",
        )
        .await
        .unwrap();
    let err = store
        .append("s", ExpectedVersion::Any, vec![event("b")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupted { position: 1, .. }), "{err:?}");
    assert!(store.write_refusal().is_some());
    // The COMMIT sent behind the failed insert rolled the whole transaction back.
    let head: i64 = support::connect(&url)
        .await
        .query_one("SELECT next_position FROM hoso_log_head", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(head, 1, "the failed append moved the log's head");
    let err = store
        .append("t", ExpectedVersion::Any, vec![event("c")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::WritesRefused { .. }), "{err:?}");
    // Reads go on.
    assert_eq!(store.read_stream("s", StreamRead::forward()).await.unwrap().len(), 1);
}

/// Connections killed by the server (a restart, a failover) fail what was in flight as
/// retryable, not as a refusal; the store reconnects by itself and the retry writes once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_is_retryable_and_the_store_reconnects() {
    let (store, url) = support::fresh_store().await;
    store.append("s", ExpectedVersion::Any, vec![event("a")]).await.unwrap();
    assert_eq!(store.read_all(0, 10).await.unwrap().len(), 1);
    let killed: i64 = support::connect(&url)
        .await
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        killed >= 2,
        "the writer's and a reader's connections were killed ({killed})"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let retried = vec![event("b")];
    let mut result = store.append("s", ExpectedVersion::Any, retried.clone()).await;
    if let Err(err) = &result {
        assert!(
            matches!(err, StoreError::Unavailable(_)),
            "a lost connection is retryable: {err:?}"
        );
        result = store.append("s", ExpectedVersion::Any, retried.clone()).await;
    }
    assert_eq!(result.unwrap().positions, Some((1, 1)));
    assert_eq!(store.write_refusal(), None);
    let mut read = store.read_all(0, 10).await;
    if read.is_err() {
        read = store.read_all(0, 10).await;
    }
    assert_eq!(read.unwrap().len(), 2, "the retry wrote once");
}

/// The cost of ordering, ids and chains: appends of one event per second at 1 and 16
/// appenders through `PgStore` (one store, as one process; and four stores, as four
/// processes), against plain autocommit INSERTs of the same rows into a table with no head
/// row, one connection per appender. Run on demand (it prints its figures):
/// PostgreSQL keeps a prepared statement's generic plan once it has chosen one, and the store's
/// connections live for the store's life: a plan chosen on a near-empty log (a sequential scan
/// for the writer's lookup of event ids) would be scanning the whole log on every append once
/// it has grown. The store's connections plan each execution for the log as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_looks_event_ids_up_by_index_as_the_log_grows() {
    const APPENDS: usize = 400;
    const EVENTS_EACH: usize = 50;
    let (store, url) = support::fresh_store().await;
    // More executions on a near-empty log than PostgreSQL takes to settle on a generic plan.
    for i in 0..20 {
        store
            .append(&format!("small-{i}"), ExpectedVersion::NoStream, vec![event("t")])
            .await
            .unwrap();
    }
    for i in 0..APPENDS {
        let events = (0..EVENTS_EACH).map(|_| event("t")).collect();
        store
            .append(&format!("large-{i}"), ExpectedVersion::NoStream, events)
            .await
            .unwrap();
    }
    store.close();
    drop(store);
    // A backend adds its counts to the shared statistics when it exits.
    let client = support::connect(&url).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let others: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if others == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the store's {others} connections are still open 30 s after it was dropped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let scanned: i64 = client
        .query_one(
            "SELECT coalesce(seq_tup_read, 0) FROM pg_stat_user_tables WHERE relname = 'hoso_events'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // Scanning the log on each append reads about APPENDS² x EVENTS_EACH / 2 rows (4 million);
    // the scans while the log is small enough for one to be the cheaper plan read about as many
    // rows as the log ends with (25,440 when this test was written).
    let events = (APPENDS * EVENTS_EACH) as i64;
    assert!(
        scanned < 10 * events,
        "the appends read {scanned} rows of the log by sequential scans, for {events} events appended"
    );
}

/// `cargo nextest run -p hoso-store-pg --run-ignored only throughput --no-capture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run on demand"]
async fn throughput() {
    const SECONDS: u64 = 5;
    let run_for = Duration::from_secs(SECONDS);
    for appenders in [1usize, 16] {
        for stores in [1usize, 4] {
            if stores > appenders {
                continue;
            }
            let url = support::fresh_database().await;
            let mut handles = Vec::new();
            let mut opened = Vec::new();
            for _ in 0..stores {
                opened.push(PgStore::connect(&url, PgOptions::default()).await.unwrap());
            }
            let start = std::time::Instant::now();
            for task in 0..appenders {
                let store = opened[task % stores].clone();
                handles.push(tokio::spawn(async move {
                    let mut n = 0u64;
                    while start.elapsed() < run_for {
                        let stream = format!("dossier-{task}-{}", n / 20);
                        let expected = match n % 20 {
                            0 => ExpectedVersion::NoStream,
                            v => ExpectedVersion::Exact(v - 1),
                        };
                        store.append(&stream, expected, vec![event("t")]).await.unwrap();
                        n += 1;
                    }
                    n
                }));
            }
            let mut total = 0;
            for handle in handles {
                total += handle.await.unwrap();
            }
            let rate = total as f64 / start.elapsed().as_secs_f64();
            println!("PgStore, {appenders:>2} appenders over {stores} store(s): {rate:>7.0} appends/s");
        }

        let url = support::fresh_database().await;
        support::connect(&url)
            .await
            .batch_execute(
                "CREATE TABLE plain (stream_id text NOT NULL, version bigint NOT NULL, event_id uuid NOT NULL, \
                 event_type text NOT NULL, data text NOT NULL, metadata text NOT NULL, recorded_at timestamptz \
                 NOT NULL DEFAULT now(), PRIMARY KEY (stream_id, version))",
            )
            .await
            .unwrap();
        let start = std::time::Instant::now();
        let mut handles = Vec::new();
        for task in 0..appenders {
            let client = support::connect(&url).await;
            handles.push(tokio::spawn(async move {
                let insert = client
                    .prepare(
                        "INSERT INTO plain (stream_id, version, event_id, event_type, data, metadata) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .await
                    .unwrap();
                let mut n = 0u64;
                while start.elapsed() < run_for {
                    let e = event("t");
                    let stream = format!("dossier-{task}-{}", n / 20);
                    let version = (n % 20) as i64;
                    client
                        .execute(
                            &insert,
                            &[
                                &stream,
                                &version,
                                &e.event_id,
                                &e.event_type,
                                &e.data.as_str(),
                                &e.metadata.as_str(),
                            ],
                        )
                        .await
                        .unwrap();
                    n += 1;
                }
                n
            }));
        }
        let mut total = 0;
        for handle in handles {
            total += handle.await.unwrap();
        }
        let rate = total as f64 / start.elapsed().as_secs_f64();
        println!("plain INSERT, {appenders:>2} connections:          {rate:>7.0} appends/s");
    }
}
