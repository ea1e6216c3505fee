//! Exactly one `End` per `TagRPC`, always: a few thousand RPCs of every kind on several
//! connections, with random client cancellations, deadlines, streams dropped midway and
//! services that panic; and connections cut under RPCs in flight.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use common::otel::Spans;
use common::recorder::count;
use common::storm::storm;
use common::{Event, Harness, PATIENCE, Recorder, req};
use opentelemetry::trace::SpanKind;
use tokio::task::JoinSet;
use tokio_stream::StreamExt;
use tower::Layer;

const RPCS: u64 = 2_000;
const CONNECTIONS: usize = 4;
const CONCURRENCY: usize = 64;

/// Every tagged RPC has exactly one `End`, and nothing of it comes after its `End`.
fn assert_one_end_each(side: &str, events: &[Event], tagged: Option<u64>) {
    let mut by_rpc: HashMap<u64, Vec<&'static str>> = HashMap::new();
    for e in events {
        if let Some(rpc) = e.rpc {
            by_rpc.entry(rpc).or_default().push(e.name);
        }
    }
    if let Some(tagged) = tagged {
        assert_eq!(by_rpc.len() as u64, tagged, "{side}: every RPC was tagged");
    }
    assert_eq!(by_rpc.len(), count(events, "TagRPC"));
    for (rpc, names) in by_rpc {
        let ends = names.iter().filter(|n| **n == "End").count();
        assert_eq!(ends, 1, "{side} rpc {rpc}: {names:?}");
        assert_eq!(
            names.first(),
            Some(&"TagRPC"),
            "{side} rpc {rpc}: {names:?}"
        );
        assert_eq!(names.last(), Some(&"End"), "{side} rpc {rpc}: {names:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_end_per_rpc_under_random_cancellation() {
    // Some services panic on purpose; keep the output readable.
    std::panic::set_hook(Box::new(|_| {}));
    let tasks_before = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    // The server's events also make spans, to check each is ended exactly once.
    let spans = Spans::new();
    let h = Arc::new(Harness::start_with(Recorder::with_tee("server", spans.handler())).await);
    let mut clients = Vec::new();
    for _ in 0..CONNECTIONS {
        clients.push(h.client().await);
    }
    storm(&clients, RPCS, CONCURRENCY, 0x5eed_1234_abcd_0001).await;
    let client_events = h.client.wait_ends(RPCS as usize).await;
    assert_one_end_each("client", &client_events, Some(RPCS));

    // Some RPCs were cancelled before their headers left the client, so the server saw fewer.
    // Once every connection is closed, each one it saw must have ended, once.
    drop(clients);
    let h = Arc::into_inner(h).unwrap();
    let server_events = h
        .server
        .wait_for("every connection closed and every RPC ended", |e| {
            count(e, "ConnEnd") == CONNECTIONS && count(e, "End") == count(e, "TagRPC")
        })
        .await;
    assert_one_end_each("server", &server_events, None);
    let tagged = count(&server_events, "TagRPC");
    // A sixth of them (plain unary calls) are never cut short by the client.
    assert!(tagged as u64 > RPCS / 10, "RPCs reached the server");

    // Every RPC span and every connection span was ended, once: the SDK exports a span when
    // it ends, and only then.
    let finished = spans.finished();
    let rpc_spans = finished
        .iter()
        .filter(|s| s.span_kind == SpanKind::Server)
        .count();
    let conn_spans = finished
        .iter()
        .filter(|s| s.name == "grpc.connection")
        .count();
    assert_eq!(
        (rpc_spans, conn_spans),
        (tagged, CONNECTIONS),
        "(server RPC spans, connection spans) exported vs (RPCs tagged, connections); \
         events: {} End, {} ConnEnd",
        count(&server_events, "End"),
        count(&server_events, "ConnEnd")
    );
    let ids: HashSet<_> = finished.iter().map(|s| s.span_context.span_id()).collect();
    assert_eq!(ids.len(), finished.len(), "no span exported twice");

    // Nothing is left running: the runtime is back to the tasks it had.
    h.stop().await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let alive = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        if alive <= tasks_before {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{alive} tasks alive after the storm, {tasks_before} before"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A connector that keeps a second handle on each socket it opens, to cut it later.
#[derive(Clone, Default)]
struct Cuttable(Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>);

impl Cuttable {
    fn connector(
        &self,
        addr: std::net::SocketAddr,
    ) -> impl tower::Service<
        http::Uri,
        Response = hyper_util::rt::TokioIo<tokio::net::TcpStream>,
        Error = std::io::Error,
        Future = impl Send,
    > + Clone
    + Send
    + 'static {
        let sockets = Arc::clone(&self.0);
        tower::service_fn(move |_uri: http::Uri| {
            let sockets = Arc::clone(&sockets);
            async move {
                let stream = tokio::net::TcpStream::connect(addr).await?.into_std()?;
                sockets.lock().unwrap().push(stream.try_clone()?);
                Ok(hyper_util::rt::TokioIo::new(
                    tokio::net::TcpStream::from_std(stream)?,
                ))
            }
        })
    }

    /// Shuts every socket both ways, under whatever is in flight.
    fn cut_all(&self) {
        for socket in self.0.lock().unwrap().drain(..) {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_cut_under_rpcs_in_flight_end_every_rpc_once() {
    let h = Harness::start().await;
    let cuttable = Cuttable::default();
    let mut running = JoinSet::new();
    for _ in 0..CONNECTIONS {
        let channel = h
            .endpoint()
            .connect_with_connector(cuttable.connector(h.addr))
            .await
            .unwrap();
        let client = common::EchoClient::new(
            otel_stats::ClientStatsLayer::from_arc(Arc::clone(&h.client)).layer(channel),
        );
        for i in 0..16u64 {
            let mut client = client.clone();
            running.spawn(async move {
                let _ = match i % 3 {
                    0 => client.unary_echo(req("sleep:5000")).await.map(drop),
                    1 => match client.server_streaming_echo(req("slow")).await {
                        Ok(r) => r.into_inner().message().await.map(drop),
                        Err(e) => Err(e),
                    },
                    _ => {
                        let pending = tokio_stream::iter([req("a")]).chain(tokio_stream::pending());
                        match client.bidirectional_streaming_echo(pending).await {
                            Ok(r) => r.into_inner().message().await.map(drop),
                            Err(e) => Err(e),
                        }
                    }
                };
            });
        }
    }
    let in_flight = CONNECTIONS * 16;
    h.server
        .wait_for("every RPC in flight", |e| {
            count(e, "InPayload") >= in_flight
        })
        .await;
    cuttable.cut_all();
    while let Some(done) = running.join_next().await {
        done.unwrap();
    }
    let server = h
        .server
        .wait_for("every RPC ended and every connection closed", |e| {
            count(e, "End") == in_flight && count(e, "ConnEnd") == CONNECTIONS
        })
        .await;
    assert_one_end_each("server", &server, Some(in_flight as u64));
    let client = h.client.wait_ends(in_flight).await;
    assert_one_end_each("client", &client, Some(in_flight as u64));
    h.stop().await;
}
