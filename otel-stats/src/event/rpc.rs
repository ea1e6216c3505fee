use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::HeaderMap;
use tonic::Code;

use super::Side;
use crate::frame::{FrameError, PREFIX_LEN};

/// An RPC event, passed to [`StatsHandler::handle_rpc`](crate::StatsHandler::handle_rpc).
///
/// The variants are grpc-go's `stats.RPCStats` implementations. On each side they fire in
/// grpc-go's order:
///
/// | side   | order |
/// | ------ | ----- |
/// | server | `InHeader Begin InPayload* OutHeader OutPayload* OutTrailer End` (payloads interleave on streams; no `OutHeader` for a trailers-only response; no `OutTrailer` when the client reset the stream) |
/// | client | `Begin OutHeader OutPayload* InHeader InPayload* InTrailer End` (no `InHeader` for a trailers-only response) |
///
/// `End` fires exactly once for every RPC that was tagged, whatever happens to it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RpcStats<'a> {
    /// The RPC began.
    Begin(Begin),
    /// Headers were received: request headers on the server, response headers on the client.
    InHeader(Header<'a>),
    /// One gRPC message was received.
    InPayload(Payload),
    /// Trailers were received (client only).
    InTrailer(Trailer<'a>),
    /// Headers were sent: response headers on the server, request headers on the client.
    OutHeader(Header<'a>),
    /// One gRPC message was sent.
    OutPayload(Payload),
    /// Trailers were sent (server only).
    OutTrailer(Trailer<'a>),
    /// The RPC ended.
    End(End<'a>),
}

impl RpcStats<'_> {
    /// grpc-go's name for this event's type (`Begin`, `InHeader`, ..., `End`).
    pub fn name(&self) -> &'static str {
        match self {
            RpcStats::Begin(_) => "Begin",
            RpcStats::InHeader(_) => "InHeader",
            RpcStats::InPayload(_) => "InPayload",
            RpcStats::InTrailer(_) => "InTrailer",
            RpcStats::OutHeader(_) => "OutHeader",
            RpcStats::OutPayload(_) => "OutPayload",
            RpcStats::OutTrailer(_) => "OutTrailer",
            RpcStats::End(_) => "End",
        }
    }

    /// The side the event was seen on.
    pub fn side(&self) -> Side {
        match self {
            RpcStats::Begin(e) => e.side,
            RpcStats::InHeader(e) | RpcStats::OutHeader(e) => e.side,
            RpcStats::InPayload(e) | RpcStats::OutPayload(e) => e.side,
            RpcStats::InTrailer(e) | RpcStats::OutTrailer(e) => e.side,
            RpcStats::End(e) => e.side,
        }
    }

    /// When the event happened.
    pub fn time(&self) -> SystemTime {
        match self {
            RpcStats::Begin(e) => e.begin_time,
            RpcStats::InHeader(e) | RpcStats::OutHeader(e) => e.time,
            RpcStats::InPayload(e) | RpcStats::OutPayload(e) => e.time,
            RpcStats::InTrailer(e) | RpcStats::OutTrailer(e) => e.time,
            RpcStats::End(e) => e.end_time,
        }
    }
}

/// The RPC began (grpc-go: `stats.Begin`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Begin {
    /// The side the RPC is seen on.
    pub side: Side,
    /// When the RPC began.
    pub begin_time: SystemTime,
    /// The deadline the client sent in `grpc-timeout`, if any.
    pub timeout: Option<Duration>,
}

impl Begin {
    /// A `Begin` happening now, without a deadline: for testing a handler. Set the public
    /// fields for other values.
    pub fn new(side: Side) -> Self {
        Begin {
            side,
            begin_time: SystemTime::now(),
            timeout: None,
        }
    }
}

/// Headers (grpc-go: `stats.InHeader` / `stats.OutHeader`).
///
/// grpc-go's `WireLength` (the HPACK-encoded size) is not visible to a tower layer and is absent.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Header<'a> {
    /// The side the headers were seen on.
    pub side: Side,
    /// The full method name, `/package.Service/Method`.
    pub full_method: &'a str,
    /// The `grpc-encoding` of the messages that follow (`"gzip"`), `None` for identity.
    pub compression: Option<&'a str>,
    /// The header metadata.
    pub metadata: &'a HeaderMap,
    /// The peer's address, when known: server side with the connection wrapper or TCP; client
    /// side on a connected channel of [`ClientStatsLayer::connect`](crate::ClientStatsLayer::connect).
    pub remote_addr: Option<SocketAddr>,
    /// This end's address, when known.
    pub local_addr: Option<SocketAddr>,
    /// When the headers were received or sent.
    pub time: SystemTime,
}

impl<'a> Header<'a> {
    /// Headers of `full_method` seen now, without compression or addresses: for testing a
    /// handler. Set the public fields for other values.
    pub fn new(side: Side, full_method: &'a str, metadata: &'a HeaderMap) -> Self {
        Header {
            side,
            full_method,
            compression: None,
            metadata,
            remote_addr: None,
            local_addr: None,
            time: SystemTime::now(),
        }
    }
}

/// One gRPC message (grpc-go: `stats.InPayload` / `stats.OutPayload`).
///
/// Exactly one event per length-prefixed message, however the messages were split across or
/// packed into HTTP/2 DATA frames.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Payload {
    /// The side the message was seen on.
    pub side: Side,
    /// 0-based number of this message in its direction of this RPC.
    pub seq: u64,
    /// The compressed flag of the message prefix.
    pub compressed: bool,
    /// The size of the message once decompressed (grpc-go's `Length`); `None` when the message
    /// is compressed, since the layer does not decompress.
    pub length: Option<usize>,
    /// The size of the message bytes as they went over the wire, compressed if compressed
    /// (grpc-go's `CompressedLength`).
    pub compressed_length: usize,
    /// `compressed_length` plus the 5-byte gRPC prefix (grpc-go's `WireLength`).
    pub wire_length: usize,
    /// The message bytes as on the wire (compressed if compressed), a cheap view into the
    /// DATA frame. `None` when the message was split across frames: putting it together would
    /// copy it, and a stats hook must not cost that much.
    pub data: Option<Bytes>,
    /// When the message was received or sent.
    pub time: SystemTime,
}

impl Payload {
    /// The `seq`-th message (0-based) of its direction, uncompressed, `length` bytes long,
    /// seen now, without its bytes: for testing a handler. Set the public fields for other
    /// values.
    pub fn new(side: Side, seq: u64, length: usize) -> Self {
        Payload {
            side,
            seq,
            compressed: false,
            length: Some(length),
            compressed_length: length,
            wire_length: length + PREFIX_LEN,
            data: None,
            time: SystemTime::now(),
        }
    }
}

/// Trailers (grpc-go: `stats.InTrailer` / `stats.OutTrailer`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Trailer<'a> {
    /// The side the trailers were seen on.
    pub side: Side,
    /// The trailer metadata: the HTTP/2 trailers, or the headers of a trailers-only response.
    pub metadata: &'a HeaderMap,
    /// `true` when the status came in the response headers (a trailers-only response).
    pub trailers_only: bool,
    /// When the trailers were received or sent.
    pub time: SystemTime,
}

impl<'a> Trailer<'a> {
    /// Trailers (not trailers-only) seen now: for testing a handler. Set the public fields for
    /// other values.
    pub fn new(side: Side, metadata: &'a HeaderMap) -> Self {
        Trailer {
            side,
            metadata,
            trailers_only: false,
            time: SystemTime::now(),
        }
    }
}

/// The RPC ended (grpc-go: `stats.End`).
///
/// Fires exactly once for every tagged RPC: on trailers, at the end of the stream, on a body
/// error, or when the RPC is dropped (client cancel, deadline, connection reset, a panic in the
/// service).
///
/// # The status
///
/// The status is the one the peer saw, decided the same way on both sides:
///
/// - From `grpc-status` (and `grpc-message`) in the trailers, or in the headers of a
///   trailers-only response. A `grpc-status` that is not a number is `UNKNOWN`, as the gRPC
///   spec says; a `grpc-message` with bad percent escapes keeps them as they came, and one that
///   does not decode to UTF-8 makes the status `UNKNOWN`, as tonic reports it to the
///   application.
/// - An RPC dropped before any status (client cancel, connection reset, a server handler that
///   panicked or was cut off by a timeout) is `CANCELLED`, or `DEADLINE_EXCEEDED` when the
///   RPC's `grpc-timeout` has elapsed. tonic reports its own server timeout to the client as
///   `CANCELLED`; a `CANCELLED` that arrives once the deadline has passed is reported as
///   `DEADLINE_EXCEEDED`, which is what happened (grpc-go would say `CANCELLED` or
///   `INTERNAL`).
/// - A body or service error is mapped as tonic maps it for the application: a
///   [`tonic::Status`] keeps its code, an HTTP/2 reset maps by its reason code as the gRPC
///   HTTP/2 spec says, an IO error is `UNAVAILABLE`, anything else `UNKNOWN`.
/// - A response that is not gRPC gets the code its HTTP status implies (404 is
///   `UNIMPLEMENTED`, 503 `UNAVAILABLE`, ...), and a server RPC to a method tonic does not
///   serve ends with `UNIMPLEMENTED`, which grpc-go does not report at all.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct End<'a> {
    /// The side the RPC is seen on.
    pub side: Side,
    /// The full method, `/package.Service/Method` (as in [`RpcTagInfo`](crate::RpcTagInfo)):
    /// a handler that only records at the end needs no state of its own for the RPC.
    pub full_method: &'a str,
    /// When the RPC began.
    pub begin_time: SystemTime,
    /// When the RPC ended.
    pub end_time: SystemTime,
    /// The final status code.
    pub code: Code,
    /// The status message (`grpc-message`, percent-decoded), empty when none.
    pub message: &'a str,
    /// The trailers, when the RPC ended with some.
    pub trailers: Option<&'a HeaderMap>,
    /// Set when a message stream of this RPC was not well-formed gRPC framing. The bytes went
    /// through untouched; the payload events stop at the first malformed byte.
    pub frame_error: Option<FrameError>,
}

impl<'a> End<'a> {
    /// The end of an RPC of `full_method` with `code`, now, begun now, without a message,
    /// trailers or framing error: for testing a handler. Set the public fields for other
    /// values.
    pub fn new(side: Side, full_method: &'a str, code: Code) -> Self {
        let now = SystemTime::now();
        End {
            side,
            full_method,
            begin_time: now,
            end_time: now,
            code,
            message: "",
            trailers: None,
            frame_error: None,
        }
    }

    /// `true` when the RPC ended with `OK`, like grpc-go's `End.Error == nil`.
    pub fn is_ok(&self) -> bool {
        self.code == Code::Ok
    }

    /// How long the RPC lasted (zero if the wall clock went backwards meanwhile).
    pub fn duration(&self) -> Duration {
        self.end_time
            .duration_since(self.begin_time)
            .unwrap_or_default()
    }
}
