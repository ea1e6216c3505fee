//! The connection a one-endpoint channel is on: what a client RPC knows of its peer.
//!
//! A client RPC is tagged above tonic's `Channel`, which picks the connection below it, so the
//! RPC cannot ask which connection will carry it. A channel made from one `Endpoint` (what
//! [`ClientStatsLayer::connect`](crate::ClientStatsLayer::connect) makes) has one connection
//! at a time, though, and reconnects in its place: the connector records each connection here
//! while it is open, and the client layer reads it as each RPC starts.

use std::sync::{Arc, PoisonError, RwLock, RwLockWriteGuard};

use super::addrs::Addrs;

/// The open connection of one channel, shared by its connector and its client layer.
#[derive(Debug, Default)]
pub(crate) struct ChannelConnection {
    /// Read by every RPC of the channel (and its clones, on every core), written only when
    /// a connection opens or closes.
    current: RwLock<Current>,
}

#[derive(Debug, Default)]
struct Current {
    /// Which connection `addrs` belongs to: a connection's guard clears only its own.
    id: u64,
    addrs: Addrs,
}

impl ChannelConnection {
    /// The (remote, local) addresses of the channel's connection, when it has one.
    pub(crate) fn addrs(&self) -> Addrs {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .addrs
    }

    /// Records a new connection as the channel's; it stays so until the returned guard is
    /// dropped (with the connection's IO) or a newer connection replaces it.
    pub(crate) fn open(self: &Arc<Self>, addrs: Addrs) -> OpenConnection {
        let mut current = self.write();
        current.id += 1;
        current.addrs = addrs;
        OpenConnection {
            channel: Arc::clone(self),
            id: current.id,
        }
    }

    fn write(&self) -> RwLockWriteGuard<'_, Current> {
        // Only copies are made under the lock: a panic elsewhere cannot leave it half-written.
        self.current.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A connection's place as its channel's current one; dropping it clears the place unless a
/// newer connection has taken it.
#[derive(Debug)]
pub(crate) struct OpenConnection {
    channel: Arc<ChannelConnection>,
    id: u64,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        let mut current = self.channel.write();
        if current.id == self.id {
            current.addrs = (None, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    fn addrs(remote: &str) -> Addrs {
        (
            remote.parse::<SocketAddr>().ok(),
            "127.0.0.1:40000".parse().ok(),
        )
    }

    #[test]
    fn a_closed_connection_leaves_the_channel_without_one() {
        let channel = Arc::new(ChannelConnection::default());
        assert_eq!(channel.addrs(), (None, None));
        let open = channel.open(addrs("127.0.0.1:50051"));
        assert_eq!(channel.addrs(), addrs("127.0.0.1:50051"));
        drop(open);
        assert_eq!(channel.addrs(), (None, None));
    }

    #[test]
    fn an_old_connection_closing_late_does_not_clear_its_successor() {
        let channel = Arc::new(ChannelConnection::default());
        let old = channel.open(addrs("127.0.0.1:50051"));
        let new = channel.open(addrs("127.0.0.1:50052"));
        drop(old);
        assert_eq!(channel.addrs(), addrs("127.0.0.1:50052"));
        drop(new);
        assert_eq!(channel.addrs(), (None, None));
    }
}
