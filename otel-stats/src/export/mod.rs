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

mod client;
mod config;
mod encode;
mod env;
mod error;
mod tls;

#[allow(unused_imports)] // the direct span exporter connects through these too
pub(crate) use client::{HttpsConnector, OtlpHttpClient, https_connector, runtime};
pub use config::{
    Compression, OtlpConfig, Propagator, Protocol, SignalConfig, SpanExporterKind, TlsSettings,
};
pub use encode::{encode_export_trace_request, encode_span};
pub use error::{ConfigError, OtlpError};
pub(crate) use tls::tonic_config;
