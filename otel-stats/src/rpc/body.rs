use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::SystemTime;

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::headers::GrpcHeaders;
use super::state::{Direction, RpcState};
use super::status;
use crate::frame::FrameDecoder;
use crate::handler::StatsHandler;

pin_project! {
    /// A request or response body that reports each gRPC message in it, and passes every frame
    /// through untouched.
    ///
    /// The response body (server) or the received body (client) also reports the trailers and
    /// the RPC's `End`, at the trailers, on an error, or when it is dropped unfinished.
    pub struct StatsBody<B, H>
    where
        H: StatsHandler,
        H: ?Sized,
    {
        #[pin]
        inner: B,
        stats: Option<BodyStats<H>>,
    }
}

impl<B: std::fmt::Debug, H: StatsHandler + ?Sized> std::fmt::Debug for StatsBody<B, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsBody")
            .field("inner", &self.inner)
            .field("instrumented", &self.stats.is_some())
            .finish()
    }
}

/// What a body reports, and where it is in its stream.
pub(super) struct BodyStats<H: StatsHandler + ?Sized> {
    rpc: Arc<RpcState<H>>,
    dir: Direction,
    decoder: FrameDecoder,
    seq: u64,
    /// This body carries the RPC's status: the response body on either side.
    ends_rpc: bool,
    /// Server response headers, reported as `OutHeader` just before the first frame, where
    /// grpc-go reports them (it writes headers with the first message).
    pending_header: Option<HeaderMap>,
}

impl<B, H: StatsHandler + ?Sized> StatsBody<B, H> {
    /// A body that reports nothing (a request that is not gRPC).
    pub(crate) fn passthrough(inner: B) -> Self {
        StatsBody { inner, stats: None }
    }

    /// A body carrying messages of `rpc`, travelling in `dir`, without the RPC's status.
    pub(crate) fn messages(inner: B, rpc: Arc<RpcState<H>>, dir: Direction) -> Self {
        StatsBody {
            inner,
            stats: Some(BodyStats {
                rpc,
                dir,
                decoder: FrameDecoder::new(),
                seq: 0,
                ends_rpc: false,
                pending_header: None,
            }),
        }
    }

    /// The response body, which ends the RPC. `pending_header` is reported before its first
    /// frame.
    pub(crate) fn response(
        inner: B,
        rpc: Arc<RpcState<H>>,
        dir: Direction,
        pending_header: Option<HeaderMap>,
    ) -> Self {
        let mut body = Self::messages(inner, rpc, dir);
        if let Some(stats) = &mut body.stats {
            stats.ends_rpc = true;
            stats.pending_header = pending_header;
        }
        body
    }
}

impl<H: StatsHandler + ?Sized> BodyStats<H> {
    fn data(&mut self, data: &Bytes) {
        let Self {
            rpc,
            dir,
            seq,
            decoder,
            ..
        } = self;
        if !rpc.wants_payloads() {
            return;
        }
        // One clock read per DATA frame: the messages in it arrived together.
        let mut now = None;
        let result = decoder.decode(data, |message| {
            let time = *now.get_or_insert_with(SystemTime::now);
            rpc.payload(*dir, *seq, message, time);
            *seq += 1;
        });
        if let Err(e) = result {
            rpc.frame_error(e);
        }
    }

    fn stream_done(&mut self) {
        if !self.rpc.wants_payloads() {
            return;
        }
        if let Err(e) = self.decoder.finish() {
            self.rpc.frame_error(e);
        }
    }

    fn trailers(&mut self, trailers: &HeaderMap) {
        self.stream_done();
        if self.ends_rpc {
            let status = GrpcHeaders::of(trailers).status();
            self.rpc.trailer_and_end(self.dir, trailers, status, false);
        }
    }

    fn flush_header(&mut self) {
        if let Some(headers) = self.pending_header.take() {
            let compression = GrpcHeaders::of(&headers).compression();
            self.rpc
                .header(Direction::Out, &headers, compression, SystemTime::now());
        }
    }

    /// Reports what the frame holds; `end_of_stream` says no frame follows it.
    fn observe<E: 'static>(
        &mut self,
        frame: &Option<Result<Frame<Bytes>, E>>,
        end_of_stream: bool,
    ) {
        if end_of_stream && !self.ends_rpc {
            self.rpc.request_done();
        }
        match frame {
            Some(Ok(frame)) => {
                self.flush_header();
                if let Some(data) = frame.data_ref() {
                    self.data(data);
                } else if let Some(trailers) = frame.trailers_ref() {
                    self.trailers(trailers);
                }
            }
            Some(Err(e)) => {
                if self.ends_rpc {
                    self.rpc.end(status::from_error(e), None);
                }
            }
            None => {
                self.flush_header();
                self.stream_done();
                if self.ends_rpc {
                    self.rpc.end_without_trailers();
                }
            }
        }
    }
}

impl<H: StatsHandler + ?Sized> Drop for BodyStats<H> {
    fn drop(&mut self) {
        if self.ends_rpc {
            self.rpc.end_dropped();
        }
    }
}

impl<B, H> Body for StatsBody<B, H>
where
    B: Body<Data = Bytes>,
    B::Error: 'static,
    H: StatsHandler + ?Sized,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        if let Some(stats) = this.stats {
            let end_of_stream = frame.is_none() || this.inner.is_end_stream();
            stats.observe(&frame, end_of_stream);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::FutureExt;
    use http_body_util::{BodyExt, StreamBody};
    use opentelemetry::Context;
    use proptest::prelude::*;

    use super::*;
    use crate::event::{RpcStats, Side};
    use crate::rpc::RpcInfo;

    #[derive(Default)]
    struct Counter {
        payloads: AtomicUsize,
        ends: AtomicUsize,
        ignores_payloads: bool,
    }

    impl StatsHandler for Counter {
        fn handle_rpc(&self, _cx: &opentelemetry::Context, stats: &RpcStats<'_>) {
            match stats {
                RpcStats::InPayload(_) => self.payloads.fetch_add(1, Ordering::Relaxed),
                RpcStats::End(_) => self.ends.fetch_add(1, Ordering::Relaxed),
                _ => 0,
            };
        }

        fn wants_payloads(&self, _cx: &opentelemetry::Context) -> bool {
            !self.ignores_payloads
        }
    }

    fn rpc(handler: &Arc<Counter>) -> Arc<RpcState<Counter>> {
        let info = RpcInfo {
            side: Side::Client,
            path: http::uri::PathAndQuery::from_static("/s/M"),
            remote_addr: None,
            local_addr: None,
            timeout: None,
        };
        Arc::new(RpcState::new(Arc::clone(handler), Context::new(), info))
    }

    fn frames(chunks: &[Vec<u8>]) -> Vec<Result<Frame<Bytes>, Infallible>> {
        chunks
            .iter()
            .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
            .collect()
    }

    proptest! {
        /// Whatever the bytes, every frame comes out as it went in, and the body neither
        /// panics nor reports more messages than could fit.
        #[test]
        fn frames_pass_through_untouched(
            chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..16),
        ) {
            let handler = Arc::new(Counter::default());
            let inner = StreamBody::new(futures_util::stream::iter(frames(&chunks)));
            let body = StatsBody::response(inner, rpc(&handler), Direction::In, None);
            let collected = body.collect().now_or_never().unwrap().unwrap().to_bytes();
            prop_assert_eq!(&collected[..], &chunks.concat()[..]);
            let total: usize = chunks.iter().map(Vec::len).sum();
            prop_assert!(handler.payloads.load(Ordering::Relaxed) <= total / 5);
            prop_assert_eq!(handler.ends.load(Ordering::Relaxed), 1);
        }
    }

    #[test]
    fn a_handler_that_ignores_payloads_is_not_told_of_them() {
        let handler = Arc::new(Counter {
            ignores_payloads: true,
            ..Counter::default()
        });
        let message = vec![0, 0, 0, 0, 1, 7];
        let inner = StreamBody::new(futures_util::stream::iter(frames(std::slice::from_ref(
            &message,
        ))));
        let body = StatsBody::response(inner, rpc(&handler), Direction::In, None);
        let collected = body.collect().now_or_never().unwrap().unwrap().to_bytes();
        assert_eq!(&collected[..], &message[..], "the bytes still pass");
        assert_eq!(handler.payloads.load(Ordering::Relaxed), 0);
        assert_eq!(
            handler.ends.load(Ordering::Relaxed),
            1,
            "the RPC still ends"
        );
    }

    /// Records each event's name and time.
    #[derive(Default)]
    struct Times(std::sync::Mutex<Vec<(&'static str, SystemTime)>>);

    impl StatsHandler for Times {
        fn handle_rpc(&self, _cx: &opentelemetry::Context, stats: &RpcStats<'_>) {
            self.0.lock().unwrap().push((stats.name(), stats.time()));
        }
    }

    #[test]
    fn trailers_and_end_share_one_clock_read() {
        let handler = Arc::new(Times::default());
        let info = RpcInfo {
            side: Side::Server,
            path: http::uri::PathAndQuery::from_static("/s/M"),
            remote_addr: None,
            local_addr: None,
            timeout: None,
        };
        let state = Arc::new(RpcState::new(Arc::clone(&handler), Context::new(), info));
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        let mut chunks = frames(&[vec![0, 0, 0, 0, 1, 7]]);
        chunks.push(Ok(Frame::trailers(trailers)));
        let inner = StreamBody::new(futures_util::stream::iter(chunks));
        let body = StatsBody::response(inner, state, Direction::Out, None);
        body.collect().now_or_never().unwrap().unwrap();
        let seen = handler.0.lock().unwrap().clone();
        let names: Vec<_> = seen.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, ["OutPayload", "OutTrailer", "End"]);
        assert_eq!(seen[1].1, seen[2].1, "End is when the trailers went");
        assert!(seen[0].1 <= seen[1].1);
    }

    #[test]
    fn a_dropped_response_body_ends_the_rpc_once() {
        let handler = Arc::new(Counter::default());
        let state = rpc(&handler);
        let inner = StreamBody::new(futures_util::stream::iter(frames(&[vec![0, 0, 0, 0, 1]])));
        let body = StatsBody::response(inner, Arc::clone(&state), Direction::In, None);
        drop(body);
        state.end_dropped();
        assert_eq!(handler.ends.load(Ordering::Relaxed), 1);
    }
}
