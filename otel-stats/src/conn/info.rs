use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use opentelemetry::Context;

/// A connection's context and addresses, as [`StatsIo::info`](super::StatsIo::info) gives them.
///
/// On the server, the layer finds the connection of each RPC by the addresses tonic puts in
/// the request (see [`StatsIo`](super::StatsIo)) and makes its context the parent of the RPC's.
#[derive(Clone)]
pub struct ConnInfo {
    shared: Arc<Shared>,
}

struct Shared {
    cx: Context,
    remote_addr: Option<SocketAddr>,
    local_addr: Option<SocketAddr>,
}

impl ConnInfo {
    pub(super) fn new(
        cx: Context,
        remote_addr: Option<SocketAddr>,
        local_addr: Option<SocketAddr>,
    ) -> Self {
        ConnInfo {
            shared: Arc::new(Shared {
                cx,
                remote_addr,
                local_addr,
            }),
        }
    }

    /// The context `tag_conn` returned for this connection.
    pub fn context(&self) -> &Context {
        &self.shared.cx
    }

    /// The peer's address, when the IO has one.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.shared.remote_addr
    }

    /// This end's address, when the IO has one.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.shared.local_addr
    }

    /// Whether `other` is the info of the same connection (not merely equal addresses).
    pub(super) fn same(&self, other: &ConnInfo) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnInfo")
            .field("remote_addr", &self.shared.remote_addr)
            .field("local_addr", &self.shared.local_addr)
            .finish_non_exhaustive()
    }
}
