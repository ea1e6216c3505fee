//! The demo over TLS and mTLS, as a user runs it: the server and client binaries with PEM
//! files (made here, never checked in), and the server's `whoami` answer, which is what tonic
//! tells the echo service about the caller behind otel-stats' layer and connection wrapper.

mod common;

#[path = "../../otel-stats/tests/common/tls.rs"]
#[allow(dead_code)]
mod tls;

use std::path::PathBuf;
use std::process::Output;

use common::PATIENCE;
use tls::TestCa;
use tokio::process::Command;

/// PEM files in a directory of their own, removed at the end.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn new(test: &str) -> Files {
        let dir =
            std::env::temp_dir().join(format!("otel-stats-demo-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Files { dir }
    }

    fn write(&self, name: &str, contents: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The demo server with `args`, with no export.
async fn server(args: &[&str]) -> common::DemoServer {
    common::start_server(
        Command::new(env!("CARGO_BIN_EXE_server"))
            .args(args)
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
    )
    .await
}

/// The demo client, to completion.
async fn client(args: &[&str]) -> Output {
    let run = Command::new(env!("CARGO_BIN_EXE_client"))
        .args(args)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(PATIENCE, run).await.unwrap().unwrap()
}

/// The client's `whoami` answer: `127.0.0.1:<port> certs=<n>`; fails on anything else.
fn whoami(output: &Output) -> (u16, String) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "client failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (addr, certs) = stdout.trim().split_once(' ').unwrap();
    let port = addr.strip_prefix("127.0.0.1:").unwrap().parse().unwrap();
    (port, certs.to_owned())
}

struct Pki {
    /// Kept so that the files outlive the test.
    _files: Files,
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn pki(test: &str) -> Pki {
    let ca = TestCa::new();
    let server = ca.server();
    let client = ca.client("demo-client");
    let files = Files::new(test);
    Pki {
        ca: files.write("ca.pem", &ca.cert),
        server_cert: files.write("server.pem", &server.cert),
        server_key: files.write("server.key", &server.key),
        client_cert: files.write("client.pem", &client.cert),
        client_key: files.write("client.key", &client.key),
        _files: files,
    }
}

/// The client binary, with the PKI's client certificate, asks `url` "whoami".
async fn whoami_with_certificate(pki: &Pki, url: &str) -> Output {
    client(&[
        "--addr",
        url,
        "--tls-ca",
        &pki.ca,
        "--tls-cert",
        &pki.client_cert,
        "--tls-key",
        &pki.client_key,
        "--unary",
        "whoami",
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_whoami_names_the_caller_without_certificates() {
    let pki = pki("tls");
    let server = server(&["--tls-cert", &pki.server_cert, "--tls-key", &pki.server_key]).await;
    let url = format!("https://{}", server.addr);
    let output = client(&["--addr", &url, "--tls-ca", &pki.ca, "--unary", "whoami"]).await;
    let (port, certs) = whoami(&output);
    assert_ne!(port, 0);
    assert_eq!(certs, "certs=0");
    // A client that trusts no CA gets nowhere, and says why.
    let refused = client(&["--addr", &url, "--unary", "whoami"]).await;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--tls-ca"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_mtls_whoami_counts_the_client_certificate() {
    let pki = pki("mtls");
    let server = server(&[
        "--tls-cert",
        &pki.server_cert,
        "--tls-key",
        &pki.server_key,
        "--tls-client-ca",
        &pki.ca,
    ])
    .await;
    let url = format!("https://{}", server.addr);
    let output = whoami_with_certificate(&pki, &url).await;
    let (_, certs) = whoami(&output);
    assert_eq!(certs, "certs=1");
    // Without its certificate the client is refused.
    let refused = client(&["--addr", &url, "--tls-ca", &pki.ca, "--unary", "whoami"]).await;
    assert!(
        !refused.status.success(),
        "an mTLS server let a client in without a certificate"
    );
}

/// An OTLP/HTTP receiver that is not ours: the OpenTelemetry project's Python protobuf
/// bindings behind Python's own HTTP server (`otlp_python_receiver.py`).
struct PythonReceiver {
    _child: tokio::process::Child,
    port: u16,
    /// The JSON line of each request it accepted.
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl PythonReceiver {
    /// `None` when `python3` or the bindings are missing, which only a developer's machine
    /// may lack: CI installs them (`.ci/run`) and there their absence fails the test.
    async fn start() -> Option<PythonReceiver> {
        use std::process::Stdio;
        use tokio::io::{AsyncBufReadExt, BufReader};

        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/otlp_python_receiver.py");
        let mut child = Command::new("python3")
            .arg(script)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .ok()?;
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(PATIENCE, out.next_line()).await.ok()?;
        let port = first.ok()??.strip_prefix("listening ")?.parse().ok()?;
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = out.next_line().await {
                let _ = tx.send(line);
            }
        });
        Some(PythonReceiver {
            _child: child,
            port,
            lines,
        })
    }

    /// The span names of the trace requests received until `done` says enough, each with
    /// the request's content encoding.
    async fn spans_until(
        &mut self,
        done: impl Fn(&[(String, String)]) -> bool,
    ) -> Vec<(String, String)> {
        let mut spans = Vec::new();
        tokio::time::timeout(PATIENCE, async {
            while !done(&spans) {
                let line = self.lines.recv().await.expect("the receiver exited");
                let request: serde_json::Value = serde_json::from_str(&line).unwrap();
                if request["path"] != "/v1/traces" {
                    continue;
                }
                assert_eq!(request["content_type"], "application/x-protobuf");
                let encoding = request["content_encoding"].as_str().unwrap().to_owned();
                for span in request["spans"].as_array().unwrap() {
                    spans.push((span[0].as_str().unwrap().to_owned(), encoding.clone()));
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("spans received so far: {spans:?}"));
        spans
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_mtls_spans_reach_a_collector_that_is_not_ours_over_http_protobuf_with_gzip() {
    let Some(mut receiver) = PythonReceiver::start().await else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have python3 with opentelemetry-proto"
        );
        eprintln!("skipped: python3 with opentelemetry-proto is not installed");
        return;
    };
    let pki = pki("mtls-export");
    let endpoint = format!("http://127.0.0.1:{}", receiver.port);
    let server = common::start_server(
        Command::new(env!("CARGO_BIN_EXE_server"))
            .args(["--tls-cert", &pki.server_cert, "--tls-key", &pki.server_key])
            .args(["--tls-client-ca", &pki.ca])
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
            .env("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
            .env("OTEL_BSP_SCHEDULE_DELAY", "50")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .env_remove("OTEL_SDK_DISABLED")
            .env_remove("OTEL_TRACES_EXPORTER"),
    )
    .await;
    let url = format!("https://{}", server.addr);
    let output = whoami_with_certificate(&pki, &url).await;
    assert_eq!(whoami(&output).1, "certs=1");
    // The RPC's span is exported as the RPC ends; its connection's when the client hangs up.
    let spans = receiver
        .spans_until(|spans| {
            let has = |name: &str| spans.iter().any(|(n, _)| n == name);
            has("grpc.examples.echo.Echo/UnaryEcho") && has("grpc.connection")
        })
        .await;
    assert!(
        spans.iter().all(|(_, encoding)| encoding == "gzip"),
        "every request gzip-compressed: {spans:?}"
    );
}
