//! OTLP export: one configuration surface ([`OtlpConfig`]) read from the `OTEL_*` variables
//! and honoured by every exporter [`init_otlp`](crate::init_otlp) can install.
//!
//! - `config.rs`: what to export, where and how (protocol, endpoint, headers, timeout,
//!   compression, TLS), per signal, and the setters to build it in code.
//! - `env.rs`: [`OtlpConfig::from_env`], the variables resolved the way the OpenTelemetry
//!   SDKs resolve them; anything not supported is a [`ConfigError`] at start.
//! - `tls.rs`: rustls (ring) client configurations from [`TlsSettings`], for our connector
//!   and for tonic.
//! - `client.rs`: the HTTPS connector every exporter shares, and the HTTP client of the
//!   standard OTLP/HTTP exporter.
//! - `error.rs`: [`ConfigError`] and [`OtlpError`].
//! - `encode/`: [`encode_export_trace_request`], the protobuf bytes of an export request
//!   written straight from the SDK's `SpanData`, without the generic conversion.
//! - `exporter.rs`: [`DirectSpanExporter`], which encodes each batch of spans once into
//!   request bytes and hands them to its own sending thread.
//! - `processor.rs`: [`DirectSpanProcessor`], which encodes each span when it ends, on the
//!   thread that ends it, and hands batches of those bytes to the same sender.
//! - `transport/`: one request on the wire, OTLP/gRPC or OTLP/HTTP, and the collector's
//!   answer; `retry.rs`: which failures are retried, and when.

mod client;
mod config;
mod encode;
mod env;
mod error;
mod exporter;
mod processor;
mod retry;
mod tls;
mod transport;

pub(crate) use client::OtlpHttpClient;
pub use config::{
    Compression, OtlpConfig, Propagator, Protocol, SignalConfig, SpanExporterKind, TlsSettings,
};
pub use encode::{encode_export_trace_request, encode_span};
pub(crate) use env::BspLimits;
pub use error::{ConfigError, OtlpError};
pub(crate) use exporter::ExportTally;
pub use exporter::{
    DEFAULT_MAX_IN_FLIGHT_BYTES, DirectExportHandle, DirectExportStats, DirectSpanExporter,
};
pub use processor::{DirectSpanProcessor, DirectSpanProcessorBuilder};
pub(crate) use tls::tonic_config;
