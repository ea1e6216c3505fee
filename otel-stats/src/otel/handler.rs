//! [`OtelHandler`]: RPC and connection spans, span events and trace propagation.

use std::sync::Arc;

use http::HeaderMap;
use opentelemetry::trace::{Link, SpanBuilder, SpanKind, SpanRef, Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};

use super::attributes::{self, PeerAddress};
use super::builder::{Config, OtelHandlerBuilder};
use super::events;
use crate::event::{ConnStats, ConnTagInfo, End, RpcStats, RpcTagInfo, Side};
use crate::handler::{StatsHandler, guard};
use crate::semconv::{self, CONNECTION_SPAN, is_error, split_method};

/// A [`StatsHandler`] that traces RPCs and connections with OpenTelemetry.
///
/// - **RPC spans**, named `package.Service/Method`, of kind `SERVER` or `CLIENT`, with the
///   attributes of the semantic conventions (see [`OtelHandlerBuilder::legacy_attributes`]
///   for the older names). They start in `tag_rpc` and end at the RPC's `End`, timestamped
///   with its end time, with `rpc.response.status_code` and, on failure, `error.type` and an
///   `ERROR` status whose description is the gRPC message. Client spans fail for any code
///   but `OK`; server spans only for `UNKNOWN`, `DEADLINE_EXCEEDED`, `UNIMPLEMENTED`,
///   `INTERNAL`, `UNAVAILABLE` and `DATA_LOSS`, the codes that are the server's fault.
/// - **Span events**, each timestamped when it happened: `Outbound message` and
///   `Inbound message` (gRFC A72: `sequence-number`, `message-size`, and
///   `message-size-compressed` for a compressed message, whose uncompressed size is not known
///   to the layer), and `Outbound headers`, `Inbound headers`, `Outbound trailers`,
///   `Inbound trailers` (`compression`, `metadata-entries`, `trailers-only`). Message events
///   are capped per span; the number left out is the `otel_stats.message_events.dropped`
///   attribute.
/// - **Connection spans**, `grpc.connection`, of kind `INTERNAL`, with the peer and local
///   addresses and the bytes read and written, from `tag_conn` to `ConnEnd`. A connection span
///   is exported when its connection closes, so a backend shows the RPCs of a live connection
///   under a parent it has not received yet; a server's `max_connection_age` bounds the wait.
///
/// **Parents.** A server RPC span is a child of its connection span, unless the request
/// carries a trace context (extracted with the propagator; a malformed one is ignored): then
/// the caller's span is the parent and the connection span a link.
/// [`public_endpoint`](OtelHandlerBuilder::public_endpoint) reverses that. A client RPC span
/// is a child of the caller's current context (with the `tracing` feature, of the current
/// `tracing` span), never of a connection span, and its context is injected into the
/// request metadata.
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

    /// The parent of a server RPC span and its links.
    fn server_parent(&self, cx: Context, metadata: &HeaderMap) -> (Context, Vec<Link>) {
        let extracted = self.config.propagation.extract(&cx, metadata);
        let remote = extracted.span().span_context().clone();
        let local = cx.span().span_context().clone();
        if !remote.is_valid() || remote == local {
            return (cx, Vec::new());
        }
        if self.config.public_endpoint {
            return (cx, vec![Link::with_context(remote)]);
        }
        let links = if local.is_valid() {
            vec![Link::with_context(local)]
        } else {
            Vec::new()
        };
        (extracted, links)
    }

    fn end_rpc(&self, span: &SpanRef<'_>, end: &End<'_>) {
        if span.is_recording() {
            let config = &*self.config;
            let error = is_error(end.side, end.code);
            span.set_attributes(
                attributes::end_attributes(end.code, error, config.legacy_attributes).chain(
                    end.frame_error
                        .map(|e| KeyValue::new(attributes::FRAME_ERROR, e.to_string())),
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
        let (kind, (parent, links)) = match info.side() {
            Side::Client => (SpanKind::Client, (cx, Vec::new())),
            Side::Server => (SpanKind::Server, self.server_parent(cx, info.metadata())),
        };
        let mut builder = SpanBuilder::from_name(name.to_owned())
            .with_kind(kind)
            .with_attributes(attributes::sampler_attributes(
                name,
                config.attributes.len() + config.record_metadata.len(),
            ));
        if !links.is_empty() {
            builder = builder.with_links(links);
        }
        let peer = parent.get::<ConnState>().and_then(|c| c.peer.as_ref());
        let rpc_span = Some(config.max_message_events);
        let cx = config
            .tracer()
            .start(builder, &parent, &parent, rpc_span, || {
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

/// What a connection's context holds for this handler.
#[derive(Debug)]
struct ConnState {
    /// The context's span is a connection span this handler started.
    span: bool,
    /// The peer's address as an attribute value, for the spans of the connection's RPCs.
    peer: Option<PeerAddress>,
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
                if !self.config.message_events {
                    return;
                }
                let name = match stats {
                    RpcStats::InPayload(_) => semconv::INBOUND_MESSAGE,
                    _ => semconv::OUTBOUND_MESSAGE,
                };
                // The span keeps at most `max_message_events` of them and counts the rest. A
                // message past the cap in its own direction is past the span's too: it goes
                // without attributes, to be counted (long streams build nothing per message).
                let attributes = if p.seq >= self.config.max_message_events as u64 {
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
        // Message events go on recording spans only.
        self.config.message_events && cx.span().is_recording()
    }

    fn tag_conn(&self, cx: Context, info: &ConnTagInfo) -> Context {
        let peer = info.remote_addr.map(PeerAddress::new);
        if !self.config.connection_spans {
            return cx.with_value(ConnState { span: false, peer });
        }
        let builder = SpanBuilder::from_name(CONNECTION_SPAN).with_kind(SpanKind::Internal);
        // A root: a connection serves many traces and belongs to none.
        let cx = self
            .config
            .tracer()
            .start(builder, &Context::new(), &cx, None, || {
                attributes::conn_attributes(info, peer.as_ref())
            });
        cx.with_value(ConnState { span: true, peer })
    }

    fn handle_conn(&self, cx: &Context, stats: &ConnStats) {
        let ConnStats::End(end) = stats else {
            return;
        };
        if !cx.get::<ConnState>().is_some_and(|c| c.span) {
            return;
        }
        let span = cx.span();
        if span.is_recording() {
            span.set_attributes([
                KeyValue::new(attributes::BYTES_READ, end.bytes_read as i64),
                KeyValue::new(attributes::BYTES_WRITTEN, end.bytes_written as i64),
            ]);
        }
        span.end_with_timestamp(end.end_time);
    }
}
