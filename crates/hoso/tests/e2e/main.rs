//! End-to-end tests: the real `hoso` binary started on a free port with a temporary data
//! directory, driven by the generated gRPC clients as a desk's software would drive it.

mod harness;

mod auth;
mod cli;
mod crash_load;
mod import;
mod lifecycle;
mod limits;
mod reference;
mod reports;
mod retries;
mod rules;
mod sealed;
mod shutdown;
mod snapshot;
mod tls;
