//! The event model: what a [`StatsHandler`](crate::StatsHandler) is told, and when.
//!
//! A handler receives [`RpcStats`] (one variant per grpc-go `stats.RPCStats` type, each
//! carrying one of [`Begin`], [`Header`], [`Payload`], [`Trailer`], [`End`]) and
//! [`ConnStats`] ([`ConnBegin`], [`ConnEnd`]), after [`RpcTagInfo`] and [`ConnTagInfo`] at
//! `tag_rpc` and `tag_conn`. The crate root re-exports the enums, the tag infos and [`Side`].
//!
//! The types mirror grpc-go's `stats` package field for field where a tower layer can know the
//! value, and leave out (or make optional) what it cannot, such as the HPACK wire length of
//! headers or the decoded message.
//!
//! # Testing a handler
//!
//! The event structs are `#[non_exhaustive]`, so that fields can be added without breaking
//! handlers; each has a constructor that fills in the usual values (the time is now), and
//! public fields to set the rest. A unit test of a handler feeds it events directly:
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! use opentelemetry::Context;
//! use otel_stats::event::{Begin, End};
//! use otel_stats::{RpcStats, RpcTagInfo, Side, StatsHandler};
//! use tonic::Code;
//!
//! /// Counts the RPCs that failed.
//! #[derive(Default)]
//! struct Failures(AtomicU64);
//!
//! impl StatsHandler for Failures {
//!     fn handle_rpc(&self, _cx: &Context, stats: &RpcStats<'_>) {
//!         if let RpcStats::End(end) = stats {
//!             if !end.is_ok() {
//!                 self.0.fetch_add(1, Ordering::Relaxed);
//!             }
//!         }
//!     }
//! }
//!
//! // #[test]
//! fn counts_failed_rpcs() {
//!     let handler = Failures::default();
//!     let method = "/echo.Echo/UnaryEcho";
//!     let headers = http::HeaderMap::new();
//!     let mut info = RpcTagInfo::server(method, &headers, None, None);
//!     let cx = handler.tag_rpc(Context::new(), &mut info);
//!
//!     handler.handle_rpc(&cx, &RpcStats::Begin(Begin::new(Side::Server)));
//!     let mut end = End::new(Side::Server, method, Code::NotFound);
//!     end.message = "no such user";
//!     handler.handle_rpc(&cx, &RpcStats::End(end));
//!
//!     assert_eq!(handler.0.load(Ordering::Relaxed), 1);
//! }
//! # counts_failed_rpcs();
//! ```

mod conn;
mod rpc;
mod tag;

pub use conn::{ConnBegin, ConnEnd, ConnStats};
pub use rpc::{Begin, End, Header, Payload, RpcStats, Trailer};
pub use tag::{ConnTagInfo, RpcTagInfo};

use std::fmt;

/// Which end of an RPC or connection an event was observed on.
///
/// grpc-go carries this as the `Client bool` field of every event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The side that started the RPC (grpc-go: `Client == true`).
    Client,
    /// The side that serves the RPC.
    Server,
}

impl Side {
    /// `true` on the client side, like grpc-go's `Client` field.
    pub fn is_client(self) -> bool {
        self == Side::Client
    }

    /// `"client"` or `"server"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
