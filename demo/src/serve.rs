//! The demo server: the echo service and the gRPC health service (`grpc.health.v1.Health`,
//! which health checks call instead of the echo), with the chosen instrumentation, shut down
//! gracefully.

use std::future::Future;

use otel_stats::{BoxHandler, ServerStatsLayer};
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Server, ServerTlsConfig};

use crate::echo::Echo;
use crate::proto::echo_server::EchoServer;

/// Serves the echo service on `listener` until `shutdown` resolves, then stops accepting,
/// lets in-flight RPCs finish and returns.
///
/// With `handler`, the server has the stats layer and the connection wrapper; without, it is
/// bare tonic (the baseline to measure against). The health service reports the server
/// (`""`) and the echo service as serving.
pub async fn serve(
    listener: TcpListener,
    handler: Option<BoxHandler>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    serve_tls(listener, handler, None, shutdown).await
}

/// Like [`serve`], over TLS with `tls`: tonic's `Server::tls_config` on top of the
/// connection wrapper, so the service sees the caller's address and certificates as tonic
/// gives them.
pub async fn serve_tls(
    listener: TcpListener,
    handler: Option<BoxHandler>,
    tls: Option<ServerTlsConfig>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let mut builder = match tls {
        Some(tls) => Server::builder().tls_config(tls)?,
        None => Server::builder(),
    };
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<EchoServer<Echo>>().await;
    let routes = Routes::new(Echo::server()).add_service(health_service);
    match handler {
        Some(handler) => {
            let stats = ServerStatsLayer::from_arc(handler);
            let incoming = stats.incoming(incoming);
            builder
                .layer(stats)
                .add_routes(routes)
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await
        }
        None => {
            builder
                .add_routes(routes)
                .serve_with_incoming_shutdown(incoming, shutdown)
                .await
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
