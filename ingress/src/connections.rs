//! Bounds what open connections can cost.
//!
//! Each open HTTP/1.1 connection holds about 34 KB of ingress memory (hyper's read and write
//! buffers, the connection task), whether it is busy or idle, and a stall of the broker makes
//! WhatsApp (or any client) open a new connection for every request it cannot send on a busy
//! one. Two rules keep that bounded: at most `max_connections` are served at once, and a
//! connection on which nothing has moved in either direction for `idle_timeout` is closed,
//! which also ends connections that send half a request and stop.
//!
//! A connection beyond the limit is answered 503 at once and closed, as a delivery beyond
//! `INGRESS_MAX_IN_FLIGHT` is: WhatsApp redelivers. Leaving it in the kernel's backlog instead
//! was tried: after a 2 s broker pause, clients whose connection attempts overflowed the backlog
//! waited out TCP's retransmission backoff, up to 40 s after the broker was back.
//!
//! The idle timeout lives in the connection's I/O rather than in hyper's
//! `header_read_timeout` because `axum::serve` gives hyper no timer to run one with, and
//! because a client that stops reading its response stalls a write, which hyper's timeout
//! would not see.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tracing::warn;

/// A TCP listener that accepts at most `max_connections` connections at a time.
pub struct BoundedListener {
    listener: TcpListener,
    permits: Arc<Semaphore>,
    idle_timeout: Duration,
    /// Connections served right now, for `/metrics`.
    open: Gauge,
    /// Connections answered 503 because the limit was reached, for `/metrics`.
    refused: Counter,
}

impl BoundedListener {
    pub fn new(
        listener: TcpListener,
        max_connections: usize,
        idle_timeout: Duration,
        open: Gauge,
        refused: Counter,
    ) -> Self {
        Self {
            listener,
            permits: Arc::new(Semaphore::new(max_connections)),
            idle_timeout,
            open,
            refused,
        }
    }
}

const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
content-length: 26\r\nconnection: close\r\n\r\ntoo many connections open\n";

/// Answers 503 without reading the request, then closes. What the client already sent is read
/// and discarded first (for at most a second): closing with unread data makes the kernel send
/// a reset, which can destroy the 503 before the client reads it.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(REFUSAL).await?;
        stream.shutdown().await?;
        // Small: a flood of refusals holds one of these per connection for up to a second.
        let mut discard = [0u8; 512];
        while stream.read(&mut discard).await? > 0 {}
        Ok::<(), io::Error>(())
    })
    .await;
}

impl axum::serve::Listener for BoundedListener {
    type Io = BoundedConnection;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.listener.accept().await {
                Ok((stream, addr)) => {
                    let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
                        self.refused.inc();
                        tokio::spawn(refuse(stream));
                        continue;
                    };
                    // Acks are small and latency-bound: never wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    self.open.inc();
                    return (
                        BoundedConnection {
                            stream,
                            _permit: permit,
                            idle_timeout: self.idle_timeout,
                            last_progress: Instant::now(),
                            idle: Box::pin(tokio::time::sleep(self.idle_timeout)),
                            open: self.open.clone(),
                        },
                        addr,
                    );
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!(message = "Accepting a connection failed.", %error);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// An accepted connection; its room is given back when it is dropped.
pub struct BoundedConnection {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    idle_timeout: Duration,
    last_progress: Instant,
    /// Armed lazily: it is moved forward only when it fires, not on every read or write.
    idle: Pin<Box<Sleep>>,
    open: Gauge,
}

impl Drop for BoundedConnection {
    fn drop(&mut self) {
        self.open.dec();
    }
}

impl BoundedConnection {
    fn progressed(&mut self) {
        self.last_progress = Instant::now();
    }

    /// Called when the socket has nothing for us: an error once nothing has moved for the
    /// whole idle timeout, otherwise pending (with the timer registered to wake us).
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            ready!(self.idle.as_mut().poll(cx));
            let deadline = self.last_progress + self.idle_timeout;
            if Instant::now() >= deadline {
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle for longer than the idle timeout",
                ));
            }
            self.idle.as_mut().reset(deadline);
        }
    }

    /// What the socket answered, with progress noted, or the idle check when it has nothing.
    fn track<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(result) => {
                self.progressed();
                Poll::Ready(result)
            }
            Poll::Pending => self.poll_idle(cx).map(Err),
        }
    }
}

impl AsyncRead for BoundedConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        self.track(cx, polled)
    }
}

impl AsyncWrite for BoundedConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.track(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.track(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
