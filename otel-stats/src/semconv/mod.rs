//! The gRPC and OpenTelemetry vocabulary the handlers share: the RPC system's name, how a
//! full method splits into service and method, the names of status codes and which codes
//! are errors on each side, the names of spans and span events, and the instrumentation
//! scope.
//!
//! This module sits below the handlers: `otel/`, `metrics/` and `log/` each use it, and none
//! of them imports another. Keeping a name (and which methods are known, `methods.rs`) in
//! one place is what makes a span, a metric and a log line of the same RPC agree.

mod code;
mod events;
mod method;
mod methods;

pub(crate) use code::{code_name, is_error};
pub(crate) use events::{
    INBOUND_HEADERS, INBOUND_MESSAGE, INBOUND_TRAILERS, OUTBOUND_HEADERS, OUTBOUND_MESSAGE,
    OUTBOUND_TRAILERS,
};
pub(crate) use method::split_method;
pub(crate) use methods::{Method, Methods};

use std::sync::Arc;

use http::uri::Authority;
use opentelemetry::{InstrumentationScope, KeyValue, Value};
use opentelemetry_semantic_conventions::attribute::{SERVER_ADDRESS, SERVER_PORT};

/// `rpc.system.name` (and `rpc.system`) of every RPC span and metric.
pub(crate) const GRPC: &str = "grpc";

/// The semantic conventions' `rpc.method` of a method that is not known (span attribute and
/// metric attribute alike).
pub(crate) const OTHER_METHOD: &str = "_OTHER";
/// gRFC A66's `grpc.method` of a method that is not known.
pub(crate) const A66_OTHER_METHOD: &str = "other";

/// The name of the span of a connection.
pub(crate) const CONNECTION_SPAN: &str = "grpc.connection";

/// The instrumentation scope of spans and instruments: this crate, its version, the schema.
pub(crate) fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(env!("CARGO_PKG_NAME"))
        .with_version(env!("CARGO_PKG_VERSION"))
        .with_schema_url(opentelemetry_semantic_conventions::SCHEMA_URL)
        .build()
}

/// `server.address` and `server.port` from the `host:port` an RPC is sent to (its
/// `:authority`); `false`, and nothing pushed, when there is none or it does not parse. The
/// address is reference-counted, so that clones of the attribute share it.
pub(crate) fn push_server(attrs: &mut Vec<KeyValue>, authority: Option<&str>) -> bool {
    let Some(authority) = authority.and_then(|a| a.parse::<Authority>().ok()) else {
        return false;
    };
    attrs.push(KeyValue::new(
        SERVER_ADDRESS,
        Value::String(Arc::<str>::from(authority.host()).into()),
    ));
    if let Some(port) = authority.port_u16() {
        attrs.push(KeyValue::new(SERVER_PORT, i64::from(port)));
    }
    true
}
