//! `ServerStatsLayer` with `OtelHandler`s and `LogHandler`s, on a request with arbitrary
//! headers (`content-type`, `grpc-timeout`, `grpc-encoding`, `traceparent`, `tracestate`,
//! `baggage` often) and body, answered by a service with arbitrary headers, body and trailers
//! (`grpc-status` and `grpc-message` often), or an error.
//!
//! Checks: nothing panics (a panic in a hook is contained by the layer, but libFuzzer's panic
//! hook aborts on it all the same); the service sees every request frame unchanged; the
//! response comes out unchanged (status, headers, each frame, trailers, error); a gRPC request
//! is tagged once and ends once, `End` last; a non-gRPC one is not tagged; when both bodies
//! were read to the end, one payload event per message.

#![no_main]

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use http::{Request, Response};
use libfuzzer_sys::fuzz_target;
use otel_stats::{RpcRequestExt, ServerStatsLayer};
use otel_stats_fuzz::*;
use tower::{Layer, Service, ServiceExt};

#[derive(Arbitrary, Debug)]
struct Input {
    path: PathSpec,
    headers: Vec<Header>,
    request: BodySpec,
    /// The service's HTTP status, 200 when absent or invalid.
    status: Option<u16>,
    response_headers: Vec<Header>,
    response: BodySpec,
    /// The service fails instead of answering.
    service_error: Option<ErrSpec>,
    /// Read at most this many response frames, then drop the body.
    read_limit: Option<u8>,
    /// Drop the response future without polling it.
    drop_future: bool,
}

fn layer() -> &'static ServerStatsLayer<Handlers> {
    static LAYER: OnceLock<ServerStatsLayer<Handlers>> = OnceLock::new();
    LAYER.get_or_init(|| ServerStatsLayer::new(handlers()))
}

#[derive(Default)]
struct Seen {
    called: bool,
    request: Option<(Frames, bool)>,
    had_context: bool,
}

fuzz_target!(|input: Input| {
    let layer = layer();
    let counter = counter(layer.handler());
    counter.reset();

    let headers = header_map(&input.headers);
    let grpc = is_grpc(&headers);
    let request = request(&input.path, headers, input.request.body());
    let status = status_of(input.status);
    let response_headers = header_map(&input.response_headers);
    let response_spec = input.response.clone();
    let service_error = input.service_error.clone();
    let seen = Rc::new(RefCell::new(Seen::default()));
    let seen_in = Rc::clone(&seen);
    let response_headers_in = response_headers.clone();
    let inner = tower::service_fn(move |req: Request<_>| {
        let seen = Rc::clone(&seen_in);
        let response_spec = response_spec.clone();
        let service_error = service_error.clone();
        let response_headers = response_headers_in.clone();
        async move {
            {
                let mut seen = seen.borrow_mut();
                seen.called = true;
                seen.had_context = req.rpc_context().is_some();
            }
            let request_frames = drain(req.into_body(), None).await;
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
    let mut service = layer.layer(inner);
    let future = run(ServiceExt::<Request<SpecBody>>::ready(&mut service))
        .unwrap()
        .call(request);

    if input.drop_future {
        drop(future);
        drop(service);
        assert!(!seen.borrow().called);
        assert_rpc_ended(counter, grpc);
        return;
    }

    let result = run(future);
    {
        let seen = seen.borrow();
        assert!(seen.called);
        assert_eq!(
            seen.had_context, grpc,
            "the RPC context is in the extensions iff gRPC"
        );
        let (request_frames, complete) = seen.request.as_ref().unwrap();
        assert!(complete);
        assert_frames("request", request_frames, &input.request.frames(), true);
    }
    let trailers_only = response_headers.contains_key("grpc-status");
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
            Counter::get(&counter.in_payloads),
            message_count(&input.request.bytes()),
            "one InPayload per request message"
        );
        if fully_read && !trailers_only {
            assert_eq!(
                Counter::get(&counter.out_payloads),
                message_count(&input.response.bytes()),
                "one OutPayload per response message"
            );
        }
    }
});
