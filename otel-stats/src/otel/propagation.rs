//! Trace context in gRPC metadata: inject on the client, extract on the server, with the
//! propagator the user set, else the global one.

use std::fmt;

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::Context;
use opentelemetry::global;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;

/// Which propagator an [`OtelHandler`](crate::OtelHandler) uses.
pub(super) enum Propagation {
    /// The one the user passed to the builder.
    Custom(Box<dyn TextMapPropagator + Send + Sync>),
    /// The global one, looked up on each RPC so that setting it after the handler was built
    /// works; W3C trace context while the global one is OpenTelemetry's no-op default.
    Global,
}

impl fmt::Debug for Propagation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Propagation::Custom(p) => f.debug_tuple("Custom").field(p).finish(),
            Propagation::Global => f.write_str("Global"),
        }
    }
}

impl Propagation {
    fn with<R>(&self, mut f: impl FnMut(&dyn TextMapPropagator) -> R) -> R {
        match self {
            Propagation::Custom(p) => f(&**p),
            Propagation::Global => global::get_text_map_propagator(|p| {
                // The no-op default knows no fields; a server that nobody configured should
                // still join its callers' traces.
                if p.fields().next().is_none() {
                    f(&TraceContextPropagator::new())
                } else {
                    f(p)
                }
            }),
        }
    }

    /// Writes `cx`'s trace context (and whatever else the propagator carries) into `metadata`.
    pub(super) fn inject(&self, cx: &Context, metadata: &mut HeaderMap) {
        self.with(|p| p.inject_context(cx, &mut HeaderInjector(metadata)));
    }

    /// `cx` with what the propagator found in `metadata`. Malformed values are ignored.
    pub(super) fn extract(&self, cx: &Context, metadata: &HeaderMap) -> Context {
        self.with(|p| p.extract_with_context(cx, &HeaderExtractor(metadata)))
    }
}

/// W3C trace context's fields, the ones asked for on every RPC: named once, not parsed from
/// text each time.
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

fn header_name(key: &str) -> Option<HeaderName> {
    match key {
        "traceparent" => Some(TRACEPARENT),
        "tracestate" => Some(TRACESTATE),
        _ => HeaderName::from_bytes(key.as_bytes()).ok(),
    }
}

/// Sets propagation fields as request headers; a field that is not a valid header is dropped,
/// and so is an empty one (the SDK's W3C propagator sets `tracestate` even when there is no
/// state, and W3C trace context says an empty one should not be sent).
struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if value.is_empty() {
            return;
        }
        if let (Some(name), Ok(value)) = (header_name(key), HeaderValue::try_from(value)) {
            self.0.insert(name, value);
        }
    }
}

/// Reads propagation fields from request headers; a value that is not text reads as absent.
struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let value = match key {
            "traceparent" => self.0.get(&TRACEPARENT),
            "tracestate" => self.0.get(&TRACESTATE),
            _ => self.0.get(key),
        };
        value.and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };

    fn remote() -> SpanContext {
        SpanContext::new(
            TraceId::from(0x0af7651916cd43dd8448eb211c80319c),
            SpanId::from(0xb7ad6b7169203331),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        )
    }

    #[test]
    fn round_trip_through_headers() {
        let w3c = Propagation::Custom(Box::new(TraceContextPropagator::new()));
        let mut headers = HeaderMap::new();
        w3c.inject(
            &Context::new().with_remote_span_context(remote()),
            &mut headers,
        );
        assert_eq!(
            headers["traceparent"],
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        );
        assert!(!headers.contains_key("tracestate"), "no state, no header");
        let cx = w3c.extract(&Context::new(), &headers);
        assert_eq!(cx.span().span_context(), &remote());
    }

    #[test]
    fn trace_state_crosses_when_there_is_one() {
        let w3c = Propagation::Custom(Box::new(TraceContextPropagator::new()));
        let state = TraceState::from_key_value([("vendor", "v1")]).unwrap();
        let sc = SpanContext::new(
            remote().trace_id(),
            remote().span_id(),
            TraceFlags::SAMPLED,
            true,
            state,
        );
        let mut headers = HeaderMap::new();
        w3c.inject(
            &Context::new().with_remote_span_context(sc.clone()),
            &mut headers,
        );
        assert_eq!(headers["tracestate"], "vendor=v1");
        let cx = w3c.extract(&Context::new(), &headers);
        assert_eq!(cx.span().span_context(), &sc);
    }

    #[test]
    fn malformed_traceparent_is_ignored() {
        let w3c = Propagation::Custom(Box::new(TraceContextPropagator::new()));
        for bad in [
            &b"00-zz-01"[..],
            b"\xff\xfe",
            b"00-00000000000000000000000000000000-b7ad6b7169203331-01",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert("traceparent", HeaderValue::from_bytes(bad).unwrap());
            let cx = w3c.extract(&Context::new(), &headers);
            assert!(!cx.span().span_context().is_valid());
        }
    }
}
