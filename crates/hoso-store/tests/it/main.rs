//! Integration tests of the event store: the conformance suite on both implementations, a
//! property test against a model, and the sled store's own concerns (reopening, format
//! versions, tampering).

mod backup;
mod copy;
mod model;
mod sled_store;

mod memory {
    use hoso_store::MemoryStore;

    hoso_store::conformance_tests!(|| async { (MemoryStore::new(), ()) });
}

mod sled_conformance {
    use hoso_store::{SledOptions, SledStore};

    hoso_store::conformance_tests!(|| async {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path(), SledOptions::default()).unwrap();
        (store, dir)
    });
}
