use std::time::{Duration, SystemTime};

use super::Side;

/// A connection event, passed to [`StatsHandler::handle_conn`](crate::StatsHandler::handle_conn).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ConnStats {
    /// The connection is established (grpc-go: `stats.ConnBegin`).
    Begin(ConnBegin),
    /// The connection is closed (grpc-go: `stats.ConnEnd`).
    End(ConnEnd),
}

impl ConnStats {
    /// grpc-go's name for this event's type: `ConnBegin` or `ConnEnd`.
    pub fn name(&self) -> &'static str {
        match self {
            ConnStats::Begin(_) => "ConnBegin",
            ConnStats::End(_) => "ConnEnd",
        }
    }

    /// The side the connection was seen on.
    pub fn side(&self) -> Side {
        match self {
            ConnStats::Begin(b) => b.side,
            ConnStats::End(e) => e.side,
        }
    }
}

/// The connection is established.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnBegin {
    /// The side the connection was seen on.
    pub side: Side,
    /// When the connection was accepted (server) or established (client).
    pub time: SystemTime,
}

impl ConnBegin {
    /// A `ConnBegin` happening now.
    pub fn now(side: Side) -> Self {
        ConnBegin {
            side,
            time: SystemTime::now(),
        }
    }
}

/// The connection is closed: its IO was dropped by the transport.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnEnd {
    /// The side the connection was seen on.
    pub side: Side,
    /// When the connection began.
    pub begin_time: SystemTime,
    /// When the connection ended.
    pub end_time: SystemTime,
    /// Bytes read from the connection, TLS and HTTP/2 framing included.
    pub bytes_read: u64,
    /// Bytes written to the connection, TLS and HTTP/2 framing included.
    pub bytes_written: u64,
}

impl ConnEnd {
    /// The end, now, of a connection that began at `begin_time` and carried no bytes: for
    /// testing a handler. Set the public fields for other values.
    pub fn new(side: Side, begin_time: SystemTime) -> Self {
        ConnEnd {
            side,
            begin_time,
            end_time: SystemTime::now(),
            bytes_read: 0,
            bytes_written: 0,
        }
    }

    /// How long the connection lasted (zero if the wall clock went backwards meanwhile).
    pub fn duration(&self) -> Duration {
        self.end_time
            .duration_since(self.begin_time)
            .unwrap_or_default()
    }
}
