//! TLS on the server. Under `Server::tls_config` (tonic wraps our `StatsIo` in TLS) and under
//! TLS the application terminates itself (our `StatsIo` wraps the TLS stream), the service
//! sees exactly what it sees without otel-stats (`remote_addr()`, `local_addr()`,
//! `peer_certs()`, tonic's connect info types), and RPCs still get their connection's context.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use common::echo::echo_server::EchoServer;
use common::otel::{Spans, attr, of_kind};
use common::tls::{Pem, TestCa};
use common::{EchoClient, Recorder, Serving, req, service};
use opentelemetry::Value;
use opentelemetry::trace::SpanKind;
use otel_stats::{ClientStatsLayer, ServerStatsLayer, StatsHandler};
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::{TcpConnectInfo, TcpIncoming, TlsConnectInfo};
use tonic::transport::{Endpoint, Server};
use tonic::{Request, Status};

/// What the service learns of its caller from tonic, addresses named relative to the test's
/// server and client (so that two runs on different ports compare equal).
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    remote_addr: String,
    local_addr: String,
    peer_certs: Option<Vec<Vec<u8>>>,
    tcp_connect_info: Option<(String, String)>,
    tls_connect_info: Option<(String, String)>,
}

/// What the service saw, with the real addresses.
type Raw = (
    Option<SocketAddr>,
    Option<SocketAddr>,
    Option<Vec<Vec<u8>>>,
    Option<(Option<SocketAddr>, Option<SocketAddr>)>,
    Option<(Option<SocketAddr>, Option<SocketAddr>)>,
);

type Log = Arc<Mutex<Vec<Raw>>>;

/// The service's own view, taken where an mTLS application authorises its callers: in an
/// interceptor in front of the echo service.
fn watch(log: Log) -> impl Fn(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |request: Request<()>| {
        let tcp = |i: &TcpConnectInfo| (i.remote_addr(), i.local_addr());
        let extensions = request.extensions();
        log.lock().unwrap().push((
            request.remote_addr(),
            request.local_addr(),
            request
                .peer_certs()
                .map(|certs| certs.iter().map(|c| c.to_vec()).collect()),
            extensions.get::<TcpConnectInfo>().map(tcp),
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .map(|i| tcp(i.get_ref())),
        ));
        Ok(request)
    }
}

/// How the server is put together.
#[derive(Clone, Copy)]
enum Stack {
    /// Plaintext HTTP/2 and no otel-stats at all.
    PlainBare,
    /// Plaintext HTTP/2 over `stats.incoming(..)`, with the layer.
    Plain,
    /// `Server::tls_config` and no otel-stats at all.
    Bare,
    /// `Server::tls_config` over `stats.incoming(..)`, with the layer.
    TonicTls,
    /// TLS accepted by the application (tokio-rustls), without otel-stats.
    AppTlsBare,
    /// TLS accepted by the application, its streams given to `stats.incoming(..)`.
    AppTls,
}

struct TlsServer {
    addr: SocketAddr,
    log: Log,
    serving: Serving,
}

impl TlsServer {
    async fn start<H: StatsHandler>(
        stack: Stack,
        ca: &TestCa,
        pem: &Pem,
        mtls: bool,
        handler: Arc<H>,
    ) -> Self {
        let tls = ca.server_tls(pem, mtls);
        let app_tls_config = ca.rustls_server(pem, mtls);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Log::default();
        let service = InterceptedService::new(EchoServer::new(service::Echo), watch(log.clone()));
        let stats = ServerStatsLayer::from_arc(handler);
        let serving = Serving::spawn(|signal| async move {
            let stopped = async {
                let _ = signal.await;
            };
            let served = match stack {
                Stack::PlainBare => {
                    Server::builder()
                        .add_service(service)
                        .serve_with_incoming_shutdown(TcpIncoming::from(listener), stopped)
                        .await
                }
                Stack::Plain => {
                    let incoming = stats.incoming(TcpIncoming::from(listener));
                    Server::builder()
                        .layer(stats)
                        .add_service(service)
                        .serve_with_incoming_shutdown(incoming, stopped)
                        .await
                }
                Stack::Bare => {
                    Server::builder()
                        .tls_config(tls)
                        .unwrap()
                        .add_service(service)
                        .serve_with_incoming_shutdown(TcpIncoming::from(listener), stopped)
                        .await
                }
                Stack::TonicTls => {
                    let incoming = stats.incoming(TcpIncoming::from(listener));
                    Server::builder()
                        .tls_config(tls)
                        .unwrap()
                        .layer(stats)
                        .add_service(service)
                        .serve_with_incoming_shutdown(incoming, stopped)
                        .await
                }
                Stack::AppTlsBare => {
                    Server::builder()
                        .add_service(service)
                        .serve_with_incoming_shutdown(app_tls(listener, app_tls_config), stopped)
                        .await
                }
                Stack::AppTls => {
                    let incoming = stats.incoming(app_tls(listener, app_tls_config));
                    Server::builder()
                        .layer(stats)
                        .add_service(service)
                        .serve_with_incoming_shutdown(incoming, stopped)
                        .await
                }
            };
            served.unwrap();
        });
        TlsServer { addr, log, serving }
    }
}

/// TLS terminated by the application: accepted TCP streams through a tokio-rustls acceptor.
/// Handshakes run one at a time; enough for a test.
fn app_tls(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
) -> impl tokio_stream::Stream<
    Item = std::io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>,
> + Send
+ 'static {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    TcpListenerStream::new(listener).then(move |tcp| {
        let acceptor = acceptor.clone();
        async move { acceptor.accept(tcp?).await }
    })
}

/// A CA, a server certificate and a client certificate (alice's).
struct Pki {
    ca: TestCa,
    server: Pem,
    alice: Pem,
}

impl Pki {
    fn new() -> Pki {
        let ca = TestCa::new();
        Pki {
            server: ca.server(),
            alice: ca.client("alice"),
            ca,
        }
    }

    /// One conversation: a client with a client stats layer (and alice's certificate when
    /// `mtls`) makes one `hello` RPC to a server put together as `stack`. Returns what the
    /// service saw, named relative to the server and client addresses, and the client's
    /// address.
    async fn talk<H: StatsHandler>(
        &self,
        mtls: bool,
        stack: Stack,
        handler: Arc<H>,
    ) -> (Seen, SocketAddr) {
        let server = TlsServer::start(stack, &self.ca, &self.server, mtls, handler).await;
        let client_stats = Arc::new(Recorder::new("client"));
        let endpoint = match stack {
            Stack::PlainBare | Stack::Plain => {
                Endpoint::from_shared(format!("http://{}", server.addr)).unwrap()
            }
            _ => Endpoint::from_shared(format!("https://{}", server.addr))
                .unwrap()
                .tls_config(self.ca.client_tls(mtls.then_some(&self.alice)))
                .unwrap(),
        };
        let channel = ClientStatsLayer::from_arc(Arc::clone(&client_stats))
            .connect(endpoint)
            .await
            .unwrap();
        let mut client = EchoClient::new(channel);
        let reply = client.unary_echo(req("hello")).await.unwrap();
        assert_eq!(reply.into_inner().message, "hello");
        let client_addr = client_stats
            .events()
            .iter()
            .find(|e| e.name == "TagConn")
            .and_then(|e| e.local_addr)
            .expect("the client's TagConn has its local address");
        drop(client);
        server.serving.stop().await;
        let log = server.log.lock().unwrap().clone();
        assert_eq!(log.len(), 1, "{log:?}");
        let name = |addr: Option<SocketAddr>| match addr {
            Some(a) if a == server.addr => "server".to_owned(),
            Some(a) if a == client_addr => "client".to_owned(),
            other => format!("{other:?}"),
        };
        let pair = |p: Option<(Option<SocketAddr>, Option<SocketAddr>)>| {
            p.map(|(remote, local)| (name(remote), name(local)))
        };
        let (remote, local, certs, tcp, tls) = log[0].clone();
        let seen = Seen {
            remote_addr: name(remote),
            local_addr: name(local),
            peer_certs: certs,
            tcp_connect_info: pair(tcp),
            tls_connect_info: pair(tls),
        };
        (seen, client_addr)
    }
}

fn client_and_server() -> Option<(String, String)> {
    Some(("client".to_owned(), "server".to_owned()))
}

fn noop() -> Arc<otel_stats::NoopHandler> {
    Arc::new(otel_stats::NoopHandler)
}

/// The recorder saw one connection from `client` and the RPC in its context.
fn assert_rpc_in_its_connection(recorder: &Recorder, client: SocketAddr) {
    let events = recorder.events();
    let conn = events.iter().find(|e| e.name == "TagConn").unwrap();
    assert_eq!(conn.remote_addr, Some(client));
    let rpc = events.iter().find(|e| e.name == "TagRPC").unwrap();
    assert_eq!(rpc.conn, conn.conn, "tag_rpc got the connection's context");
    assert_eq!(rpc.remote_addr, Some(client));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_the_service_sees_what_it_sees_without_otel_stats() {
    let pki = Pki::new();
    let (bare, _) = pki.talk(false, Stack::PlainBare, noop()).await;
    let recorder = Arc::new(Recorder::new("server"));
    let (layered, client) = pki.talk(false, Stack::Plain, Arc::clone(&recorder)).await;
    assert_eq!(
        bare,
        Seen {
            remote_addr: "client".to_owned(),
            local_addr: "server".to_owned(),
            peer_certs: None,
            tcp_connect_info: client_and_server(),
            tls_connect_info: None,
        },
        "tonic's own view over h2c"
    );
    assert_eq!(layered, bare, "the same behind the layer and the wrapper");
    assert_rpc_in_its_connection(&recorder, client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_the_service_sees_what_it_sees_without_otel_stats() {
    let pki = Pki::new();
    let (bare, _) = pki.talk(false, Stack::Bare, noop()).await;
    let (layered, _) = pki.talk(false, Stack::TonicTls, noop()).await;
    assert_eq!(
        bare,
        Seen {
            remote_addr: "client".to_owned(),
            local_addr: "server".to_owned(),
            peer_certs: None,
            tcp_connect_info: client_and_server(),
            tls_connect_info: client_and_server(),
        },
        "tonic's own view under tls_config"
    );
    assert_eq!(layered, bare, "the same behind the layer and the wrapper");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_the_service_sees_the_client_certificate_as_without_otel_stats() {
    let pki = Pki::new();
    let (bare, _) = pki.talk(true, Stack::Bare, noop()).await;
    let recorder = Arc::new(Recorder::new("server"));
    let (layered, client) = pki.talk(true, Stack::TonicTls, Arc::clone(&recorder)).await;
    assert_eq!(bare.peer_certs, Some(vec![pki.alice.der.clone()]));
    assert_eq!(bare.remote_addr, "client");
    assert_eq!(layered, bare);
    assert_rpc_in_its_connection(&recorder, client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_terminated_by_the_application_looks_the_same_through_the_wrapper() {
    let pki = Pki::new();
    let (bare, _) = pki.talk(true, Stack::AppTlsBare, noop()).await;
    let recorder = Arc::new(Recorder::new("server"));
    let (layered, client) = pki.talk(true, Stack::AppTls, Arc::clone(&recorder)).await;
    assert_eq!(
        bare,
        Seen {
            remote_addr: "client".to_owned(),
            local_addr: "server".to_owned(),
            peer_certs: Some(vec![pki.alice.der.clone()]),
            tcp_connect_info: None,
            tls_connect_info: client_and_server(),
        },
        "a TLS stream's own connect info, without tls_config"
    );
    assert_eq!(layered, bare);
    assert_rpc_in_its_connection(&recorder, client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otel_spans_over_tls_have_the_connection_parent_and_the_peer() {
    let pki = Pki::new();
    let spans = Spans::new();
    let (_, client) = pki
        .talk(false, Stack::TonicTls, Arc::new(spans.handler()))
        .await;
    // The server stopped, so its connection ended and its span is exported.
    let all = spans
        .wait_for("the connection span and the RPC span", |s| {
            of_kind(s, &SpanKind::Server).len() == 1 && of_kind(s, &SpanKind::Internal).len() == 1
        })
        .await;
    let conn = &of_kind(&all, &SpanKind::Internal)[0];
    let rpc = &of_kind(&all, &SpanKind::Server)[0];
    assert_eq!(conn.name, "grpc.connection");
    assert_eq!(rpc.parent_span_id, conn.span_context.span_id());
    assert_eq!(rpc.span_context.trace_id(), conn.span_context.trace_id());
    assert_eq!(
        attr(rpc, "network.peer.address"),
        Some(Value::from(client.ip().to_string()))
    );
    assert_eq!(
        attr(rpc, "network.peer.port"),
        Some(Value::I64(client.port().into()))
    );
}
