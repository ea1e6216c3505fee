//! Drives real RPCs through a pipeline [`init_otlp_with`] installs, for the export tests: an
//! echo server with an `OtelHandler` and a `MetricsHandler`, a client with an `OtelHandler`,
//! both on the pipeline's providers (not the global ones, which parallel tests share).

use std::time::Duration;

use otel_stats::export::{OtlpConfig, Protocol, TlsSettings};
use otel_stats::{ExportStats, MetricsHandler, OtelGuard, OtelHandler, init_otlp_with};

use super::otel::TestServer;
use super::otlp::Wire;
use super::pki::Pki;
use super::{PATIENCE, req};

/// The spans [`two_rpcs_through`] makes: two RPCs on each side and two connections.
pub const SPANS: u64 = 6;

/// TLS settings that trust `pki`'s CA and present its client certificate.
pub fn mutual_tls(pki: &Pki) -> TlsSettings {
    TlsSettings::new()
        .with_ca_certificate(pki.ca_file())
        .with_client_identity(pki.client_cert_file(), pki.client_key_file())
}

/// The exporter protocol that speaks `wire`.
pub fn protocol(wire: Wire) -> Protocol {
    match wire {
        Wire::Grpc => Protocol::Grpc,
        Wire::Http => Protocol::HttpProtobuf,
    }
}

fn tracing(telemetry: &OtelGuard) -> OtelHandler {
    OtelHandler::builder()
        .tracer_provider(telemetry.tracer_provider().clone())
        .build()
}

/// Installs `config`, makes two unary RPCs, waits for their spans to end (when traces are
/// exported), flushes and shuts the pipeline down (spans, then a last metrics export), and
/// returns the figures seen after the flush.
pub async fn two_rpcs_through(config: OtlpConfig) -> ExportStats {
    let tracing_on = config.traces.is_some() && !config.sdk_disabled;
    let telemetry = init_otlp_with("otlp-test", config).unwrap();
    let metrics = MetricsHandler::builder()
        .meter_provider(telemetry.meter_provider().clone())
        .build();
    let server = TestServer::start((tracing(&telemetry), metrics)).await;
    let mut client = server.client(tracing(&telemetry)).await;
    for message in ["one", "two"] {
        client.unary_echo(req(message)).await.unwrap();
    }
    drop(client);
    server.stop().await;
    if tracing_on {
        // The client's connection ends when its task sees the server close it.
        tokio::time::timeout(PATIENCE, async {
            while telemetry.export_stats().ended < SPANS {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("every span ended");
    }
    // Flushing and shutting down wait for exports: off the runtime's threads.
    let finished = tokio::task::spawn_blocking(move || {
        let _ = telemetry.tracer_provider().force_flush();
        let stats = telemetry.export_stats();
        let _ = telemetry.shutdown();
        stats
    });
    tokio::time::timeout(PATIENCE, finished)
        .await
        .expect("shutdown is bounded by the export timeout")
        .unwrap()
}
