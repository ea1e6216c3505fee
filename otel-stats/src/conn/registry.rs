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
use std::sync::atomic::{AtomicBool, Ordering};
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
            EVER_OPENED.store(true, Ordering::Release);
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

/// Whether any connection was ever entered: a server without the connection wrapper skips
/// the lookup (a lock and a hash) on every RPC.
static EVER_OPENED: AtomicBool = AtomicBool::new(false);

/// The context of the open connection with these addresses, if it is wrapped in a `StatsIo`.
pub(crate) fn context_of(remote: SocketAddr, local: SocketAddr) -> Option<Context> {
    if !EVER_OPENED.load(Ordering::Acquire) {
        return None;
    }
    let key = (remote, local);
    let open = shard(&key).read().unwrap_or_else(|e| e.into_inner());
    open.get(&key).map(|info| info.context().clone())
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddrV4};

    use opentelemetry::KeyValue;
    use opentelemetry::baggage::BaggageExt;

    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
    }

    /// A connection from `remote_port` to port 1, its context marked with `name`.
    fn conn(remote_port: u16, name: &'static str) -> ConnInfo {
        let cx = Context::new().with_baggage([KeyValue::new("conn", name)]);
        ConnInfo::new(cx, Some(addr(remote_port)), Some(addr(1)))
    }

    fn name_of(remote_port: u16) -> Option<String> {
        context_of(addr(remote_port), addr(1))
            .and_then(|cx| cx.baggage().get("conn").map(|v| v.to_string()))
    }

    #[test]
    fn a_connection_is_found_while_open_and_gone_after() {
        let open = Registration::open(&conn(40001, "a"));
        assert_eq!(name_of(40001).as_deref(), Some("a"));
        assert_eq!(name_of(40002), None, "another peer");
        drop(open);
        assert_eq!(name_of(40001), None);
    }

    #[test]
    fn the_old_connection_closing_late_leaves_the_new_one_with_its_addresses() {
        let old = Registration::open(&conn(40003, "old"));
        let new = Registration::open(&conn(40003, "new"));
        drop(old);
        assert_eq!(name_of(40003).as_deref(), Some("new"));
        drop(new);
        assert_eq!(name_of(40003), None);
    }

    #[test]
    fn a_connection_without_both_addresses_stays_out() {
        let info = ConnInfo::new(Context::new(), Some(addr(40004)), None);
        let _open = Registration::open(&info);
        assert_eq!(context_of(addr(40004), addr(1)).map(|_| ()), None);
    }
}
