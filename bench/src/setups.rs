//! The set-ups: how each instruments the server (in the child process) and the client (in
//! the parent).

use std::future::Future;

use demo::echo::Echo;
use opentelemetry::trace::{SpanKind, TracerProvider as _};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use otel_stats::{NoopHandler, OtelHandler, ServerStatsLayer};
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tracing::Dispatch;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;

use crate::naive::NaiveLayer;
use crate::telemetry::{Exporter, Telemetry};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    Bare,
    Noop,
    OtelAll,
    /// `OtelAll` exporting through `DirectSpanProcessor` (spans encoded at `on_end`).
    OtelAllOnEnd,
    OtelNoMsg,
    OtelUnsampled,
    MetricsUnsampled,
    Naive,
    TonicTracingOtel,
    TowerHttp,
    TowerOtel,
}

pub const ALL: [Setup; 11] = [
    Setup::Bare,
    Setup::Noop,
    Setup::OtelAll,
    Setup::OtelAllOnEnd,
    Setup::OtelNoMsg,
    Setup::OtelUnsampled,
    Setup::MetricsUnsampled,
    Setup::Naive,
    Setup::TonicTracingOtel,
    Setup::TowerHttp,
    Setup::TowerOtel,
];

impl Setup {
    pub fn name(self) -> &'static str {
        match self {
            Setup::Bare => "bare-tonic",
            Setup::Noop => "otel-stats-noop",
            Setup::OtelAll => "otel-stats-sampled-all-events",
            Setup::OtelAllOnEnd => "otel-stats-sampled-all-events-onend",
            Setup::OtelNoMsg => "otel-stats-sampled-no-msg-events",
            Setup::OtelUnsampled => "otel-stats-unsampled",
            Setup::MetricsUnsampled => "otel-stats-metrics+unsampled",
            Setup::Naive => "naive-floor-1-span",
            Setup::TonicTracingOtel => "tonic-tracing-opentelemetry",
            Setup::TowerHttp => "tower-http-trace+tracing-otel",
            Setup::TowerOtel => "tower-otel",
        }
    }

    pub fn parse(s: &str) -> Option<Setup> {
        ALL.into_iter().find(|x| x.name() == s)
    }

    /// Whether the set-up has an OpenTelemetry pipeline (and with which sampler).
    pub fn sampler(self) -> Option<Sampler> {
        match self {
            Setup::Bare | Setup::Noop => None,
            Setup::OtelUnsampled | Setup::MetricsUnsampled => {
                Some(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)))
            }
            _ => Some(Sampler::AlwaysOn),
        }
    }

    /// The span exporter the set-up's pipeline uses: otel-stats' own for otel-stats' set-ups
    /// (as `init_otlp` installs it), opentelemetry-otlp's for the peers and the naive floor
    /// (what they would use). `None` without a pipeline. Diagnostic: with
    /// `BENCH_STANDARD_EXPORTER=1` otel-stats' set-ups use opentelemetry-otlp's exporter too.
    pub fn exporter(self) -> Option<Exporter> {
        self.sampler()?;
        Some(match self {
            Setup::OtelAllOnEnd => Exporter::DirectOnEnd,
            Setup::OtelAll | Setup::OtelNoMsg | Setup::OtelUnsampled | Setup::MetricsUnsampled
                if std::env::var_os("BENCH_STANDARD_EXPORTER").is_none() =>
            {
                Exporter::Direct
            }
            _ => Exporter::OtlpTonic,
        })
    }

    /// The exporter's name for the results ("none" without a pipeline).
    pub fn exporter_name(self) -> &'static str {
        self.exporter().map_or("none", Exporter::name)
    }

    pub fn telemetry(self, otlp: &str, service: &str, queue: usize) -> Option<Telemetry> {
        let exporter = self.exporter()?;
        self.sampler()
            .map(|s| Telemetry::new(otlp, service, s, queue, exporter))
    }

    fn uses_tracing(self) -> bool {
        matches!(
            self,
            Setup::TonicTracingOtel | Setup::TowerHttp | Setup::TowerOtel
        )
    }
}

pub fn otel_handler(setup: Setup, provider: &SdkTracerProvider) -> OtelHandler {
    OtelHandler::builder()
        .tracer_provider(provider.clone())
        .message_events(setup != Setup::OtelNoMsg)
        .header_events(true)
        .build()
}

/// `MetricsHandler` (semantic-conventions instruments and connection instruments) recording
/// into an SDK meter provider whose periodic reader collects once a minute: the cost of
/// recording, for 100% of RPCs, next to an unsampled `OtelHandler`.
pub fn metrics_and_unsampled(
    provider: &SdkTracerProvider,
) -> (otel_stats::MetricsHandler, OtelHandler) {
    use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
    let reader = PeriodicReader::builder(InMemoryMetricExporter::default())
        .with_interval(std::time::Duration::from_secs(60))
        .build();
    let meters = SdkMeterProvider::builder().with_reader(reader).build();
    let metrics = otel_stats::MetricsHandler::builder()
        .meter_provider(meters)
        .build();
    (metrics, otel_handler(Setup::OtelUnsampled, provider))
}

/// A `tracing` subscriber exporting to `provider` through `tracing-opentelemetry`, enabled
/// for the peers' spans only (h2, hyper and tonic's own `trace!`s stay off, as anyone would
/// configure it in production).
pub fn tracing_dispatch(setup: Setup, provider: &SdkTracerProvider) -> Option<Dispatch> {
    if !setup.uses_tracing() {
        return None;
    }
    let targets = Targets::new()
        // tracing-opentelemetry-instrumentation-sdk (tonic-tracing-opentelemetry's spans)
        .with_target("otel::tracing", tracing::Level::TRACE)
        // TraceLayer's spans are at DEBUG by default
        .with_target("tower_http", tracing::Level::DEBUG)
        .with_target("tower_otel", tracing::Level::TRACE);
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("bench"))
        .with_filter(targets);
    Some(Dispatch::new(tracing_subscriber::registry().with(layer)))
}

/// Serves the echo service with `setup`'s server-side instrumentation until `shutdown`.
pub async fn serve(
    setup: Setup,
    listener: TcpListener,
    provider: Option<SdkTracerProvider>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let provider = || provider.clone().expect("provider");
    // The same server for every set-up but its layer (and, for otel-stats, the connection
    // wrapper on the listener).
    macro_rules! serve {
        ($builder:expr, $incoming:expr) => {
            $builder
                .add_service(Echo::server())
                .serve_with_incoming_shutdown($incoming, shutdown)
                .await
        };
    }
    macro_rules! serve_stats {
        ($handler:expr) => {{
            let stats = ServerStatsLayer::new($handler);
            let incoming = stats.incoming(incoming);
            serve!(Server::builder().layer(stats), incoming)
        }};
    }
    match setup {
        Setup::Bare => serve!(Server::builder(), incoming),
        Setup::Noop => serve_stats!(NoopHandler),
        Setup::OtelAll | Setup::OtelAllOnEnd | Setup::OtelNoMsg | Setup::OtelUnsampled => {
            serve_stats!(otel_handler(setup, &provider()))
        }
        Setup::MetricsUnsampled => serve_stats!(metrics_and_unsampled(&provider())),
        Setup::Naive => serve!(
            Server::builder().layer(NaiveLayer::new(
                provider().tracer("naive"),
                SpanKind::Server
            )),
            incoming
        ),
        Setup::TonicTracingOtel => {
            use tonic_tracing_opentelemetry::middleware::{filters, server};
            serve!(
                Server::builder()
                    .layer(server::OtelGrpcLayer::default().filter(filters::reject_healthcheck)),
                incoming
            )
        }
        Setup::TowerHttp => serve!(
            Server::builder().layer(tower_http::trace::TraceLayer::new_for_grpc()),
            incoming
        ),
        Setup::TowerOtel => serve!(
            Server::builder().layer(tower_otel::trace::GrpcLayer::server(tracing::Level::INFO)),
            incoming
        ),
    }
}
