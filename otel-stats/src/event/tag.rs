use std::net::SocketAddr;

use http::HeaderMap;

use super::Side;

/// What [`StatsHandler::tag_rpc`](crate::StatsHandler::tag_rpc) learns about a new RPC
/// (grpc-go: `stats.RPCTagInfo`, plus the metadata that grpc-go passes in the context).
///
/// On the server the request metadata is read-only, so a handler can extract a remote parent.
/// On the client it is writable, so a handler can inject trace context into the outgoing headers.
#[derive(Debug)]
pub struct RpcTagInfo<'a> {
    side: Side,
    full_method: &'a str,
    authority: Option<&'a str>,
    remote_addr: Option<SocketAddr>,
    local_addr: Option<SocketAddr>,
    metadata: Metadata<'a>,
}

#[derive(Debug)]
enum Metadata<'a> {
    Incoming(&'a HeaderMap),
    Outgoing(&'a mut HeaderMap),
}

impl<'a> RpcTagInfo<'a> {
    /// Tag info for an RPC received by a server.
    pub fn server(
        full_method: &'a str,
        metadata: &'a HeaderMap,
        remote_addr: Option<SocketAddr>,
        local_addr: Option<SocketAddr>,
    ) -> Self {
        RpcTagInfo {
            side: Side::Server,
            full_method,
            authority: None,
            remote_addr,
            local_addr,
            metadata: Metadata::Incoming(metadata),
        }
    }

    /// Tag info for an RPC a client is about to send.
    pub fn client(
        full_method: &'a str,
        authority: Option<&'a str>,
        metadata: &'a mut HeaderMap,
    ) -> Self {
        RpcTagInfo {
            side: Side::Client,
            full_method,
            authority,
            remote_addr: None,
            local_addr: None,
            metadata: Metadata::Outgoing(metadata),
        }
    }

    /// The same, with the connection's addresses: on a client, of the channel's connection.
    pub(crate) fn with_addrs(
        mut self,
        remote_addr: Option<SocketAddr>,
        local_addr: Option<SocketAddr>,
    ) -> Self {
        self.remote_addr = remote_addr;
        self.local_addr = local_addr;
        self
    }

    /// The same, with the request's `:authority` (`host:port`): on a server, the one the
    /// client sent.
    ///
    /// ```
    /// let headers = http::HeaderMap::new();
    /// let info = otel_stats::RpcTagInfo::server("/s.S/M", &headers, None, None)
    ///     .with_authority(Some("echo.example:443"));
    /// assert_eq!(info.authority(), Some("echo.example:443"));
    /// ```
    pub fn with_authority(mut self, authority: Option<&'a str>) -> Self {
        self.authority = authority;
        self
    }

    /// The side the RPC is seen on.
    pub fn side(&self) -> Side {
        self.side
    }

    /// The full method name, `/package.Service/Method`.
    pub fn full_method(&self) -> &str {
        self.full_method
    }

    /// The `:authority` of the request (`host:port`), when known: on the client, where the RPC
    /// is sent; on the server, what the client sent.
    pub fn authority(&self) -> Option<&str> {
        self.authority
    }

    /// The peer's address. Server side, when the connection wrapper is in use (or the IO is
    /// TCP); client side, on a channel made by
    /// [`ClientStatsLayer::connect`](crate::ClientStatsLayer::connect) (or its `_lazy` and
    /// `_with` forms) once it is connected: the address of the channel's connection.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }

    /// This end's address, when [`remote_addr`](Self::remote_addr) is known.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The request metadata (HTTP/2 headers).
    pub fn metadata(&self) -> &HeaderMap {
        match &self.metadata {
            Metadata::Incoming(m) => m,
            Metadata::Outgoing(m) => m,
        }
    }

    /// The outgoing request metadata, writable: `Some` on the client, `None` on the server.
    ///
    /// Whatever a handler inserts here goes over the wire with the request. Handlers should
    /// only add propagation headers (`traceparent`, `tracestate`, `baggage`, ...).
    pub fn metadata_mut(&mut self) -> Option<&mut HeaderMap> {
        match &mut self.metadata {
            Metadata::Incoming(_) => None,
            Metadata::Outgoing(m) => Some(m),
        }
    }
}

/// What [`StatsHandler::tag_conn`](crate::StatsHandler::tag_conn) learns about a new connection
/// (grpc-go: `stats.ConnTagInfo`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnTagInfo {
    /// The side the connection is seen on.
    pub side: Side,
    /// The peer's address, when the IO has one.
    pub remote_addr: Option<SocketAddr>,
    /// This end's address, when the IO has one.
    pub local_addr: Option<SocketAddr>,
}

impl ConnTagInfo {
    /// Tag info for a connection.
    pub fn new(
        side: Side,
        remote_addr: Option<SocketAddr>,
        local_addr: Option<SocketAddr>,
    ) -> Self {
        ConnTagInfo {
            side,
            remote_addr,
            local_addr,
        }
    }
}
