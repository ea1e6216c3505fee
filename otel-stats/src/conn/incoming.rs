use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio_stream::Stream;
use tonic::transport::server::Connected;

use super::io::StatsIo;
use crate::handler::StatsHandler;

pin_project! {
    /// A stream of accepted connections whose every IO is a [`StatsIo`]: accept is `tag_conn`
    /// and `ConnBegin`, close is `ConnEnd`. Serve it with tonic's `serve_with_incoming` or
    /// `serve_with_incoming_shutdown`.
    ///
    /// Made by [`ServerStatsLayer::incoming`](crate::ServerStatsLayer::incoming).
    pub struct StatsIncoming<I, H: ?Sized> {
        #[pin]
        inner: I,
        handler: Arc<H>,
    }
}

impl<I, H: ?Sized> StatsIncoming<I, H> {
    /// Wraps `inner`, reporting its connections to `handler`.
    pub fn new(inner: I, handler: Arc<H>) -> Self {
        StatsIncoming { inner, handler }
    }

    /// The wrapped stream, for instance tonic's `TcpIncoming` (for its `local_addr()`).
    pub fn get_ref(&self) -> &I {
        &self.inner
    }
}

impl<I: std::fmt::Debug, H: ?Sized> std::fmt::Debug for StatsIncoming<I, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsIncoming")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<I, IO, E, H> Stream for StatsIncoming<I, H>
where
    I: Stream<Item = Result<IO, E>>,
    IO: Connected,
    H: StatsHandler + ?Sized,
{
    type Item = Result<StatsIo<IO, H>, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        let next = ready!(this.inner.poll_next(cx));
        Poll::Ready(next.map(|io| io.map(|io| StatsIo::server(io, Arc::clone(this.handler)))))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}
