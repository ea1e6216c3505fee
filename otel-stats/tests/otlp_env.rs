//! The variables, end to end: a set of `OTEL_*` variables (through a lookup function, as the
//! process environment is shared by parallel tests) resolved by `OtlpConfig::from_lookup`
//! and installed by `init_otlp_with`, against an https OTLP/HTTP receiver that checks what
//! they asked for; and a bad variable stops the setup with its name and value.

mod common;

use std::collections::HashMap;

use common::export::{SPANS, TlsFiles, two_rpcs_through};
use common::otlp::{Receiver, Wire};
use common::tls::TestCa;
use otel_stats::export::OtlpConfig;

fn lookup(vars: HashMap<&'static str, String>) -> impl Fn(&str) -> Option<String> {
    move |name| vars.get(name).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_variables_choose_protocol_endpoint_tls_compression_headers_and_signals() {
    let ca = TestCa::new();
    let files = TlsFiles::new(&ca, &ca.client("exporter"));
    let receiver = Receiver::speaking(Wire::Http, Some(ca.rustls_server(&ca.server(), true))).await;
    let file = |p: std::path::PathBuf| p.to_str().unwrap().to_owned();
    let vars = HashMap::from([
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip".to_owned()),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "x-tenant=acme%20corp".to_owned(),
        ),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "5000".to_owned()),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", file(files.ca())),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            file(files.client_cert()),
        ),
        ("OTEL_EXPORTER_OTLP_CLIENT_KEY", file(files.client_key())),
        ("OTEL_METRICS_EXPORTER", "none".to_owned()),
        ("OTEL_PROPAGATORS", "tracecontext".to_owned()),
    ]);
    let config = OtlpConfig::from_lookup(lookup(vars)).unwrap();
    let stats = two_rpcs_through(config).await;

    assert_eq!(stats.exported, SPANS, "{stats}");
    assert_eq!(receiver.spans().len() as u64, SPANS);
    assert!(receiver.metric_requests().is_empty(), "metrics are off");
    for headers in receiver.headers() {
        assert_eq!(headers["content-encoding"], "gzip");
        assert_eq!(headers["x-tenant"], "acme corp");
    }
}

#[test]
fn a_bad_variable_stops_the_setup_with_its_name_and_value() {
    let vars = HashMap::from([
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "https://collector:4318".to_owned(),
        ),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip".to_owned()),
        ("OTEL_PROPAGATORS", "tracecontext,b3".to_owned()),
    ]);
    let error = OtlpConfig::from_lookup(lookup(vars)).unwrap_err();
    assert_eq!(error.setting(), "OTEL_PROPAGATORS");
    assert_eq!(error.value(), "tracecontext,b3");
    assert_eq!(
        error.to_string(),
        "OTEL_PROPAGATORS=\"tracecontext,b3\": the b3 propagator is not supported: use \
         tracecontext, baggage or none"
    );
}
