//! The property test against a model ([`hoso_store::conformance::model`]) on both
//! implementations.

use hoso_store::conformance::model::{check, tasks};
use hoso_store::{MemoryStore, SledOptions, SledStore};
use proptest::prelude::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn memory_store_matches_the_model(plan in tasks()) {
        runtime().block_on(check(MemoryStore::new(), plan));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn sled_store_matches_the_model(plan in tasks()) {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path(), SledOptions::default()).unwrap();
        runtime().block_on(check(store, plan));
    }
}
