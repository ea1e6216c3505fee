//! The [`StatsHandler`] trait and the ways to run several handlers at once.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use opentelemetry::Context;

use crate::event::{ConnStats, ConnTagInfo, RpcStats, RpcTagInfo};

/// Hooks on every phase of every RPC and connection: the Rust counterpart of grpc-go's
/// `stats.Handler`.
///
/// The layers ([`ServerStatsLayer`](crate::ServerStatsLayer),
/// [`ClientStatsLayer`](crate::ClientStatsLayer)) call [`tag_rpc`](Self::tag_rpc) when an RPC
/// starts and [`handle_rpc`](Self::handle_rpc) for each of its events, in grpc-go's order. The
/// connection wrappers call [`tag_conn`](Self::tag_conn) and [`handle_conn`](Self::handle_conn).
///
/// The context returned by `tag_rpc` is passed to every `handle_rpc` of that RPC and stored in
/// the request's extensions, so a tonic service can read it with
/// [`request.rpc_context()`](crate::RpcRequestExt::rpc_context).
///
/// Hooks run inline on the RPC's task: they must be quick and must not block. A hook that
/// panics is contained: the RPC goes on, and the other handlers of a composite still run.
///
/// The events of one RPC reach [`handle_rpc`](Self::handle_rpc) one at a time, even when its
/// request and response streams are polled on different threads, and `End` is the last of
/// them: exactly one `End` per [`tag_rpc`](Self::tag_rpc), and nothing after it.
///
/// # Several handlers
///
/// A tuple of up to eight handlers, a `Vec` of them, an `Option` and a [`BoxHandler`] are
/// handlers too. Handlers run in order, each one's `tag_*` context passed to the next, and a
/// panic in one is contained: the others still run.
///
/// ```
/// use otel_stats::{LogHandler, MetricsHandler, OtelHandler, ServerStatsLayer};
///
/// let verbose = std::env::var_os("VERBOSE").is_some();
/// let stats = ServerStatsLayer::new((
///     OtelHandler::new(),
///     MetricsHandler::new(),
///     verbose.then(|| LogHandler::text(std::io::stderr())),
/// ));
/// # let _ = stats;
/// ```
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use opentelemetry::Context;
/// use otel_stats::{RpcStats, StatsHandler};
///
/// /// Counts the bytes of the messages received.
/// #[derive(Default)]
/// struct BytesIn(AtomicU64);
///
/// impl StatsHandler for BytesIn {
///     fn handle_rpc(&self, _cx: &Context, stats: &RpcStats<'_>) {
///         if let RpcStats::InPayload(p) = stats {
///             self.0.fetch_add(p.wire_length as u64, Ordering::Relaxed);
///         }
///     }
/// }
/// ```
pub trait StatsHandler: Send + Sync + 'static {
    /// Attaches information to a new RPC's context and returns it. Called first, before any
    /// event of the RPC. On the server `cx` carries what [`tag_conn`](Self::tag_conn) returned for
    /// the RPC's connection; on the client it is the caller's current context.
    fn tag_rpc(&self, cx: Context, info: &mut RpcTagInfo<'_>) -> Context {
        let _ = info;
        cx
    }

    /// Handles one RPC event, with the context `tag_rpc` returned.
    fn handle_rpc(&self, cx: &Context, stats: &RpcStats<'_>);

    /// Attaches information to a new connection's context and returns it.
    fn tag_conn(&self, cx: Context, info: &ConnTagInfo) -> Context {
        let _ = info;
        cx
    }

    /// Handles one connection event, with the context `tag_conn` returned.
    fn handle_conn(&self, cx: &Context, stats: &ConnStats) {
        let _ = (cx, stats);
    }

    /// Whether this handler uses the `InPayload`/`OutPayload` events of the RPC whose
    /// context (what `tag_rpc` returned) is `cx`; asked once per RPC, right after `tag_rpc`.
    /// When no handler does, the layers do not look for message boundaries at all, which is
    /// most of what a long stream costs them; `End::frame_error` is then never set.
    fn wants_payloads(&self, cx: &Context) -> bool {
        let _ = cx;
        true
    }
}

/// A handler that does nothing: the cost of the layers themselves.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopHandler;

impl StatsHandler for NoopHandler {
    fn handle_rpc(&self, _cx: &Context, _stats: &RpcStats<'_>) {}

    fn wants_payloads(&self, _cx: &Context) -> bool {
        false
    }
}

/// Runs `f`, containing a panic: a stats hook must never take the RPC down.
pub(crate) fn guard<R>(f: impl FnOnce() -> R) -> Option<R> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}

/// Calls `tag` with a copy of `cx`; if it panics, the context stays as it was.
fn guard_tag(cx: Context, tag: impl FnOnce(Context) -> Context) -> Context {
    let fallback = cx.clone();
    guard(|| tag(cx)).unwrap_or(fallback)
}

pub(crate) fn tag_rpc<H: StatsHandler + ?Sized>(
    h: &H,
    cx: Context,
    info: &mut RpcTagInfo<'_>,
) -> Context {
    guard_tag(cx, |cx| h.tag_rpc(cx, info))
}

pub(crate) fn handle_rpc<H: StatsHandler + ?Sized>(h: &H, cx: &Context, stats: &RpcStats<'_>) {
    guard(|| h.handle_rpc(cx, stats));
}

pub(crate) fn tag_conn<H: StatsHandler + ?Sized>(
    h: &H,
    cx: Context,
    info: &ConnTagInfo,
) -> Context {
    guard_tag(cx, |cx| h.tag_conn(cx, info))
}

pub(crate) fn handle_conn<H: StatsHandler + ?Sized>(h: &H, cx: &Context, stats: &ConnStats) {
    guard(|| h.handle_conn(cx, stats));
}

/// A handler that panics is taken to want payloads: the events still come, as before.
pub(crate) fn wants_payloads<H: StatsHandler + ?Sized>(h: &H, cx: &Context) -> bool {
    guard(|| h.wants_payloads(cx)).unwrap_or(true)
}

macro_rules! tuple_handler {
    ($($h:ident . $i:tt),+) => {
        /// Handlers called in order, the context of each one's `tag_*` passed to the next,
        /// like grpc-go's combined handlers. A panic in one is contained: the others still
        /// run, with the context as it was before the one that panicked.
        impl<$($h: StatsHandler),+> StatsHandler for ($($h,)+) {
            fn tag_rpc(&self, cx: Context, info: &mut RpcTagInfo<'_>) -> Context {
                $(let cx = tag_rpc(&self.$i, cx, info);)+
                cx
            }

            fn handle_rpc(&self, cx: &Context, stats: &RpcStats<'_>) {
                $(handle_rpc(&self.$i, cx, stats);)+
            }

            fn tag_conn(&self, cx: Context, info: &ConnTagInfo) -> Context {
                $(let cx = tag_conn(&self.$i, cx, info);)+
                cx
            }

            fn handle_conn(&self, cx: &Context, stats: &ConnStats) {
                $(handle_conn(&self.$i, cx, stats);)+
            }

            fn wants_payloads(&self, cx: &Context) -> bool {
                $(wants_payloads(&self.$i, cx))||+
            }
        }
    };
}

tuple_handler!(A.0);
tuple_handler!(A.0, B.1);
tuple_handler!(A.0, B.1, C.2);
tuple_handler!(A.0, B.1, C.2, D.3);
tuple_handler!(A.0, B.1, C.2, D.3, E.4);
tuple_handler!(A.0, B.1, C.2, D.3, E.4, F.5);
tuple_handler!(A.0, B.1, C.2, D.3, E.4, F.5, G.6);
tuple_handler!(A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7);

/// An optional handler: `None` does nothing and asks for no payloads, so a handler chosen at
/// start-up (from a flag, say) can sit in a tuple without a second layer type.
///
/// ```
/// use otel_stats::{LogHandler, OtelHandler, ServerStatsLayer};
///
/// let verbose = std::env::var_os("VERBOSE").is_some();
/// let log = verbose.then(|| LogHandler::text(std::io::stderr()));
/// let stats = ServerStatsLayer::new((OtelHandler::new(), log));
/// # let _ = stats;
/// ```
impl<H: StatsHandler> StatsHandler for Option<H> {
    fn tag_rpc(&self, cx: Context, info: &mut RpcTagInfo<'_>) -> Context {
        match self {
            Some(h) => h.tag_rpc(cx, info),
            None => cx,
        }
    }

    fn handle_rpc(&self, cx: &Context, stats: &RpcStats<'_>) {
        if let Some(h) = self {
            h.handle_rpc(cx, stats);
        }
    }

    fn tag_conn(&self, cx: Context, info: &ConnTagInfo) -> Context {
        match self {
            Some(h) => h.tag_conn(cx, info),
            None => cx,
        }
    }

    fn handle_conn(&self, cx: &Context, stats: &ConnStats) {
        if let Some(h) = self {
            h.handle_conn(cx, stats);
        }
    }

    fn wants_payloads(&self, cx: &Context) -> bool {
        self.as_ref().is_some_and(|h| h.wants_payloads(cx))
    }
}

/// Any number of handlers, called in order, the context threaded through the `tag_*` calls.
///
/// ```
/// use otel_stats::{LogHandler, NoopHandler, StatsHandler};
///
/// let handlers: Vec<Box<dyn StatsHandler>> = vec![
///     Box::new(LogHandler::text(std::io::stderr())),
///     Box::new(NoopHandler),
/// ];
/// # fn is_handler<H: StatsHandler>(_: &H) {}
/// # is_handler(&handlers);
/// ```
impl<H: StatsHandler> StatsHandler for Vec<H> {
    fn tag_rpc(&self, cx: Context, info: &mut RpcTagInfo<'_>) -> Context {
        self.iter().fold(cx, |cx, h| tag_rpc(h, cx, info))
    }

    fn handle_rpc(&self, cx: &Context, stats: &RpcStats<'_>) {
        self.iter().for_each(|h| handle_rpc(h, cx, stats));
    }

    fn tag_conn(&self, cx: Context, info: &ConnTagInfo) -> Context {
        self.iter().fold(cx, |cx, h| tag_conn(h, cx, info))
    }

    fn handle_conn(&self, cx: &Context, stats: &ConnStats) {
        self.iter().for_each(|h| handle_conn(h, cx, stats));
    }

    fn wants_payloads(&self, cx: &Context) -> bool {
        self.iter().any(|h| wants_payloads(h, cx))
    }
}

macro_rules! forward_handler {
    ($($ptr:ident),*) => {$(
        impl<H: StatsHandler + ?Sized> StatsHandler for $ptr<H> {
            fn tag_rpc(&self, cx: Context, info: &mut RpcTagInfo<'_>) -> Context {
                (**self).tag_rpc(cx, info)
            }
            fn handle_rpc(&self, cx: &Context, stats: &RpcStats<'_>) {
                (**self).handle_rpc(cx, stats)
            }
            fn tag_conn(&self, cx: Context, info: &ConnTagInfo) -> Context {
                (**self).tag_conn(cx, info)
            }
            fn handle_conn(&self, cx: &Context, stats: &ConnStats) {
                (**self).handle_conn(cx, stats)
            }
            fn wants_payloads(&self, cx: &Context) -> bool {
                (**self).wants_payloads(cx)
            }
        }
    )*};
}

forward_handler!(Box, Arc);

/// A handler chosen at run time, shared: what to store when the handler's type is not known
/// at compile time, or would be too long to write.
///
/// ```
/// use std::sync::Arc;
/// use otel_stats::{BoxHandler, LogHandler, NoopHandler, OtelHandler, ServerStatsLayer, StatsHandler};
///
/// let handler: BoxHandler = match std::env::var("STATS").as_deref() {
///     Ok("log") => Arc::new(LogHandler::text(std::io::stderr())),
///     Ok("none") => Arc::new(NoopHandler),
///     _ => Arc::new(OtelHandler::new()),
/// };
/// // `from_arc` takes the `Arc` as it is: no second one around it.
/// let stats: ServerStatsLayer<dyn StatsHandler> = ServerStatsLayer::from_arc(handler);
/// # let _ = stats;
/// ```
pub type BoxHandler = Arc<dyn StatsHandler>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Side;
    use opentelemetry::KeyValue;
    use std::sync::Mutex;

    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Tag(&'static str);

    #[derive(Default)]
    struct Recorder {
        name: &'static str,
        seen: Mutex<Vec<String>>,
    }

    impl StatsHandler for Recorder {
        fn tag_rpc(&self, cx: Context, _info: &mut RpcTagInfo<'_>) -> Context {
            let before = cx.get::<Tag>().map(|t| t.0).unwrap_or("-");
            self.seen.lock().unwrap().push(format!("tag saw {before}"));
            cx.with_value(Tag(self.name))
        }
        fn handle_rpc(&self, cx: &Context, stats: &RpcStats<'_>) {
            let tag = cx.get::<Tag>().map(|t| t.0).unwrap_or("-");
            self.seen
                .lock()
                .unwrap()
                .push(format!("{} {tag}", stats.name()));
        }
    }

    struct Panicker;
    impl StatsHandler for Panicker {
        fn tag_rpc(&self, _cx: Context, _info: &mut RpcTagInfo<'_>) -> Context {
            panic!("tag_rpc panics")
        }
        fn handle_rpc(&self, _cx: &Context, _stats: &RpcStats<'_>) {
            panic!("handle_rpc panics")
        }
    }

    fn begin() -> RpcStats<'static> {
        RpcStats::Begin(crate::event::Begin::new(Side::Server))
    }

    fn recorder(name: &'static str) -> Recorder {
        Recorder {
            name,
            ..Default::default()
        }
    }

    /// `h.tag_rpc(cx, ..)` for a server RPC.
    fn tag(h: &impl StatsHandler, cx: Context) -> Context {
        let headers = http::HeaderMap::new();
        h.tag_rpc(cx, &mut RpcTagInfo::server("/s/M", &headers, None, None))
    }

    #[test]
    fn pair_threads_the_context_in_order() {
        let pair = (recorder("a"), recorder("b"));
        let cx = tag(&pair, Context::new());
        pair.handle_rpc(&cx, &begin());
        assert_eq!(*pair.0.seen.lock().unwrap(), ["tag saw -", "Begin b"]);
        assert_eq!(*pair.1.seen.lock().unwrap(), ["tag saw a", "Begin b"]);
    }

    #[test]
    fn a_tuple_threads_the_context_through_every_handler_and_contains_panics() {
        let handlers = (recorder("a"), Panicker, None::<Recorder>, recorder("c"));
        let cx = tag(&handlers, Context::new());
        handlers.handle_rpc(&cx, &begin());
        assert_eq!(*handlers.0.seen.lock().unwrap(), ["tag saw -", "Begin c"]);
        assert_eq!(*handlers.3.seen.lock().unwrap(), ["tag saw a", "Begin c"]);
        assert!(handlers.wants_payloads(&cx));
    }

    #[test]
    fn none_is_a_handler_that_does_nothing() {
        let none: Option<Recorder> = None;
        let cx = tag(&none, Context::new().with_value(Tag("before")));
        assert_eq!(cx.get::<Tag>(), Some(&Tag("before")));
        assert!(!none.wants_payloads(&cx));
        let cx = tag(&Some(recorder("s")), cx);
        assert_eq!(cx.get::<Tag>(), Some(&Tag("s")));
    }

    #[test]
    fn a_panicking_handler_keeps_the_context_and_the_others_run() {
        let handlers: Vec<Box<dyn StatsHandler>> =
            vec![Box::new(Panicker), Box::new(recorder("r"))];
        let cx = tag(
            &handlers,
            Context::new().with_value(KeyValue::new("k", "v")),
        );
        assert!(cx.get::<KeyValue>().is_some(), "context survives the panic");
        assert_eq!(cx.get::<Tag>(), Some(&Tag("r")));
        handlers.handle_rpc(&cx, &begin());
    }
}
