//! Copying logs into and out of PostgreSQL (`hoso_store::copy` over `PgStore`'s import): the
//! copy cases of the conformance suite with a PostgreSQL target, and a copy from the embedded
//! store to PostgreSQL and back that is byte-identical in every envelope field.

use hoso_store::conformance::copy::{
    a_copy_keeps_every_envelope_field, a_copy_resumes_and_refuses_a_target_that_diverged,
    an_import_that_breaks_a_rule_writes_nothing, fill,
};
use hoso_store::conformance::event;
use hoso_store::{EventStore, ExpectedVersion, MemoryStore, SledOptions, SledStore, VerifyScope, copy};
use hoso_store_pg::{PgOptions, PgStore, serving_sessions};

use crate::support;

async fn pg() -> PgStore {
    support::fresh_store().await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_into_postgresql_keeps_every_envelope_field() {
    a_copy_keeps_every_envelope_field(MemoryStore::new(), pg().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_refuses_an_import_that_breaks_a_rule() {
    an_import_that_breaks_a_rule_writes_nothing(MemoryStore::new(), pg().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_into_postgresql_resumes_and_refuses_a_target_that_diverged() {
    a_copy_resumes_and_refuses_a_target_that_diverged(MemoryStore::new(), pg().await, pg().await).await;
}

/// Embedded → PostgreSQL → embedded: the three logs are the same in every field of every event
/// (positions, versions, ids, types, schema versions, data and metadata bytes, both times,
/// hashes), each verifies, and each keeps it when opened again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_to_postgresql_and_back_is_byte_identical() {
    let (first_dir, last_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let embedded = SledStore::open(first_dir.path(), SledOptions::default()).unwrap();
    fill(&embedded, 300).await;
    let original = embedded.read_all(0, usize::MAX).await.unwrap();
    let (postgres, url) = support::fresh_store().await;
    let there = copy(&embedded, &postgres, &mut |_| {}).await.unwrap();
    let back_store = SledStore::open(last_dir.path(), SledOptions::default()).unwrap();
    let back = copy(&postgres, &back_store, &mut |_| {}).await.unwrap();
    assert_eq!(there.position, original.len() as u64);
    assert_eq!((back.position, back.head_hash), (there.position, there.head_hash));
    postgres.close();
    embedded.close();
    back_store.close();
    drop((postgres, embedded, back_store));

    let postgres = PgStore::connect(&url, PgOptions::default()).await.unwrap();
    let back_store = SledStore::open(last_dir.path(), SledOptions::default()).unwrap();
    for copied in [
        postgres.read_all(0, usize::MAX).await.unwrap(),
        back_store.read_all(0, usize::MAX).await.unwrap(),
    ] {
        assert_eq!(copied.len(), original.len());
        for (a, b) in original.iter().zip(&copied) {
            assert_eq!(a, b, "every envelope field, at position {}", a.position);
        }
    }
    for report in [
        postgres.verify(VerifyScope::All).await.unwrap(),
        back_store.verify(VerifyScope::All).await.unwrap(),
    ] {
        assert_eq!(report.first_problem, None);
        assert_eq!(report.records_checked, original.len() as u64);
    }
    back_store.close();
}

/// A copy refuses a database a server is serving from: the store's connections (here the
/// writer's, open after an append) are found by their application name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sessions_of_a_serving_store_are_counted() {
    let url = support::fresh_database().await;
    assert_eq!(serving_sessions(&url).await.unwrap(), 0);
    let store = PgStore::connect(&url, PgOptions::default()).await.unwrap();
    store
        .append("dossier-1", ExpectedVersion::Any, vec![event("served")])
        .await
        .unwrap();
    assert!(serving_sessions(&url).await.unwrap() > 0);
    store.close();
}
