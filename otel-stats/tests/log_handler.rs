//! `LogHandler` on a real server and client: one JSON line per event, named as grpc-go names
//! them, with side, method, sizes, compression and status.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{Harness, Recorder, req};
use opentelemetry::Context;
use otel_stats::{ConnTagInfo, LogHandler, Side, StatsHandler};
use serde_json::Value;

/// A writer the test can read back.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_with_grpc_go_event_names() {
    let out = Shared::default();
    let h = Harness::start_with(Recorder::with_tee("server", LogHandler::json(out.clone()))).await;
    let mut client = h.client().await;
    client.unary_echo(req("hello")).await.unwrap();
    let _ = client.unary_echo(req("error")).await.unwrap_err();
    h.server.wait_ends(2).await;

    let lines = out.lines();
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        [
            "TagConn",
            "ConnBegin", //
            "TagRPC",
            "InHeader",
            "Begin",
            "InPayload",
            "OutHeader",
            "OutPayload",
            "OutTrailer",
            "End",
            "TagRPC",
            "InHeader",
            "Begin",
            "InPayload",
            "OutTrailer",
            "End",
        ]
    );
    for line in &lines {
        assert_eq!(line["side"], "server");
    }
    let rpc_lines = &lines[2..];
    assert!(
        rpc_lines
            .iter()
            .all(|l| l["method"] == "/grpc.examples.echo.Echo/UnaryEcho")
    );
    let payload = &lines[5];
    assert_eq!(payload["length"], 7);
    assert_eq!(payload["wire_length"], 12);
    assert_eq!(payload["compressed"], false);
    assert_eq!(lines[9]["code"], 0);
    assert_eq!(lines[15]["code"], 3);
    assert_eq!(lines[15]["status"], "INVALID_ARGUMENT");
    assert_eq!(lines[15]["message"], "echo: requested error");
    assert_eq!(lines[14]["trailers_only"], true);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_lines_read_like_the_grpc_go_example() {
    let out = Shared::default();
    let h = Harness::start_with(Recorder::with_tee("server", LogHandler::text(out.clone()))).await;
    let mut client = h.client().await;
    client.unary_echo(req("hello")).await.unwrap();
    h.server.wait_ends(1).await;
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let payload = text.lines().find(|l| l.contains("InPayload")).unwrap();
    assert!(payload.starts_with("[client addr: 127.0.0.1:"), "{payload}");
    assert!(
        payload.ends_with("HandleRPC: InPayload method=UnaryEcho seq=0 compressed=false length=7 compressed_length=7 wire_length=12"),
        "{payload}"
    );
    h.stop().await;
}

#[test]
fn clones_share_the_writer_and_the_numbering() {
    let out = Shared::default();
    let log = LogHandler::json(out.clone());
    let clone = log.clone();
    let info = ConnTagInfo::new(Side::Server, None, None);
    let _ = log.tag_conn(Context::new(), &info);
    let _ = clone.tag_conn(Context::new(), &info);
    let ids: Vec<Value> = out.lines().iter().map(|l| l["conn_id"].clone()).collect();
    assert_eq!(ids, [1, 2]);
}
