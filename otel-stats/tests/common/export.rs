//! Drives real RPCs through a pipeline [`init_otlp_with`] installs, for the export tests: an
//! echo server with an `OtelHandler` and a `MetricsHandler`, a client with an `OtelHandler`,
//! both on the pipeline's providers (not the global ones, which parallel tests share).

use std::path::PathBuf;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use otel_stats::export::{OtlpConfig, Protocol, TlsSettings};
use otel_stats::{ExportStats, MetricsHandler, OtelGuard, OtelHandler, init_otlp_with};

use super::otel::TestServer;
use super::otlp::{Receiver, Wire};
use super::tls::{Pem, TestCa};
use super::{PATIENCE, req};

/// The spans [`two_rpcs_through`] makes: two RPCs on each side and two connections.
pub const SPANS: u64 = 6;

/// A CA, the receiver's certificate, and the client's files.
pub struct Pki {
    pub ca: TestCa,
    pub server: Pem,
    pub files: TlsFiles,
}

impl Pki {
    pub fn new() -> Pki {
        let ca = TestCa::new();
        let files = TlsFiles::new(&ca, &ca.client("exporter"));
        Pki {
            server: ca.server(),
            ca,
            files,
        }
    }

    pub async fn receiver(&self, wire: Wire, mtls: bool) -> Receiver {
        Receiver::speaking(wire, Some(self.ca.rustls_server(&self.server, mtls))).await
    }
}

/// TLS settings that trust `pki`'s CA and present its client certificate.
pub fn mutual_tls(pki: &Pki) -> TlsSettings {
    TlsSettings::new()
        .with_ca_certificate(pki.files.ca())
        .with_client_identity(pki.files.client_cert(), pki.files.client_key())
}

/// A CA and a client certificate written to a temporary directory, where an exporter's
/// configuration (or its variables) can name them.
pub struct TlsFiles {
    dir: tempfile::TempDir,
}

impl TlsFiles {
    pub fn new(ca: &TestCa, client: &Pem) -> TlsFiles {
        let files = TlsFiles {
            dir: tempfile::tempdir().unwrap(),
        };
        files.file("ca.pem", &ca.cert);
        files.file("client.pem", &client.cert);
        files.file("client-key.pem", &client.key);
        files
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn client_cert(&self) -> PathBuf {
        self.dir.path().join("client.pem")
    }

    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client-key.pem")
    }

    /// Writes `contents` to `name` in the directory, for a file that must not work.
    pub fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
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

/// Ends `n` spans of instrumentation scope `scope`, named `span-{first + i}`, each with an
/// attribute and an event.
pub fn end_spans(provider: &SdkTracerProvider, scope: &'static str, first: usize, n: usize) {
    let tracer = provider.tracer(scope);
    for i in first..first + n {
        let mut span = tracer.start(format!("span-{i}"));
        span.set_attribute(KeyValue::new("i", i as i64));
        span.add_event("Outbound message", vec![KeyValue::new("message-size", 5)]);
        span.end();
    }
}

/// The names [`end_spans`] gives spans `0..n`, sorted.
pub fn span_names(n: usize) -> Vec<String> {
    let mut names: Vec<String> = (0..n).map(|i| format!("span-{i}")).collect();
    names.sort();
    names
}
