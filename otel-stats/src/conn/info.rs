use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use http::Extensions;
use opentelemetry::Context;

/// The `Connected` info of a [`StatsIo`](super::StatsIo): the connection's context and
/// addresses, in every request's extensions.
///
/// The server layer takes the connection's context from here as the parent of each RPC's
/// context, and puts the wrapped IO's own connect info (tonic's `TcpConnectInfo`) back into the
/// extensions, so `Request::remote_addr()` and `local_addr()` still work.
#[derive(Clone)]
pub struct ConnInfo {
    shared: Arc<Shared>,
}

struct Shared {
    cx: Context,
    remote_addr: Option<SocketAddr>,
    local_addr: Option<SocketAddr>,
    restore: Box<dyn Fn(&mut Extensions) + Send + Sync>,
}

impl ConnInfo {
    pub(super) fn new<I: Clone + Send + Sync + 'static>(
        cx: Context,
        remote_addr: Option<SocketAddr>,
        local_addr: Option<SocketAddr>,
        inner: I,
    ) -> Self {
        ConnInfo {
            shared: Arc::new(Shared {
                cx,
                remote_addr,
                local_addr,
                restore: Box::new(move |ext| {
                    ext.insert(inner.clone());
                }),
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

    /// Inserts the wrapped IO's own connect info into `extensions`.
    pub(crate) fn restore_inner(&self, extensions: &mut Extensions) {
        (self.shared.restore)(extensions);
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
