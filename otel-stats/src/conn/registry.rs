//! The server connections that are open, by their TCP addresses: how an RPC finds its
//! connection.
//!
//! A [`StatsIo`](super::StatsIo)'s `Connected` info is the wrapped IO's own (tonic's
//! `TcpConnectInfo`, ...), so that tonic composes it exactly as it would without the wrapper:
//! `Server::tls_config` makes it `TlsConnectInfo<TcpConnectInfo>`, the one type
//! `Request::peer_certs()` reads, and which nobody outside tonic can build. The connection's
//! context therefore cannot travel in the extensions; the server layer looks it up here by the
//! addresses tonic does put there. A TCP connection's (remote, local) pair is unique among the
//! open connections of a host, so one table serves every server of the process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{LazyLock, RwLock};

use opentelemetry::Context;

use super::info::ConnInfo;

/// (remote, local) of a server connection.
type Key = (SocketAddr, SocketAddr);

/// Connections accept and close on every core while RPCs look theirs up: a few locks, picked
/// by the peer's port, keep writers from stalling unrelated readers.
const SHARDS: usize = 16;

static OPEN: LazyLock<[RwLock<HashMap<Key, ConnInfo>>; SHARDS]> =
    LazyLock::new(|| std::array::from_fn(|_| RwLock::new(HashMap::new())));

fn shard(key: &Key) -> &'static RwLock<HashMap<Key, ConnInfo>> {
    &OPEN[usize::from(key.0.port()) % SHARDS]
}

/// A connection's entry in the table, removed when this is dropped (with the connection's IO).
pub(super) struct Registration {
    key: Option<Key>,
    info: ConnInfo,
}

impl Registration {
    /// Enters `info` under its addresses; a connection without both stays out of the table
    /// (its RPCs then start from the current context).
    pub(super) fn open(info: &ConnInfo) -> Registration {
        let key = info.remote_addr().zip(info.local_addr());
        if let Some(key) = key {
            // A poisoned lock only means a panic elsewhere while holding it; the map itself
            // is always whole (single inserts and removes), so keep using it.
            let mut open = shard(&key).write().unwrap_or_else(|e| e.into_inner());
            open.insert(key, info.clone());
        }
        Registration {
            key,
            info: info.clone(),
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        let mut open = shard(&key).write().unwrap_or_else(|e| e.into_inner());
        // A new connection may already reuse these addresses: remove only our own entry.
        if open.get(&key).is_some_and(|entry| entry.same(&self.info)) {
            open.remove(&key);
        }
    }
}

/// The context of the open connection with these addresses, if it is wrapped in a `StatsIo`.
pub(crate) fn context_of(remote: SocketAddr, local: SocketAddr) -> Option<Context> {
    let key = (remote, local);
    let open = shard(&key).read().unwrap_or_else(|e| e.into_inner());
    open.get(&key).map(|info| info.context().clone())
}
