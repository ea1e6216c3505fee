use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::SystemTime;

use http::Response;
use http_body::Body;
use pin_project_lite::pin_project;

use super::body::StatsBody;
use super::headers::GrpcHeaders;
use super::state::{Direction, RpcState};
use super::status;
use crate::event::Side;
use crate::handler::StatsHandler;

pin_project! {
    /// The response future of the stats services: reports the response headers (or the status
    /// of a trailers-only response) and wraps the response body.
    ///
    /// Dropped before it resolves, it ends the RPC as `CANCELLED` (or `DEADLINE_EXCEEDED`).
    pub struct ResponseFuture<F, H>
    where
        H: StatsHandler,
        H: ?Sized,
    {
        #[pin]
        inner: F,
        rpc: RpcGuard<H>,
        attach: bool,
    }
}

impl<F, H: StatsHandler + ?Sized> std::fmt::Debug for ResponseFuture<F, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("instrumented", &self.rpc.0.is_some())
            .finish_non_exhaustive()
    }
}

/// Ends the RPC as dropped unless the response arrived and the RPC was taken out.
struct RpcGuard<H: StatsHandler + ?Sized>(Option<Arc<RpcState<H>>>);

impl<H: StatsHandler + ?Sized> Drop for RpcGuard<H> {
    fn drop(&mut self) {
        if let Some(rpc) = &self.0 {
            rpc.end_dropped();
        }
    }
}

impl<F, H: StatsHandler + ?Sized> ResponseFuture<F, H> {
    pub(crate) fn passthrough(inner: F) -> Self {
        ResponseFuture {
            inner,
            rpc: RpcGuard(None),
            attach: false,
        }
    }

    pub(crate) fn new(inner: F, rpc: Arc<RpcState<H>>, attach: bool) -> Self {
        ResponseFuture {
            inner,
            rpc: RpcGuard(Some(rpc)),
            attach,
        }
    }
}

impl<F, B, E, H> Future for ResponseFuture<F, H>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
    E: 'static,
    H: StatsHandler + ?Sized,
{
    type Output = Result<Response<StatsBody<B, H>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            // Polling under the RPC's context lets service code reach it as the current one.
            let _active = this
                .rpc
                .0
                .as_ref()
                .filter(|_| *this.attach)
                .map(|rpc| rpc.context().clone().attach());
            ready!(this.inner.poll(cx))
        };
        // The response is here: from now on the body (or nobody) carries the RPC.
        let Some(rpc) = this.rpc.0.take() else {
            return Poll::Ready(result.map(|r| r.map(StatsBody::passthrough)));
        };
        match result {
            Ok(response) => Poll::Ready(Ok(on_response(rpc, response))),
            Err(e) => {
                rpc.end(status::from_error(&e), None);
                Poll::Ready(Err(e))
            }
        }
    }
}

/// Reports the response headers and wraps the body, by side:
///
/// - trailers-only (status in the headers): `InTrailer`/`OutTrailer` then `End`, now;
/// - client: `InHeader` now; the body reports `InPayload`s, `InTrailer` and `End`;
/// - server: the body reports `OutHeader` before its first frame, then `OutPayload`s,
///   `OutTrailer` and `End`.
fn on_response<B: Body, H: StatsHandler + ?Sized>(
    rpc: Arc<RpcState<H>>,
    response: Response<B>,
) -> Response<StatsBody<B, H>> {
    let dir = match rpc.side() {
        Side::Client => Direction::In,
        Side::Server => Direction::Out,
    };
    let headers = response.headers();
    let grpc = GrpcHeaders::of(headers);
    if let Some(status) = grpc.status() {
        rpc.trailer_and_end(dir, headers, Some(status), true);
        return response.map(StatsBody::passthrough);
    }
    if rpc.side() == Side::Client && response.status() != http::StatusCode::OK {
        // Not a gRPC response (a proxy's error page, say): tonic infers the status from the
        // HTTP status, and so do we.
        rpc.end(status::from_http(response.status()), None);
        return response.map(StatsBody::passthrough);
    }
    // The server reports `OutHeader` where grpc-go does, just before the first message: a
    // request message read meanwhile comes first. Once the request stream is complete no
    // such message can come, so the headers are reported now, without keeping a copy.
    let pending_header = match rpc.side() {
        Side::Server if !rpc.is_request_done() => Some(headers.clone()),
        _ => {
            rpc.header(dir, headers, grpc.compression(), SystemTime::now());
            None
        }
    };
    response.map(|body| StatsBody::response(body, rpc, dir, pending_header))
}
