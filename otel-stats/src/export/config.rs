//! The exporter configuration every export path honours: the standard `opentelemetry-otlp`
//! exporters and the direct span encoder alike read their settings from here, so a variable
//! is honoured everywhere or rejected at start, never ignored by one path.

use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderMap, Uri};

/// The OTLP transport protocol (`OTEL_EXPORTER_OTLP_PROTOCOL` and its per-signal variants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// `grpc`: OTLP/gRPC, by default to port 4317.
    Grpc,
    /// `http/protobuf`: OTLP/HTTP with protobuf bodies, by default to port 4318.
    HttpProtobuf,
}

/// Compression of export requests (`OTEL_EXPORTER_OTLP_COMPRESSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// `gzip`.
    Gzip,
    /// `zstd`.
    Zstd,
}

/// TLS settings of an `https` endpoint (`OTEL_EXPORTER_OTLP_CERTIFICATE`,
/// `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`, `OTEL_EXPORTER_OTLP_CLIENT_KEY`).
///
/// Without a CA file the server is verified against the webpki roots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsSettings {
    /// PEM file of the CA(s) that sign the collector's certificate.
    pub ca_certificate: Option<PathBuf>,
    /// PEM file of this client's certificate chain, for mutual TLS.
    pub client_certificate: Option<PathBuf>,
    /// PEM file of this client's private key, for mutual TLS.
    pub client_key: Option<PathBuf>,
}

/// How one signal (traces or metrics) is exported, fully resolved: explicit settings first,
/// then the signal's variable, then the generic one, then the default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SignalConfig {
    /// The protocol.
    pub protocol: Protocol,
    /// The full URL requests go to: for `http/protobuf` it includes the signal's path
    /// (`/v1/traces`); for `grpc` the gRPC method's path is added by the transport.
    pub endpoint: Uri,
    /// Headers sent with every request (`OTEL_EXPORTER_OTLP_HEADERS`, `k=v` pairs,
    /// percent-decoded).
    pub headers: HeaderMap,
    /// How long one export request may take (`OTEL_EXPORTER_OTLP_TIMEOUT`, ms; 10 s).
    pub timeout: Duration,
    /// Request compression; `None` sends requests uncompressed.
    pub compression: Option<Compression>,
    /// TLS settings, used when the endpoint is `https`.
    pub tls: TlsSettings,
}

/// The whole export configuration of [`init_otlp`](crate::init_otlp).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OtlpConfig {
    /// `OTEL_SDK_DISABLED=true`: install nothing, export nothing.
    pub sdk_disabled: bool,
    /// Traces, or `None` when `OTEL_TRACES_EXPORTER=none`.
    pub traces: Option<SignalConfig>,
    /// Metrics, or `None` when `OTEL_METRICS_EXPORTER=none`.
    pub metrics: Option<SignalConfig>,
}
