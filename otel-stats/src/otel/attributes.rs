//! The attributes of RPC and connection spans, after the semantic conventions of the pinned
//! `opentelemetry-semantic-conventions` crate (0.33, conventions 1.42: `rpc.system.name`,
//! `rpc.method`, `rpc.response.status_code`, `error.type`, `server.*`, `network.peer.*`), with an
//! opt-in for the names that conventions before 1.38 used (`rpc.system`, `rpc.service`,
//! `rpc.grpc.status_code`).

use std::net::SocketAddr;

use http::HeaderMap;
use http::uri::Authority;
use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_semantic_conventions::attribute::{
    ERROR_TYPE, NETWORK_LOCAL_ADDRESS, NETWORK_LOCAL_PORT, NETWORK_PEER_ADDRESS, NETWORK_PEER_PORT,
    RPC_METHOD, RPC_REQUEST_METADATA, RPC_RESPONSE_METADATA, RPC_RESPONSE_STATUS_CODE,
    RPC_SYSTEM_NAME, SERVER_ADDRESS, SERVER_PORT,
};
#[allow(deprecated)] // The point of the opt-in: the names dashboards still query.
use opentelemetry_semantic_conventions::attribute::{
    RPC_GRPC_STATUS_CODE, RPC_SERVICE, RPC_SYSTEM,
};
use tonic::Code;

use super::status::code_name;
use crate::event::{ConnTagInfo, RpcTagInfo, Side};

/// `rpc.system.name` (and `rpc.system`) of every RPC span.
pub(crate) const GRPC: &str = "grpc";

/// The environment variable the OpenTelemetry SDKs read to choose attribute names.
pub(super) const STABILITY_OPT_IN: &str = "OTEL_SEMCONV_STABILITY_OPT_IN";

/// Message events not recorded because of the per-span cap.
pub(super) const DROPPED_MESSAGE_EVENTS: &str = "otel_stats.message_events.dropped";
/// The first framing error of a message stream, when it had one.
pub(super) const FRAME_ERROR: &str = "otel_stats.frame_error";
/// Bytes read from and written to a connection, TLS and HTTP/2 framing included.
pub(super) const BYTES_READ: &str = "otel_stats.connection.bytes_read";
pub(super) const BYTES_WRITTEN: &str = "otel_stats.connection.bytes_written";

/// Metadata keys never recorded, whatever the allow-list says: credentials and binary values.
pub(super) fn is_secret(key: &str) -> bool {
    matches!(
        key,
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie" | "x-api-key"
    ) || key.ends_with("-bin")
}

/// Whether `value` (of `OTEL_SEMCONV_STABILITY_OPT_IN`) asks for the old RPC names too
/// (`rpc/dup`, as the SDKs spell it).
pub(super) fn wants_legacy_names(value: &str) -> bool {
    value.split(',').any(|v| v.trim() == "rpc/dup")
}

/// A full method `/package.Service/Method` split into the span name `package.Service/Method`,
/// the service and the method. Anything else is its own name, with an empty service.
pub(crate) fn split_method(full_method: &str) -> (&str, &str, &str) {
    let name = full_method.strip_prefix('/').unwrap_or(full_method);
    match name.rsplit_once('/') {
        Some((service, method)) => (name, service, method),
        None => (name, "", name),
    }
}

/// What the sampler sees: the attributes every RPC span starts with.
pub(super) fn sampler_attributes(name: &str) -> Vec<KeyValue> {
    vec![
        KeyValue::new(RPC_SYSTEM_NAME, GRPC),
        KeyValue::new(RPC_METHOD, name.to_owned()),
    ]
}

/// The other attributes of a recording RPC span, known at `tag_rpc`.
pub(super) fn rpc_attributes(
    info: &RpcTagInfo<'_>,
    legacy: bool,
    request_metadata: &[String],
) -> Vec<KeyValue> {
    let mut attrs = Vec::with_capacity(4);
    match info.side() {
        Side::Client => push_server(&mut attrs, info.authority()),
        Side::Server => push_addr(
            &mut attrs,
            info.remote_addr(),
            NETWORK_PEER_ADDRESS,
            NETWORK_PEER_PORT,
        ),
    }
    if legacy {
        let (_, service, _) = split_method(info.full_method());
        #[allow(deprecated)]
        attrs.extend([
            KeyValue::new(RPC_SYSTEM, GRPC),
            KeyValue::new(RPC_SERVICE, service.to_owned()),
        ]);
    }
    attrs.extend(metadata_attributes(
        RPC_REQUEST_METADATA,
        request_metadata,
        info.metadata(),
    ));
    attrs
}

/// `server.address` and `server.port` of a client RPC, from the `host:port` it is sent to.
pub(crate) fn push_server(attrs: &mut Vec<KeyValue>, authority: Option<&str>) {
    if let Some(authority) = authority.and_then(|a| a.parse::<Authority>().ok()) {
        attrs.push(KeyValue::new(SERVER_ADDRESS, authority.host().to_owned()));
        if let Some(port) = authority.port_u16() {
            attrs.push(KeyValue::new(SERVER_PORT, i64::from(port)));
        }
    }
}

/// The attributes of the connection span.
pub(super) fn conn_attributes(info: &ConnTagInfo) -> Vec<KeyValue> {
    let mut attrs = vec![KeyValue::new(RPC_SYSTEM_NAME, GRPC)];
    push_addr(
        &mut attrs,
        info.remote_addr,
        NETWORK_PEER_ADDRESS,
        NETWORK_PEER_PORT,
    );
    push_addr(
        &mut attrs,
        info.local_addr,
        NETWORK_LOCAL_ADDRESS,
        NETWORK_LOCAL_PORT,
    );
    attrs
}

fn push_addr(
    attrs: &mut Vec<KeyValue>,
    addr: Option<SocketAddr>,
    ip: &'static str,
    port: &'static str,
) {
    if let Some(addr) = addr {
        attrs.push(KeyValue::new(ip, addr.ip().to_string()));
        attrs.push(KeyValue::new(port, i64::from(addr.port())));
    }
}

/// The response metadata attributes (`rpc.response.metadata.<key>`) of headers or trailers.
pub(super) fn response_metadata(allowed: &[String], metadata: &HeaderMap) -> Vec<KeyValue> {
    metadata_attributes(RPC_RESPONSE_METADATA, allowed, metadata).collect()
}

/// `<prefix>.<key>` with all the values of `key`, for each allowed key present in `metadata`.
fn metadata_attributes<'a>(
    prefix: &'static str,
    allowed: &'a [String],
    metadata: &'a HeaderMap,
) -> impl Iterator<Item = KeyValue> + 'a {
    allowed.iter().filter_map(move |key| {
        let values: Vec<StringValue> = metadata
            .get_all(key.as_str())
            .iter()
            .map(|v| capped(&String::from_utf8_lossy(v.as_bytes())).into())
            .collect();
        (!values.is_empty()).then(|| {
            KeyValue::new(
                format!("{prefix}.{key}"),
                Value::Array(Array::String(values)),
            )
        })
    })
}

/// The longest attribute value taken from the peer (metadata values, status messages): a
/// peer must not be able to make spans, and the exporter's requests, as large as it likes.
pub(super) const MAX_PEER_VALUE_LEN: usize = 512;

/// `value`, cut at a character boundary to at most [`MAX_PEER_VALUE_LEN`] bytes, `…` marking
/// the cut.
pub(super) fn capped(value: &str) -> String {
    if value.len() <= MAX_PEER_VALUE_LEN {
        return value.to_owned();
    }
    let mut end = MAX_PEER_VALUE_LEN - '…'.len_utf8();
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &value[..end])
}

/// The attributes an RPC span gets when it ends with `code`.
pub(super) fn end_attributes(code: Code, error: bool, legacy: bool) -> Vec<KeyValue> {
    let name = code_name(code);
    let mut attrs = vec![KeyValue::new(RPC_RESPONSE_STATUS_CODE, name)];
    if error {
        attrs.push(KeyValue::new(ERROR_TYPE, name));
    }
    if legacy {
        #[allow(deprecated)]
        attrs.push(KeyValue::new(RPC_GRPC_STATUS_CODE, code as i64));
    }
    attrs
}

#[cfg(test)]
mod tests {
    #[test]
    fn peer_values_are_capped_at_a_char_boundary() {
        assert_eq!(super::capped("short"), "short");
        let long = "é".repeat(400);
        let cut = super::capped(&long);
        assert!(cut.len() <= super::MAX_PEER_VALUE_LEN, "{}", cut.len());
        assert!(cut.ends_with('…'));
    }

    use super::*;

    #[test]
    fn method_names() {
        assert_eq!(
            split_method("/grpc.examples.echo.Echo/UnaryEcho"),
            (
                "grpc.examples.echo.Echo/UnaryEcho",
                "grpc.examples.echo.Echo",
                "UnaryEcho"
            )
        );
        assert_eq!(split_method("odd"), ("odd", "", "odd"));
    }

    #[test]
    fn opt_in_values() {
        assert!(wants_legacy_names("http, rpc/dup"));
        assert!(!wants_legacy_names("rpc"));
        assert!(!wants_legacy_names(""));
    }

    #[test]
    fn secrets() {
        for key in [
            "authorization",
            "cookie",
            "proxy-authorization",
            "grpc-status-details-bin",
        ] {
            assert!(is_secret(key), "{key}");
        }
        assert!(!is_secret("x-request-id"));
    }

    #[test]
    fn client_attributes_come_from_the_authority() {
        let mut headers = HeaderMap::new();
        headers.append("x-tenant", "a".parse().unwrap());
        headers.append("x-tenant", "b".parse().unwrap());
        let info = RpcTagInfo::client("/s.S/M", Some("example.com:8443"), &mut headers);
        let attrs = rpc_attributes(&info, false, &["x-tenant".to_owned()]);
        let get = |k: &str| {
            attrs
                .iter()
                .find(|kv| kv.key.as_str() == k)
                .map(|kv| kv.value.clone())
        };
        assert_eq!(get(SERVER_ADDRESS), Some(Value::from("example.com")));
        assert_eq!(get(SERVER_PORT), Some(Value::I64(8443)));
        assert_eq!(
            get("rpc.request.metadata.x-tenant"),
            Some(Value::Array(Array::String(vec!["a".into(), "b".into()])))
        );
    }
}
