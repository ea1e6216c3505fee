//! The per-RPC machinery both sides share: the RPC's state and its `End`-once rule, the body
//! wrapper that turns DATA frames into payload events, and the response future.

mod body;
mod future;
mod headers;
mod state;

pub use body::StatsBody;
pub use future::ResponseFuture;
pub(crate) use headers::{GrpcHeaders, compression};
pub(crate) use state::{Direction, RpcInfo, RpcState};

/// The `/package.Service/Method` path of a request.
pub(crate) fn path_of(uri: &http::Uri) -> http::uri::PathAndQuery {
    uri.path_and_query()
        .cloned()
        .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"))
}
