//! End to end: `init_otlp` exports the spans of real RPCs over OTLP/gRPC, with the SDK's
//! batch processor, to a real OTLP receiver in this test (the `opentelemetry-proto` crate's
//! `TraceServiceServer`), which decodes what was sent.

mod common;

use common::otel::{TestServer, wanting};
use common::otlp::Receiver;
use common::req;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use otel_stats::{OtelHandler, init_otlp};
use tonic::Code;

fn value(attrs: &[KeyValue], key: &str) -> Option<any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.clone())
        .and_then(|AnyValue { value }| value)
}

fn string(attrs: &[KeyValue], key: &str) -> Option<String> {
    match value(attrs, key) {
        Some(any_value::Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

#[test]
fn spans_of_real_rpcs_arrive_at_an_otlp_receiver() {
    // The receiver's port must be in the environment before the exporter reads it, and the
    // environment must be set before any other thread runs.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    // SAFETY: no other thread of this test binary runs yet: this is its only test.
    unsafe {
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint);
        for unset in [
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_SERVICE_NAME",
            "OTEL_PROPAGATORS",
            "OTEL_SDK_DISABLED",
        ] {
            std::env::remove_var(unset);
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let requests = runtime.block_on(async move {
        let receiver = Receiver::on(listener).await;

        let telemetry = init_otlp("otlp-e2e").unwrap();
        let server = TestServer::start(OtelHandler::new()).await;
        let mut client = server.client(OtelHandler::new()).await;
        client.unary_echo(req("hello")).await.unwrap();
        let failed = client.unary_echo(wanting("boom", Code::Internal)).await;
        assert_eq!(failed.unwrap_err().code(), Code::Internal);
        drop(client);
        server.stop().await;
        // The client's side of the connection ends when its task sees the server close it,
        // which may be a moment after the server has stopped: wait for all six spans to end
        // before shutting the pipeline down.
        tokio::time::timeout(common::PATIENCE, async {
            while telemetry.export_stats().ended < 6 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("six spans ended");

        // Shutting down exports what the batch processor holds; it blocks, so off the runtime.
        tokio::task::spawn_blocking(move || telemetry.shutdown())
            .await
            .unwrap()
            .unwrap();
        receiver.requests()
    });

    assert!(!requests.is_empty(), "nothing was exported");
    let mut spans = Vec::new();
    for resource_spans in requests.iter().flat_map(|r| &r.resource_spans) {
        let resource = resource_spans.resource.as_ref().unwrap();
        assert_eq!(
            string(&resource.attributes, "service.name").as_deref(),
            Some("otlp-e2e")
        );
        for scope_spans in &resource_spans.scope_spans {
            assert_eq!(scope_spans.scope.as_ref().unwrap().name, "otel-stats");
            spans.extend(scope_spans.spans.iter().cloned());
        }
    }
    assert_eq!(spans.len(), 6, "two RPCs on each side and two connections");

    let clients: Vec<&Span> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Client as i32)
        .collect();
    let servers: Vec<&Span> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Server as i32)
        .collect();
    assert_eq!((clients.len(), servers.len()), (2, 2));
    let server_conn = spans
        .iter()
        .filter(|s| s.name == "grpc.connection")
        .find(|c| {
            servers
                .iter()
                .all(|s| s.links.iter().any(|l| l.span_id == c.span_id))
        })
        .expect("the server connection span, linked from both server spans");
    assert_eq!(server_conn.kind, SpanKind::Internal as i32);

    for server_span in &servers {
        assert_eq!(server_span.name, "grpc.examples.echo.Echo/UnaryEcho");
        let client_span = clients
            .iter()
            .find(|c| c.span_id == server_span.parent_span_id)
            .expect("each server span is the child of a client span");
        assert_eq!(client_span.trace_id, server_span.trace_id);
        assert_eq!(
            string(&server_span.attributes, "rpc.method").as_deref(),
            Some("grpc.examples.echo.Echo/UnaryEcho")
        );
        let code = string(&server_span.attributes, "rpc.response.status_code").unwrap();
        let status = |s: &Span| s.status.clone().unwrap_or_default();
        match code.as_str() {
            "OK" => {
                let events: Vec<_> = server_span.events.iter().map(|e| e.name.as_str()).collect();
                assert_eq!(
                    events,
                    [
                        "Inbound headers",
                        "Inbound message",
                        "Outbound headers",
                        "Outbound message",
                        "Outbound trailers"
                    ]
                );
                assert_eq!(status(server_span).code, StatusCode::Unset as i32);
                assert_eq!(status(client_span).code, StatusCode::Unset as i32);
            }
            "INTERNAL" => {
                assert_eq!(status(server_span).code, StatusCode::Error as i32);
                assert_eq!(status(server_span).message, "wanted 13");
                assert_eq!(status(client_span).code, StatusCode::Error as i32);
                assert_eq!(
                    string(&client_span.attributes, "error.type").as_deref(),
                    Some("INTERNAL")
                );
            }
            other => panic!("unexpected status {other}"),
        }
    }
}
