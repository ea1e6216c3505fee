use std::sync::Arc;

use tower_layer::Layer;

use super::service::ServerStatsService;
use crate::conn::StatsIncoming;
use crate::handler::StatsHandler;

/// Reports every gRPC request a tonic server handles to a [`StatsHandler`], in grpc-go's server
/// order: `TagRPC InHeader Begin InPayload* OutHeader OutPayload* OutTrailer End`.
///
/// Requests that are not gRPC (by `content-type`) pass through unreported. The RPC's context
/// (what `tag_rpc` returned) is in the request, see [`RpcRequestExt`](crate::RpcRequestExt), and
/// the service's future is polled with it as the current context.
///
/// Use [`incoming`](Self::incoming) on the listener too, for the connection events and for
/// RPC contexts that derive from their connection's.
///
/// # Examples
///
/// ```no_run
/// use otel_stats::{LogHandler, ServerStatsLayer};
/// use tonic::transport::{Server, server::TcpIncoming};
/// # async fn run(routes: tonic::service::Routes) -> Result<(), Box<dyn std::error::Error>> {
///
/// let stats = ServerStatsLayer::new(LogHandler::text(std::io::stderr()));
/// let incoming = stats.incoming(TcpIncoming::bind("127.0.0.1:50051".parse()?)?);
/// Server::builder()
///     .layer(stats)
///     .add_routes(routes)
///     .serve_with_incoming(incoming)
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ServerStatsLayer<H: ?Sized> {
    handler: Arc<H>,
}

impl<H: ?Sized> Clone for ServerStatsLayer<H> {
    fn clone(&self) -> Self {
        ServerStatsLayer {
            handler: Arc::clone(&self.handler),
        }
    }
}

impl<H: StatsHandler + ?Sized> ServerStatsLayer<H> {
    /// A layer reporting to `handler`.
    pub fn new(handler: H) -> Self
    where
        H: Sized,
    {
        Self::from_arc(Arc::new(handler))
    }

    /// A layer reporting to a handler that is shared with other layers or wrappers.
    ///
    /// `H` may be unsized: a [`BoxHandler`](crate::BoxHandler) (`Arc<dyn StatsHandler>`)
    /// goes in as it is, with no second `Arc` around it, and each event is one call through
    /// its vtable.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use otel_stats::{BoxHandler, ServerStatsLayer, LogHandler, OtelHandler, StatsHandler};
    ///
    /// let handler: BoxHandler = if std::env::var_os("STATS_LOG").is_some() {
    ///     Arc::new(LogHandler::text(std::io::stderr()))
    /// } else {
    ///     Arc::new(OtelHandler::new())
    /// };
    /// let stats: ServerStatsLayer<dyn StatsHandler> = ServerStatsLayer::from_arc(handler);
    /// # let _ = stats;
    /// ```
    pub fn from_arc(handler: Arc<H>) -> Self {
        ServerStatsLayer { handler }
    }

    /// The handler.
    pub fn handler(&self) -> &Arc<H> {
        &self.handler
    }

    /// Wraps a stream of accepted connections so that each is reported to the same handler
    /// (`tag_conn`, `ConnBegin`, `ConnEnd`) and its context reaches the RPCs on it.
    ///
    /// It composes with `Server::tls_config` (tonic's TLS then runs on top of the wrapper) and
    /// changes nothing the service sees: `Request::remote_addr()`, `local_addr()`,
    /// `peer_certs()` and tonic's connect info types are in the extensions as without it.
    ///
    /// # Examples
    ///
    /// mTLS: the service can still authorise callers by `request.peer_certs()`.
    ///
    /// ```no_run
    /// use otel_stats::{OtelHandler, ServerStatsLayer};
    /// use tonic::transport::server::TcpIncoming;
    /// use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
    /// # async fn run(routes: tonic::service::Routes, cert: String, key: String, client_ca: String)
    /// #     -> Result<(), Box<dyn std::error::Error>> {
    ///
    /// let tls = ServerTlsConfig::new()
    ///     .identity(Identity::from_pem(cert, key))
    ///     .client_ca_root(Certificate::from_pem(client_ca));
    /// let stats = ServerStatsLayer::new(OtelHandler::new());
    /// let incoming = stats.incoming(TcpIncoming::bind("0.0.0.0:50051".parse()?)?);
    /// Server::builder()
    ///     .tls_config(tls)?
    ///     .layer(stats)
    ///     .add_routes(routes)
    ///     .serve_with_incoming(incoming)
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn incoming<I>(&self, incoming: I) -> StatsIncoming<I, H> {
        StatsIncoming::new(incoming, Arc::clone(&self.handler))
    }
}

impl<S, H: ?Sized> Layer<S> for ServerStatsLayer<H> {
    type Service = ServerStatsService<S, H>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerStatsService::new(inner, Arc::clone(&self.handler))
    }
}
