//! Export to `https` collectors: a receiver with a certificate from a CA made in the test,
//! trusted through the configuration's CA file, over gRPC (tonic's rustls) and HTTP/protobuf
//! (our hyper + rustls client); mutual TLS with a client certificate; and the failures that
//! must show: an untrusted server, a missing client certificate, files that cannot be used.

mod common;

use std::time::Duration;

use common::export::{Pki, SPANS, mutual_tls, protocol, two_rpcs_through};
use common::otlp::{Receiver, Wire};

use otel_stats::export::{
    Compression, OtlpConfig, OtlpError, Protocol, SpanExporterKind, TlsSettings,
};

fn config(wire: Wire, receiver: &Receiver, tls: TlsSettings) -> OtlpConfig {
    let endpoint = receiver.endpoint();
    assert!(endpoint.starts_with("https://"), "{endpoint}");
    OtlpConfig::new(protocol(wire), &endpoint)
        .unwrap()
        .with_tls(tls)
        // Failures retry with backoff until the timeout: keep the failing cases short.
        .with_timeout(Duration::from_secs(3))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_metrics_arrive_over_tls_with_the_configured_ca() {
    let pki = Pki::new();
    for wire in [Wire::Grpc, Wire::Http] {
        let receiver = pki.receiver(wire, false).await;
        let tls = TlsSettings::new().with_ca_certificate(pki.files.ca());
        let config = config(wire, &receiver, tls).with_compression(Some(Compression::Gzip));
        let stats = two_rpcs_through(config).await;
        assert_eq!(stats.exported, SPANS, "{wire:?}: {stats}");
        assert_eq!(receiver.spans().len() as u64, SPANS, "{wire:?}");
        assert!(!receiver.metrics().is_empty(), "{wire:?}: metrics arrived");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_presents_the_client_certificate() {
    let pki = Pki::new();
    for wire in [Wire::Grpc, Wire::Http] {
        let receiver = pki.receiver(wire, true).await;
        let tls = mutual_tls(&pki);
        let stats = two_rpcs_through(config(wire, &receiver, tls)).await;
        assert_eq!(stats.exported, SPANS, "{wire:?}: {stats}");
        assert_eq!(receiver.spans().len() as u64, SPANS, "{wire:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_client_certificate_a_mutual_tls_collector_takes_nothing() {
    let pki = Pki::new();
    for wire in [Wire::Grpc, Wire::Http] {
        let receiver = pki.receiver(wire, true).await;
        let tls = TlsSettings::new().with_ca_certificate(pki.files.ca());
        let stats = two_rpcs_through(config(wire, &receiver, tls).with_metrics(None)).await;
        assert_eq!(stats.exported, 0, "{wire:?}: {stats}");
        assert_eq!(
            stats.failed, SPANS,
            "{wire:?}: the loss is counted: {stats}"
        );
        assert!(receiver.requests().is_empty(), "{wire:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_the_roots_do_not_trust_is_refused() {
    // No CA file: the webpki and system roots, which know nothing of the test CA.
    let pki = Pki::new();
    for wire in [Wire::Grpc, Wire::Http] {
        let receiver = pki.receiver(wire, false).await;
        let config = config(wire, &receiver, TlsSettings::new()).with_metrics(None);
        let stats = two_rpcs_through(config).await;
        assert_eq!(stats.failed, SPANS, "{wire:?}: {stats}");
        assert!(receiver.requests().is_empty(), "{wire:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_that_cannot_be_used_stop_the_setup() {
    let pki = Pki::new();
    let endpoint = "https://127.0.0.1:4318";
    let broken = pki
        .files
        .file("broken.pem", "-----BEGIN PRIVATE KEY-----\nnot base64\n");
    let cases = [
        (
            TlsSettings::new().with_ca_certificate(pki.files.file("empty.pem", "")),
            "tls.ca_certificate",
        ),
        (
            TlsSettings::new().with_client_identity(pki.files.client_cert(), &broken),
            "tls.client_key",
        ),
        (
            // The CA's certificate with the client's key: they do not belong together.
            TlsSettings::new().with_client_identity(
                pki.files.file("ca-as-client.pem", &pki.ca.cert),
                pki.files.client_key(),
            ),
            "tls.client_key",
        ),
        (
            TlsSettings::new().with_ca_certificate(pki.files.ca().with_extension("missing")),
            "tls.ca_certificate",
        ),
    ];
    // Each span exporter on its own (no metrics exporter to fail first): the standard one
    // over gRPC checks the files for tonic, which would otherwise fail only when connecting.
    let kinds = [
        SpanExporterKind::Direct,
        SpanExporterKind::Standard,
        SpanExporterKind::DirectProcessor,
    ];
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        for kind in kinds {
            for (tls, setting) in &cases {
                let config = OtlpConfig::new(protocol, endpoint)
                    .unwrap()
                    .with_tls(tls.clone())
                    .with_metrics(None)
                    .with_span_exporter(kind);
                match otel_stats::init_otlp_with("bad-tls", config) {
                    Err(OtlpError::Config(e)) => assert_eq!(e.setting(), *setting, "{e}"),
                    other => panic!(
                        "{protocol:?} {kind:?} {tls:?}: expected a configuration error, got {other:?}"
                    ),
                }
            }
        }
    }
}
