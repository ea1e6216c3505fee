use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use http::HeaderMap;
use http::uri::PathAndQuery;
use opentelemetry::Context;

use crate::event::{Begin, End, Header, Payload, RpcStats, Side, Trailer};
use crate::frame::{FrameError, Message};
use crate::handler::{self, StatsHandler};
use crate::status::{self, FinalStatus};

/// Which way a message or header travels, seen from the side that observes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    In,
    Out,
}

/// One tagged RPC: its handler, its context and what it takes to fire `End` exactly once.
///
/// Shared (behind an `Arc`) by the request body, the response future and the response body,
/// whichever of them is the last to see the RPC.
pub(crate) struct RpcState<H> {
    handler: Arc<H>,
    cx: Context,
    side: Side,
    path: PathAndQuery,
    remote_addr: Option<SocketAddr>,
    local_addr: Option<SocketAddr>,
    begin_time: SystemTime,
    started: Instant,
    timeout: Option<Duration>,
    ended: AtomicBool,
    /// The request stream is complete: no request message can come any more.
    request_done: AtomicBool,
    /// Some handler uses payload events (so the bodies look for message boundaries).
    payloads: bool,
    frame_error: OnceLock<FrameError>,
}

/// What an RPC is, before it is tagged.
pub(crate) struct RpcInfo {
    pub(crate) side: Side,
    pub(crate) path: PathAndQuery,
    pub(crate) remote_addr: Option<SocketAddr>,
    pub(crate) local_addr: Option<SocketAddr>,
    pub(crate) timeout: Option<Duration>,
}

impl<H: StatsHandler> RpcState<H> {
    pub(crate) fn new(handler: Arc<H>, cx: Context, info: RpcInfo) -> Self {
        RpcState {
            payloads: handler::wants_payloads(&*handler, &cx),
            handler,
            cx,
            side: info.side,
            path: info.path,
            remote_addr: info.remote_addr,
            local_addr: info.local_addr,
            begin_time: SystemTime::now(),
            started: Instant::now(),
            timeout: info.timeout,
            ended: AtomicBool::new(false),
            request_done: AtomicBool::new(false),
            frame_error: OnceLock::new(),
        }
    }

    pub(crate) fn wants_payloads(&self) -> bool {
        self.payloads
    }

    pub(crate) fn side(&self) -> Side {
        self.side
    }

    pub(crate) fn context(&self) -> &Context {
        &self.cx
    }

    /// Events after `End` are dropped: a stream may still be polled after the RPC ended (a
    /// request body the server stopped reading, for one).
    fn emit(&self, stats: &RpcStats<'_>) {
        if !self.ended.load(Ordering::Acquire) {
            handler::handle_rpc(&*self.handler, &self.cx, stats);
        }
    }

    pub(crate) fn begin(&self) {
        self.emit(&RpcStats::Begin(Begin {
            side: self.side,
            begin_time: self.begin_time,
            timeout: self.timeout,
        }));
    }

    pub(crate) fn header(&self, dir: Direction, metadata: &HeaderMap) {
        let header = Header {
            side: self.side,
            full_method: self.path.path(),
            compression: metadata
                .get(&status::GRPC_ENCODING)
                .and_then(|v| v.to_str().ok())
                .filter(|v| *v != "identity"),
            metadata,
            remote_addr: self.remote_addr,
            local_addr: self.local_addr,
            time: SystemTime::now(),
        };
        self.emit(&match dir {
            Direction::In => RpcStats::InHeader(header),
            Direction::Out => RpcStats::OutHeader(header),
        });
    }

    pub(crate) fn payload(&self, dir: Direction, seq: u64, message: Message, time: SystemTime) {
        let size = message.len as usize;
        let payload = Payload {
            side: self.side,
            seq,
            compressed: message.compressed,
            length: (!message.compressed).then_some(size),
            compressed_length: size,
            wire_length: message.wire_len(),
            data: message.data,
            time,
        };
        self.emit(&match dir {
            Direction::In => RpcStats::InPayload(payload),
            Direction::Out => RpcStats::OutPayload(payload),
        });
    }

    pub(crate) fn trailer(&self, dir: Direction, metadata: &HeaderMap, trailers_only: bool) {
        let trailer = Trailer {
            side: self.side,
            metadata,
            trailers_only,
            time: SystemTime::now(),
        };
        self.emit(&match dir {
            Direction::In => RpcStats::InTrailer(trailer),
            Direction::Out => RpcStats::OutTrailer(trailer),
        });
    }

    /// Notes that the request stream is complete (its body ended).
    pub(crate) fn request_done(&self) {
        self.request_done.store(true, Ordering::Release);
    }

    /// Whether the request stream is complete.
    pub(crate) fn is_request_done(&self) -> bool {
        self.request_done.load(Ordering::Acquire)
    }

    pub(crate) fn frame_error(&self, error: FrameError) {
        // The first error is the one worth reporting; later ones follow from it.
        let _ = self.frame_error.set(error);
    }

    /// Fires `End` unless it already fired.
    pub(crate) fn end(&self, status: FinalStatus, trailers: Option<&HeaderMap>) {
        if self.ended.swap(true, Ordering::AcqRel) {
            return;
        }
        let status = status::settle(status, self.started, self.timeout);
        let end = RpcStats::End(End {
            side: self.side,
            begin_time: self.begin_time,
            end_time: SystemTime::now(),
            code: status.code,
            message: &status.message,
            trailers,
            frame_error: self.frame_error.get().copied(),
        });
        handler::handle_rpc(&*self.handler, &self.cx, &end);
    }

    /// Ends an RPC whose status is in `metadata` (trailers, or trailers-only headers).
    pub(crate) fn end_with_trailers(&self, metadata: &HeaderMap) {
        let status = status::from_headers(metadata).unwrap_or_else(|| {
            FinalStatus::new(tonic::Code::Internal, "response ended without grpc-status")
        });
        self.end(status, Some(metadata));
    }

    /// Ends an RPC that was dropped before it had a status.
    pub(crate) fn end_dropped(&self) {
        if !self.ended.load(Ordering::Acquire) {
            self.end(status::dropped(self.started, self.timeout), None);
        }
    }
}
