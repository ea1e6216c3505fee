//! `cargo run -p demo`: the server and the client in one process, no Docker, no collector.
//! Each scenario runs on a fresh connection inside a root span of its own, so each is one
//! trace: the scenario, the client RPC span, and under it the server RPC span, whose link
//! points at the server's connection span. Both sides also record metrics, summarised at the
//! end.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::context::FutureExt;
use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue, global};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SpanData;
use otel_stats::{BoxHandler, ClientStatsLayer, LogFormat};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Endpoint;

use crate::proto::echo_client::EchoClient;
use crate::scenarios::{self, Scenario};
use crate::telemetry::{MetricsCollector, MetricsSummary, SpanCollector, handlers_with};

/// How one scenario went.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Which scenario.
    pub scenario: Scenario,
    /// What the application saw: the replies, or the status.
    pub result: Result<String, tonic::Status>,
    /// The trace of the scenario.
    pub trace_id: opentelemetry::trace::TraceId,
}

/// What the embedded run produced.
#[derive(Debug)]
pub struct Report {
    /// One outcome per scenario, in order.
    pub outcomes: Vec<Outcome>,
    /// Every span both sides produced.
    pub spans: Vec<SpanData>,
    /// What both sides' metrics said at the end.
    pub metrics: MetricsSummary,
}

/// Waits for spans to arrive; generous, since it only matters when something is wrong.
const PATIENCE: Duration = Duration::from_secs(10);

/// Runs every scenario against an in-process server, both sides traced into one collector.
/// `stats_log` adds a `LogHandler` on stderr to both sides.
pub async fn run(stats_log: Option<LogFormat>) -> Result<Report, Box<dyn std::error::Error>> {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let collector = SpanCollector::default();
    let server_provider = collector.provider("echo-server");
    let client_provider = collector.provider("echo-client");
    let metrics = MetricsCollector::default();
    let meter_provider = metrics.provider();

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server_handler: BoxHandler = Arc::new(handlers_with(
        true,
        Some(server_provider.clone()),
        Some(meter_provider.clone()),
        stats_log,
    ));
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(crate::serve::serve(listener, Some(server_handler), async {
        let _ = stopped.await;
    }));

    let client_stats = ClientStatsLayer::new(handlers_with(
        true,
        Some(client_provider.clone()),
        Some(meter_provider.clone()),
        stats_log,
    ));
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))?;
    let tracer = client_provider.tracer("otel-stats-demo");
    let mut outcomes = Vec::new();
    for (round, scenario) in Scenario::ALL.into_iter().enumerate() {
        // A fresh connection per scenario, so that its connection span ends with it.
        let mut client = EchoClient::new(client_stats.connect(endpoint.clone()).await?);
        let root = tracer
            .span_builder(format!("scenario: {}", scenario.name()))
            .with_attributes([KeyValue::new("demo.scenario", scenario.name())])
            .start(&tracer);
        let cx = Context::current_with_span(root);
        let trace_id = cx.span().span_context().trace_id();
        let result = scenarios::run(&mut client, scenario)
            .with_context(cx.clone())
            .await;
        cx.span().end();
        drop(client);
        // The server ends the connection span when it sees the connection close.
        let connections = round + 1;
        collector
            .wait_for(PATIENCE, |spans| {
                spans.iter().filter(|s| s.name == "grpc.connection").count() >= 2 * connections
            })
            .await;
        outcomes.push(Outcome {
            scenario,
            result,
            trace_id,
        });
    }
    let _ = stop.send(());
    server.await??;
    let _ = server_provider.force_flush();
    let _ = client_provider.force_flush();
    // A collection, summarised by the exporter; it waits for the reader's thread, briefly.
    let _ = meter_provider.force_flush();
    Ok(Report {
        outcomes,
        spans: collector.spans(),
        metrics: metrics.summary(),
    })
}
