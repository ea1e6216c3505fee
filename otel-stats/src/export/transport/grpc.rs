//! OTLP/gRPC by hand: an HTTP/2 POST of one length-prefixed message, and the status from
//! the trailers (or the trailers-only headers) - what a generated tonic client does, without
//! a per-request `tower` stack or a protobuf message to convert into.

use std::time::Duration;

use ::http::header::{CONTENT_TYPE, TE};
use ::http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode, Uri};
use hyper::body::Incoming;
use tonic::Code;
use tonic::metadata::MetadataMap;

use super::{Accepted, Failure, proto, read_body};
use crate::export::error::ConfigError;
use crate::export::retry::grpc_verdict;
use crate::rpc::status::{self, FinalStatus};

/// The gRPC method every OTLP/gRPC trace export calls.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// A gRPC message's prefix: the compressed flag and the big-endian length.
pub(super) const PREFIX_LEN: usize = 5;

const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
const GRPC_ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");
const GRPC_STATUS: &str = "grpc-status";
const GRPC_MESSAGE: &str = "grpc-message";
const GRPC_STATUS_DETAILS: &str = "grpc-status-details-bin";

/// The export method's URI on `endpoint` and the fixed headers. As with tonic's channel (the
/// standard exporter), a path in the endpoint is not used: the method's path is the path.
pub(super) fn request_parts(endpoint: &Uri, gzip: bool) -> Result<(Uri, HeaderMap), ConfigError> {
    let mut parts = endpoint.clone().into_parts();
    parts.path_and_query = Some(::http::uri::PathAndQuery::from_static(EXPORT_PATH));
    let uri = Uri::from_parts(parts)
        .map_err(|e| ConfigError::new("endpoint", endpoint.to_string(), e.to_string()))?;
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(TE, HeaderValue::from_static("trailers"));
    if gzip {
        headers.insert(GRPC_ENCODING, HeaderValue::from_static("gzip"));
    }
    Ok((uri, headers))
}

/// Fills in the prefix `body` starts with, for the message after it.
pub(super) fn write_prefix(body: &mut [u8], compressed: bool) {
    let len = u32::try_from(body.len() - PREFIX_LEN).unwrap_or(u32::MAX);
    body[0] = u8::from(compressed);
    body[1..PREFIX_LEN].copy_from_slice(&len.to_be_bytes());
}

/// `grpc-timeout` for `timeout`, in the unit that keeps it within the 8 digits allowed.
pub(super) fn set_timeout(headers: &mut HeaderMap, timeout: Duration) {
    let millis = timeout.as_millis();
    let value = if millis < 100_000_000 {
        format!("{millis}m")
    } else {
        format!("{}S", timeout.as_secs().min(99_999_999))
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(GRPC_TIMEOUT, value);
    }
}

/// The outcome of a gRPC call: its status, from the trailers-only headers or the trailers,
/// and the partial success in its response message.
pub(super) async fn read_response(response: Response<Incoming>) -> Result<Accepted, Failure> {
    let (head, body) = response.into_parts();
    if head.headers.contains_key(GRPC_STATUS) {
        return outcome(&head.headers, &[]);
    }
    if head.status != StatusCode::OK {
        // Not a gRPC answer (a proxy's, say): gRPC's mapping of HTTP statuses to codes.
        return Err(failure(status::from_http(head.status), None));
    }
    let (message, trailers) = read_body(body).await?;
    match trailers {
        Some(trailers) if trailers.contains_key(GRPC_STATUS) => outcome(&trailers, &message),
        _ => Err(failure(
            FinalStatus::new(Code::Internal, "the response ended without a grpc-status"),
            None,
        )),
    }
}

/// The call's outcome from the headers holding its `grpc-status`, and for `OK` the partial
/// success in `message` (a prefixed `ExportTraceServiceResponse`).
fn outcome(headers: &HeaderMap, message: &[u8]) -> Result<Accepted, Failure> {
    let status = status::from_values(headers.get(GRPC_STATUS), headers.get(GRPC_MESSAGE))
        .unwrap_or_else(|| FinalStatus::new(Code::Unknown, "no grpc-status"));
    if status.code == Code::Ok {
        // A compressed response (which we never ask for) is not read: no partial success.
        let partial = match message.split_at_checked(PREFIX_LEN) {
            Some(([0, ..], response)) => proto::partial_success(response),
            _ => None,
        };
        return Ok(Accepted { partial });
    }
    Err(failure(status, details(headers)))
}

/// The `google.rpc.Status` in `grpc-status-details-bin`, base64-decoded; malformed is none.
fn details(headers: &HeaderMap) -> Option<Vec<u8>> {
    let value = headers.get(GRPC_STATUS_DETAILS)?;
    let mut only = HeaderMap::with_capacity(1);
    only.insert(GRPC_STATUS_DETAILS, value.clone());
    let metadata = MetadataMap::from_headers(only);
    let bytes = metadata.get_bin(GRPC_STATUS_DETAILS)?.to_bytes().ok()?;
    Some(bytes.to_vec())
}

fn failure(status: FinalStatus, details: Option<Vec<u8>>) -> Failure {
    let delay = details.as_deref().and_then(proto::retry_delay);
    Failure::new(
        grpc_verdict(status.code, delay),
        format_args!("gRPC status {:?}: {}", status.code, status.message),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::retry::Verdict;

    #[test]
    fn grpc_timeout_fits_eight_digits() {
        let mut headers = HeaderMap::new();
        set_timeout(&mut headers, Duration::from_millis(1500));
        assert_eq!(headers[GRPC_TIMEOUT], "1500m");
        set_timeout(&mut headers, Duration::from_secs(1_000_000));
        assert_eq!(headers[GRPC_TIMEOUT], "1000000S");
    }

    #[test]
    fn trailers_only_status_carries_message_and_retry_info() {
        let mut headers = HeaderMap::new();
        headers.insert(GRPC_STATUS, HeaderValue::from_static("8"));
        headers.insert(GRPC_MESSAGE, HeaderValue::from_static("slow%20down"));
        // google.rpc.Status{details: [Any{RetryInfo{retry_delay: 1s}}]}, base64.
        headers.insert(
            GRPC_STATUS_DETAILS,
            HeaderValue::from_static(
                "GjAKKHR5cGUuZ29vZ2xlYXBpcy5jb20vZ29vZ2xlLnJwYy5SZXRyeUluZm8SBAoCCAE",
            ),
        );
        let failure = outcome(&headers, &[]).unwrap_err();
        assert_eq!(failure.verdict, Verdict::RetryAfter(Duration::from_secs(1)));
        assert!(failure.error.contains("slow down"), "{}", failure.error);
    }

    #[test]
    fn malformed_status_details_are_ignored() {
        let mut headers = HeaderMap::new();
        headers.insert(GRPC_STATUS, HeaderValue::from_static("8"));
        headers.insert(
            GRPC_STATUS_DETAILS,
            HeaderValue::from_static("!!not base64"),
        );
        assert_eq!(outcome(&headers, &[]).unwrap_err().verdict, Verdict::Fail);
    }

    #[test]
    fn ok_reads_the_partial_success() {
        let mut headers = HeaderMap::new();
        headers.insert(GRPC_STATUS, HeaderValue::from_static("0"));
        // ExportTraceServiceResponse{partial_success{rejected_spans: 3}}.
        let message = [0, 0, 0, 0, 4, 0x0a, 0x02, 0x08, 0x03];
        let accepted = outcome(&headers, &message).unwrap();
        assert_eq!(accepted.partial.map(|p| p.rejected), Some(3));
    }
}
