use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::conn;
use crate::event::{RpcTagInfo, Side};
use crate::handler::{self, StatsHandler};
use crate::request;
use crate::rpc::{self, Direction, ResponseFuture, RpcState, StatsBody};

/// The service made by [`ServerStatsLayer`](crate::ServerStatsLayer).
#[derive(Debug)]
pub struct ServerStatsService<S, H: ?Sized> {
    inner: S,
    handler: Arc<H>,
}

impl<S: Clone, H: ?Sized> Clone for ServerStatsService<S, H> {
    fn clone(&self) -> Self {
        ServerStatsService {
            inner: self.inner.clone(),
            handler: Arc::clone(&self.handler),
        }
    }
}

impl<S, H: ?Sized> ServerStatsService<S, H> {
    pub(crate) fn new(inner: S, handler: Arc<H>) -> Self {
        ServerStatsService { inner, handler }
    }
}

impl<S, B, ResBody, H> Service<Request<B>> for ServerStatsService<S, H>
where
    S: Service<Request<StatsBody<B, H>>, Response = Response<ResBody>>,
    S::Error: 'static,
    ResBody: Body,
    H: StatsHandler + ?Sized,
{
    type Response = Response<StatsBody<ResBody, H>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, H>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let (mut parts, body) = req.into_parts();
        let grpc = rpc::GrpcHeaders::of(&parts.headers);
        if !grpc.is_grpc() {
            let req = Request::from_parts(parts, StatsBody::passthrough(body));
            return ResponseFuture::passthrough(self.inner.call(req));
        }
        // The extensions stay as tonic made them (the service reads its own connect info
        // there); the connection is found by the addresses in them.
        let (remote_addr, local_addr) = conn::addrs_of_request(&parts.extensions);
        let parent = remote_addr
            .zip(local_addr)
            .and_then(|(remote, local)| conn::context_of(remote, local))
            .unwrap_or_else(opentelemetry::Context::current);
        let info = rpc::RpcInfo {
            side: Side::Server,
            path: rpc::path_of(&parts.uri),
            remote_addr,
            local_addr,
            timeout: grpc.timeout(),
        };
        let mut tag = RpcTagInfo::server(info.path.path(), &parts.headers, remote_addr, local_addr)
            .with_authority(parts.uri.authority().map(|a| a.as_str()));
        let cx = handler::tag_rpc(&*self.handler, parent, &mut tag);
        let rpc = Arc::new(RpcState::new(Arc::clone(&self.handler), cx, info));
        // The request headers came with the RPC: their time is its begin time.
        let compression = grpc.compression();
        rpc.header(Direction::In, &parts.headers, compression, rpc.begin_time());
        rpc.begin();
        request::insert_context(&mut parts.extensions, rpc.context());
        let body = StatsBody::messages(body, Arc::clone(&rpc), Direction::In);
        let req = Request::from_parts(parts, body);
        let future = {
            let _active = rpc.context().clone().attach();
            self.inner.call(req)
        };
        ResponseFuture::new(future, rpc, true)
    }
}
