//! Connections the emulator can cut: a TCP listener whose streams carry a drop switch, so a
//! handler can close its own connection without answering (the lost-response fault).
//!
//! Used by the emulator's listener only; it never wraps the MCP server's own listeners.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    extract::connect_info::Connected,
    serve::{IncomingStream, Listener},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
};

/// A TCP listener whose accepted streams can be dropped by the request they carry.
#[derive(Debug)]
pub struct DroppableListener {
    inner: TcpListener,
}

impl DroppableListener {
    pub fn new(inner: TcpListener) -> Self {
        Self { inner }
    }
}

impl Listener for DroppableListener {
    type Io = DroppableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let stream = DroppableStream {
                        inner: stream,
                        switch: DropSwitch::default(),
                    };
                    return (stream, peer);
                }
                Err(error) if is_per_connection(&error) => {}
                Err(error) => {
                    // Out of file descriptors and the like: wait a little, then go on.
                    tracing::warn!(%error, "emulator: accept failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Closes one connection: once thrown, every read and write on it fails, so the HTTP server
/// writes nothing more and closes the socket.
#[derive(Debug, Clone, Default)]
pub struct DropSwitch(Arc<AtomicBool>);

impl DropSwitch {
    /// Cut the connection; the response being prepared is never sent.
    pub fn drop_connection(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn is_thrown(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A TCP stream that fails every operation once its [`DropSwitch`] is thrown.
#[derive(Debug)]
pub struct DroppableStream {
    inner: TcpStream,
    switch: DropSwitch,
}

fn dropped() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "connection dropped by an emulator fault",
    )
}

impl AsyncRead for DroppableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.switch.is_thrown() {
            return Poll::Ready(Err(dropped()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for DroppableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.switch.is_thrown() {
            return Poll::Ready(Err(dropped()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.switch.is_thrown() {
            return Poll::Ready(Err(dropped()));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.switch.is_thrown() {
            return Poll::Ready(Err(dropped()));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.switch.is_thrown() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// What a handler knows of its connection: the peer, and the switch that cuts it.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub peer: SocketAddr,
    pub switch: DropSwitch,
}

impl Connected<IncomingStream<'_, DroppableListener>> for ConnectionInfo {
    fn connect_info(stream: IncomingStream<'_, DroppableListener>) -> Self {
        Self {
            peer: *stream.remote_addr(),
            switch: stream.io().switch.clone(),
        }
    }
}

impl ConnectionInfo {
    /// The information of a connection from `peer` (for unit tests).
    #[cfg(test)]
    pub fn for_peer(peer: &str) -> Self {
        Self {
            peer: peer.parse().unwrap(),
            switch: DropSwitch::default(),
        }
    }

    /// Whether the peer is on this machine (`127.0.0.0/8`, `::1`, or their IPv4-mapped form).
    pub fn peer_is_loopback(&self) -> bool {
        self.peer.ip().to_canonical().is_loopback()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(peer: &str) -> ConnectionInfo {
        ConnectionInfo::for_peer(peer)
    }

    #[test]
    fn only_loopback_peers_count_as_local() {
        assert!(info("127.0.0.1:5000").peer_is_loopback());
        assert!(info("127.8.9.10:5000").peer_is_loopback());
        assert!(info("[::1]:5000").peer_is_loopback());
        assert!(info("[::ffff:127.0.0.1]:5000").peer_is_loopback());
        assert!(!info("10.0.0.7:5000").peer_is_loopback());
        assert!(!info("192.168.1.2:5000").peer_is_loopback());
        assert!(!info("[::ffff:10.0.0.7]:5000").peer_is_loopback());
        assert!(!info("[2001:db8::1]:5000").peer_is_loopback());
    }
}
