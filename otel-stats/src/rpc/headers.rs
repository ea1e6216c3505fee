//! The gRPC headers the layers read, found in one pass over a header map.
//!
//! A `HeaderMap::get` hashes the name (byte by byte for a `grpc-*` name) and probes: ~100
//! instructions, hit or miss. An RPC asks up to three questions of each map (a request: is it
//! gRPC, its timeout, its encoding; a response: trailers-only status, message, encoding), and
//! the maps are small, so one walk over the entries answers them all for less than one lookup.
//! A map with many entries is asked by lookup instead, so the cost stays bounded.

use std::time::Duration;

use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::status::{self, FinalStatus};

const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
const GRPC_ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");

/// Maps with more distinct names than this are looked up, not walked.
const WALK_MAX: usize = 16;

/// The first value of each header the layers read, as `HeaderMap::get` would return it.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct GrpcHeaders<'a> {
    content_type: Option<&'a HeaderValue>,
    timeout: Option<&'a HeaderValue>,
    encoding: Option<&'a HeaderValue>,
    status: Option<&'a HeaderValue>,
    message: Option<&'a HeaderValue>,
}

impl<'a> GrpcHeaders<'a> {
    pub(crate) fn of(headers: &'a HeaderMap) -> Self {
        if headers.keys_len() > WALK_MAX {
            Self::looked_up(headers)
        } else {
            Self::walked(headers)
        }
    }

    fn walked(headers: &'a HeaderMap) -> Self {
        let mut found = Self::default();
        for (name, value) in headers {
            let slot = if *name == CONTENT_TYPE {
                &mut found.content_type
            } else {
                match name.as_str().strip_prefix("grpc-") {
                    Some("status") => &mut found.status,
                    Some("message") => &mut found.message,
                    Some("timeout") => &mut found.timeout,
                    Some("encoding") => &mut found.encoding,
                    _ => continue,
                }
            };
            // The first value of a name, as `get` has it (extra values follow their first).
            slot.get_or_insert(value);
        }
        found
    }

    fn looked_up(headers: &'a HeaderMap) -> Self {
        GrpcHeaders {
            content_type: headers.get(CONTENT_TYPE),
            timeout: headers.get(GRPC_TIMEOUT),
            encoding: headers.get(GRPC_ENCODING),
            status: headers.get(GRPC_STATUS),
            message: headers.get(GRPC_MESSAGE),
        }
    }

    /// `content-type` is gRPC (`application/grpc[+proto|...]`).
    pub(crate) fn is_grpc(&self) -> bool {
        self.content_type
            .is_some_and(|ct| ct.as_bytes().starts_with(b"application/grpc"))
    }

    /// The request's `grpc-timeout`, when well-formed.
    pub(crate) fn timeout(&self) -> Option<Duration> {
        status::parse_timeout(self.timeout?.as_bytes())
    }

    /// The `grpc-encoding` of the messages that follow, `None` for identity.
    pub(crate) fn compression(&self) -> Option<&'a str> {
        self.encoding
            .and_then(|v| v.to_str().ok())
            .filter(|v| *v != "identity")
    }

    /// The status in trailers, or in the headers of a trailers-only response, if any.
    pub(crate) fn status(&self) -> Option<FinalStatus> {
        status::from_values(self.status, self.message)
    }
}

/// The `grpc-encoding` of `headers`, by one lookup (for a map that a handler may have changed
/// since it was walked).
pub(crate) fn compression(headers: &HeaderMap) -> Option<&str> {
    GrpcHeaders {
        encoding: headers.get(GRPC_ENCODING),
        ..GrpcHeaders::default()
    }
    .compression()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const NAMES: [&str; 10] = [
        "content-type",
        "grpc-status",
        "grpc-message",
        "grpc-timeout",
        "grpc-encoding",
        "grpc-accept-encoding",
        "grpc-status-details-bin",
        "te",
        "x-grpc-status",
        "user-agent",
    ];

    fn map(pairs: &[(usize, u8)], filler: usize) -> HeaderMap {
        let mut map = HeaderMap::new();
        for i in 0..filler {
            map.insert(
                HeaderName::try_from(format!("x-filler-{i}")).unwrap(),
                HeaderValue::from_static("f"),
            );
        }
        for &(name, value) in pairs {
            map.append(NAMES[name], HeaderValue::from(u32::from(value)));
        }
        map
    }

    proptest! {
        /// Walked or looked up, any map gives what `get` gives for each name, including maps
        /// with repeated names and look-alike names.
        #[test]
        fn a_walk_finds_what_get_finds(
            pairs in prop::collection::vec((0..NAMES.len(), any::<u8>()), 0..12),
            filler in prop_oneof![Just(0usize), 1..2 * WALK_MAX],
        ) {
            let headers = map(&pairs, filler);
            prop_assert_eq!(GrpcHeaders::walked(&headers), GrpcHeaders::looked_up(&headers));
            prop_assert_eq!(GrpcHeaders::of(&headers), GrpcHeaders::looked_up(&headers));
        }
    }

    #[test]
    fn answers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/grpc+proto"),
        );
        headers.insert(GRPC_TIMEOUT, HeaderValue::from_static("50m"));
        headers.insert(GRPC_ENCODING, HeaderValue::from_static("gzip"));
        headers.insert(GRPC_STATUS, HeaderValue::from_static("5"));
        let found = GrpcHeaders::of(&headers);
        assert!(found.is_grpc());
        assert_eq!(found.timeout(), Some(Duration::from_millis(50)));
        assert_eq!(found.compression(), Some("gzip"));
        assert_eq!(compression(&headers), Some("gzip"));
        assert_eq!(found.status().unwrap().code, tonic::Code::NotFound);

        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(GRPC_ENCODING, HeaderValue::from_static("identity"));
        let found = GrpcHeaders::of(&headers);
        assert!(!found.is_grpc());
        assert_eq!(found.compression(), None, "identity is no compression");
        assert_eq!(GrpcHeaders::of(&HeaderMap::new()), GrpcHeaders::default());
    }
}
