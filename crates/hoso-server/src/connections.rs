//! Accepted connections, limited in number and closed when silent.
//!
//! tonic limits requests, not connections: each accepted socket holds buffers until its client
//! leaves, so idle sockets, or sockets that sent only the HTTP/2 preface, piled up to hundreds
//! of MB. Here each connection holds a permit of a semaphore (one more is closed at once), and a
//! connection that sends no byte for the idle time is closed: a live client always sends
//! something within that time, since it answers the HTTP/2 keepalive pings.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_stream::{Stream, StreamExt};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// A connection that holds one of the permits and is closed after `idle` without a byte read.
pub(crate) struct Limited {
    inner: TcpStream,
    _permit: OwnedSemaphorePermit,
    _open: Open,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

/// Connections refused at the limit since the last warning, and when it was.
static REFUSED: AtomicU64 = AtomicU64::new(0);
static LAST_WARNING: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);

/// Warns of refused connections at most once every ten seconds, with the count since the last.
fn note_refused(max: usize) {
    let refused = REFUSED.fetch_add(1, Ordering::Relaxed) + 1;
    let Ok(mut last) = LAST_WARNING.lock() else { return };
    if last.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
        *last = Some(Instant::now());
        REFUSED.store(0, Ordering::Relaxed);
        tracing::warn!(
            max_connections = max,
            refused,
            "connection limit reached: new connections are closed (limits.max_connections)"
        );
    }
}

/// Counts a connection in the open connections' gauge while it lives.
struct Open(Gauge);

impl Open {
    fn new(gauge: &Gauge) -> Open {
        gauge.inc();
        Open(gauge.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The accepted connections of `incoming`, at most `max` open at once, each closed after `idle`
/// without a byte from its client; `open` counts those open, `refused` those closed at the limit.
pub(crate) fn limit<S>(
    incoming: S,
    max: usize,
    idle: Duration,
    (open, refused): (Gauge, Counter),
) -> impl Stream<Item = io::Result<Limited>>
where
    S: Stream<Item = io::Result<TcpStream>>,
{
    let permits = Arc::new(Semaphore::new(max));
    incoming.filter_map(move |accepted| match accepted {
        Err(err) => Some(Err(err)),
        Ok(stream) => match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => Some(Ok(Limited {
                inner: stream,
                _permit: permit,
                _open: Open::new(&open),
                idle,
                deadline: Box::pin(tokio::time::sleep(idle)),
            })),
            Err(_) => {
                refused.inc();
                note_refused(max);
                None
            }
        },
    })
}

impl AsyncRead for Limited {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    let next = Instant::now() + self.idle;
                    self.deadline.as_mut().reset(next);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client sent nothing for limits.idle_connection_seconds",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for Limited {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl Connected for Limited {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.inner.connect_info()
    }
}
