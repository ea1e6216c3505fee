//! The shared echo service behind `Server::tls_config`, with the server stats layer and
//! connection wrapper reporting to a handler.

use std::net::SocketAddr;
use std::sync::Arc;

use otel_stats::{ServerStatsLayer, StatsHandler};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Server, ServerTlsConfig};

use super::echo::echo_server::EchoServer;
use super::{Serving, service};

pub struct TlsEcho {
    pub addr: SocketAddr,
    pub serving: Serving,
}

impl TlsEcho {
    pub async fn start<H: StatsHandler>(tls: ServerTlsConfig, handler: Arc<H>) -> TlsEcho {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = ServerStatsLayer::from_arc(handler);
        let incoming = stats.incoming(TcpIncoming::from(listener));
        let serving = Serving::spawn(|signal| async move {
            Server::builder()
                .tls_config(tls)
                .unwrap()
                .layer(stats)
                .add_service(EchoServer::new(service::Echo))
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = signal.await;
                })
                .await
                .unwrap();
        });
        TlsEcho { addr, serving }
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }
}
