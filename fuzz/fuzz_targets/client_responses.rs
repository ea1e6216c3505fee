//! `ClientStatsLayer` with `OtelHandler`s and `LogHandler`s, sending a request with arbitrary
//! headers and body to a service that answers with an arbitrary response: any HTTP status,
//! headers (trailers-only when they hold `grpc-status`), body frames, trailers with arbitrary
//! `grpc-status` / `grpc-message`, a body error, or a service error.
//!
//! Checks: nothing panics; the service sees the request frames unchanged and the caller's
//! headers unchanged but for the propagation fields the handler injects; the response comes
//! out unchanged; a gRPC request is tagged once and ends once, `End` last; when both bodies
//! were read to the end, one payload event per message.

#![no_main]

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use http::uri::Authority;
use http::{HeaderMap, Request, Response, StatusCode};
use libfuzzer_sys::fuzz_target;
use otel_stats::ClientStatsLayer;
use otel_stats_fuzz::*;
use tower::{Layer, Service, ServiceExt};

#[derive(Arbitrary, Debug)]
struct Input {
    path: PathSpec,
    authority: Option<Vec<u8>>,
    headers: Vec<Header>,
    request: BodySpec,
    status: Option<u16>,
    response_headers: Vec<Header>,
    response: BodySpec,
    service_error: Option<ErrSpec>,
    read_limit: Option<u8>,
    drop_future: bool,
}

/// The fields the handlers' propagator may write into the outgoing metadata.
const INJECTED: [&str; 3] = ["traceparent", "tracestate", "baggage"];

fn layer() -> &'static ClientStatsLayer<Handlers> {
    static LAYER: OnceLock<ClientStatsLayer<Handlers>> = OnceLock::new();
    LAYER.get_or_init(|| ClientStatsLayer::new(handlers()))
}

fn without_injected(headers: &HeaderMap) -> HeaderMap {
    let mut h = headers.clone();
    for k in INJECTED {
        h.remove(k);
    }
    h
}

#[derive(Default)]
struct Seen {
    called: bool,
    headers: HeaderMap,
    request: Option<Frames>,
}

fuzz_target!(|input: Input| {
    let layer = layer();
    let counter = counter(layer.handler());
    counter.reset();

    let headers = header_map(&input.headers);
    let grpc = is_grpc(&headers);
    let request = request(&input.path, headers.clone(), input.request.body());
    let status = status_of(input.status);
    let response_headers = header_map(&input.response_headers);
    let response_spec = input.response.clone();
    let service_error = input.service_error.clone();
    let seen = Rc::new(RefCell::new(Seen::default()));
    let seen_in = Rc::clone(&seen);
    let response_headers_in = response_headers.clone();
    let inner = tower::service_fn(move |req: Request<tonic::body::Body>| {
        let seen = Rc::clone(&seen_in);
        let response_spec = response_spec.clone();
        let service_error = service_error.clone();
        let response_headers = response_headers_in.clone();
        async move {
            {
                let mut seen = seen.borrow_mut();
                seen.called = true;
                seen.headers = req.headers().clone();
            }
            let (request_frames, _) = drain(req.into_body(), None).await;
            seen.borrow_mut().request = Some(request_frames);
            if let Some(e) = service_error {
                return Err::<Response<SpecBody>, BoxError>(e.error());
            }
            let mut response = Response::new(response_spec.body());
            *response.status_mut() = status;
            *response.headers_mut() = response_headers;
            Ok(response)
        }
    });
    let authority = input
        .authority
        .as_deref()
        .and_then(|a| Authority::try_from(a).ok());
    let mut service = layer.layer(inner).with_authority(authority);
    let future = run(ServiceExt::<Request<SpecBody>>::ready(&mut service))
        .unwrap()
        .call(request);
    // The client layer calls the inner service at once: the request is on its way.

    if input.drop_future {
        drop(future);
        drop(service);
        assert_rpc_ended(counter, grpc);
        return;
    }

    let result = run(future);
    {
        let seen = seen.borrow();
        assert!(seen.called);
        if grpc {
            assert_eq!(
                without_injected(&seen.headers),
                without_injected(&headers),
                "the caller's metadata changed"
            );
        } else {
            assert_eq!(
                seen.headers, headers,
                "a non-gRPC request's headers changed"
            );
        }
        let sent = seen.request.as_ref().unwrap();
        // tonic's body maps a body error to a `Status`; the frames before it are the same.
        assert_frames("request", sent, &input.request.frames(), true);
    }
    let passthrough = response_headers.contains_key("grpc-status") || status != StatusCode::OK;
    let fully_read = check_response(
        result,
        &input.service_error,
        status,
        &response_headers,
        &input.response,
        input.read_limit,
    );
    drop(service);
    check_ended(counter, grpc, status, fully_read);

    if grpc {
        assert_eq!(
            Counter::get(&counter.out_payloads),
            message_count(&input.request.bytes()),
            "one OutPayload per request message"
        );
        if fully_read && !passthrough {
            assert_eq!(
                Counter::get(&counter.in_payloads),
                message_count(&input.response.bytes()),
                "one InPayload per response message"
            );
        }
    }
});
