//! [`MetricsHandlerBuilder`]: the options of a [`MetricsHandler`], with sensible defaults.

use opentelemetry::global;
use opentelemetry::metrics::{Meter, MeterProvider};

use super::handler::MetricsHandler;
use super::instruments::Instruments;
use crate::semconv::Methods;
use crate::semconv::scope;

/// Builds a [`MetricsHandler`], in the style of [`OtelHandlerBuilder`](crate::OtelHandlerBuilder):
/// every option has a default, each method sets one.
///
/// | option | default |
/// | --- | --- |
/// | [`meter_provider`](Self::meter_provider) | the global provider, as it is when `build` runs |
/// | [`methods`](Self::methods), [`method_filter`](Self::method_filter) | every method is known, except one a server answers `UNIMPLEMENTED` |
/// | [`a66`](Self::a66) | off: only the semantic conventions' instruments |
/// | [`connection_metrics`](Self::connection_metrics) | on |
///
/// # Examples
///
/// ```
/// use opentelemetry_sdk::metrics::SdkMeterProvider;
/// use otel_stats::MetricsHandler;
///
/// let provider = SdkMeterProvider::builder().build();
/// let handler = MetricsHandler::builder()
///     .meter_provider(provider.clone())
///     .methods(["/grpc.examples.echo.Echo/UnaryEcho"])
///     .method_filter(|method| method.starts_with("/grpc.health.v1.Health/"))
///     .a66(true)
///     .build();
/// # let _ = handler;
/// ```
#[must_use = "call `build` to get the handler"]
#[derive(Debug)]
pub struct MetricsHandlerBuilder {
    meter: Option<Meter>,
    methods: Methods,
    a66: bool,
    connections: bool,
}

impl Default for MetricsHandlerBuilder {
    fn default() -> Self {
        MetricsHandlerBuilder {
            meter: None,
            methods: Methods::default(),
            a66: false,
            connections: true,
        }
    }
}

impl MetricsHandlerBuilder {
    /// Records through a meter of `provider` instead of the global provider's.
    ///
    /// ```
    /// use opentelemetry_sdk::metrics::SdkMeterProvider;
    /// use otel_stats::MetricsHandler;
    ///
    /// let provider = SdkMeterProvider::builder().build();
    /// let handler = MetricsHandler::builder().meter_provider(provider).build();
    /// # let _ = handler;
    /// ```
    pub fn meter_provider(mut self, provider: impl MeterProvider) -> Self {
        self.meter = Some(provider.meter_with_scope(scope()));
        self
    }

    /// The methods recorded under their own names, `/package.Service/Method` (the leading
    /// slash is optional). Once an allow-list or a [`method_filter`](Self::method_filter) is
    /// given, every other method is recorded as `_OTHER` (`rpc.method`) and `other`
    /// (`grpc.method`), so made-up method names cannot add time series. Calls add to the list.
    ///
    /// ```
    /// let handler = otel_stats::MetricsHandler::builder()
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
            self.methods.allow(method.as_ref());
        }
        self
    }

    /// Records a method under its own name when `filter` accepts its full name
    /// (`/package.Service/Method`), or when it is in the [`methods`](Self::methods) list; any
    /// other method is `_OTHER` / `other`. The filter runs in `tag_rpc`, for a method the
    /// handler has not seen yet: its answers for a method it accepts are kept (up to 256
    /// methods per side), so it should depend on the name alone.
    ///
    /// ```
    /// let handler = otel_stats::MetricsHandler::builder()
    ///     .method_filter(|method| method.starts_with("/grpc.examples.echo.Echo/"))
    ///     .build();
    /// # let _ = handler;
    /// ```
    pub fn method_filter(mut self, filter: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        self.methods.set_filter(Box::new(filter));
        self
    }

    /// Whether to record gRFC A66's instruments too, as grpc-go's, grpc-java's and gRPC
    /// C++'s OpenTelemetry plugins name them: `grpc.server.call.*` and
    /// `grpc.client.attempt.*` / `grpc.client.call.duration`, with `grpc.method`,
    /// `grpc.status` and, on the client, `grpc.target`. Off by default.
    ///
    /// ```
    /// let handler = otel_stats::MetricsHandler::builder().a66(true).build();
    /// # let _ = handler;
    /// ```
    pub fn a66(mut self, on: bool) -> Self {
        self.a66 = on;
        self
    }

    /// Whether to record the connection instruments (open connections, their durations,
    /// bytes and, on the server, RPCs per connection). On by default; they need the
    /// connection wrappers ([`ServerStatsLayer::incoming`](crate::ServerStatsLayer::incoming),
    /// [`ClientStatsLayer::connect`](crate::ClientStatsLayer::connect)).
    ///
    /// ```
    /// let handler = otel_stats::MetricsHandler::builder().connection_metrics(false).build();
    /// # let _ = handler;
    /// ```
    pub fn connection_metrics(mut self, on: bool) -> Self {
        self.connections = on;
        self
    }

    /// The handler, with its instruments created.
    pub fn build(self) -> MetricsHandler {
        let meter = self
            .meter
            .unwrap_or_else(|| global::meter_provider().meter_with_scope(scope()));
        let instruments = Instruments::new(&meter, self.a66, self.connections);
        MetricsHandler::from_parts(instruments, self.methods, self.a66)
    }
}
