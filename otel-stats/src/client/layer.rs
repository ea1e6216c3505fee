use std::sync::Arc;

use http::Uri;
use hyper_util::client::legacy::connect::Connection;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tonic::transport::{Channel, Endpoint};
use tower_layer::Layer;
use tower_service::Service;

use super::service::ClientStatsService;
use super::tcp::tcp_connector;
use crate::conn::{ChannelConnection, StatsConnector};
use crate::handler::StatsHandler;

/// Reports every RPC a tonic client makes to a [`StatsHandler`], in grpc-go's client order:
/// `TagRPC Begin OutHeader OutPayload* InHeader InPayload* InTrailer End`.
///
/// `tag_rpc` gets the caller's current `opentelemetry::Context` and may write the outgoing
/// metadata (to inject trace context). [`connect`](Self::connect) and
/// [`connect_lazy`](Self::connect_lazy) also report the channel's connections.
///
/// # Examples
///
/// ```no_run
/// use otel_stats::{ClientStatsLayer, LogHandler};
/// use tonic::transport::Endpoint;
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
///
/// let stats = ClientStatsLayer::new(LogHandler::text(std::io::stderr()));
/// let channel = stats.connect(Endpoint::from_static("http://127.0.0.1:50051")).await?;
/// // Any tonic-generated client takes it: `EchoClient::new(channel)`.
/// # let _ = channel;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ClientStatsLayer<H: ?Sized> {
    handler: Arc<H>,
}

impl<H: ?Sized> Clone for ClientStatsLayer<H> {
    fn clone(&self) -> Self {
        ClientStatsLayer {
            handler: Arc::clone(&self.handler),
        }
    }
}

impl<H: StatsHandler + ?Sized> ClientStatsLayer<H> {
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
    /// use otel_stats::{BoxHandler, ClientStatsLayer, LogHandler, OtelHandler, StatsHandler};
    ///
    /// let handler: BoxHandler = if std::env::var_os("STATS_LOG").is_some() {
    ///     Arc::new(LogHandler::text(std::io::stderr()))
    /// } else {
    ///     Arc::new(OtelHandler::new())
    /// };
    /// let stats: ClientStatsLayer<dyn StatsHandler> = ClientStatsLayer::from_arc(handler);
    /// # let _ = stats;
    /// ```
    pub fn from_arc(handler: Arc<H>) -> Self {
        ClientStatsLayer { handler }
    }

    /// The handler.
    pub fn handler(&self) -> &Arc<H> {
        &self.handler
    }

    /// Wraps a connector for `Endpoint::connect_with_connector` so that its connections are
    /// reported to the same handler.
    pub fn connector<C>(&self, connector: C) -> StatsConnector<C, H> {
        StatsConnector::new(connector, Arc::clone(&self.handler))
    }

    /// Connects to `endpoint` with connection events, and wraps the channel in this layer.
    ///
    /// The connection is made as tonic's own `Endpoint::connect` makes it: the endpoint's TCP
    /// settings (see [`tcp_connector`], which also says what to do for `local_address`), its
    /// `connect_timeout`, and its `tls_config` for `https` URIs (with one of tonic's TLS
    /// features). The connection events see the TCP connection: their byte counts include TLS
    /// records.
    ///
    /// The channel has one connection at a time (tonic reconnects in its place), so each RPC
    /// knows its peer: its [`RpcTagInfo`](crate::RpcTagInfo) and header events carry the
    /// connection's remote and local addresses (an RPC that starts while the channel is not
    /// connected has none), and `OtelHandler` puts them on the client span as
    /// `network.peer.address` / `network.peer.port`. A channel wrapped with
    /// [`layer`](Layer::layer) instead (a balanced channel, say) does not tell which
    /// connection carries an RPC; its RPCs have no addresses.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use otel_stats::{ClientStatsLayer, LogHandler};
    /// use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
    /// # async fn run(ca_pem: String) -> Result<(), Box<dyn std::error::Error>> {
    ///
    /// let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem));
    /// let endpoint = Endpoint::from_static("https://localhost:50051")
    ///     .tls_config(tls)?
    ///     .tcp_keepalive(Some(std::time::Duration::from_secs(60)));
    /// let stats = ClientStatsLayer::new(LogHandler::text(std::io::stderr()));
    /// let channel = stats.connect(endpoint).await?;
    /// # let _ = channel;
    /// # Ok(()) }
    /// ```
    pub async fn connect(
        &self,
        endpoint: Endpoint,
    ) -> Result<ClientStatsService<Channel, H>, tonic::transport::Error> {
        let tcp = tcp_connector(&endpoint);
        self.connect_with(endpoint, tcp).await
    }

    /// Like [`connect`](Self::connect), connecting on first use.
    pub fn connect_lazy(&self, endpoint: Endpoint) -> ClientStatsService<Channel, H> {
        let tcp = tcp_connector(&endpoint);
        self.connect_lazy_with(endpoint, tcp)
    }

    /// Like [`connect`](Self::connect), with a connector of your own that gives tokio IO in
    /// hyper's `TokioIo` (as [`tcp_connector`] does); the endpoint's `connect_timeout` and
    /// `tls_config` still apply on top of it.
    pub async fn connect_with<C, IO>(
        &self,
        endpoint: Endpoint,
        connector: C,
    ) -> Result<ClientStatsService<Channel, H>, tonic::transport::Error>
    where
        C: Service<Uri, Response = TokioIo<IO>> + Send + 'static,
        C::Future: Send + 'static,
        tonic::codegen::StdError: From<C::Error> + Send,
        IO: AsyncRead + AsyncWrite + Connection + Unpin + Send + 'static,
    {
        let (connector, current) = self.one_endpoint(connector);
        let channel = endpoint.connect_with_connector(connector).await?;
        Ok(self.wrap(&endpoint, channel, current))
    }

    /// Like [`connect_with`](Self::connect_with), connecting on first use.
    pub fn connect_lazy_with<C, IO>(
        &self,
        endpoint: Endpoint,
        connector: C,
    ) -> ClientStatsService<Channel, H>
    where
        C: Service<Uri, Response = TokioIo<IO>> + Send + 'static,
        C::Future: Send + 'static,
        tonic::codegen::StdError: From<C::Error> + Send,
        IO: AsyncRead + AsyncWrite + Connection + Unpin + Send + 'static,
    {
        let (connector, current) = self.one_endpoint(connector);
        let channel = endpoint.connect_with_connector_lazy(connector);
        self.wrap(&endpoint, channel, current)
    }

    /// `connector` wrapped for a channel of one endpoint: each connection it makes is the
    /// channel's current one while open.
    fn one_endpoint<C>(&self, connector: C) -> (StatsConnector<C, H>, Arc<ChannelConnection>) {
        let current = Arc::new(ChannelConnection::default());
        let connector = self.connector(connector).for_channel(Arc::clone(&current));
        (connector, current)
    }

    /// The layer over a channel of one endpoint, whose connection is `current`.
    fn wrap(
        &self,
        endpoint: &Endpoint,
        channel: Channel,
        current: Arc<ChannelConnection>,
    ) -> ClientStatsService<Channel, H> {
        self.layer(channel)
            .with_authority(endpoint.uri().authority().cloned())
            .with_channel(current)
    }
}

impl<S, H: ?Sized> Layer<S> for ClientStatsLayer<H> {
    type Service = ClientStatsService<S, H>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientStatsService::new(inner, Arc::clone(&self.handler))
    }
}
