//! What the binaries `hoso` and `hoso-load` share as clients of a running server: the
//! connection flags, TLS and bearer token ([`connect`]), and printing that ends quietly when the
//! reader has gone ([`out`]).

pub mod connect;
pub mod out;
