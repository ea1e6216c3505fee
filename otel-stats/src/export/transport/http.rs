//! OTLP/HTTP with protobuf bodies: a POST of the request message to the signal's URL, the
//! HTTP status for the outcome, and a `google.rpc.Status` body on failure.

use ::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use ::http::{HeaderMap, HeaderValue, Response, Uri};
use hyper::body::Incoming;

use super::{Accepted, Failure, proto, read_body};
use crate::export::retry::http_verdict;

const PROTOBUF: HeaderValue = HeaderValue::from_static("application/x-protobuf");

/// The URL (the endpoint as configured: it already names `/v1/traces`) and fixed headers.
pub(super) fn request_parts(endpoint: &Uri, gzip: bool) -> (Uri, HeaderMap) {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, PROTOBUF);
    if gzip {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    (endpoint.clone(), headers)
}

/// The outcome: a 2xx with the partial success in its body, or the status's verdict with the
/// collector's message.
pub(super) async fn read_response(response: Response<Incoming>) -> Result<Accepted, Failure> {
    let (head, body) = response.into_parts();
    if head.status.is_success() {
        let (body, _) = read_body(body).await?;
        let partial = protobuf(&head.headers)
            .then(|| proto::partial_success(&body))
            .flatten();
        return Ok(Accepted { partial });
    }
    let verdict = http_verdict(head.status, &head.headers);
    // The reason is worth a read, not a retry: a body that cannot be read says nothing.
    // A proxy's error page is cut short: the error is one line of a warning.
    let message = match read_body(body).await {
        Ok((body, _)) if protobuf(&head.headers) => proto::status_message(&body),
        Ok((body, _)) if !body.is_empty() => {
            Some(String::from_utf8_lossy(&body[..body.len().min(MAX_MESSAGE_BYTES)]).into_owned())
        }
        _ => None,
    };
    Err(Failure::new(
        verdict,
        format_args!(
            "HTTP status {}{}{}",
            head.status,
            if message.is_some() { ": " } else { "" },
            message.as_deref().unwrap_or_default()
        ),
    ))
}

/// The most of a non-protobuf error body quoted in the error.
const MAX_MESSAGE_BYTES: usize = 256;

/// Whether the body is protobuf (`application/x-protobuf`, parameters allowed).
fn protobuf(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROTOBUF.as_bytes()))
}
