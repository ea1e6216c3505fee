//! What the layers wrap an RPC's response and bodies in: [`ResponseFuture`] and [`StatsBody`].
//! You meet these types in the signatures of [`ServerStatsService`](crate::ServerStatsService)
//! and [`ClientStatsService`](crate::ClientStatsService); you do not make them yourself.

mod body;
mod future;
mod headers;
mod state;
pub(crate) mod status;

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
