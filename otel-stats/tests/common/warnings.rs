//! A `tracing` layer that keeps the warnings otel-stats' export emits, and the set-up of the
//! tests that check what a pipeline reports against a collector that answers nothing yet.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use tokio::runtime::Runtime;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Keeps the messages of the warnings `otel_stats::export` emits.
#[derive(Clone, Default)]
pub struct Warnings(Arc<Mutex<Vec<String>>>);

impl Warnings {
    pub fn taken(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Warnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        if meta.target() == "otel_stats::export" && *meta.level() == tracing::Level::WARN {
            let mut message = Message(String::new());
            event.record(&mut message);
            self.0.lock().unwrap().push(message.0);
        }
    }
}

/// What a test needs to run `init_otlp` from the environment against a collector on
/// `listener` (give it to `Receiver::stuck_on` inside `runtime`), with otel-stats' export
/// warnings kept in `warnings`.
pub struct StuckPipeline {
    pub listener: TcpListener,
    pub runtime: Runtime,
    pub warnings: Warnings,
}

impl StuckPipeline {
    /// Sets the `OTEL_*` variables of a small pipeline (queue 64, batches of 16, 20 ms delay,
    /// export timeout `timeout_ms`, no metrics) pointed at a new listener, installs the
    /// warnings layer as the global subscriber, and builds a two-worker runtime.
    ///
    /// For a test binary's only test, called first: the environment may only be changed
    /// while no other thread runs.
    pub fn from_env(timeout_ms: &str) -> StuckPipeline {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        // SAFETY: called before the test starts any other thread (see above).
        unsafe {
            for (k, v) in [
                ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", timeout_ms),
                ("OTEL_BSP_MAX_QUEUE_SIZE", "64"),
                ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "16"),
                ("OTEL_BSP_SCHEDULE_DELAY", "20"),
                ("OTEL_METRICS_EXPORTER", "none"),
            ] {
                std::env::set_var(k, v);
            }
            std::env::remove_var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let warnings = Warnings::default();
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(warnings.clone()),
        )
        .unwrap();
        StuckPipeline {
            listener,
            runtime,
            warnings,
        }
    }
}
