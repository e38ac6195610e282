//! `hoso-fuzz`: fuzz targets for the inputs hoso reads from outside, run on the stable toolchain.
//!
//! **What it is.** Five targets ([`targets::Target`]), each a function from bytes to an outcome
//! that checks properties, not only the absence of panics: a store directory whose files were
//! flipped, cut, extended or removed must open and read back only what was written (or refuse,
//! naming the damage); the projection snapshot decoder must refuse or decode to a model that
//! encodes back to the same bytes; a protobuf desk request must convert to a command or to errors
//! naming their fields, and a converted command must survive its way back to protobuf; an import
//! line must parse, convert and be decided without a panic; due dates must fall on a working day
//! and never before receipt. [`engine`] is a seeded mutation loop with no coverage
//! instrumentation: it mutates the seed corpus (`corpus/<target>/`), keeps every input whose
//! outcome differs from all seen before (a cheap stand-in for coverage), and writes any input
//! that panics or breaks a property to `regressions/<target>/`, which the test suite replays
//! (`tests/replay.rs`) together with the corpus.
//!
//! **What it is not.** Not coverage-guided: it finds what random mutation of realistic seeds
//! reaches, not deep branches behind checksums (targets fix checksums up themselves where they
//! know them). Not a sanitizer run: the product forbids `unsafe`, so memory errors are out of
//! scope and the targets look for panics, hangs of the loop and broken properties. How to run it:
//! `docs/fuzzing.md`.

pub mod engine;
pub mod seeds;
pub mod targets;

/// The directory of this crate's sources, where `corpus/` and `regressions/` live.
pub fn crate_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
