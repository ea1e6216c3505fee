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
    let output = client(&[
        "--addr",
        &url,
        "--tls-ca",
        &pki.ca,
        "--tls-cert",
        &pki.client_cert,
        "--tls-key",
        &pki.client_key,
        "--unary",
        "whoami",
    ])
    .await;
    let (_, certs) = whoami(&output);
    assert_eq!(certs, "certs=1");
    // Without its certificate the client is refused.
    let refused = client(&["--addr", &url, "--tls-ca", &pki.ca, "--unary", "whoami"]).await;
    assert!(
        !refused.status.success(),
        "an mTLS server let a client in without a certificate"
    );
}
