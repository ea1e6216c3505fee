//! What a connection's context holds for the handler: the connection's span, made only once
//! an RPC needs it, and the attribute values its RPCs share.
//!
//! **Why lazily.** A load balancer's TCP health check, a port scan or a client that opens an
//! HTTP/2 connection and never uses it would each make a `grpc.connection` span, every few
//! seconds, about nothing. So a server connection records only when it began and what it is
//! (`tag_conn`), and its span is made, with that start time, when its first RPC needs it as
//! parent or link; at `ConnEnd` it is ended if it was made. The stats events keep grpc-go's
//! semantics: `ConnBegin` and `ConnEnd` fire for every connection, as before; only the span
//! waits. A client connection's span is made at once: the application opened it, and client
//! RPC spans never use it, so waiting for one would mean never making it.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::SystemTime;

use opentelemetry::trace::{SpanBuilder, SpanKind};
use opentelemetry::{Context, KeyValue};

use super::attributes::{self, PeerAddress};
use super::builder::Config;
use crate::event::{ConnTagInfo, Side};
use crate::semconv::CONNECTION_SPAN;

/// One connection, as the handler sees it.
#[derive(Debug)]
pub(super) struct ConnState {
    info: ConnTagInfo,
    /// When the connection was tagged: its span's start, whenever the span is made.
    start: SystemTime,
    /// Whether the connection gets a span at all.
    traced: bool,
    /// The connection span, in a context of its own: the connection's context holds this
    /// value, so it must not hold the connection's context (a cycle that would never be freed).
    span: OnceLock<Context>,
    /// The peer's address as an attribute value, for the spans of the connection's RPCs.
    pub(super) peer: Option<PeerAddress>,
    /// `server.address` and `server.port` of the last `:authority` its RPCs named: made once,
    /// shared by its next RPCs that name the same.
    server: OnceLock<(Option<Box<str>>, Vec<KeyValue>)>,
}

impl ConnState {
    /// A new connection; a client's span is started now, a server's when an RPC needs it.
    pub(super) fn new(config: &Config, info: &ConnTagInfo) -> Self {
        let state = ConnState {
            info: info.clone(),
            start: SystemTime::now(),
            traced: config.connection_spans,
            span: OnceLock::new(),
            peer: info.remote_addr.map(PeerAddress::new),
            server: OnceLock::new(),
        };
        if info.side == Side::Client {
            let _ = state.span(config);
        }
        state
    }

    /// The context of the connection span, started now if no RPC needed it yet; `None` when
    /// the handler makes no connection spans.
    pub(super) fn span(&self, config: &Config) -> Option<&Context> {
        if !self.traced {
            return None;
        }
        Some(self.span.get_or_init(|| {
            let builder = SpanBuilder::from_name(CONNECTION_SPAN)
                .with_kind(SpanKind::Internal)
                .with_start_time(self.start);
            // A root: a connection serves many traces and belongs to none.
            let root = Context::new();
            config.tracer().start(builder, &root, &root, None, || {
                attributes::conn_attributes(&self.info, self.peer.as_ref())
            })
        }))
    }

    /// The connection span's context, if it was made.
    pub(super) fn started(&self) -> Option<&Context> {
        self.span.get()
    }

    /// Adds `server.address` and `server.port` of an RPC on this connection (see
    /// [`attributes::server_of`]) to `attrs`, reusing the values of the previous RPC when it
    /// named the same `:authority`.
    pub(super) fn push_server(&self, authority: Option<&str>, attrs: &mut Vec<KeyValue>) {
        match self.server.get() {
            Some((seen, known)) if seen.as_deref() == authority => {
                attrs.extend(known.iter().cloned());
            }
            _ => {
                let known = attributes::server_of(authority, self.local_addr());
                attrs.extend(known.iter().cloned());
                let _ = self.server.set((authority.map(Box::from), known));
            }
        }
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        self.info.local_addr
    }
}
