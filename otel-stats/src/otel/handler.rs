//! [`OtelHandler`]: RPC and connection spans, span events and trace propagation.

use std::borrow::Cow;
use std::sync::Arc;

use http::HeaderMap;
use opentelemetry::trace::{Link, SpanBuilder, SpanKind, SpanRef, Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use tonic::Code;

use super::attributes;
use super::builder::{Config, OtelHandlerBuilder};
use super::connection::ConnState;
use super::events;
use crate::event::{ConnStats, ConnTagInfo, End, RpcStats, RpcTagInfo, Side};
use crate::handler::{StatsHandler, guard};
use crate::semconv::{self, is_error, split_method};

/// A [`StatsHandler`] that traces RPCs and connections with OpenTelemetry.
///
/// - **RPC spans**, named `package.Service/Method`, of kind `SERVER` or `CLIENT`, with the
///   attributes of the semantic conventions (see [`OtelHandlerBuilder::legacy_attributes`]
///   for the older names). They start in `tag_rpc` and end at the RPC's `End`, timestamped
///   with its end time, with `rpc.response.status_code` and, on failure, `error.type` and an
///   `ERROR` status whose description is the gRPC message. Client spans fail for any code
///   but `OK`; server spans only for `UNKNOWN`, `DEADLINE_EXCEEDED`, `UNIMPLEMENTED`,
///   `INTERNAL`, `UNAVAILABLE` and `DATA_LOSS`, the codes that are the server's fault.
///   Samplers see `rpc.system.name`, `server.address` and `server.port` (on the client from
///   the target, on the server from the `:authority` the client sent, else from the local
///   address), and `rpc.method` whenever it is already known (see below). Every RPC span
///   ends with `otel_stats.messages.sent` and `otel_stats.messages.received`, the numbers of
///   messages it carried, also with message events off.
/// - **Span events**, each timestamped when it happened: `Outbound message` and
///   `Inbound message` (gRFC A72: `sequence-number`, `message-size`, and
///   `message-size-compressed` for a compressed message, whose uncompressed size is not known
///   to the layer), and `Outbound headers`, `Inbound headers`, `Outbound trailers`,
///   `Inbound trailers` (`compression`, `metadata-entries`, `trailers-only`). Message events
///   are capped per span; the number left out is the `otel_stats.message_events.dropped`
///   attribute.
/// - **Connection spans**, `grpc.connection`, of kind `INTERNAL`, with the peer and local
///   addresses and the bytes read and written, from `tag_conn` to `ConnEnd`. A server makes
///   one only for a connection that carried an RPC (below). A connection span is exported
///   when its connection closes, so a backend shows the RPCs of a live connection under a
///   parent it has not received yet; a server's `max_connection_age` bounds the wait.
///
/// **Span names and cardinality.** A server sees whatever method names its callers send, and
/// span names must not carry them. A server span for a method the server does not serve is
/// named `grpc` (the conventions' `{rpc.system.name}`), with `rpc.method = "_OTHER"` and the
/// caller's string, capped, as `rpc.method_original`. Without an allow-list that is decided
/// at the RPC's end, from an `UNIMPLEMENTED` answer (the span is renamed then, and its
/// `rpc.method` set only then); with [`methods`](OtelHandlerBuilder::methods) or
/// [`method_filter`](OtelHandlerBuilder::method_filter) it is decided in `tag_rpc`, before
/// the sampler runs. Client spans keep the method the application called.
///
/// **Connections that carry nothing.** A load balancer's TCP health check, a port scan or an
/// HTTP/2 connection that is never used makes no span: a server connection's span is made,
/// with the connection's start time, when its first RPC needs it as parent or link, and
/// ended at `ConnEnd` only if it was made. The stats events do not change (`ConnBegin` and
/// `ConnEnd` fire for every connection); RPC spans parent to or link their connection's span
/// as before. (An RPC left out by the [`filter`](OtelHandlerBuilder::filter) does not need
/// it: a connection of health checks only makes no span either.) A client's connection span
/// is made when the connection is, as client RPC spans never use it.
///
/// **Parents.** A server RPC span is a child of its connection span, unless the request
/// carries a trace context (extracted with the propagator; a malformed one is ignored): then
/// the caller's span is the parent and the connection span a link.
/// [`public_endpoint`](OtelHandlerBuilder::public_endpoint) reverses that. A client RPC span
/// is a child of the caller's current context (with the `tracing` feature, of the current
/// `tracing` span), never of a connection span, and its context is injected into the
/// request metadata. A client RPC span has `network.peer.*` when the channel has one endpoint
/// and is connected as the RPC starts
/// ([`ClientStatsLayer::connect`](crate::ClientStatsLayer::connect)): it is tagged above
/// tonic's `Channel`, which picks the connection below it, and only a channel of one
/// connection at a time says which one that is.
///
/// **Two trace models**, for the server RPCs of callers that send no trace context:
///
/// | | connection traces (default) | RPC roots ([`rpc_roots(true)`](OtelHandlerBuilder::rpc_roots)) |
/// | --- | --- | --- |
/// | shape | one trace per connection: the `grpc.connection` root with its RPCs as children | one trace per RPC, its root linked to the connection span (otelgrpc's shape) |
/// | fits | seeing what a connection carried: few, long-lived callers, debugging, demos | high-volume servers, many RPCs per connection, per-RPC dashboards |
/// | a backend shows | the RPCs under a parent that arrives only when the connection closes (until then, an incomplete trace) | each RPC as a complete trace as soon as it ends; the connection as a trace of its own, reached through the links |
/// | sampling (parent-based sampler) | decided once per connection, by the connection span: all of its RPCs or none | decided per RPC, by the root sampler |
///
/// Callers that send a trace context get the same spans in both models: their span is the
/// parent, the connection span a link.
///
/// The RPC's context, with its span, is in the request extensions and is the current context
/// while the service runs, so application code can add to the span and start child spans.
///
/// Cloning is cheap: clones share one configuration.
///
/// # Examples
///
/// A server and a client, each with a handler:
///
/// ```no_run
/// use otel_stats::{ClientStatsLayer, OtelHandler, ServerStatsLayer};
/// use tonic::transport::{Endpoint, Server, server::TcpIncoming};
/// # async fn run(routes: tonic::service::Routes) -> Result<(), Box<dyn std::error::Error>> {
///
/// let stats = ServerStatsLayer::new(OtelHandler::new());
/// let incoming = stats.incoming(TcpIncoming::bind("127.0.0.1:50051".parse()?)?);
/// tokio::spawn(
///     Server::builder()
///         .layer(stats)
///         .add_routes(routes)
///         .serve_with_incoming(incoming),
/// );
///
/// let client_stats = ClientStatsLayer::new(OtelHandler::new());
/// let channel = client_stats
///     .connect(Endpoint::from_static("http://127.0.0.1:50051"))
///     .await?;
/// // EchoClient::new(channel) ...
/// # let _ = channel;
/// # Ok(()) }
/// ```
///
/// Reaching the RPC span from a tonic service:
///
/// ```
/// use opentelemetry::KeyValue;
/// use otel_stats::RpcRequestExt;
///
/// fn handle(request: &tonic::Request<()>) {
///     request.rpc_span().set_attribute(KeyValue::new("app.user", "ann"));
///     // Or, as the service runs under it: Context::current().span()
/// }
/// ```
#[derive(Debug, Clone)]
pub struct OtelHandler {
    config: Arc<Config>,
}

impl Default for OtelHandler {
    fn default() -> Self {
        Self::new()
    }
}

impl OtelHandler {
    /// A handler with the defaults: the global tracer provider (taken at the first span, so
    /// install it before the first RPC), the global propagator (W3C trace context while none
    /// is set), every event, at most 100 message events per span.
    ///
    /// ```
    /// let handler = otel_stats::OtelHandler::new();
    /// # let _ = handler;
    /// ```
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder for a handler with other options.
    ///
    /// ```
    /// let handler = otel_stats::OtelHandler::builder().public_endpoint(true).build();
    /// # let _ = handler;
    /// ```
    pub fn builder() -> OtelHandlerBuilder {
        OtelHandlerBuilder::default()
    }

    pub(super) fn from_config(config: Arc<Config>) -> Self {
        OtelHandler { config }
    }

    /// The parent of a server RPC span, the context it goes into (with what the propagator
    /// extracted, such as baggage), and its links.
    fn server_parent(
        &self,
        cx: Context,
        conn: Option<&ConnState>,
        metadata: &HeaderMap,
    ) -> (Context, Context, Vec<Link>) {
        let config = &*self.config;
        let extracted = config.propagation.extract(&cx, metadata);
        let remote = extracted.span().span_context().clone();
        let caller = remote.is_valid() && remote != *cx.span().span_context();
        let conn_span = conn.and_then(|c| c.span(config));
        let conn_link = || conn_span.map(|c| Link::with_context(c.span().span_context().clone()));
        if caller && !config.public_endpoint {
            let links = conn_link().into_iter().collect();
            return (extracted.clone(), extracted, links);
        }
        // From here on the RPC takes nothing from the caller's context but, perhaps, a link:
        // there was none, or a public endpoint does not trust it (nor its baggage).
        let caller_link = caller.then(|| Link::with_context(remote));
        if config.rpc_roots {
            let links = caller_link.into_iter().chain(conn_link()).collect();
            return (Context::new(), cx, links);
        }
        let parent = match conn_span {
            Some(conn_span) => conn_span.clone(),
            // No connection span: the context the RPC came with is the parent.
            None => cx.clone(),
        };
        (parent, cx, caller_link.into_iter().collect())
    }

    fn end_rpc(&self, span: &SpanRef<'_>, end: &End<'_>) {
        if span.is_recording() {
            let config = &*self.config;
            let error = is_error(end.side, end.code);
            // Only now does a server without an allow-list know whether it has the method.
            let method = (end.side == Side::Server && !config.methods.configured()).then(|| {
                let (name, _, _) = split_method(end.full_method);
                let known = end.code != Code::Unimplemented;
                if !known {
                    span.update_name(attributes::UNKNOWN_METHOD_SPAN);
                }
                attributes::method_attributes(name, known, config.legacy_attributes)
            });
            // One call, so one lock of the span, for all the attributes of the end.
            span.set_attributes(
                method.into_iter().flatten().chain(
                    attributes::end_attributes(end.code, error, config.legacy_attributes).chain(
                        end.frame_error
                            .map(|e| KeyValue::new(attributes::FRAME_ERROR, e.to_string())),
                    ),
                ),
            );
            if error {
                span.set_status(Status::error(attributes::capped(end.message)));
            }
        }
        span.end_with_timestamp(end.end_time);
    }

    fn metadata_event(&self, span: &SpanRef<'_>, stats: &RpcStats<'_>) {
        let config = &*self.config;
        let (name, attrs, response_metadata) = match stats {
            RpcStats::OutHeader(h) => (
                semconv::OUTBOUND_HEADERS,
                events::header(h),
                (h.side == Side::Server).then_some(h.metadata),
            ),
            RpcStats::InHeader(h) => (
                semconv::INBOUND_HEADERS,
                events::header(h),
                (h.side == Side::Client).then_some(h.metadata),
            ),
            RpcStats::OutTrailer(t) => (
                semconv::OUTBOUND_TRAILERS,
                events::trailer(t),
                Some(t.metadata),
            ),
            RpcStats::InTrailer(t) => (
                semconv::INBOUND_TRAILERS,
                events::trailer(t),
                Some(t.metadata),
            ),
            _ => return,
        };
        if config.header_events {
            span.add_event_with_timestamp(name, stats.time(), attrs);
        }
        if let Some(metadata) = response_metadata.filter(|_| config.records_metadata()) {
            span.set_attributes(attributes::response_metadata(
                &config.record_metadata,
                metadata,
            ));
        }
    }

    /// The RPC's context with its span, or `None` for an RPC the filter leaves out.
    fn trace_rpc(&self, cx: Context, info: &mut RpcTagInfo<'_>) -> Option<Context> {
        let config = &*self.config;
        if config.filter.as_ref().is_some_and(|keep| !keep(info)) {
            return None;
        }
        let (name, _, _) = split_method(info.full_method());
        let side = info.side();
        let mut attrs =
            attributes::sampler_attributes(config.attributes.len() + config.record_metadata.len());
        // A client's methods are the application's own. A server knows its methods now when
        // it was given an allow-list; else only the status will tell (see `end_rpc`).
        let known = match side {
            Side::Client => Some(true),
            Side::Server => config.methods.recognizes(info.full_method()),
        };
        if let Some(known) = known {
            attrs.extend(attributes::method_attributes(
                name,
                known,
                config.legacy_attributes,
            ));
        }
        let span_name: Cow<'static, str> = match known {
            Some(false) => Cow::Borrowed(attributes::UNKNOWN_METHOD_SPAN),
            _ => Cow::Owned(name.to_owned()),
        };
        let conn = cx.get::<ConnState>();
        match (side, conn) {
            (Side::Client, _) => {
                semconv::push_server(&mut attrs, info.authority());
            }
            (Side::Server, Some(conn)) => conn.push_server(info.authority(), &mut attrs),
            (Side::Server, None) => {
                config
                    .server
                    .push(info.authority(), info.local_addr(), &mut attrs);
            }
        }
        let peer = conn.and_then(|c| c.peer.as_ref());
        let (kind, (parent, into, links)) = match side {
            Side::Client => (SpanKind::Client, (cx.clone(), cx.clone(), Vec::new())),
            Side::Server => (
                SpanKind::Server,
                self.server_parent(cx.clone(), conn, info.metadata()),
            ),
        };
        let mut builder = SpanBuilder::from_name(span_name)
            .with_kind(kind)
            .with_attributes(attrs);
        if !links.is_empty() {
            builder = builder.with_links(links);
        }
        let events = config.message_events.then_some(config.max_message_events);
        let cx = config
            .tracer()
            .start(builder, &parent, &into, Some(events), || {
                attributes::rpc_attributes(
                    info,
                    config.legacy_attributes,
                    &config.record_metadata,
                    peer,
                )
                .chain(config.attributes.iter().cloned())
            });
        if let Some(metadata) = info.metadata_mut() {
            config.propagation.inject(&cx, metadata);
        }
        Some(cx)
    }
}

impl StatsHandler for OtelHandler {
    fn tag_rpc(&self, cx: Context, info: &mut RpcTagInfo<'_>) -> Context {
        // An RPC the filter leaves out, or whose span could not be made (user code, a
        // sampler or a span processor, panicked), gets a context without a span of its own but
        // with its parent's identity: its events touch no span, its `End` ends none, and spans
        // the application starts under it still join the trace.
        let parent = cx.clone();
        guard(|| self.trace_rpc(cx, info))
            .flatten()
            .unwrap_or_else(|| {
                parent.with_remote_span_context(parent.span().span_context().clone())
            })
    }

    fn handle_rpc(&self, cx: &Context, stats: &RpcStats<'_>) {
        let span = cx.span();
        match stats {
            RpcStats::End(end) => self.end_rpc(&span, end),
            RpcStats::InPayload(p) | RpcStats::OutPayload(p) => {
                let config = &*self.config;
                let name = match stats {
                    RpcStats::InPayload(_) => semconv::INBOUND_MESSAGE,
                    _ => semconv::OUTBOUND_MESSAGE,
                };
                // The span counts every message and keeps at most `max_message_events` of
                // them (none with message events off). A message the span will not keep goes
                // without attributes, only to be counted (long streams build nothing per
                // message): one past the cap in its own direction is past the span's too.
                let attributes =
                    if !config.message_events || p.seq >= config.max_message_events as u64 {
                        Vec::new()
                    } else if span.is_recording() {
                        events::message(p)
                    } else {
                        return;
                    };
                span.add_event_with_timestamp(name, p.time, attributes);
            }
            _ if !span.is_recording() => {}
            _ => self.metadata_event(&span, stats),
        }
    }

    fn wants_payloads(&self, cx: &Context) -> bool {
        // Recording spans count their messages, with or without message events.
        cx.span().is_recording()
    }

    fn tag_conn(&self, cx: Context, info: &ConnTagInfo) -> Context {
        cx.with_value(ConnState::new(&self.config, info))
    }

    fn handle_conn(&self, cx: &Context, stats: &ConnStats) {
        let ConnStats::End(end) = stats else {
            return;
        };
        // A connection span no RPC needed was never made: nothing to end.
        let Some(conn) = cx.get::<ConnState>().and_then(ConnState::started) else {
            return;
        };
        let span = conn.span();
        if span.is_recording() {
            span.set_attributes([
                KeyValue::new(attributes::BYTES_READ, end.bytes_read as i64),
                KeyValue::new(attributes::BYTES_WRITTEN, end.bytes_written as i64),
            ]);
        }
        span.end_with_timestamp(end.end_time);
    }
}
