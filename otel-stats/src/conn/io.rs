use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use hyper_util::client::legacy::connect::{Connected as ClientConnected, Connection};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

use super::addrs;
use super::current::{ChannelConnection, OpenConnection};
use super::guard::ConnGuard;
use super::info::ConnInfo;
use super::registry::Registration;
use crate::event::Side;
use crate::handler::StatsHandler;

/// An IO (a TCP stream, a TLS stream, ...) wrapped so that its connection is reported:
/// `tag_conn` and `ConnBegin` when it is made, `ConnEnd` (with the bytes read and written) when
/// the transport drops it. Reads and writes pass through untouched.
///
/// Its `Connected` info is the wrapped IO's own, so tonic composes it exactly as it would
/// without the wrapper: a service behind `Server::tls_config` still finds `TcpConnectInfo`
/// and `TlsConnectInfo<TcpConnectInfo>` in its requests, and `Request::remote_addr()`,
/// `local_addr()` and `peer_certs()` answer as they do without otel-stats. The server layer
/// finds the connection of an RPC by those TCP addresses (with the `tls` feature also inside
/// the `TlsConnectInfo` of a TLS stream the application accepted and wrapped itself). An IO
/// without TCP addresses (a Unix socket, an in-memory pipe) still reports its connection
/// events, but its RPCs' contexts do not derive from the connection's.
pub struct StatsIo<IO, H: StatsHandler + ?Sized> {
    inner: IO,
    /// Dropped before `guard`: by the time `ConnEnd` fires, no new RPC finds the connection.
    _open: Option<Open>,
    guard: ConnGuard<H>,
    info: ConnInfo,
}

/// Where an open connection is known, until its IO is dropped (each is held for its `Drop`).
enum Open {
    /// A server's: in the table its RPCs find it in.
    Server { _entry: Registration },
    /// A client's: as its channel's current connection.
    Channel { _current: OpenConnection },
}

impl<IO, H: StatsHandler + ?Sized> StatsIo<IO, H> {
    /// Wraps an IO a server accepted.
    pub fn server(inner: IO, handler: Arc<H>) -> Self
    where
        IO: Connected,
    {
        let (remote_addr, local_addr) = addrs::of_connect_info(&inner.connect_info());
        let guard = ConnGuard::begin(handler, Side::Server, remote_addr, local_addr);
        let info = ConnInfo::new(guard.context().clone(), remote_addr, local_addr);
        let open = Some(Open::Server {
            _entry: Registration::open(&info),
        });
        StatsIo {
            inner,
            guard,
            info,
            _open: open,
        }
    }

    /// Wraps an IO a client connected.
    pub fn client(inner: IO, handler: Arc<H>) -> Self
    where
        IO: Connection,
    {
        Self::client_of(inner, handler, None)
    }

    /// Wraps an IO a client connected for `channel`, as its current connection while open.
    pub(crate) fn client_of(
        inner: IO,
        handler: Arc<H>,
        channel: Option<&Arc<ChannelConnection>>,
    ) -> Self
    where
        IO: Connection,
    {
        let (remote_addr, local_addr) = client_addrs(&inner.connected());
        let guard = ConnGuard::begin(handler, Side::Client, remote_addr, local_addr);
        let info = ConnInfo::new(guard.context().clone(), remote_addr, local_addr);
        // A client's RPCs do not derive from its connections' contexts; the channel's RPCs
        // only read its addresses.
        let open = channel.map(|c| Open::Channel {
            _current: c.open((remote_addr, local_addr)),
        });
        StatsIo {
            inner,
            guard,
            info,
            _open: open,
        }
    }

    /// The connection's info: its context and addresses.
    pub fn info(&self) -> &ConnInfo {
        &self.info
    }

    /// The wrapped IO.
    pub fn get_ref(&self) -> &IO {
        &self.inner
    }
}

/// The addresses hyper-util's connectors record for a client connection.
fn client_addrs(connected: &ClientConnected) -> (Option<SocketAddr>, Option<SocketAddr>) {
    let mut extensions = http::Extensions::new();
    connected.get_extras(&mut extensions);
    match extensions.get::<hyper_util::client::legacy::connect::HttpInfo>() {
        Some(info) => (Some(info.remote_addr()), Some(info.local_addr())),
        None => (None, None),
    }
}

impl<IO, H: StatsHandler + ?Sized> std::fmt::Debug for StatsIo<IO, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsIo")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl<IO: Connected, H: StatsHandler + ?Sized> Connected for StatsIo<IO, H> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> IO::ConnectInfo {
        self.inner.connect_info()
    }
}

impl<IO: Connection, H: StatsHandler + ?Sized> Connection for StatsIo<IO, H> {
    fn connected(&self) -> ClientConnected {
        self.inner.connected()
    }
}

impl<IO: AsyncRead + Unpin, H: StatsHandler + ?Sized> AsyncRead for StatsIo<IO, H> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        this.guard.bytes_read += (buf.filled().len() - before) as u64;
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin, H: StatsHandler + ?Sized> AsyncWrite for StatsIo<IO, H> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        this.guard.bytes_written += n as u64;
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, bufs))?;
        this.guard.bytes_written += n as u64;
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
