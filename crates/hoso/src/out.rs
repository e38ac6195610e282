//! Printing to standard output without panicking when the reader has gone.
//!
//! `println!` panics with a backtrace when stdout is a pipe whose reader closed
//! (`hoso replay X | head`). [`outln!`] and [`out!`] write through the locked stdout instead and
//! return the error with `?`, and `main` ends quietly when that error is a broken pipe. We do not
//! restore SIGPIPE's default action: that needs `unsafe` (forbidden here) or a crate calling libc
//! for us, and it would also kill `hoso serve` on a client's closed socket.

use std::io::ErrorKind;

/// `println!` that returns the write error from the enclosing function instead of panicking.
#[doc(hidden)]
#[macro_export]
macro_rules! __outln {
    () => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock())?;
    }};
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?;
    }};
}

/// `print!` that returns the write error from the enclosing function instead of panicking.
#[doc(hidden)]
#[macro_export]
macro_rules! __out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)?;
    }};
}

// Exported under this module's path (`hoso::out::outln!`) rather than the crate root's.
pub use crate::{__out as out, __outln as outln};

/// Whether an error comes from writing to a pipe (or socket) whose reader has closed it.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .is_some_and(|e| e.io_error_kind() == Some(ErrorKind::BrokenPipe))
    })
}

/// `n` and a noun, in the singular for one.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
