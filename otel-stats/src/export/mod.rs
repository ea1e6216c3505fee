//! OTLP export: one configuration surface ([`OtlpConfig`]) read from the `OTEL_*` variables
//! and honoured by every exporter [`init_otlp`](crate::init_otlp) can install.
//!
//! - `config.rs`: what to export, where and how (protocol, endpoint, headers, timeout,
//!   compression, TLS), per signal, resolved the way the OpenTelemetry SDKs resolve it.
//! - `exporter.rs`: [`DirectSpanExporter`], which encodes each batch of spans once into
//!   request bytes and hands them to its own sending thread.
//! - `transport/`: one request on the wire, OTLP/gRPC or OTLP/HTTP, and the collector's
//!   answer; `retry.rs`: which failures are retried, and when.

mod config;
// TEMPORARY: replaced by `encode` (branch `encode`) at the merge.
mod encode_standin;
mod exporter;
mod retry;
mod transport;

pub use config::{Compression, OtlpConfig, Protocol, SignalConfig, TlsSettings};
#[allow(unused_imports)] // `init_otlp` reports through it once it installs the exporter
pub(crate) use exporter::ExportTally;
pub use exporter::{DEFAULT_MAX_IN_FLIGHT_BYTES, DirectExportStats, DirectSpanExporter};
pub use transport::BuildError;
