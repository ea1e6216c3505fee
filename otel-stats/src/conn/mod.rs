//! Connection hooks: `tag_conn`, `ConnBegin` and `ConnEnd` for the connections a server
//! accepts and a client opens.
//!
//! - Server: [`StatsIncoming`] wraps any stream of accepted IO (tonic's `TcpIncoming`, a
//!   `TcpListenerStream`, ...). Each IO becomes a [`StatsIo`], whose `Connected` info
//!   ([`ConnInfo`]) carries the connection's context to every request, where the server layer
//!   makes it the parent of the RPC's context. `Request::remote_addr()` keeps working.
//! - Client: [`StatsConnector`] wraps the connector given to
//!   `Endpoint::connect_with_connector`. Client RPC contexts do not derive from the
//!   connection's: a channel picks connections for RPCs, not the other way round.
//!
//! A connection's `ConnEnd` fires when the transport drops its IO.

mod connector;
mod guard;
mod incoming;
mod info;
mod io;

pub use connector::StatsConnector;
pub use incoming::StatsIncoming;
pub use info::ConnInfo;
pub use io::StatsIo;
