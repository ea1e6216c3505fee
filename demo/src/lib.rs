//! The otel-stats demo: grpc-go's `grpc.examples.echo.Echo`, served and called by tonic with
//! otel-stats on both ends.
//!
//! - [`echo`]: the server's behaviour, chosen to make the interesting cases visible.
//! - [`scenarios`]: what the client does: every kind of call, an error, a cancelled stream,
//!   a deadline.
//! - [`serve`]: the server with its instrumentation switch and graceful shutdown.
//! - [`telemetry`]: where spans go: OTLP when `OTEL_*` says so, or an in-process collector.
//! - [`waterfall`]: a trace as a span tree with time bars, in the terminal.
//! - [`embedded`]: `cargo run -p demo`: server and client in one process, traces printed.
//! - [`cli`]: the command-line options the binaries share.

pub mod cli;
pub mod echo;
pub mod embedded;
pub mod scenarios;
pub mod serve;
pub mod telemetry;
pub mod waterfall;

/// The code generated from `proto/echo.proto`.
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("grpc.examples.echo");
}
