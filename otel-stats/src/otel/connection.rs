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
    /// `server.address` and `server.port` of its RPCs.
    server: ServerAttributes,
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
            server: ServerAttributes::default(),
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

    /// Adds `server.address` and `server.port` of an RPC on this connection to `attrs`.
    pub(super) fn push_server(&self, authority: Option<&str>, attrs: &mut Vec<KeyValue>) {
        self.server.push(authority, self.info.local_addr, attrs);
    }
}

/// `server.address` and `server.port` (see [`attributes::server_of`]), made for the first
/// `:authority` and local address seen and shared, without allocating, by the RPCs that come
/// with the same; others get theirs made for them. A server has one name, or few.
#[derive(Debug, Default)]
pub(super) struct ServerAttributes {
    first: OnceLock<Named>,
}

/// The attributes made for an `:authority` and a local address.
#[derive(Debug)]
struct Named {
    authority: Option<Box<str>>,
    local: Option<SocketAddr>,
    attributes: Vec<KeyValue>,
}

impl ServerAttributes {
    /// Adds the attributes of an RPC that named `authority`, received on `local`, to `attrs`.
    pub(super) fn push(
        &self,
        authority: Option<&str>,
        local: Option<SocketAddr>,
        attrs: &mut Vec<KeyValue>,
    ) {
        match self.first.get() {
            Some(named) if named.authority.as_deref() == authority && named.local == local => {
                attrs.extend(named.attributes.iter().cloned());
            }
            _ => {
                let attributes = attributes::server_of(authority, local);
                attrs.extend(attributes.iter().cloned());
                let _ = self.first.set(Named {
                    authority: authority.map(Box::from),
                    local,
                    attributes,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::Value;
    use opentelemetry_semantic_conventions::attribute::{SERVER_ADDRESS, SERVER_PORT};

    use super::*;

    #[test]
    fn the_first_servers_attributes_are_shared_others_are_made() {
        let names = ServerAttributes::default();
        let local: SocketAddr = "10.0.0.1:50051".parse().unwrap();
        let pushed = |authority| {
            let mut attrs = Vec::new();
            names.push(authority, Some(local), &mut attrs);
            attrs
        };
        let first = pushed(Some("echo.example:443"));
        let again = pushed(Some("echo.example:443"));
        assert_eq!(first, again);
        // The same allocation, not a copy.
        match (&first[0].value, &again[0].value) {
            (Value::String(a), Value::String(b)) => {
                assert!(std::ptr::eq(a.as_str(), b.as_str()));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            pushed(None),
            [
                KeyValue::new(SERVER_ADDRESS, "10.0.0.1"),
                KeyValue::new(SERVER_PORT, 50051)
            ]
        );
        assert_eq!(first, pushed(Some("echo.example:443")), "the first stays");
    }
}
