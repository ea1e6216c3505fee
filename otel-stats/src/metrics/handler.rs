//! [`MetricsHandler`]: RPC and connection instruments recorded from the stats events.

use std::sync::Arc;

use opentelemetry::Context;

use super::builder::MetricsHandlerBuilder;
use super::instruments::{Instruments, SideInstruments};
use super::series::{EndAttributes, Parts, Series, SeriesCache, Uncached, server_other};
use super::state::{ConnMetrics, RpcMetrics, RpcSeries};
use crate::event::{ConnEnd, ConnStats, ConnTagInfo, End, RpcStats, RpcTagInfo, Side};
use crate::handler::StatsHandler;
use crate::semconv::Methods;

/// A [`StatsHandler`] that records OpenTelemetry metrics for every RPC and connection,
/// sampled or not.
///
/// - **The semantic conventions' RPC metrics**: `rpc.server.call.duration` and
///   `rpc.client.call.duration`, histograms in seconds with the advisory buckets, with
///   `rpc.system.name` (`grpc`), `rpc.method` (`package.Service/Method`),
///   `rpc.response.status_code` (`OK`, `NOT_FOUND`, ...), `error.type` (the code, for a
///   failed RPC: any code but `OK` on the client, a server fault on the server, as for
///   spans) and, on the client, `server.address` and `server.port`.
/// - **gRFC A66's metrics**, [opt-in](MetricsHandlerBuilder::a66), as gRPC's own
///   OpenTelemetry plugins name them: calls started, duration, and the compressed message
///   bytes sent and received per call, with `grpc.method`, `grpc.status` and, on the client,
///   `grpc.target` (the `host:port` the channel was made for).
/// - **Connection metrics**: connections open (an up-down counter), and per connection its
///   duration, the bytes read and written (framing and TLS included) and, on the server, the
///   RPCs it carried. A server counts only connections that carry RPCs: one is open from its
///   first RPC, and one that closes without any (a load balancer's TCP health check, a port
///   scan, an idle HTTP/2 connection) is not measured at all. The stats events themselves are
///   unchanged: `ConnBegin` and `ConnEnd` still fire for every connection.
///
/// See [`metrics::names`](crate::metrics::names) for every instrument's name, kind, unit and
/// attributes.
///
/// **Method names.** A server sees whatever method names its callers send. Without an
/// allow-list or filter, an RPC a server answers `UNIMPLEMENTED` (tonic's answer for a
/// method none of its services has) is recorded as `_OTHER` / `other`; with
/// [`methods`](MetricsHandlerBuilder::methods) or
/// [`method_filter`](MetricsHandlerBuilder::method_filter), every method they do not accept
/// is. `grpc.server.call.started` is counted before the status is known, so a server with the
/// A66 instruments facing untrusted callers should give an allow-list.
///
/// **Cost.** Instruments are created once, by [`build`](MetricsHandlerBuilder::build), and
/// each method's attributes (per target on the client, one set per status code) when its
/// first RPC ends, for up to 256 methods per side; methods past that, and the unknown ones of
/// a client, have theirs built per RPC. Per RPC: a look-up of its method and one context value
/// in `tag_rpc` (on a server without the A66 instruments, nothing: its method is looked up at
/// `End`, from [`End::full_method`](crate::event::End::full_method)), an atomic add per message
/// when the A66 size instruments are on, and the records at `End`, always with the same
/// attribute slice for the same method and code. The method cache's lock is only ever tried,
/// never waited for; nothing blocks.
///
/// Composes with the other handlers, as a pair or in a `Vec`; cloning is cheap.
///
/// # Examples
///
/// Spans and metrics on a server:
///
/// ```no_run
/// use otel_stats::{MetricsHandler, OtelHandler, ServerStatsLayer};
/// use tonic::transport::{Server, server::TcpIncoming};
/// # async fn run(routes: tonic::service::Routes) -> Result<(), Box<dyn std::error::Error>> {
///
/// let stats = ServerStatsLayer::new((OtelHandler::new(), MetricsHandler::new()));
/// let incoming = stats.incoming(TcpIncoming::bind("127.0.0.1:50051".parse()?)?);
/// Server::builder()
///     .layer(stats)
///     .add_routes(routes)
///     .serve_with_incoming(incoming)
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MetricsHandler {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    instruments: Instruments,
    methods: Methods,
    a66: bool,
    /// Each method's attributes, per side.
    server_series: SeriesCache,
    client_series: SeriesCache,
    /// The attributes of a server's unknown methods.
    server_other: Arc<Series>,
}

impl Inner {
    fn series(&self, side: Side) -> &SeriesCache {
        match side {
            Side::Server => &self.server_series,
            Side::Client => &self.client_series,
        }
    }

    /// The attributes of a new RPC: its method's, from the cache, or built for it.
    fn classify(&self, side: Side, full_method: &str, authority: Option<&str>) -> RpcSeries {
        if let Some(series) = self.series(side).get(full_method, authority) {
            return RpcSeries::Cached(series);
        }
        let method = self.methods.classify(full_method, side);
        if side == Side::Server && !method.is_known() {
            return RpcSeries::Cached(Arc::clone(&self.server_other));
        }
        let parts = Parts::new(side, method, authority, self.a66);
        RpcSeries::Uncached(Box::new(Uncached::new(full_method, authority, parts)))
    }
}

impl Default for MetricsHandler {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsHandler {
    /// A handler with the defaults: the global meter provider (as it is now: install it
    /// first), the semantic conventions' and the connection instruments, no A66 ones.
    ///
    /// ```
    /// let handler = otel_stats::MetricsHandler::new();
    /// # let _ = handler;
    /// ```
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder for a handler with other options.
    ///
    /// ```
    /// let handler = otel_stats::MetricsHandler::builder().a66(true).build();
    /// # let _ = handler;
    /// ```
    pub fn builder() -> MetricsHandlerBuilder {
        MetricsHandlerBuilder::default()
    }

    pub(super) fn from_parts(instruments: Instruments, methods: Methods, a66: bool) -> Self {
        MetricsHandler {
            inner: Arc::new(Inner {
                instruments,
                methods,
                a66,
                server_series: SeriesCache::default(),
                client_series: SeriesCache::default(),
                server_other: server_other(a66),
            }),
        }
    }

    fn end_rpc(&self, state: &RpcMetrics, end: &End<'_>) {
        match &state.series {
            RpcSeries::Cached(series) => {
                if let Some(attrs) = series.at_end(end.code) {
                    self.record_end(state, end, attrs);
                }
            }
            RpcSeries::Uncached(rpc) => match self.inner.series(state.side).learn(rpc, end.code) {
                Some(series) => {
                    if let Some(attrs) = series.at_end(end.code) {
                        self.record_end(state, end, attrs);
                    }
                }
                None => self.record_end(state, end, &rpc.parts.at_end(end.code)),
            },
        }
    }

    fn record_end(&self, state: &RpcMetrics, end: &End<'_>, attrs: &EndAttributes) {
        let instruments = self.inner.instruments.side(state.side);
        let seconds = end.duration().as_secs_f64();
        instruments.call_duration.record(seconds, &attrs.semconv);
        if let Some(a66) = &instruments.a66 {
            a66.duration.record(seconds, &attrs.a66);
            if let Some(call) = &a66.call_duration {
                call.record(seconds, &attrs.a66);
            }
            let (sent, rcvd) = state.sizes();
            a66.sent.record(sent, &attrs.a66);
            a66.rcvd.record(rcvd, &attrs.a66);
        }
    }

    /// Counts the connection of `state` open, once.
    fn open_conn(&self, state: &ConnMetrics) {
        let instruments = self.inner.instruments.side(state.side);
        if let Some(conn) = instruments.conn.as_ref().filter(|_| state.open()) {
            conn.open.add(1, &conn.attributes);
        }
    }

    fn end_conn(&self, instruments: &SideInstruments, state: &ConnMetrics, end: &ConnEnd) {
        let Some(conn) = &instruments.conn else {
            return;
        };
        let attrs = &conn.attributes;
        if state.close() {
            conn.open.add(-1, attrs);
        }
        conn.bytes_read.record(end.bytes_read, attrs);
        conn.bytes_written.record(end.bytes_written, attrs);
        if let Some(rpcs) = &conn.rpcs {
            rpcs.record(state.rpcs(), attrs);
        }
        // The duration goes last: a reader that sees a closed connection's duration sees the
        // rest of its measurements too.
        conn.duration.record(end.duration().as_secs_f64(), attrs);
    }
}

impl StatsHandler for MetricsHandler {
    fn tag_rpc(&self, cx: Context, info: &mut RpcTagInfo<'_>) -> Context {
        let inner = &*self.inner;
        let side = info.side();
        if side == Side::Server {
            // A server RPC's context derives from its connection's.
            if let Some(state) = cx.get::<ConnMetrics>().filter(|c| c.side == Side::Server) {
                // A server connection counts as open from its first RPC (see `handle_conn`).
                if state.add_rpc() {
                    self.open_conn(state);
                }
            }
        }
        if side == Side::Server && !inner.a66 {
            // Measured at `End`, from its method: no state per RPC, so no context value
            // (the costliest part of a handler's `tag_rpc`).
            return cx;
        }
        // A server's series do not depend on the `:authority` its callers send.
        let authority = info.authority().filter(|_| side == Side::Client);
        let series = inner.classify(side, info.full_method(), authority);
        if let Some(a66) = &inner.instruments.side(side).a66 {
            a66.started.add(1, series.started());
        }
        cx.with_value(RpcMetrics::new(side, series))
    }

    fn wants_payloads(&self, _cx: &Context) -> bool {
        // Only A66's message-size instruments use them.
        self.inner.a66
    }

    fn handle_rpc(&self, cx: &Context, stats: &RpcStats<'_>) {
        match stats {
            RpcStats::End(end) => match cx.get::<RpcMetrics>() {
                Some(state) => self.end_rpc(state, end),
                None if end.side == Side::Server && !self.inner.a66 => {
                    let series = self.inner.classify(Side::Server, end.full_method, None);
                    self.end_rpc(&RpcMetrics::new(Side::Server, series), end);
                }
                None => {}
            },
            RpcStats::OutPayload(p) if self.inner.a66 => {
                if let Some(state) = cx.get::<RpcMetrics>() {
                    state.add_sent(p.compressed_length);
                }
            }
            RpcStats::InPayload(p) if self.inner.a66 => {
                if let Some(state) = cx.get::<RpcMetrics>() {
                    state.add_rcvd(p.compressed_length);
                }
            }
            _ => {}
        }
    }

    fn tag_conn(&self, cx: Context, info: &ConnTagInfo) -> Context {
        if self.inner.instruments.side(info.side).conn.is_none() {
            return cx;
        }
        cx.with_value(ConnMetrics::new(info.side))
    }

    fn handle_conn(&self, cx: &Context, stats: &ConnStats) {
        let Some(state) = cx.get::<ConnMetrics>() else {
            return;
        };
        let instruments = self.inner.instruments.side(state.side);
        match stats {
            // A server connection that carries no RPC (a load balancer's TCP health check, a
            // port scan, an HTTP/2 connection never used) is no RPC connection: it is counted
            // open from its first RPC, and measured at its end only if it had one.
            ConnStats::Begin(_) if state.side == Side::Client => self.open_conn(state),
            ConnStats::Begin(_) => {}
            ConnStats::End(_) if state.side == Side::Server && state.rpcs() == 0 => {}
            ConnStats::End(end) => self.end_conn(instruments, state, end),
        }
    }
}
