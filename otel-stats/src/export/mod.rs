//! OTLP export: one configuration surface ([`OtlpConfig`]) read from the `OTEL_*` variables
//! and honoured by every exporter [`init_otlp`](crate::init_otlp) can install.
//!
//! - `config.rs`: what to export, where and how (protocol, endpoint, headers, timeout,
//!   compression, TLS), per signal, resolved the way the OpenTelemetry SDKs resolve it.

mod config;

pub use config::{Compression, OtlpConfig, Protocol, SignalConfig, TlsSettings};
