//! The names of the instruments a [`MetricsHandler`](crate::MetricsHandler) records to, for
//! dashboards, views and tests.
//!
//! | instrument | kind | unit | attributes |
//! | --- | --- | --- | --- |
//! | [`RPC_SERVER_CALL_DURATION`], [`RPC_CLIENT_CALL_DURATION`] | histogram (f64) | `s` | `rpc.system.name`, `rpc.method`, `rpc.response.status_code`, `error.type` on failure, `server.address`/`server.port` on the client |
//! | [`GRPC_SERVER_CALL_STARTED`] | counter | `{call}` | `grpc.method` |
//! | [`GRPC_SERVER_CALL_DURATION`] | histogram (f64) | `s` | `grpc.method`, `grpc.status` |
//! | [`GRPC_SERVER_CALL_SENT_TOTAL_COMPRESSED_MESSAGE_SIZE`], [`GRPC_SERVER_CALL_RCVD_TOTAL_COMPRESSED_MESSAGE_SIZE`] | histogram (u64) | `By` | `grpc.method`, `grpc.status` |
//! | [`GRPC_CLIENT_ATTEMPT_STARTED`] | counter | `{attempt}` | `grpc.method`, `grpc.target` |
//! | [`GRPC_CLIENT_ATTEMPT_DURATION`], [`GRPC_CLIENT_CALL_DURATION`] | histogram (f64) | `s` | `grpc.method`, `grpc.target`, `grpc.status` |
//! | [`GRPC_CLIENT_ATTEMPT_SENT_TOTAL_COMPRESSED_MESSAGE_SIZE`], [`GRPC_CLIENT_ATTEMPT_RCVD_TOTAL_COMPRESSED_MESSAGE_SIZE`] | histogram (u64) | `By` | `grpc.method`, `grpc.target`, `grpc.status` |
//! | [`SERVER_CONNECTION_OPEN`], [`CLIENT_CONNECTION_OPEN`] | up-down counter | `{connection}` | `rpc.system.name` |
//! | [`SERVER_CONNECTION_DURATION`], [`CLIENT_CONNECTION_DURATION`] | histogram (f64) | `s` | `rpc.system.name` |
//! | [`SERVER_CONNECTION_RPCS`] | histogram (u64) | `{rpc}` | `rpc.system.name` |
//! | [`SERVER_CONNECTION_BYTES_READ`], [`SERVER_CONNECTION_BYTES_WRITTEN`], [`CLIENT_CONNECTION_BYTES_READ`], [`CLIENT_CONNECTION_BYTES_WRITTEN`] | histogram (u64) | `By` | `rpc.system.name` |
//!
//! The `rpc.*` names are the semantic conventions' (re-exported from
//! `opentelemetry-semantic-conventions`); the `grpc.*` ones are gRFC A66's; the
//! `otel_stats.*` ones are this crate's own, as no convention covers gRPC connections.

pub use opentelemetry_semantic_conventions::metric::{
    RPC_CLIENT_CALL_DURATION, RPC_SERVER_CALL_DURATION,
};

/// gRFC A66: server calls started (when the request headers arrive).
pub const GRPC_SERVER_CALL_STARTED: &str = "grpc.server.call.started";
/// gRFC A66: server call duration, from the request headers to the status.
pub const GRPC_SERVER_CALL_DURATION: &str = "grpc.server.call.duration";
/// gRFC A66: bytes of the messages a server call sent, compressed as on the wire, without
/// the 5-byte message prefixes.
pub const GRPC_SERVER_CALL_SENT_TOTAL_COMPRESSED_MESSAGE_SIZE: &str =
    "grpc.server.call.sent_total_compressed_message_size";
/// gRFC A66: bytes of the messages a server call received, compressed as on the wire.
pub const GRPC_SERVER_CALL_RCVD_TOTAL_COMPRESSED_MESSAGE_SIZE: &str =
    "grpc.server.call.rcvd_total_compressed_message_size";
/// gRFC A66: client attempts started. tonic does not retry, so an attempt is a call.
pub const GRPC_CLIENT_ATTEMPT_STARTED: &str = "grpc.client.attempt.started";
/// gRFC A66: client attempt duration.
pub const GRPC_CLIENT_ATTEMPT_DURATION: &str = "grpc.client.attempt.duration";
/// gRFC A66: bytes of the messages a client attempt sent, compressed as on the wire.
pub const GRPC_CLIENT_ATTEMPT_SENT_TOTAL_COMPRESSED_MESSAGE_SIZE: &str =
    "grpc.client.attempt.sent_total_compressed_message_size";
/// gRFC A66: bytes of the messages a client attempt received, compressed as on the wire.
pub const GRPC_CLIENT_ATTEMPT_RCVD_TOTAL_COMPRESSED_MESSAGE_SIZE: &str =
    "grpc.client.attempt.rcvd_total_compressed_message_size";
/// gRFC A66: client call duration, as the application saw it (the attempt's, without retries).
pub const GRPC_CLIENT_CALL_DURATION: &str = "grpc.client.call.duration";

/// Connections a server has open, that carried an RPC: a server connection counts from its
/// first RPC, and one that closes without any is in none of the `server.connection`
/// instruments.
pub const SERVER_CONNECTION_OPEN: &str = "otel_stats.server.connection.open";
/// How long a server's connections lasted.
pub const SERVER_CONNECTION_DURATION: &str = "otel_stats.server.connection.duration";
/// How many RPCs each server connection carried.
pub const SERVER_CONNECTION_RPCS: &str = "otel_stats.server.connection.rpcs";
/// Bytes a server read from each connection, TLS and HTTP/2 framing included.
pub const SERVER_CONNECTION_BYTES_READ: &str = "otel_stats.server.connection.bytes_read";
/// Bytes a server wrote to each connection, TLS and HTTP/2 framing included.
pub const SERVER_CONNECTION_BYTES_WRITTEN: &str = "otel_stats.server.connection.bytes_written";
/// Connections a client has open.
pub const CLIENT_CONNECTION_OPEN: &str = "otel_stats.client.connection.open";
/// How long a client's connections lasted.
pub const CLIENT_CONNECTION_DURATION: &str = "otel_stats.client.connection.duration";
/// Bytes a client read from each connection, TLS and HTTP/2 framing included.
pub const CLIENT_CONNECTION_BYTES_READ: &str = "otel_stats.client.connection.bytes_read";
/// Bytes a client wrote to each connection, TLS and HTTP/2 framing included.
pub const CLIENT_CONNECTION_BYTES_WRITTEN: &str = "otel_stats.client.connection.bytes_written";

/// The semantic conventions' `rpc.method` of a method that is not known: not in the
/// allow-list, refused by the filter, or (without either) answered `UNIMPLEMENTED` by a server.
pub const OTHER_METHOD: &str = crate::semconv::OTHER_METHOD;
/// gRFC A66's `grpc.method` of a method that is not known.
pub const A66_OTHER_METHOD: &str = crate::semconv::A66_OTHER_METHOD;
