use std::sync::Arc;
use std::task::{Context, Poll};

use http::uri::Authority;
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::conn::ChannelConnection;
use crate::event::{RpcTagInfo, Side};
use crate::handler::{self, StatsHandler};
use crate::request;
use crate::rpc::{self, Direction, ResponseFuture, RpcState, StatsBody};

/// The service made by [`ClientStatsLayer`](crate::ClientStatsLayer): a `GrpcService` that
/// tonic-generated clients take.
#[derive(Debug)]
pub struct ClientStatsService<S, H: ?Sized> {
    inner: S,
    handler: Arc<H>,
    /// The server's `host:port`, for requests that carry no authority: tonic-generated
    /// clients send a bare path, and the channel adds the origin below this layer.
    authority: Option<Authority>,
    /// The connection of a one-endpoint channel, whose addresses the RPCs report.
    channel: Option<Arc<ChannelConnection>>,
}

impl<S: Clone, H: ?Sized> Clone for ClientStatsService<S, H> {
    fn clone(&self) -> Self {
        ClientStatsService {
            inner: self.inner.clone(),
            handler: Arc::clone(&self.handler),
            authority: self.authority.clone(),
            channel: self.channel.clone(),
        }
    }
}

impl<S, H: ?Sized> ClientStatsService<S, H> {
    pub(crate) fn new(inner: S, handler: Arc<H>) -> Self {
        ClientStatsService {
            inner,
            handler,
            authority: None,
            channel: None,
        }
    }

    /// Reports the addresses of `channel`'s connection as each RPC's.
    pub(crate) fn with_channel(mut self, channel: Arc<ChannelConnection>) -> Self {
        self.channel = Some(channel);
        self
    }

    /// Reports `authority` (`host:port`) as the server of requests that do not name one.
    /// [`ClientStatsLayer::connect`](crate::ClientStatsLayer::connect) sets the endpoint's.
    pub fn with_authority(mut self, authority: Option<Authority>) -> Self {
        self.authority = authority;
        self
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, B, ResBody, H> Service<Request<B>> for ClientStatsService<S, H>
where
    S: Service<Request<tonic::body::Body>, Response = Response<ResBody>>,
    S::Error: 'static,
    B: Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
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
        let grpc = rpc::GrpcHeaders::of(req.headers());
        if !grpc.is_grpc() {
            return ResponseFuture::passthrough(self.inner.call(req.map(tonic::body::Body::new)));
        }
        let timeout = grpc.timeout();
        let (mut parts, body) = req.into_parts();
        let (remote_addr, local_addr) = self.channel.as_ref().map_or((None, None), |c| c.addrs());
        let info = rpc::RpcInfo {
            side: Side::Client,
            path: rpc::path_of(&parts.uri),
            remote_addr,
            local_addr,
            timeout,
        };
        let authority = parts
            .uri
            .authority()
            .or(self.authority.as_ref())
            .map(Authority::as_str);
        let mut tag = RpcTagInfo::client(info.path.path(), authority, &mut parts.headers)
            .with_addrs(remote_addr, local_addr);
        let cx = handler::tag_rpc(&*self.handler, crate::context::caller_context(), &mut tag);
        let rpc = Arc::new(RpcState::new(Arc::clone(&self.handler), cx, info));
        rpc.begin();
        // `tag_rpc` may have added headers: the encoding is read from what goes out. The
        // headers leave as the RPC begins: their time is its begin time.
        let compression = rpc::compression(&parts.headers);
        rpc.header(
            Direction::Out,
            &parts.headers,
            compression,
            rpc.begin_time(),
        );
        request::insert_context(&mut parts.extensions, rpc.context());
        // Without payload interest a client's request body has nothing to report (the end of
        // the request stream matters to the server side only), so it goes unwrapped: tonic
        // takes its own body back as it is, without boxing it again.
        let body = if rpc.wants_payloads() {
            let body = StatsBody::messages(body, Arc::clone(&rpc), Direction::Out);
            tonic::body::Body::new(body)
        } else {
            tonic::body::Body::new(body)
        };
        let req = Request::from_parts(parts, body);
        ResponseFuture::new(self.inner.call(req), rpc, false)
    }
}
