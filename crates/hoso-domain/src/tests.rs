//! Crate-wide tests.
