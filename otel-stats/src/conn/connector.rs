use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::client::legacy::connect::Connection;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tower_service::Service;

use super::current::ChannelConnection;
use super::io::StatsIo;
use crate::handler::StatsHandler;

/// A connector for `Endpoint::connect_with_connector` that reports each connection it makes:
/// `tag_conn` and `ConnBegin` once connected, `ConnEnd` when the channel drops it.
///
/// It wraps connectors that give tokio IO in hyper's `TokioIo`, as hyper-util's
/// `HttpConnector` (tonic's default) does. Made by
/// [`ClientStatsLayer::connector`](crate::ClientStatsLayer::connector).
pub struct StatsConnector<C, H: ?Sized> {
    inner: C,
    handler: Arc<H>,
    /// The channel whose connections these are, when it has one endpoint.
    channel: Option<Arc<ChannelConnection>>,
}

impl<C, H: ?Sized> StatsConnector<C, H> {
    /// Wraps `inner`, reporting its connections to `handler`.
    pub fn new(inner: C, handler: Arc<H>) -> Self {
        StatsConnector {
            inner,
            handler,
            channel: None,
        }
    }

    /// Records each connection as `channel`'s current one while it is open.
    pub(crate) fn for_channel(mut self, channel: Arc<ChannelConnection>) -> Self {
        self.channel = Some(channel);
        self
    }
}

impl<C: Clone, H: ?Sized> Clone for StatsConnector<C, H> {
    fn clone(&self) -> Self {
        StatsConnector {
            inner: self.inner.clone(),
            handler: Arc::clone(&self.handler),
            channel: self.channel.clone(),
        }
    }
}

impl<C: std::fmt::Debug, H: ?Sized> std::fmt::Debug for StatsConnector<C, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsConnector")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<C, IO, H> Service<Uri> for StatsConnector<C, H>
where
    C: Service<Uri, Response = TokioIo<IO>>,
    C::Future: Send + 'static,
    IO: AsyncRead + AsyncWrite + Connection + Unpin + Send + 'static,
    H: StatsHandler + ?Sized,
{
    type Response = TokioIo<StatsIo<IO, H>>;
    type Error = C::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, C::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), C::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let handler = Arc::clone(&self.handler);
        let channel = self.channel.clone();
        Box::pin(async move {
            let io = connecting.await?.into_inner();
            Ok(TokioIo::new(StatsIo::client_of(
                io,
                handler,
                channel.as_ref(),
            )))
        })
    }
}
