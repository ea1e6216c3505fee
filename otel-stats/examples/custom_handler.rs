//! A `StatsHandler` of your own: totals per method (calls, failures, message bytes each way)
//! and the number of connections, from one in-process server and client on 127.0.0.1.
//!
//! ```text
//! cargo run -p otel-stats --example custom_handler
//! ```
//!
//! The handler keeps what it needs of an RPC in the RPC's context (`tag_rpc`), and reads it
//! back for each event (`handle_rpc`): the payload events do not repeat the method.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::{Echo, EchoClient, EchoRequest, EchoServer};
use opentelemetry::Context;
use otel_stats::{
    ClientStatsLayer, ConnStats, RpcStats, RpcTagInfo, ServerStatsLayer, StatsHandler,
};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Endpoint, Server};

/// What the handler records for one method.
#[derive(Debug, Default, Clone)]
struct Totals {
    calls: u64,
    failures: u64,
    bytes_in: u64,
    bytes_out: u64,
}

/// The handler: totals per method, and the connections opened.
#[derive(Debug, Default)]
struct MethodTotals {
    methods: Mutex<BTreeMap<String, Totals>>,
    connections: AtomicU64,
}

/// The RPC's method, kept in its context by `tag_rpc`.
#[derive(Debug, Clone)]
struct Method(Arc<str>);

impl MethodTotals {
    fn update(&self, method: &str, f: impl FnOnce(&mut Totals)) {
        // A poisoned lock only means another hook panicked mid-update: keep counting.
        let mut methods = self.methods.lock().unwrap_or_else(|e| e.into_inner());
        f(methods.entry(method.to_owned()).or_default());
    }
}

impl StatsHandler for MethodTotals {
    fn tag_rpc(&self, cx: Context, info: &mut RpcTagInfo<'_>) -> Context {
        cx.with_value(Method(info.full_method().into()))
    }

    fn handle_rpc(&self, cx: &Context, stats: &RpcStats<'_>) {
        let Some(Method(method)) = cx.get::<Method>() else {
            return;
        };
        match stats {
            RpcStats::InPayload(p) => self.update(method, |t| t.bytes_in += p.wire_length as u64),
            RpcStats::OutPayload(p) => self.update(method, |t| t.bytes_out += p.wire_length as u64),
            RpcStats::End(end) => self.update(method, |t| {
                t.calls += 1;
                t.failures += u64::from(!end.is_ok());
            }),
            _ => {}
        }
    }

    fn handle_conn(&self, _cx: &Context, stats: &ConnStats) {
        if let ConnStats::Begin(_) = stats {
            self.connections.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The server counts into its own handler; the client's is shared with `main` to print.
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server_stats = ServerStatsLayer::new(MethodTotals::default());
    let incoming = server_stats.incoming(TcpIncoming::from(listener));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        Server::builder()
            .layer(server_stats)
            .add_service(EchoServer::new(Echo))
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            }),
    );

    let totals = Arc::new(MethodTotals::default());
    let client_stats = ClientStatsLayer::from_arc(Arc::clone(&totals));
    let channel = client_stats
        .connect(Endpoint::from_shared(format!("http://{addr}"))?)
        .await?;
    let mut client = EchoClient::new(channel);
    for message in ["one", "two", "three"] {
        let request = EchoRequest {
            message: message.to_owned(),
        };
        client.unary_echo(request).await?;
    }
    // The example server does not stream: one failed RPC, UNIMPLEMENTED.
    let failed = client
        .server_streaming_echo(EchoRequest::default())
        .await
        .err();
    println!("streaming: {:?}", failed.map(|status| status.code()));

    let _ = stop.send(());
    server.await??;
    println!(
        "connections: {}",
        totals.connections.load(Ordering::Relaxed)
    );
    let methods = totals.methods.lock().unwrap_or_else(|e| e.into_inner());
    for (method, t) in methods.iter() {
        println!(
            "{method}: {} calls, {} failed, {} bytes out, {} bytes in",
            t.calls, t.failures, t.bytes_out, t.bytes_in
        );
    }
    Ok(())
}
