//! [`OtelHandlerBuilder`]: the options of an [`OtelHandler`], with sensible defaults.

use std::fmt;
use std::sync::{Arc, OnceLock};

use opentelemetry::KeyValue;
use opentelemetry::global;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Tracer, TracerProvider};

use super::attributes;
use super::connection::ServerAttributes;
use super::handler::OtelHandler;
use super::propagation::Propagation;
use super::tracer::SpanTracer;
use crate::event::RpcTagInfo;
use crate::semconv::Methods;
use crate::semconv::scope;

/// Decides, before any span is made, whether an RPC is traced.
type Filter = Box<dyn Fn(&RpcTagInfo<'_>) -> bool + Send + Sync>;

/// The SDK keeps 128 events per span by default; this leaves room for the four header and
/// trailer events.
const DEFAULT_MAX_MESSAGE_EVENTS: usize = 100;

/// Builds an [`OtelHandler`], in the style of tower-http's `TraceLayer`: every option has a
/// default, each method sets one.
///
/// | option | default |
/// | --- | --- |
/// | [`tracer_provider`](Self::tracer_provider) | the global provider, looked up at the first span |
/// | [`propagator`](Self::propagator) | the global propagator, W3C trace context while none is set |
/// | [`filter`](Self::filter) | every RPC is traced |
/// | [`methods`](Self::methods), [`method_filter`](Self::method_filter) | every method is known, except one a server answers `UNIMPLEMENTED` |
/// | [`message_events`](Self::message_events), [`header_events`](Self::header_events) | on |
/// | [`max_message_events`](Self::max_message_events) | 100 per span |
/// | [`public_endpoint`](Self::public_endpoint) | off: a caller's trace context is trusted |
/// | [`connection_spans`](Self::connection_spans) | on |
/// | [`rpc_roots`](Self::rpc_roots) | off: a server RPC without trace context is a child of its connection span |
/// | [`record_metadata`](Self::record_metadata) | no metadata is recorded |
/// | [`attribute`](Self::attribute) | none |
/// | [`legacy_attributes`](Self::legacy_attributes) | from `OTEL_SEMCONV_STABILITY_OPT_IN` (`rpc/dup`) |
///
/// # Examples
///
/// ```
/// use opentelemetry::KeyValue;
/// use opentelemetry_sdk::trace::SdkTracerProvider;
/// use otel_stats::{OtelHandler, filters};
///
/// let provider = SdkTracerProvider::builder().build();
/// let handler = OtelHandler::builder()
///     .tracer_provider(provider.clone())
///     .filter(filters::not_health_check)
///     .max_message_events(20)
///     .record_metadata(["x-request-id"])
///     .attribute(KeyValue::new("deployment.environment.name", "staging"))
///     .build();
/// # let _ = handler;
/// ```
#[must_use = "call `build` to get the handler"]
#[derive(Debug, Default)]
pub struct OtelHandlerBuilder {
    config: Config,
    /// `None`: as `OTEL_SEMCONV_STABILITY_OPT_IN` says, read by `build`.
    legacy_attributes: Option<bool>,
}

impl OtelHandlerBuilder {
    /// Makes spans with a tracer of `provider` instead of the global provider's.
    ///
    /// ```
    /// use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    /// use otel_stats::OtelHandler;
    ///
    /// let exporter = InMemorySpanExporter::default();
    /// let provider = SdkTracerProvider::builder()
    ///     .with_simple_exporter(exporter.clone())
    ///     .build();
    /// let handler = OtelHandler::builder().tracer_provider(provider).build();
    /// # let _ = handler;
    /// ```
    ///
    /// With an `SdkTracerProvider` the handler uses the SDK's tracer directly, without boxing
    /// its spans: the cheapest choice.
    pub fn tracer_provider<P>(mut self, provider: P) -> Self
    where
        P: TracerProvider + 'static,
        P::Tracer: Send + Sync + 'static,
        <P::Tracer as Tracer>::Span: Send + Sync + 'static,
    {
        self.config.tracer = OnceLock::from(SpanTracer::of(provider));
        self
    }

    /// Injects and extracts trace context with `propagator` instead of the global one.
    ///
    /// ```
    /// use opentelemetry::propagation::TextMapCompositePropagator;
    /// use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
    /// use otel_stats::OtelHandler;
    ///
    /// let with_baggage = TextMapCompositePropagator::new(vec![
    ///     Box::new(TraceContextPropagator::new()),
    ///     Box::new(BaggagePropagator::new()),
    /// ]);
    /// let handler = OtelHandler::builder().propagator(with_baggage).build();
    /// # let _ = handler;
    /// ```
    pub fn propagator(
        mut self,
        propagator: impl TextMapPropagator + Send + Sync + 'static,
    ) -> Self {
        self.config.propagation = Propagation::Custom(Box::new(propagator));
        self
    }

    /// Traces only the RPCs for which `filter` returns `true`. A filtered RPC gets no span,
    /// no events and no propagation, at the cost of one call to `filter`.
    ///
    /// ```
    /// use otel_stats::OtelHandler;
    ///
    /// let handler = OtelHandler::builder()
    ///     .filter(|info| !info.full_method().starts_with("/grpc.reflection."))
    ///     .build();
    /// # let _ = handler;
    /// ```
    pub fn filter(
        mut self,
        filter: impl Fn(&RpcTagInfo<'_>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.config.filter = Some(Box::new(filter));
        self
    }

    /// The methods a server knows, `/package.Service/Method` (the leading slash is optional),
    /// as [`MetricsHandlerBuilder::methods`](crate::MetricsHandlerBuilder::methods) takes
    /// them. Once an allow-list or a [`method_filter`](Self::method_filter) is given, a server
    /// RPC span for any other method is named `grpc`, with `rpc.method = "_OTHER"` and the
    /// caller's string (capped at 512 bytes) as `rpc.method_original`, decided before the span
    /// is made, so samplers see it. Without either, that happens at the RPC's end, when the
    /// server answered `UNIMPLEMENTED` (tonic's answer for a method none of its services has,
    /// or a service's own), and the server span's `rpc.method` is only set then. Client spans
    /// keep the method the application called. Calls add to the list.
    ///
    /// ```
    /// let handler = otel_stats::OtelHandler::builder()
    ///     .methods([
    ///         "/grpc.examples.echo.Echo/UnaryEcho",
    ///         "/grpc.examples.echo.Echo/ServerStreamingEcho",
    ///     ])
    ///     .build();
    /// # let _ = handler;
    /// ```
    pub fn methods<I>(mut self, methods: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        for method in methods {
            self.config.methods.allow(method.as_ref());
        }
        self
    }

    /// A server knows a method when `filter` accepts its full name (`/package.Service/Method`)
    /// or when it is in the [`methods`](Self::methods) list; any other is `_OTHER`. The filter
    /// runs in `tag_rpc`, for each server RPC, so it should be cheap and depend on the name
    /// alone.
    ///
    /// ```
    /// let handler = otel_stats::OtelHandler::builder()
    ///     .method_filter(|method| method.starts_with("/grpc.examples.echo.Echo/"))
    ///     .build();
    /// # let _ = handler;
    /// ```
    pub fn method_filter(mut self, filter: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.config.methods.set_filter(Box::new(filter));
        self
    }

    /// Whether to record an `Outbound message` / `Inbound message` event per message (on by
    /// default).
    ///
    /// ```
    /// let handler = otel_stats::OtelHandler::builder().message_events(false).build();
    /// # let _ = handler;
    /// ```
    pub fn message_events(mut self, on: bool) -> Self {
        self.config.message_events = on;
        self
    }

    /// Whether to record the `Outbound headers`, `Inbound headers`, `Outbound trailers` and
    /// `Inbound trailers` events (on by default).
    ///
    /// ```
    /// let handler = otel_stats::OtelHandler::builder().header_events(false).build();
    /// # let _ = handler;
    /// ```
    pub fn header_events(mut self, on: bool) -> Self {
        self.config.header_events = on;
        self
    }

    /// Records at most `max` message events per span (100 by default); the number of those
    /// left out is the span's `otel_stats.message_events.dropped` attribute. Keep `max + 4`
    /// within the SDK's own event limit (128 by default) so the header and trailer events fit.
    ///
    /// ```
    /// let handler = otel_stats::OtelHandler::builder().max_message_events(10).build();
    /// # let _ = handler;
    /// ```
    pub fn max_message_events(mut self, max: usize) -> Self {
        self.config.max_message_events = max;
        self
    }

    /// For servers that must not trust their callers' trace ids: a server RPC span is always
    /// a child of its connection span, and a trace context that came with the request is a
    /// link instead of the parent. Off by default.
    ///
    /// ```
    /// let handler = otel_stats::OtelHandler::builder().public_endpoint(true).build();
    /// # let _ = handler;
    /// ```
    pub fn public_endpoint(mut self, on: bool) -> Self {
        self.config.public_endpoint = on;
        self
    }

    /// Whether to make a `grpc.connection` span per connection (on by default): per client
    /// connection, and per server connection that carries an RPC (one that closes without
    /// any, such as a TCP health check, makes none). Without them, server RPC spans are roots
    /// unless a caller sent a trace context.
    ///
    /// ```
    /// let handler = otel_stats::OtelHandler::builder().connection_spans(false).build();
    /// # let _ = handler;
    /// ```
    pub fn connection_spans(mut self, on: bool) -> Self {
        self.config.connection_spans = on;
        self
    }

    /// For high-volume servers: a server RPC span of a caller that sent no trace context is
    /// the root of a trace of its own, linked to its connection span, instead of the
    /// connection span's child (otelgrpc's shape). Each such RPC is sampled on its own and
    /// exported when it ends. With [`public_endpoint`](Self::public_endpoint), an RPC that
    /// did carry a trace context is a root too, linked to that context and to the
    /// connection span. Off by default; see [`OtelHandler`]'s "Two trace models".
    ///
    /// ```
    /// let handler = otel_stats::OtelHandler::builder().rpc_roots(true).build();
    /// # let _ = handler;
    /// ```
    pub fn rpc_roots(mut self, on: bool) -> Self {
        self.config.rpc_roots = on;
        self
    }

    /// Records the values of these metadata keys, as `rpc.request.metadata.<key>` and
    /// `rpc.response.metadata.<key>` attributes (string arrays). Keys are matched in lower
    /// case. Credentials (`authorization`, `proxy-authorization`, `cookie`, `set-cookie`,
    /// `x-api-key`) and binary (`-bin`) keys are never recorded, even if listed.
    ///
    /// ```
    /// let handler = otel_stats::OtelHandler::builder()
    ///     .record_metadata(["x-request-id", "x-tenant"])
    ///     .build();
    /// # let _ = handler;
    /// ```
    pub fn record_metadata<I>(mut self, keys: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        for key in keys {
            let key = key.into().to_ascii_lowercase();
            if !attributes::is_secret(&key) && !self.config.record_metadata.contains(&key) {
                self.config.record_metadata.push(key);
            }
        }
        self
    }

    /// Adds `attribute` to every RPC span.
    ///
    /// ```
    /// use opentelemetry::KeyValue;
    ///
    /// let handler = otel_stats::OtelHandler::builder()
    ///     .attribute(KeyValue::new("deployment.environment.name", "prod"))
    ///     .build();
    /// # let _ = handler;
    /// ```
    pub fn attribute(mut self, attribute: KeyValue) -> Self {
        self.config.attributes.push(attribute);
        self
    }

    /// Whether to add the attribute names of conventions before 1.38, which many dashboards
    /// still query: `rpc.system`, `rpc.service` and `rpc.grpc.status_code` (an integer), next
    /// to the current ones. (`rpc.method` keeps its current, fully qualified value.) By
    /// default this follows `OTEL_SEMCONV_STABILITY_OPT_IN`: on when it lists `rpc/dup`.
    ///
    /// ```
    /// let handler = otel_stats::OtelHandler::builder().legacy_attributes(true).build();
    /// # let _ = handler;
    /// ```
    pub fn legacy_attributes(mut self, on: bool) -> Self {
        self.legacy_attributes = Some(on);
        self
    }

    /// The handler.
    pub fn build(mut self) -> OtelHandler {
        self.config.legacy_attributes = self.legacy_attributes.unwrap_or_else(|| {
            std::env::var(attributes::STABILITY_OPT_IN)
                .is_ok_and(|v| attributes::wants_legacy_names(&v))
        });
        OtelHandler::from_config(Arc::new(self.config))
    }
}

/// What a built handler knows. Shared by its clones.
pub(super) struct Config {
    /// The custom tracer, or the global provider's, taken at the first span so that a provider
    /// installed after the handler was built is the one used.
    tracer: OnceLock<SpanTracer>,
    pub(super) propagation: Propagation,
    pub(super) filter: Option<Filter>,
    pub(super) methods: Methods,
    pub(super) message_events: bool,
    pub(super) header_events: bool,
    pub(super) max_message_events: usize,
    pub(super) public_endpoint: bool,
    pub(super) connection_spans: bool,
    pub(super) rpc_roots: bool,
    /// `server.address` and `server.port` of server RPCs that come without a connection of
    /// this handler (no connection wrapper).
    pub(super) server: ServerAttributes,
    pub(super) record_metadata: Vec<String>,
    pub(super) attributes: Vec<KeyValue>,
    pub(super) legacy_attributes: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tracer: OnceLock::new(),
            propagation: Propagation::Global,
            filter: None,
            methods: Methods::default(),
            message_events: true,
            header_events: true,
            max_message_events: DEFAULT_MAX_MESSAGE_EVENTS,
            public_endpoint: false,
            connection_spans: true,
            rpc_roots: false,
            server: ServerAttributes::default(),
            record_metadata: Vec::new(),
            attributes: Vec::new(),
            legacy_attributes: false,
        }
    }
}

impl Config {
    pub(super) fn tracer(&self) -> &SpanTracer {
        self.tracer
            .get_or_init(|| SpanTracer::Boxed(global::tracer_with_scope(scope())))
    }

    /// Whether any allow-listed metadata is recorded.
    pub(super) fn records_metadata(&self) -> bool {
        !self.record_metadata.is_empty()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("tracer", &self.tracer.get().map_or("global", |_| "set"))
            .field("propagation", &self.propagation)
            .field("filter", &self.filter.is_some())
            .field("methods", &self.methods)
            .field("message_events", &self.message_events)
            .field("header_events", &self.header_events)
            .field("max_message_events", &self.max_message_events)
            .field("public_endpoint", &self.public_endpoint)
            .field("connection_spans", &self.connection_spans)
            .field("rpc_roots", &self.rpc_roots)
            .field("record_metadata", &self.record_metadata)
            .field("attributes", &self.attributes)
            .field("legacy_attributes", &self.legacy_attributes)
            .finish_non_exhaustive()
    }
}
