//! The demo echo server.
//!
//! ```sh
//! cargo run -p demo --bin server -- --addr 127.0.0.1:50051 --stats-log text
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 cargo run -p demo --bin server
//! ```
//!
//! Ctrl-C or SIGTERM: stop accepting, let in-flight RPCs finish, flush the spans, exit.

use std::process::ExitCode;
use std::sync::Arc;

use demo::cli::{self, Instrumentation};
use demo::telemetry;
use otel_stats::{LogFormat, StatsHandler};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> ExitCode {
    let options = match cli::from_args("127.0.0.1:50051") {
        Ok(options) => options,
        Err(exit) => return exit,
    };
    let export = match telemetry::otlp_from_env("echo-server") {
        Ok(export) => export,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let handler: Option<Arc<dyn StatsHandler>> = match options.instrumentation {
        Instrumentation::None => None,
        Instrumentation::Log => Some(Arc::new(telemetry::handlers(
            false,
            None,
            Some(options.stats_log.unwrap_or(LogFormat::Text)),
        ))),
        Instrumentation::Otel => Some(Arc::new(telemetry::server_handlers(
            true,
            options.rpc_roots,
            options.stats_log,
        ))),
    };
    let listener = match TcpListener::bind(&options.addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("cannot listen on {}: {e}", options.addr);
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "echo server on {} (instrumentation {:?}, OTLP export {})",
        listener
            .local_addr()
            .map_or(options.addr.clone(), |a| a.to_string()),
        options.instrumentation,
        if export.is_some() {
            "on"
        } else {
            "off: set OTEL_EXPORTER_OTLP_ENDPOINT"
        },
    );
    let served = demo::serve::serve(listener, handler, demo::serve::shutdown_signal()).await;
    eprintln!("echo server stopped; flushing spans");
    if let Some(export) = export {
        // Shutting down waits for the last export; keep it off the runtime's threads.
        let _ = tokio::task::spawn_blocking(move || export.shutdown()).await;
    }
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server error: {e}");
            ExitCode::FAILURE
        }
    }
}
