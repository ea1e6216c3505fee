//! The attributes of an RPC span's events: one event per message (gRFC A72's attributes) and
//! one per header and trailer block. Their names are in `semconv`.

use opentelemetry::KeyValue;

use crate::event::{Header, Payload, Trailer};

/// 0-based number of the message in its direction.
const SEQUENCE_NUMBER: &str = "sequence-number";
/// The size of the message once decompressed; absent for a compressed message, whose
/// decompressed size the layer does not know.
const MESSAGE_SIZE: &str = "message-size";
/// The size of a compressed message as sent.
const MESSAGE_SIZE_COMPRESSED: &str = "message-size-compressed";
/// The `grpc-encoding` of the messages that follow the headers, `identity` when none.
const COMPRESSION: &str = "compression";
/// The number of metadata entries (a key with two values counts twice).
const METADATA_ENTRIES: &str = "metadata-entries";
/// `true` when the trailers were the response headers: a response without messages.
const TRAILERS_ONLY: &str = "trailers-only";

pub(super) fn message(p: &Payload) -> Vec<KeyValue> {
    let mut attrs = Vec::with_capacity(2);
    attrs.push(KeyValue::new(SEQUENCE_NUMBER, p.seq as i64));
    if let Some(len) = p.length {
        attrs.push(KeyValue::new(MESSAGE_SIZE, len as i64));
    }
    if p.compressed {
        attrs.push(KeyValue::new(
            MESSAGE_SIZE_COMPRESSED,
            p.compressed_length as i64,
        ));
    }
    attrs
}

pub(super) fn header(h: &Header<'_>) -> Vec<KeyValue> {
    vec![
        KeyValue::new(COMPRESSION, compression(h.compression)),
        KeyValue::new(METADATA_ENTRIES, h.metadata.len() as i64),
    ]
}

/// The encodings gRPC implementations use come from static strings; others are copied.
fn compression(encoding: Option<&str>) -> opentelemetry::Value {
    match encoding {
        None | Some("identity") => "identity".into(),
        Some("gzip") => "gzip".into(),
        Some("deflate") => "deflate".into(),
        Some("zstd") => "zstd".into(),
        Some(other) => other.to_owned().into(),
    }
}

pub(super) fn trailer(t: &Trailer<'_>) -> Vec<KeyValue> {
    vec![
        KeyValue::new(METADATA_ENTRIES, t.metadata.len() as i64),
        KeyValue::new(TRAILERS_ONLY, t.trailers_only),
    ]
}
