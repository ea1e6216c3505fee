//! An echo server that reports every RPC and connection: a line per event on stderr
//! ([`LogHandler`]) and OpenTelemetry spans ([`OtelHandler`]).
//!
//! ```text
//! cargo run -p otel-stats --example server
//! cargo run -p otel-stats --example client    # in another terminal
//! ```
//!
//! The spans go to the global tracer provider, which does nothing until one is installed:
//! install yours before serving (with the `otlp` feature, `otel_stats::init_otlp` sets up an
//! OTLP exporter from the `OTEL_*` variables).

mod common;

use common::{ADDR, Echo, EchoServer};
use otel_stats::{LogHandler, OtelHandler, ServerStatsLayer};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One layer for the RPCs, the same handlers for the connections it accepts.
    let stats = ServerStatsLayer::new((OtelHandler::new(), LogHandler::text(std::io::stderr())));
    let incoming = stats.incoming(TcpIncoming::bind(ADDR.parse()?)?);
    eprintln!("echo server on {ADDR}; Ctrl-C stops it");
    Server::builder()
        .layer(stats)
        .add_service(EchoServer::new(Echo))
        .serve_with_incoming_shutdown(incoming, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
