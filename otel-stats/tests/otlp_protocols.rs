//! `init_otlp_with` exports spans and metrics over both OTLP protocols, gRPC and HTTP with
//! protobuf bodies, to a real receiver in the test that decodes what arrives; gzip is
//! declared and undone by the receiver; headers travel; `OTEL_SDK_DISABLED` and a `none`
//! exporter send nothing; a protocol the collector does not speak loses spans visibly.

mod common;

use std::time::Duration;

use common::export::{SPANS, protocol, two_rpcs_through};
use common::otlp::{Receiver, Wire};
use http::{HeaderName, HeaderValue};
use otel_stats::export::{Compression, OtlpConfig, OtlpError, Protocol, SpanExporterKind};
use otel_stats::metrics::names;

fn config(wire: Wire, receiver: &Receiver) -> OtlpConfig {
    OtlpConfig::new(protocol(wire), &receiver.endpoint()).unwrap()
}

/// Every span arrives and is counted, and the server's call-duration metric arrives too.
fn assert_all_arrived(receiver: &Receiver, stats: otel_stats::ExportStats) {
    assert_eq!(stats.ended, SPANS, "{stats}");
    assert_eq!(stats.exported, SPANS, "{stats}");
    assert_eq!(receiver.spans().len() as u64, SPANS);
    let metrics = receiver.metrics();
    assert!(
        metrics
            .iter()
            .any(|m| m.name == names::RPC_SERVER_CALL_DURATION),
        "the server's call duration arrived: {:?}",
        metrics.iter().map(|m| &m.name).collect::<Vec<_>>()
    );
}

/// The value of `name` in every export request the receiver took.
fn header_values(receiver: &Receiver, name: &str) -> Vec<Option<String>> {
    receiver
        .headers()
        .iter()
        .map(|h| h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_metrics_arrive_over_grpc_and_http_protobuf() {
    for wire in [Wire::Grpc, Wire::Http] {
        let receiver = Receiver::speaking(wire, None).await;
        let stats = two_rpcs_through(config(wire, &receiver)).await;
        assert_all_arrived(&receiver, stats);
        let encodings = header_values(&receiver, "content-encoding");
        assert!(
            encodings.iter().all(Option::is_none),
            "{wire:?}: {encodings:?}"
        );
    }
}

/// The processor that encodes at `on_end` instead of the batch processor: the same
/// receivers, the same figures, also with gzip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_direct_processor_exports_every_span_on_both_protocols() {
    for (wire, gzip) in [(Wire::Grpc, false), (Wire::Http, true)] {
        let receiver = Receiver::speaking(wire, None).await;
        let config = config(wire, &receiver)
            .with_span_exporter(SpanExporterKind::DirectProcessor)
            .with_compression(gzip.then_some(Compression::Gzip));
        assert_all_arrived(&receiver, two_rpcs_through(config).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_is_declared_and_decoded_on_both_protocols() {
    for (wire, header) in [
        (Wire::Grpc, "grpc-encoding"),
        (Wire::Http, "content-encoding"),
    ] {
        let receiver = Receiver::speaking(wire, None).await;
        let config = config(wire, &receiver).with_compression(Some(Compression::Gzip));
        let stats = two_rpcs_through(config).await;
        assert_all_arrived(&receiver, stats);
        let encodings = header_values(&receiver, header);
        assert!(!encodings.is_empty());
        assert!(
            encodings.iter().all(|e| e.as_deref() == Some("gzip")),
            "{wire:?}: every request says gzip: {encodings:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_headers_reach_the_collector() {
    for wire in [Wire::Grpc, Wire::Http] {
        let receiver = Receiver::speaking(wire, None).await;
        let config = config(wire, &receiver).with_header(
            HeaderName::from_static("x-api-key"),
            // Set in code, a value is sent as it is: no second percent-decoding.
            HeaderValue::from_static("key%2042"),
        );
        assert_all_arrived(&receiver, two_rpcs_through(config).await);
        let keys = header_values(&receiver, "x-api-key");
        assert!(
            keys.iter().all(|k| k.as_deref() == Some("key%2042")),
            "{wire:?}: {keys:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_sdk_exports_nothing() {
    let receiver = Receiver::speaking(Wire::Grpc, None).await;
    let config = config(Wire::Grpc, &receiver).with_sdk_disabled(true);
    let stats = two_rpcs_through(config).await;
    assert_eq!(stats, otel_stats::ExportStats::default());
    assert!(receiver.requests().is_empty() && receiver.metric_requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_none_exporter_turns_one_signal_off() {
    let receiver = Receiver::speaking(Wire::Http, None).await;
    let stats = two_rpcs_through(config(Wire::Http, &receiver).with_traces(None)).await;
    assert_eq!(stats.ended, 0, "no span pipeline: {stats}");
    assert!(receiver.requests().is_empty(), "no spans were sent");
    assert!(!receiver.metrics().is_empty(), "metrics still were");

    let receiver = Receiver::speaking(Wire::Http, None).await;
    let stats = two_rpcs_through(config(Wire::Http, &receiver).with_metrics(None)).await;
    assert_eq!(stats.exported, SPANS, "{stats}");
    assert!(
        receiver.metric_requests().is_empty(),
        "no metrics were sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wrong_protocol_loses_spans_visibly() {
    // What issue 11 saw: gRPC sent to an OTLP/HTTP port. Now the figures say so.
    let receiver = Receiver::speaking(Wire::Http, None).await;
    let config = OtlpConfig::new(Protocol::Grpc, &receiver.endpoint())
        .unwrap()
        .with_timeout(Duration::from_secs(2))
        .with_metrics(None);
    let stats = two_rpcs_through(config).await;
    assert_eq!(stats.exported, 0, "{stats}");
    assert_eq!(
        stats.failed, SPANS,
        "every span is counted as failed: {stats}"
    );
    assert!(receiver.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zstd_set_in_code_is_refused_at_start() {
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let config = OtlpConfig::new(protocol, "http://127.0.0.1:4317")
            .unwrap()
            .with_compression(Some(Compression::Zstd));
        match otel_stats::init_otlp_with("zstd", config) {
            Err(OtlpError::Config(e)) => assert_eq!(e.value(), "zstd", "{e}"),
            other => panic!("{protocol:?}: expected a configuration error, got {other:?}"),
        }
    }
}
