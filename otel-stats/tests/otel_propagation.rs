//! Trace context in the request metadata: W3C trace context by default, baggage only when the
//! propagator carries it, and the sampling decision travels with it.

mod common;

use std::sync::{Arc, Mutex};

use common::otel::{Spans, TestServer, of_kind};
use common::{Recorder, req};
use opentelemetry::baggage::BaggageExt;
use opentelemetry::context::FutureExt;
use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::trace::SpanKind;
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use otel_stats::{OtelHandler, RpcStats, StatsHandler};

/// Records the `user` baggage each server RPC's context carries.
#[derive(Default)]
struct BaggageProbe(Mutex<Vec<Option<String>>>);

impl StatsHandler for BaggageProbe {
    fn handle_rpc(&self, cx: &Context, stats: &RpcStats<'_>) {
        if let RpcStats::Begin(_) = stats {
            let user = cx.baggage().get("user").map(|v| v.to_string());
            self.0.lock().unwrap().push(user);
        }
    }
}

fn with_baggage() -> TextMapCompositePropagator {
    TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ])
}

fn caller() -> Context {
    Context::current_with_baggage([KeyValue::new("user", "ann")])
}

#[tokio::test]
async fn w3c_trace_context_by_default_and_no_baggage() {
    let spans = Spans::new();
    let seen = Arc::new(Recorder::new("server"));
    let server = TestServer::start((spans.handler(), Arc::clone(&seen))).await;
    let mut client = server.client(spans.handler()).await;
    client
        .unary_echo(req("hello"))
        .with_context(caller())
        .await
        .unwrap();
    let tag = seen
        .events()
        .into_iter()
        .find(|e| e.name == "TagRPC")
        .unwrap();
    assert!(
        tag.metadata_keys.contains(&"traceparent".to_owned()),
        "{:?}",
        tag.metadata_keys
    );
    assert!(
        !tag.metadata_keys.contains(&"baggage".to_owned()),
        "{:?}",
        tag.metadata_keys
    );
    server.stop().await;
}

/// The `user` baggage a server saw in its RPC contexts, both sides propagating baggage.
async fn baggage_seen(public_endpoint: bool) -> Vec<Option<String>> {
    let spans = Spans::new();
    let probe = Arc::new(BaggageProbe::default());
    let server_handler = spans
        .builder()
        .propagator(with_baggage())
        .public_endpoint(public_endpoint)
        .build();
    let server = TestServer::start((server_handler, Arc::clone(&probe))).await;
    let mut client = server
        .client(spans.builder().propagator(with_baggage()).build())
        .await;
    client
        .unary_echo(req("hello"))
        .with_context(caller())
        .await
        .unwrap();
    server.stop().await;
    probe.0.lock().unwrap().clone()
}

#[tokio::test]
async fn baggage_travels_when_the_propagator_carries_it() {
    assert_eq!(baggage_seen(false).await, [Some("ann".to_owned())]);
    // A public endpoint does not take baggage from callers it does not trust.
    assert_eq!(baggage_seen(true).await, [None]);
}

#[tokio::test]
async fn an_unsampled_caller_makes_the_server_unsampled_too() {
    let server_spans = Spans::new();
    let server = TestServer::start(server_spans.handler()).await;
    let never = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOff)
        .build();
    let client_handler = OtelHandler::builder().tracer_provider(never).build();
    let mut client = server.client(client_handler).await;
    client.unary_echo(req("hello")).await.unwrap();
    client.unary_echo(req("again")).await.unwrap();
    drop(client);
    // The server's connection span is a root, sampled; its RPC spans follow the caller.
    server.stop().await;
    let all = server_spans.wait_kind(SpanKind::Internal, 1).await;
    assert!(of_kind(&all, &SpanKind::Server).is_empty(), "{all:#?}");
}
