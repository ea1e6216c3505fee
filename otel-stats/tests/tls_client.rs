//! TLS and TCP settings on the client: `ClientStatsLayer::connect` with an `Endpoint` that has
//! `tls_config` talks to a TLS server and reports its connection, and the connection is made
//! with the endpoint's TCP settings, as tonic's own `Endpoint::connect` makes it.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use common::recorder::count;
use common::tls::TestCa;
use common::tls_echo::TlsEcho;
use common::{EchoClient, Harness, Recorder, req};
use otel_stats::{ClientStatsLayer, tcp_connector};
use socket2::SockRef;
use tonic::transport::Endpoint;

/// The TCP options of a socket, as the kernel has them.
#[derive(Debug, PartialEq)]
struct TcpOptions {
    nodelay: bool,
    keepalive: Option<(Duration, Duration, u32)>,
}

/// The options of this process's TCP socket from `local` to `peer`.
fn socket_options(local: SocketAddr, peer: SocketAddr) -> TcpOptions {
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let Ok(fd) = entry
            .unwrap()
            .file_name()
            .to_string_lossy()
            .parse::<RawFd>()
        else {
            continue;
        };
        // SAFETY: the descriptor is one of this process's, borrowed only for the few
        // getsockname/getsockopt calls below. Should a runtime thread close it meanwhile,
        // those calls fail (EBADF, ENOTSOCK) or read another socket, which the address check
        // rejects: no memory is touched through it.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = SockRef::from(&fd);
        let addr = |a: std::io::Result<socket2::SockAddr>| a.ok().and_then(|a| a.as_socket());
        if addr(socket.local_addr()) != Some(local) || addr(socket.peer_addr()) != Some(peer) {
            continue;
        }
        let keepalive = socket.keepalive().unwrap().then(|| {
            (
                socket.tcp_keepalive_time().unwrap(),
                socket.tcp_keepalive_interval().unwrap(),
                socket.tcp_keepalive_retries().unwrap(),
            )
        });
        return TcpOptions {
            nodelay: socket.tcp_nodelay().unwrap(),
            keepalive,
        };
    }
    panic!("no socket from {local} to {peer} in this process");
}

/// The local address of the client's connection, from its `TagConn`.
fn client_local_addr(client: &Recorder) -> SocketAddr {
    client
        .events()
        .iter()
        .find(|e| e.name == "TagConn")
        .and_then(|e| e.local_addr)
        .expect("the client reported its connection with its local address")
}

const KEEPALIVE: Duration = Duration::from_secs(41);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(7);
const KEEPALIVE_RETRIES: u32 = 3;

fn with_keepalive(endpoint: Endpoint) -> Endpoint {
    endpoint
        .tcp_keepalive(Some(KEEPALIVE))
        .tcp_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .tcp_keepalive_retries(Some(KEEPALIVE_RETRIES))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_endpoint_through_connect_works_reports_its_connection_and_keeps_tcp_settings() {
    let ca = TestCa::new();
    let server_stats = Arc::new(Recorder::new("server"));
    let server = TlsEcho::start(ca.server_tls(&ca.server(), true), Arc::clone(&server_stats)).await;
    let alice = ca.client("alice");
    let endpoint = Endpoint::from_shared(server.url())
        .unwrap()
        .tls_config(ca.client_tls(Some(&alice)))
        .unwrap();
    let client_stats = Arc::new(Recorder::new("client"));
    let stats = ClientStatsLayer::from_arc(Arc::clone(&client_stats));
    let mut client = EchoClient::new(stats.connect(with_keepalive(endpoint)).await.unwrap());

    let reply = client.unary_echo(req("hello")).await.unwrap();
    assert_eq!(reply.into_inner().message, "hello");
    let local = client_local_addr(&client_stats);
    assert_eq!(
        socket_options(local, server.addr),
        TcpOptions {
            nodelay: true,
            keepalive: Some((KEEPALIVE, KEEPALIVE_INTERVAL, KEEPALIVE_RETRIES)),
        },
        "the endpoint's TCP settings under TLS"
    );
    let events = client_stats.events();
    let conn = events.iter().find(|e| e.name == "TagConn").unwrap();
    assert_eq!(conn.remote_addr, Some(server.addr));
    assert_eq!(count(&events, "ConnBegin"), 1);
    assert_eq!(
        client_stats.rpc_sequence(client_stats.rpc_ids()[0]).last(),
        Some(&"End")
    );
    let server_conn = server_stats.events();
    let server_conn = server_conn.iter().find(|e| e.name == "TagConn").unwrap();
    assert_eq!(
        server_conn.remote_addr,
        Some(local),
        "the server saw this connection"
    );

    drop(client);
    let events = client_stats
        .wait_for("client ConnEnd", |e| count(e, "ConnEnd") == 1)
        .await;
    let end = events.iter().find(|e| e.name == "ConnEnd").unwrap();
    assert_eq!(end.conn, conn.conn);
    server.serving.stop().await;
}

/// A TLS echo server (requiring client certificates when `mtls`), and an endpoint for it that
/// trusts its CA and has no client certificate.
async fn tls_server_and_anonymous_endpoint(mtls: bool) -> (TlsEcho, Endpoint) {
    let ca = TestCa::new();
    let tls = ca.server_tls(&ca.server(), mtls);
    let server = TlsEcho::start(tls, Arc::new(otel_stats::NoopHandler)).await;
    let endpoint = Endpoint::from_shared(server.url())
        .unwrap()
        .tls_config(ca.client_tls(None))
        .unwrap();
    (server, endpoint)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_endpoint_through_connect_lazy_connects_on_first_use() {
    let (server, endpoint) = tls_server_and_anonymous_endpoint(false).await;
    let client_stats = Arc::new(Recorder::new("client"));
    let channel = ClientStatsLayer::from_arc(Arc::clone(&client_stats)).connect_lazy(endpoint);
    assert_eq!(count(&client_stats.events(), "TagConn"), 0, "lazy");
    let mut client = EchoClient::new(channel);
    let reply = client.unary_echo(req("hello")).await.unwrap();
    assert_eq!(reply.into_inner().message, "hello");
    assert_eq!(count(&client_stats.events(), "ConnBegin"), 1);
    server.serving.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mtls_server_refuses_a_client_without_a_certificate() {
    let (server, endpoint) = tls_server_and_anonymous_endpoint(true).await;
    let stats = ClientStatsLayer::new(otel_stats::NoopHandler);
    // TLS 1.3 clients learn of the refusal only when they first read.
    let refused = match stats.connect(endpoint).await {
        Err(_) => true,
        Ok(channel) => EchoClient::new(channel)
            .unary_echo(req("hello"))
            .await
            .is_err(),
    };
    assert!(
        refused,
        "the identity the mTLS test presents is what gets it in"
    );
    server.serving.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_keeps_the_endpoint_tcp_settings_either_way() {
    let h = Harness::start().await;
    for (nodelay, keepalive) in [(false, true), (true, false)] {
        h.client.clear();
        let mut endpoint = h.endpoint().tcp_nodelay(nodelay);
        if keepalive {
            endpoint = with_keepalive(endpoint);
        }
        let stats = ClientStatsLayer::from_arc(Arc::clone(&h.client));
        let client = stats.connect(endpoint).await.unwrap();
        let local = client_local_addr(&h.client);
        let options = socket_options(local, h.addr);
        assert_eq!(options.nodelay, nodelay);
        assert_eq!(
            options.keepalive,
            keepalive.then_some((KEEPALIVE, KEEPALIVE_INTERVAL, KEEPALIVE_RETRIES))
        );
        drop(client);
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_address_set_on_the_tcp_connector_is_the_connection_source() {
    let h = Harness::start().await;
    // All of 127.0.0.0/8 is the loopback interface.
    let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let endpoint = h.endpoint().local_address(Some(source));
    let mut tcp = tcp_connector(&endpoint);
    tcp.set_local_address(Some(source));
    let stats = ClientStatsLayer::from_arc(Arc::clone(&h.client));
    let mut client = EchoClient::new(stats.connect_with(endpoint, tcp).await.unwrap());
    client.unary_echo(req("hello")).await.unwrap();
    let events = h.server.events();
    let conn = events.iter().find(|e| e.name == "TagConn").unwrap();
    assert_eq!(conn.remote_addr.map(|a| a.ip()), Some(source));
    assert_eq!(client_local_addr(&h.client).ip(), source);
    drop(client);
    h.stop().await;
}
