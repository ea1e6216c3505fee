//! The demo echo server.
//!
//! ```sh
//! cargo run -p demo --bin server -- --addr 127.0.0.1:50051 --stats-log text
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 cargo run -p demo --bin server
//! # TLS, and mTLS (client certificates signed by client-ca.pem required):
//! cargo run -p demo --bin server -- --tls-cert server.pem --tls-key server.key
//! cargo run -p demo --bin server -- --tls-cert server.pem --tls-key server.key \
//!     --tls-client-ca client-ca.pem
//! ```
//!
//! Ctrl-C or SIGTERM: stop accepting, let in-flight RPCs finish, flush the spans, exit.

use std::process::ExitCode;
use std::sync::Arc;

use demo::cli::{self, Instrumentation};
use demo::telemetry;
use otel_stats::{BoxHandler, LogFormat};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> ExitCode {
    let options = match cli::from_args("127.0.0.1:50051") {
        Ok(options) => options,
        Err(exit) => return exit,
    };
    let tls = match options.server_tls() {
        Ok(tls) => tls,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let export = match telemetry::otlp_from_env("echo-server") {
        Ok(export) => export,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let handler: Option<BoxHandler> = match options.instrumentation {
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
    let security = match (&tls, &options.tls.client_ca) {
        (None, _) => "plaintext",
        (Some(_), None) => "TLS",
        (Some(_), Some(_)) => "mTLS",
    };
    eprintln!(
        "echo server on {} ({security}, instrumentation {:?}, OTLP export {})",
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
    let shutdown = demo::serve::shutdown_signal();
    let served = demo::serve::serve_tls(listener, handler, tls, shutdown).await;
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
