use std::sync::Arc;

use hyper_util::client::legacy::connect::HttpConnector;
use tonic::transport::{Channel, Endpoint};
use tower_layer::Layer;

use super::service::ClientStatsService;
use crate::conn::StatsConnector;
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
pub struct ClientStatsLayer<H> {
    handler: Arc<H>,
}

impl<H> Clone for ClientStatsLayer<H> {
    fn clone(&self) -> Self {
        ClientStatsLayer {
            handler: Arc::clone(&self.handler),
        }
    }
}

impl<H: StatsHandler> ClientStatsLayer<H> {
    /// A layer reporting to `handler`.
    pub fn new(handler: H) -> Self {
        Self::from_arc(Arc::new(handler))
    }

    /// A layer reporting to a handler that is shared with other layers or wrappers.
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
    /// Uses hyper-util's `HttpConnector` set up as tonic sets it up by default (`TCP_NODELAY`);
    /// for other socket options build the connector yourself and use
    /// [`connector`](Self::connector).
    pub async fn connect(
        &self,
        endpoint: Endpoint,
    ) -> Result<ClientStatsService<Channel, H>, tonic::transport::Error> {
        let authority = endpoint.uri().authority().cloned();
        let channel = endpoint
            .connect_with_connector(self.default_connector())
            .await?;
        Ok(self.layer(channel).with_authority(authority))
    }

    /// Like [`connect`](Self::connect), connecting on first use.
    pub fn connect_lazy(&self, endpoint: Endpoint) -> ClientStatsService<Channel, H> {
        let authority = endpoint.uri().authority().cloned();
        self.layer(endpoint.connect_with_connector_lazy(self.default_connector()))
            .with_authority(authority)
    }

    fn default_connector(&self) -> StatsConnector<HttpConnector, H> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        self.connector(http)
    }
}

impl<S, H> Layer<S> for ClientStatsLayer<H> {
    type Service = ClientStatsService<S, H>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientStatsService::new(inner, Arc::clone(&self.handler))
    }
}
