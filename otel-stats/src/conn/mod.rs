//! Connection hooks: `tag_conn`, `ConnBegin` and `ConnEnd` for the connections a server
//! accepts and a client opens.
//!
//! - Server: [`StatsIncoming`] wraps any stream of accepted IO (tonic's `TcpIncoming`, a
//!   `TcpListenerStream`, a stream of TLS streams, ...). Each IO becomes a [`StatsIo`], whose
//!   `Connected` info is the wrapped IO's own, so that tonic (`Server::tls_config` included)
//!   gives the service the same connect info as without it. The server layer finds the
//!   connection of each RPC by its TCP addresses and makes the connection's context the parent
//!   of the RPC's.
//! - Client: [`StatsConnector`] wraps the connector given to
//!   `Endpoint::connect_with_connector`. Client RPC contexts do not derive from the
//!   connection's: a channel picks connections for RPCs, not the other way round. A channel
//!   of one endpoint has one connection at a time, whose addresses its RPCs report
//!   (`current.rs`).
//!
//! A connection's `ConnEnd` fires when the transport drops its IO.

mod addrs;
mod connector;
mod current;
mod guard;
mod incoming;
mod info;
mod io;
mod registry;

pub(crate) use addrs::of_extensions as addrs_of_request;
pub use connector::StatsConnector;
pub(crate) use current::ChannelConnection;
pub use incoming::StatsIncoming;
pub use info::ConnInfo;
pub use io::StatsIo;
pub(crate) use registry::context_of;
