//! Where the demo's spans go: an OTLP collector when the `OTEL_*` variables say so, or a
//! collector in the process for the terminal waterfall.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use otel_stats::{LogFormat, LogHandler, OtelGuard, OtelHandler, StatsHandler};

/// `true` when the environment names an OTLP endpoint.
pub fn otlp_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()))
}

/// Installs OTLP export (from the `OTEL_*` variables) when an endpoint is configured.
pub fn otlp_from_env(service_name: &str) -> Result<Option<OtelGuard>, String> {
    if !otlp_configured() {
        return Ok(None);
    }
    otel_stats::init_otlp(service_name)
        .map(Some)
        .map_err(|e| format!("cannot set up OTLP export: {e}"))
}

/// The handlers the options ask for: `OtelHandler` (with `provider`, else the global one) when
/// `otel`, and a `LogHandler` on stderr when `stats_log` is given.
pub fn handlers(
    otel: bool,
    provider: Option<SdkTracerProvider>,
    stats_log: Option<LogFormat>,
) -> Vec<Box<dyn StatsHandler>> {
    let mut handlers: Vec<Box<dyn StatsHandler>> = Vec::new();
    if otel {
        let mut builder = OtelHandler::builder().filter(otel_stats::filters::not_health_check);
        if let Some(provider) = provider {
            builder = builder.tracer_provider(provider);
        }
        handlers.push(Box::new(builder.build()));
    }
    if let Some(format) = stats_log {
        handlers.push(Box::new(LogHandler::new(std::io::stderr(), format)));
    }
    handlers
}

/// A span exporter that keeps what it is given, for the waterfall and for tests.
#[derive(Debug, Clone, Default)]
pub struct SpanCollector {
    spans: Arc<Mutex<Vec<SpanData>>>,
}

impl SpanCollector {
    /// A tracer provider for `service_name` exporting into this collector as each span ends.
    pub fn provider(&self, service_name: &'static str) -> SdkTracerProvider {
        SdkTracerProvider::builder()
            .with_simple_exporter(self.clone())
            .with_resource(Resource::builder().with_service_name(service_name).build())
            .build()
    }

    /// The spans collected so far.
    pub fn spans(&self) -> Vec<SpanData> {
        self.spans.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits (up to `patience`) until `done` holds for the spans; returns whether it did.
    pub async fn wait_for(&self, patience: Duration, done: impl Fn(&[SpanData]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if done(&self.spans()) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl SpanExporter for SpanCollector {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.spans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(batch);
        Ok(())
    }
}
