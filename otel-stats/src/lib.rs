//! grpc-go's [`stats.Handler`] for tonic: a hook on every phase of every RPC and connection,
//! and an OpenTelemetry handler built on it.
//!
//! | grpc-go `stats`                         | otel-stats                                                   |
//! | --------------------------------------- | ------------------------------------------------------------ |
//! | `stats.Handler`                          | [`StatsHandler`]                                             |
//! | `TagRPC(ctx, *RPCTagInfo) ctx`           | [`StatsHandler::tag_rpc`] with [`RpcTagInfo`]                |
//! | `HandleRPC(ctx, RPCStats)`               | [`StatsHandler::handle_rpc`] with [`RpcStats`]               |
//! | `TagConn(ctx, *ConnTagInfo) ctx`         | [`StatsHandler::tag_conn`] with [`ConnTagInfo`]              |
//! | `HandleConn(ctx, ConnStats)`             | [`StatsHandler::handle_conn`] with [`ConnStats`]             |
//! | `context.Context`                        | [`opentelemetry::Context`]                                   |
//! | `Begin`, `End`                           | [`RpcStats::Begin`], [`RpcStats::End`]                       |
//! | `InHeader`, `OutHeader`                  | [`RpcStats::InHeader`], [`RpcStats::OutHeader`] ([`Header`](event::Header)) |
//! | `InPayload`, `OutPayload`                | [`RpcStats::InPayload`], [`RpcStats::OutPayload`] ([`Payload`](event::Payload)) |
//! | `InTrailer`, `OutTrailer`                | [`RpcStats::InTrailer`], [`RpcStats::OutTrailer`] ([`Trailer`](event::Trailer)) |
//! | `ConnBegin`, `ConnEnd`                   | [`ConnStats::Begin`], [`ConnStats::End`]                     |
//! | `grpc.StatsHandler(h)` (server option)   | [`ServerStatsLayer`] and [`ServerStatsLayer::incoming`]      |
//! | `grpc.WithStatsHandler(h)` (dial option) | [`ClientStatsLayer`] and [`ClientStatsLayer::connect`]       |
//! | several handlers                         | tuples (up to 8), `Vec<H>`, `Option<H>`, [`BoxHandler`] implement [`StatsHandler`] |
//! | `examples/features/stats_monitoring`     | [`LogHandler`]                                               |
//! | `otelgrpc` (go.opentelemetry.io/contrib)  | [`OtelHandler`], built with [`OtelHandlerBuilder`]           |
//! | grpc-go's `stats/opentelemetry` (gRFC A66) | [`MetricsHandler`], built with [`MetricsHandlerBuilder`]     |
//!
//! # The two-minute path
//!
//! A server: the layer reports RPCs, the incoming wrapper reports connections.
//!
//! ```no_run
//! use otel_stats::{LogHandler, ServerStatsLayer};
//! use tonic::transport::{Server, server::TcpIncoming};
//! # async fn run(routes: tonic::service::Routes) -> Result<(), Box<dyn std::error::Error>> {
//!
//! let stats = ServerStatsLayer::new(LogHandler::text(std::io::stderr()));
//! let incoming = stats.incoming(TcpIncoming::bind("127.0.0.1:50051".parse()?)?);
//! Server::builder()
//!     .layer(stats)
//!     .add_routes(routes)
//!     .serve_with_incoming(incoming)
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! A client: `connect` reports the channel's connections and wraps it in the layer.
//!
//! ```no_run
//! use otel_stats::{ClientStatsLayer, LogHandler};
//! use tonic::transport::Endpoint;
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//!
//! let stats = ClientStatsLayer::new(LogHandler::json(std::io::stderr()));
//! let channel = stats.connect(Endpoint::from_static("http://127.0.0.1:50051")).await?;
//! // let mut client = EchoClient::new(channel);
//! # let _ = channel;
//! # Ok(()) }
//! ```
//!
//! # OpenTelemetry
//!
//! [`OtelHandler`] turns the events into spans: an RPC span per RPC (`SERVER` or `CLIENT`,
//! named `package.Service/Method`, with the semantic conventions' attributes and status), a
//! span event per message, header and trailer block, a `grpc.connection` span per
//! connection that carried an RPC, and W3C trace context in the request metadata, so that client and server are
//! one trace. Options (tracer provider, propagator, [`filters`], events, public endpoints,
//! metadata to record) are on [`OtelHandlerBuilder`]. Cargo features:
//!
//! - `tracing`: a client RPC made inside a `tracing` span (under `tracing-opentelemetry`) is
//!   that span's child even when the layer does not activate contexts on span entry. On the
//!   server, `#[instrument]` spans in a handler are children of the RPC span either way, as
//!   the service runs with the RPC's context current; work the handler spawns onto other
//!   tasks needs [`request.rpc_context()`](RpcRequestExt::rpc_context) passed along.
//! - `otlp`: `init_otlp` and `export::OtlpConfig`: spans and metrics exported as the
//!   `OTEL_*` variables say, with everything a production collector needs and nothing more
//!   to enable: OTLP/gRPC and OTLP/HTTP (protobuf), gzip, `https` endpoints (rustls with
//!   ring; the webpki and system roots, or a CA file; client certificates for mTLS),
//!   headers, timeouts, `OTEL_SDK_DISABLED`, `none` exporters and `OTEL_PROPAGATORS`. A
//!   variable it cannot honour is an error at start; lost spans are counted
//!   (`ExportStats`) and reported as `tracing` warnings, never printed.
//! - `tls`: for TLS the application terminates itself (tokio-rustls streams given to
//!   [`ServerStatsLayer::incoming`]), reads the addresses inside tonic's `TlsConnectInfo`.
//!   Not needed for tonic's own `Server::tls_config` nor for `https` endpoints; TLS itself
//!   comes from tonic's `tls-ring` (or `tls-aws-lc`) feature, in the application.
//!
//! ```no_run
//! use otel_stats::{OtelHandler, ServerStatsLayer};
//!
//! let stats = ServerStatsLayer::new(OtelHandler::new());
//! # let _ = stats;
//! ```
//!
//! # Metrics
//!
//! [`MetricsHandler`] records metrics from the same events, for every RPC, sampled or not:
//! the semantic conventions' `rpc.server.call.duration` / `rpc.client.call.duration`,
//! optionally gRFC A66's `grpc.*` instruments, and connection instruments (open
//! connections, their durations, bytes and RPCs). Unknown methods are bucketed as `_OTHER`.
//! See [`metrics::names`] for the instruments; with `otlp`, `init_otlp` exports them too.
//!
//! ```no_run
//! use otel_stats::{MetricsHandler, OtelHandler, ServerStatsLayer};
//!
//! let stats = ServerStatsLayer::new((OtelHandler::new(), MetricsHandler::new()));
//! # let _ = stats;
//! ```
//!
//! # In the service: the RPC's span
//!
//! [`RpcRequestExt`] reads the RPC's context and span from the request a service receives,
//! so the application can add what only it knows:
//!
//! ```
//! use opentelemetry::KeyValue;
//! use otel_stats::RpcRequestExt;
//!
//! fn on_request(request: &tonic::Request<String>) {
//!     request.rpc_span().set_attribute(KeyValue::new("app.user", "ann"));
//! }
//! # on_request(&tonic::Request::new(String::new()));
//! ```
//!
//! # Your own handler
//!
//! Implement [`StatsHandler`]; combine handlers as a tuple, a `Vec`, an `Option` or a
//! [`BoxHandler`]. The events are in [`event`], which also shows how to unit-test a handler
//! with events built by hand. [`StatsChannel`] and [`OtelAndMetrics`] name the stacks you
//! store.
//!
//! # Examples
//!
//! The crate's `examples/` directory holds a `server` and a `client` (run them side by side
//! with `cargo run -p otel-stats --example server`, then `--example client`), and
//! `custom_handler`, a handler of your own on a server and client in one process.
//!
//! # The rules the events follow
//!
//! - **Order.** Each side fires its events in grpc-go's nominal order (see [`RpcStats`]).
//!   The server reports `OutHeader` just before the first response frame, as grpc-go does
//!   (it writes headers with the first message), so bidi streams interleave as in grpc-go.
//! - **End is exactly once.** Every RPC that got `tag_rpc` gets one `End`, also when it is
//!   dropped: client cancel, deadline, connection reset, a panicking service. Its status is the
//!   one the peer saw; see [`End`](event::End) for the rules, including where we do better than
//!   grpc-go (an `End(UNIMPLEMENTED)` for unknown methods, `DEADLINE_EXCEEDED` rather than
//!   `INTERNAL` or `CANCELLED` when a deadline passed).
//! - **One payload event per message**, however the messages are split across or packed into
//!   DATA frames (see [`frame`]).
//! - **Hooks cannot hurt the RPC.** A hook that panics is contained; nothing a hook does
//!   changes the bytes on the wire, except headers a client handler adds in `tag_rpc`.
//! - **Contexts.** Server RPC contexts derive from their connection's context; client RPC
//!   contexts derive from the caller's current context, never from a connection's.
//!
//! [`stats.Handler`]: https://pkg.go.dev/google.golang.org/grpc/stats#Handler

#![deny(missing_docs)]
#![deny(unreachable_pub, missing_debug_implementations, rust_2018_idioms)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
pub mod conn;
mod context;
pub mod event;
#[cfg(feature = "otlp")]
#[cfg_attr(docsrs, doc(cfg(feature = "otlp")))]
pub mod export;
pub mod frame;
mod handler;
mod log;
pub mod metrics;
mod otel;
mod request;
pub mod rpc;
mod semconv;
mod server;
mod stacks;

pub use client::{ClientStatsLayer, ClientStatsService, tcp_connector};
pub use event::{ConnStats, ConnTagInfo, RpcStats, RpcTagInfo, Side};
pub use handler::{BoxHandler, NoopHandler, StatsHandler};
pub use log::{LogFormat, LogHandler};
pub use metrics::{MetricsHandler, MetricsHandlerBuilder};
#[cfg(feature = "otlp")]
#[cfg_attr(docsrs, doc(cfg(feature = "otlp")))]
pub use otel::{ExportStats, OtelGuard, init_otlp, init_otlp_with};
pub use otel::{OtelHandler, OtelHandlerBuilder, filters};
pub use request::RpcRequestExt;
pub use server::{ServerStatsLayer, ServerStatsService};
pub use stacks::{OtelAndMetrics, StatsChannel};
