use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tonic::transport::server::TcpConnectInfo;
use tower_service::Service;

use crate::conn::ConnInfo;
use crate::event::{RpcTagInfo, Side};
use crate::handler::{self, StatsHandler};
use crate::rpc::{self, Direction, ResponseFuture, RpcState, StatsBody};
use crate::status;

/// The service made by [`ServerStatsLayer`](crate::ServerStatsLayer).
#[derive(Debug)]
pub struct ServerStatsService<S, H> {
    inner: S,
    handler: Arc<H>,
}

impl<S: Clone, H> Clone for ServerStatsService<S, H> {
    fn clone(&self) -> Self {
        ServerStatsService {
            inner: self.inner.clone(),
            handler: Arc::clone(&self.handler),
        }
    }
}

impl<S, H> ServerStatsService<S, H> {
    pub(crate) fn new(inner: S, handler: Arc<H>) -> Self {
        ServerStatsService { inner, handler }
    }
}

impl<S, B, ResBody, H> Service<Request<B>> for ServerStatsService<S, H>
where
    S: Service<Request<StatsBody<B, H>>, Response = Response<ResBody>>,
    S::Error: 'static,
    ResBody: Body,
    H: StatsHandler,
{
    type Response = Response<StatsBody<ResBody, H>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, H>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if !rpc::is_grpc(req.headers()) {
            return ResponseFuture::passthrough(self.inner.call(req.map(StatsBody::passthrough)));
        }
        let conn = req.extensions().get::<ConnInfo>().cloned();
        let (remote_addr, local_addr, parent) = match &conn {
            Some(conn) => {
                conn.restore_inner(req.extensions_mut());
                (
                    conn.remote_addr(),
                    conn.local_addr(),
                    conn.context().clone(),
                )
            }
            None => {
                let tcp = req.extensions().get::<TcpConnectInfo>();
                (
                    tcp.and_then(TcpConnectInfo::remote_addr),
                    tcp.and_then(TcpConnectInfo::local_addr),
                    opentelemetry::Context::current(),
                )
            }
        };
        let info = rpc::RpcInfo {
            side: Side::Server,
            path: rpc::path_of(req.uri()),
            remote_addr,
            local_addr,
            timeout: status::timeout(req.headers()),
        };
        let mut tag = RpcTagInfo::server(info.path.path(), req.headers(), remote_addr, local_addr);
        let cx = handler::tag_rpc(&*self.handler, parent, &mut tag);
        let rpc = Arc::new(RpcState::new(Arc::clone(&self.handler), cx, info));
        rpc.header(Direction::In, req.headers());
        rpc.begin();
        req.extensions_mut().insert(rpc.context().clone());
        let req = req.map(|body| StatsBody::messages(body, Arc::clone(&rpc), Direction::In));
        let future = {
            let _active = rpc.context().clone().attach();
            self.inner.call(req)
        };
        ResponseFuture::new(future, rpc, true)
    }
}
