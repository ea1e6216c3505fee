//! Secrets sent in metadata never leave the process in telemetry: the exported OTLP bytes,
//! as the collector receives them, hold no trace of a bearer token, a cookie or a binary
//! header, even when their keys are allow-listed; and what a peer controls is length-capped.

mod common;

use std::time::Duration;

use common::otel::TestServer;
use common::otlp::Receiver;
use common::{PATIENCE, req};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use otel_stats::OtelHandler;
use otel_stats::export::{DirectSpanExporter, Protocol, SignalConfig};
use prost::Message;
use tonic::metadata::{BinaryMetadataValue, MetadataValue};

const SECRET: &str = "SECRET-7f3a9c";

/// A pipeline to `receiver`: `init_otlp`'s default exporter (otel-stats' own encoder), or
/// with `standard` opentelemetry-otlp's.
fn exporting_to(receiver: &Receiver, standard: bool) -> SdkTracerProvider {
    let builder = SdkTracerProvider::builder();
    if standard {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(receiver.endpoint())
            .with_timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        builder.with_batch_exporter(exporter).build()
    } else {
        let signal = SignalConfig::new(Protocol::Grpc, receiver.endpoint().parse().unwrap());
        builder
            .with_batch_exporter(DirectSpanExporter::new(&signal).unwrap())
            .build()
    }
}

fn handler(provider: &SdkTracerProvider) -> OtelHandler {
    OtelHandler::builder()
        .tracer_provider(provider.clone())
        .record_metadata([
            "authorization",
            "proxy-authorization",
            "cookie",
            "x-secret-bin",
            "x-tenant",
            "x-long",
        ])
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_bytes_hold_no_credential() {
    for standard in [false, true] {
        exported_bytes_hold_no_credential_through(standard).await;
    }
}

async fn exported_bytes_hold_no_credential_through(standard: bool) {
    let receiver = Receiver::start().await;
    let provider = exporting_to(&receiver, standard);
    let server = TestServer::start(handler(&provider)).await;
    let mut client = server.client(handler(&provider)).await;

    let mut request = tonic::Request::new(req("hello"));
    let md = request.metadata_mut();
    md.insert("authorization", format!("Bearer {SECRET}").parse().unwrap());
    md.insert(
        "proxy-authorization",
        format!("Basic {SECRET}").parse().unwrap(),
    );
    md.insert("cookie", format!("session={SECRET}").parse().unwrap());
    md.insert_bin(
        "x-secret-bin",
        BinaryMetadataValue::from_bytes(SECRET.as_bytes()),
    );
    md.insert("x-tenant", MetadataValue::from_static("acme-tenant"));
    md.insert("x-long", "L".repeat(4096).parse().unwrap());
    client.unary_echo(request).await.unwrap();
    drop(client);
    server.stop().await;
    tokio::time::timeout(
        PATIENCE,
        tokio::task::spawn_blocking(move || provider.shutdown()),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();

    let requests = receiver.requests();
    assert!(!requests.is_empty(), "something was exported");
    let bytes: Vec<u8> = requests.iter().flat_map(|r| r.encode_to_vec()).collect();
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(
        !contains(SECRET.as_bytes()),
        "a secret reached the collector"
    );
    // base64 of the binary header's value, as it travels in HTTP/2.
    assert!(!contains(b"U0VDUkVU"), "a -bin value reached the collector");
    // The scan can see metadata: the allow-listed, non-credential value is there.
    assert!(
        contains(b"acme-tenant"),
        "allow-listed metadata is recorded"
    );
    // And a value a peer controls is cut short.
    assert!(
        contains(&[b'L'; 400]) && !contains(&[b'L'; 600]),
        "metadata values are capped"
    );
}
