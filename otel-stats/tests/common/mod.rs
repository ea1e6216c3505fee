//! The harness every integration test shares: a real tonic echo server and client on
//! 127.0.0.1 port 0, each side with a [`Recorder`] handler that records the events it saw.
#![allow(dead_code, unreachable_pub, unused_imports)]

pub mod echo;
#[cfg(feature = "otlp")]
pub mod export;
pub mod otel;
pub mod otlp;
pub mod recorder;
pub mod service;
pub mod storm;
pub mod tls;
pub mod tls_echo;
pub mod warnings;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use otel_stats::{ClientStatsLayer, ServerStatsLayer, StatsChannel};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::codec::CompressionEncoding;
use tonic::transport::{Endpoint, Server, server::TcpIncoming};

pub use echo::echo_client::EchoClient;
pub use echo::{EchoRequest, EchoResponse};
pub use recorder::{Event, Recorder};

pub const UNARY: &str = "/grpc.examples.echo.Echo/UnaryEcho";
pub const SERVER_STREAMING: &str = "/grpc.examples.echo.Echo/ServerStreamingEcho";
pub const CLIENT_STREAMING: &str = "/grpc.examples.echo.Echo/ClientStreamingEcho";
pub const BIDI: &str = "/grpc.examples.echo.Echo/BidirectionalStreamingEcho";

/// How long a test waits for events that must come. A liveness bound, not a speed assertion.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub type Client = EchoClient<StatsChannel<Recorder>>;

/// A server and the recorders of both sides.
pub struct Harness {
    pub addr: SocketAddr,
    pub server: Arc<Recorder>,
    pub client: Arc<Recorder>,
    serving: Serving,
}

/// A server task: `stop` shuts it down gracefully, dropping it aborts it.
pub struct Serving {
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Serving {
    /// Spawns `serve`, which must stop serving once the signal it is given fires.
    pub fn spawn<F>(serve: impl FnOnce(oneshot::Receiver<()>) -> F) -> Serving
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (shutdown, signal) = oneshot::channel::<()>();
        Serving {
            shutdown: Some(shutdown),
            task: tokio::spawn(serve(signal)),
        }
    }

    /// Stops the server gracefully and waits until it has.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(PATIENCE, &mut self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Harness {
    /// Starts an echo server with the stats layer and connection wrapper, recording to
    /// `harness.server`.
    pub async fn start() -> Harness {
        Self::start_with(Recorder::new("server")).await
    }

    pub async fn start_with(server: Recorder) -> Harness {
        let server = Arc::new(server);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = ServerStatsLayer::from_arc(Arc::clone(&server));
        let incoming = stats.incoming(TcpIncoming::from(listener).with_nodelay(Some(true)));
        let echo = echo::echo_server::EchoServer::new(service::Echo)
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip);
        let serving = Serving::spawn(|signal| async move {
            Server::builder()
                .layer(stats)
                .add_service(echo)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = signal.await;
                })
                .await
                .unwrap();
        });
        Harness {
            addr,
            server,
            client: Arc::new(Recorder::new("client")),
            serving,
        }
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint::from_shared(format!("http://{}", self.addr)).unwrap()
    }

    /// A new client on a new connection, recording to `harness.client`.
    pub async fn client(&self) -> Client {
        EchoClient::new(self.channel().await)
    }

    /// A new client that has made one `hello` RPC, whose `End` both sides have reported.
    pub async fn client_after_one_rpc(&self) -> Client {
        let mut client = self.client().await;
        client.unary_echo(req("hello")).await.unwrap();
        self.server.wait_ends(1).await;
        self.client.wait_ends(1).await;
        client
    }

    /// A new channel on a new connection, with the client stats layer.
    pub async fn channel(&self) -> StatsChannel<Recorder> {
        let stats = ClientStatsLayer::from_arc(Arc::clone(&self.client));
        stats.connect(self.endpoint()).await.unwrap()
    }

    /// Stops the server gracefully and waits until it has.
    pub async fn stop(self) {
        self.serving.stop().await;
    }
}

pub fn req(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.to_owned(),
    }
}
