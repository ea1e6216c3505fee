//! The attributes of RPC and connection spans, after the semantic conventions of the pinned
//! `opentelemetry-semantic-conventions` crate (0.33, conventions 1.42: `rpc.system.name`,
//! `rpc.method`, `rpc.response.status_code`, `error.type`, `server.*`, `network.peer.*`), with an
//! opt-in for the names that conventions before 1.38 used (`rpc.system`, `rpc.service`,
//! `rpc.grpc.status_code`).

use std::net::SocketAddr;
use std::sync::Arc;

use http::HeaderMap;
use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_semantic_conventions::attribute::{
    ERROR_TYPE, NETWORK_LOCAL_ADDRESS, NETWORK_LOCAL_PORT, NETWORK_PEER_ADDRESS, NETWORK_PEER_PORT,
    RPC_METHOD, RPC_METHOD_ORIGINAL, RPC_REQUEST_METADATA, RPC_RESPONSE_METADATA,
    RPC_RESPONSE_STATUS_CODE, RPC_SYSTEM_NAME, SERVER_ADDRESS, SERVER_PORT,
};
#[allow(deprecated)] // The point of the opt-in: the names dashboards still query.
use opentelemetry_semantic_conventions::attribute::{
    RPC_GRPC_STATUS_CODE, RPC_SERVICE, RPC_SYSTEM,
};
use tonic::Code;

use crate::event::{ConnTagInfo, RpcTagInfo};
use crate::semconv::{self, GRPC, OTHER_METHOD, code_name, split_method};

/// The environment variable the OpenTelemetry SDKs read to choose attribute names.
pub(super) const STABILITY_OPT_IN: &str = "OTEL_SEMCONV_STABILITY_OPT_IN";

/// Message events not recorded because of the per-span cap.
pub(super) const DROPPED_MESSAGE_EVENTS: &str = "otel_stats.message_events.dropped";
/// The first framing error of a message stream, when it had one.
pub(super) const FRAME_ERROR: &str = "otel_stats.frame_error";
/// Bytes read from and written to a connection, TLS and HTTP/2 framing included.
pub(super) const BYTES_READ: &str = "otel_stats.connection.bytes_read";
pub(super) const BYTES_WRITTEN: &str = "otel_stats.connection.bytes_written";
/// Messages an RPC sent and received, counted whether or not message events are recorded
/// (no convention names them).
pub(super) const MESSAGES_SENT: &str = "otel_stats.messages.sent";
pub(super) const MESSAGES_RECEIVED: &str = "otel_stats.messages.received";

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

/// Room for every attribute an RPC span gets from this crate (the sampler's, the method's,
/// the server's, the peer's, the legacy names, the status, the dropped-events count, a frame
/// error, the message counts): reserved once, so that adding them at `tag_rpc` and at `End`
/// never grows the span's attribute list.
const RPC_SPAN_ATTRIBUTES: usize = 16;

/// The span name of an RPC whose method is not known (`rpc.method` is `_OTHER`): the
/// conventions' `{rpc.system.name}`, so that callers cannot choose span names.
pub(super) const UNKNOWN_METHOD_SPAN: &str = GRPC;

/// The first attribute of every RPC span, in a list with room for the attributes to come
/// (`extra` more than this crate's own). The caller adds the others the sampler should see.
pub(super) fn sampler_attributes(extra: usize) -> Vec<KeyValue> {
    let mut attrs = Vec::with_capacity(RPC_SPAN_ATTRIBUTES + extra);
    attrs.push(KeyValue::new(RPC_SYSTEM_NAME, GRPC));
    attrs
}

/// `rpc.method` (and, with `legacy`, `rpc.service`) of a method `package.Service/Method` that
/// is `known`; of one that is not, `rpc.method = "_OTHER"` and `rpc.method_original`, the
/// caller's string, capped.
pub(super) fn method_attributes(
    name: &str,
    known: bool,
    legacy: bool,
) -> impl Iterator<Item = KeyValue> {
    let (method, original) = if known {
        (KeyValue::new(RPC_METHOD, name.to_owned()), None)
    } else {
        (
            KeyValue::new(RPC_METHOD, OTHER_METHOD),
            Some(KeyValue::new(RPC_METHOD_ORIGINAL, capped(name))),
        )
    };
    #[allow(deprecated)]
    let service = (known && legacy).then(|| {
        let (_, service, _) = split_method(name);
        KeyValue::new(RPC_SERVICE, service.to_owned())
    });
    std::iter::once(method).chain(original).chain(service)
}

/// The other attributes of a recording RPC span, known at `tag_rpc`. `peer` is the
/// connection's peer address, already made into an attribute value, when known.
pub(super) fn rpc_attributes<'a>(
    info: &'a RpcTagInfo<'_>,
    legacy: bool,
    request_metadata: &'a [String],
    peer: Option<&PeerAddress>,
) -> impl Iterator<Item = KeyValue> + 'a {
    let mut attrs: Vec<KeyValue> = Vec::with_capacity(3);
    push_addr(
        &mut attrs,
        info.remote_addr(),
        peer,
        NETWORK_PEER_ADDRESS,
        NETWORK_PEER_PORT,
    );
    if legacy {
        #[allow(deprecated)]
        attrs.push(KeyValue::new(RPC_SYSTEM, GRPC));
    }
    attrs.into_iter().chain(metadata_attributes(
        RPC_REQUEST_METADATA,
        request_metadata,
        info.metadata(),
    ))
}

/// `server.address` and `server.port` of a server RPC: from the `:authority` the client sent
/// when it has one, else from the local address the connection was accepted on. The values
/// are reference-counted, so that a connection can keep them for its next RPCs.
pub(super) fn server_of(authority: Option<&str>, local: Option<SocketAddr>) -> Vec<KeyValue> {
    let mut attrs = Vec::with_capacity(2);
    if semconv::push_server(&mut attrs, authority) {
        return attrs;
    }
    if let Some(local) = local {
        attrs.push(KeyValue::new(
            SERVER_ADDRESS,
            shared(&local.ip().to_string()),
        ));
        attrs.push(KeyValue::new(SERVER_PORT, i64::from(local.port())));
    }
    attrs
}

/// `text` as a value whose clones share one allocation.
fn shared(text: &str) -> Value {
    Value::String(Arc::<str>::from(text).into())
}

/// A connection's peer address as an attribute value, made once per connection and shared
/// (reference-counted) by the spans of its RPCs.
#[derive(Debug, Clone)]
pub(super) struct PeerAddress {
    addr: SocketAddr,
    ip: Value,
}

impl PeerAddress {
    pub(super) fn new(addr: SocketAddr) -> Self {
        PeerAddress {
            addr,
            ip: shared(&addr.ip().to_string()),
        }
    }
}

/// The attributes of the connection span.
pub(super) fn conn_attributes(info: &ConnTagInfo, peer: Option<&PeerAddress>) -> Vec<KeyValue> {
    let mut attrs = vec![KeyValue::new(RPC_SYSTEM_NAME, GRPC)];
    push_addr(
        &mut attrs,
        info.remote_addr,
        peer,
        NETWORK_PEER_ADDRESS,
        NETWORK_PEER_PORT,
    );
    push_addr(
        &mut attrs,
        info.local_addr,
        None,
        NETWORK_LOCAL_ADDRESS,
        NETWORK_LOCAL_PORT,
    );
    attrs
}

/// `ip` and `port` of `addr`; the address text comes from `known` when it is `addr`'s.
fn push_addr(
    attrs: &mut Vec<KeyValue>,
    addr: Option<SocketAddr>,
    known: Option<&PeerAddress>,
    ip: &'static str,
    port: &'static str,
) {
    if let Some(addr) = addr {
        let text = match known {
            Some(known) if known.addr == addr => known.ip.clone(),
            _ => addr.ip().to_string().into(),
        };
        attrs.push(KeyValue::new(ip, text));
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

/// The attributes an RPC span gets when it ends with `code` (no list is allocated).
pub(super) fn end_attributes(
    code: Code,
    error: bool,
    legacy: bool,
) -> impl Iterator<Item = KeyValue> {
    let name = code_name(code);
    #[allow(deprecated)]
    let legacy = legacy.then(|| KeyValue::new(RPC_GRPC_STATUS_CODE, code as i64));
    std::iter::once(KeyValue::new(RPC_RESPONSE_STATUS_CODE, name))
        .chain(error.then(|| KeyValue::new(ERROR_TYPE, name)))
        .chain(legacy)
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
    use crate::semconv::push_server;
    use opentelemetry_semantic_conventions::attribute::{SERVER_ADDRESS, SERVER_PORT};

    #[test]
    fn an_unknown_method_is_other_with_the_original_capped() {
        let keys = |name: &str, known, legacy| -> Vec<(String, Value)> {
            method_attributes(name, known, legacy)
                .map(|kv| (kv.key.to_string(), kv.value))
                .collect()
        };
        assert_eq!(
            keys("s.S/M", true, true),
            [
                (RPC_METHOD.to_owned(), Value::from("s.S/M")),
                ("rpc.service".to_owned(), Value::from("s.S")),
            ]
        );
        let long = format!("s.S/{}", "x".repeat(2000));
        let unknown = keys(&long, false, true);
        assert_eq!(unknown[0], (RPC_METHOD.to_owned(), Value::from("_OTHER")));
        assert_eq!(unknown[1].0, RPC_METHOD_ORIGINAL);
        assert!(unknown[1].1.as_str().len() <= MAX_PEER_VALUE_LEN);
        assert_eq!(unknown.len(), 2, "no rpc.service from the caller's string");
    }

    #[test]
    fn a_server_is_named_by_the_authority_else_by_its_local_address() {
        let local: SocketAddr = "10.0.0.1:50051".parse().unwrap();
        assert_eq!(
            server_of(Some("echo.example:443"), Some(local)),
            [
                KeyValue::new(SERVER_ADDRESS, "echo.example"),
                KeyValue::new(SERVER_PORT, 443)
            ]
        );
        assert_eq!(
            server_of(None, Some(local)),
            [
                KeyValue::new(SERVER_ADDRESS, "10.0.0.1"),
                KeyValue::new(SERVER_PORT, 50051)
            ]
        );
        assert_eq!(
            server_of(Some("not an authority"), None),
            Vec::<KeyValue>::new()
        );
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
    fn a_known_peer_address_is_reused_and_only_for_its_own_address() {
        let known: SocketAddr = "10.0.0.7:4000".parse().unwrap();
        let other: SocketAddr = "10.0.0.8:4001".parse().unwrap();
        let peer = PeerAddress::new(known);
        for (addr, text, port) in [(known, "10.0.0.7", 4000), (other, "10.0.0.8", 4001)] {
            let mut attrs = Vec::new();
            push_addr(&mut attrs, Some(addr), Some(&peer), "ip", "port");
            assert_eq!(
                attrs,
                vec![KeyValue::new("ip", text), KeyValue::new("port", port)]
            );
        }
    }

    #[test]
    fn end_attributes_by_outcome() {
        let keys = |code, error, legacy| -> Vec<String> {
            end_attributes(code, error, legacy)
                .map(|kv| kv.key.to_string())
                .collect()
        };
        assert_eq!(keys(Code::Ok, false, false), [RPC_RESPONSE_STATUS_CODE]);
        #[allow(deprecated)]
        let all = [RPC_RESPONSE_STATUS_CODE, ERROR_TYPE, RPC_GRPC_STATUS_CODE];
        assert_eq!(keys(Code::Internal, true, true), all);
    }

    #[test]
    fn client_attributes_come_from_the_authority() {
        let mut headers = HeaderMap::new();
        headers.append("x-tenant", "a".parse().unwrap());
        headers.append("x-tenant", "b".parse().unwrap());
        let info = RpcTagInfo::client("/s.S/M", Some("example.com:8443"), &mut headers);
        let tenant = ["x-tenant".to_owned()];
        let mut attrs: Vec<_> = rpc_attributes(&info, false, &tenant, None).collect();
        push_server(&mut attrs, info.authority());
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
