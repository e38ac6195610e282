//! End-to-end tests: the real `hoso` binary started on a free port with a temporary data
//! directory, driven by the generated gRPC clients as a desk's software would drive it.

mod harness;

mod auth;
mod backup;
mod cli;
#[cfg(feature = "postgres")]
mod copy;
mod feed;
mod import;
mod lifecycle;
mod limits;
mod portal_sync;
#[cfg(feature = "postgres")]
mod postgres;
mod reference;
mod reports;
mod retries;
mod rules;
mod sealed;
mod shutdown;
mod snapshot;
mod sso;
mod tls;
mod traces;
#[cfg(not(feature = "postgres"))]
mod without_postgres;

/// The server binary the harness starts: this package's own.
fn server_binary() -> std::path::PathBuf {
    env!("CARGO_BIN_EXE_hoso").into()
}
