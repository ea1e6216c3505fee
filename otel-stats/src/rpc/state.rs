use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use http::HeaderMap;
use http::uri::PathAndQuery;
use opentelemetry::Context;

use super::status::{self, Deadline, FinalStatus};
use crate::event::{Begin, End, Header, Payload, RpcStats, Side, Trailer};
use crate::frame::{FrameError, Message};
use crate::handler::{self, StatsHandler};

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
pub(crate) struct RpcState<H: ?Sized> {
    handler: Arc<H>,
    cx: Context,
    side: Side,
    path: PathAndQuery,
    remote_addr: Option<SocketAddr>,
    local_addr: Option<SocketAddr>,
    begin_time: SystemTime,
    deadline: Option<Deadline>,
    /// `End` fired (or is firing): no event may reach the handler any more.
    ended: AtomicBool,
    /// Held while an event is handed to the handler. The bodies and the response future run
    /// on different tasks (a client's request body is polled by the connection while its
    /// caller drops the response): without it an event that passed the `ended` check could
    /// reach the handler after an `End` fired meanwhile on another thread.
    emitting: Mutex<()>,
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

impl<H: StatsHandler + ?Sized> RpcState<H> {
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
            deadline: Deadline::start(info.timeout),
            ended: AtomicBool::new(false),
            emitting: Mutex::new(()),
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

    /// When the RPC began: also the time of the headers that began it (the request headers on
    /// either side), which arrived or left with the RPC's first clock read.
    pub(crate) fn begin_time(&self) -> SystemTime {
        self.begin_time
    }

    /// Events after `End` are dropped: a stream may still be polled after the RPC ended (a
    /// request body the server stopped reading, for one).
    fn emit(&self, stats: &RpcStats<'_>) {
        if self.ended.load(Ordering::Acquire) {
            return;
        }
        let _emitting = self.lock();
        if !self.ended.load(Ordering::Acquire) {
            handler::handle_rpc(&*self.handler, &self.cx, stats);
        }
    }

    /// The handler's hooks contain their panics, so the lock is never poisoned by one; if it
    /// were, the RPC's events still flow.
    fn lock(&self) -> MutexGuard<'_, ()> {
        self.emitting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn begin(&self) {
        self.emit(&RpcStats::Begin(Begin {
            side: self.side,
            begin_time: self.begin_time,
            timeout: self.deadline.map(|d| d.timeout()),
        }));
    }

    /// Reports `metadata`, whose `grpc-encoding` says `compression`, as sent or received at
    /// `time`.
    pub(crate) fn header(
        &self,
        dir: Direction,
        metadata: &HeaderMap,
        compression: Option<&str>,
        time: SystemTime,
    ) {
        let header = Header {
            side: self.side,
            full_method: self.path.path(),
            compression,
            metadata,
            remote_addr: self.remote_addr,
            local_addr: self.local_addr,
            time,
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

    pub(crate) fn trailer(
        &self,
        dir: Direction,
        metadata: &HeaderMap,
        trailers_only: bool,
        time: SystemTime,
    ) {
        let trailer = Trailer {
            side: self.side,
            metadata,
            trailers_only,
            time,
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

    /// Fires `End` now unless it already fired.
    pub(crate) fn end(&self, status: FinalStatus, trailers: Option<&HeaderMap>) {
        self.end_at(status, trailers, None);
    }

    /// Fires `End` unless it already fired, at `time` (the time of the trailers that carried
    /// the status) or else now.
    fn end_at(&self, status: FinalStatus, trailers: Option<&HeaderMap>, time: Option<SystemTime>) {
        // After any event being handled on another thread, before any that comes later.
        let _emitting = self.lock();
        if self.ended.swap(true, Ordering::AcqRel) {
            return;
        }
        let status = status::settle(status, self.deadline);
        let end = RpcStats::End(End {
            side: self.side,
            full_method: self.path.path(),
            begin_time: self.begin_time,
            end_time: time.unwrap_or_else(SystemTime::now),
            code: status.code,
            message: &status.message,
            trailers,
            frame_error: self.frame_error.get().copied(),
        });
        handler::handle_rpc(&*self.handler, &self.cx, &end);
    }

    /// Reports the trailers `metadata` (or trailers-only headers), whose status is `status`
    /// (a missing one is `INTERNAL`), and ends the RPC, both at one clock read: the status
    /// arrived or left with them.
    pub(crate) fn trailer_and_end(
        &self,
        dir: Direction,
        metadata: &HeaderMap,
        status: Option<FinalStatus>,
        trailers_only: bool,
    ) {
        if self.ended.load(Ordering::Acquire) {
            return; // neither event would fire: no clock to read
        }
        let time = SystemTime::now();
        self.trailer(dir, metadata, trailers_only, time);
        let status = status.unwrap_or_else(no_status);
        self.end_at(status, Some(metadata), Some(time));
    }

    /// Ends an RPC whose response stream ended without trailers (`INTERNAL`), unless it
    /// already ended: most often this is the end of the stream after the trailers, with no
    /// status to build (and allocate) for an `End` that already fired.
    pub(crate) fn end_without_trailers(&self) {
        if !self.ended.load(Ordering::Acquire) {
            self.end(no_status(), None);
        }
    }

    /// Ends an RPC that was dropped before it had a status.
    pub(crate) fn end_dropped(&self) {
        if !self.ended.load(Ordering::Acquire) {
            self.end(status::dropped(self.deadline), None);
        }
    }
}

/// The status of a response that ended without saying how it ended.
fn no_status() -> FinalStatus {
    FinalStatus::new(tonic::Code::Internal, "response ended without grpc-status")
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::event::RpcStats;

    /// Counts the events that overlapped or followed an `End`.
    #[derive(Default)]
    struct AfterEnd {
        ended: AtomicBool,
        in_hook: AtomicBool,
        late: AtomicUsize,
        ends: Mutex<u32>,
    }

    impl StatsHandler for AfterEnd {
        fn handle_rpc(&self, _cx: &Context, stats: &RpcStats<'_>) {
            if let RpcStats::End(_) = stats {
                *self.ends.lock().unwrap() += 1;
                if self.in_hook.load(Ordering::SeqCst) {
                    self.late.fetch_add(1, Ordering::SeqCst); // End while an event is handled
                }
                self.ended.store(true, Ordering::SeqCst);
            } else {
                self.in_hook.store(true, Ordering::SeqCst);
                // Widen the window a racing End would have to slip into.
                std::thread::yield_now();
                if self.ended.load(Ordering::SeqCst) {
                    self.late.fetch_add(1, Ordering::SeqCst); // an event after End
                }
                self.in_hook.store(false, Ordering::SeqCst);
            }
        }
    }

    fn rpc(handler: &Arc<AfterEnd>) -> Arc<RpcState<AfterEnd>> {
        Arc::new(RpcState::new(
            Arc::clone(handler),
            Context::new(),
            RpcInfo {
                side: Side::Client,
                path: PathAndQuery::from_static("/s.S/M"),
                remote_addr: None,
                local_addr: None,
                timeout: None,
            },
        ))
    }

    #[test]
    fn events_reach_the_handler_one_at_a_time_and_none_after_end() {
        let handler = Arc::new(AfterEnd::default());
        for _ in 0..200 {
            handler.ended.store(false, Ordering::SeqCst);
            handler.in_hook.store(false, Ordering::SeqCst);
            let rpc = rpc(&handler);
            let sender = {
                let rpc = Arc::clone(&rpc);
                std::thread::spawn(move || {
                    for seq in 0..200 {
                        let message = Message {
                            compressed: false,
                            len: 1,
                            data: None,
                        };
                        rpc.payload(Direction::Out, seq, message, SystemTime::now());
                    }
                })
            };
            std::thread::yield_now();
            rpc.end_dropped();
            sender.join().unwrap();
        }
        assert_eq!(*handler.ends.lock().unwrap(), 200, "one End per RPC");
        assert_eq!(handler.late.load(Ordering::SeqCst), 0, "events after End");
    }
}
