//! The instruments, created once when the handler is built, and their bucket boundaries.

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter, UpDownCounter};
use opentelemetry_semantic_conventions::attribute::RPC_SYSTEM_NAME;

use super::names::*;
use crate::event::Side;
use crate::semconv::GRPC;

/// The advisory boundaries of `rpc.{server,client}.call.duration` in the semantic
/// conventions (the same as HTTP's request durations), in seconds.
pub(super) const SEMCONV_DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// gRFC A66's latency boundaries, in seconds.
pub(super) const A66_LATENCY_BUCKETS: [f64; 41] = [
    0.0, 0.00001, 0.00005, 0.0001, 0.0003, 0.0006, 0.0008, 0.001, 0.002, 0.003, 0.004, 0.005,
    0.006, 0.008, 0.01, 0.013, 0.016, 0.02, 0.025, 0.03, 0.04, 0.05, 0.065, 0.08, 0.1, 0.13, 0.16,
    0.2, 0.25, 0.3, 0.4, 0.5, 0.65, 0.8, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0,
];

/// gRFC A66's size boundaries, in bytes (also used for connection bytes).
pub(super) const A66_SIZE_BUCKETS: [f64; 14] = [
    0.0,
    1024.0,
    2048.0,
    4096.0,
    16384.0,
    65536.0,
    262144.0,
    1048576.0,
    4194304.0,
    16777216.0,
    67108864.0,
    268435456.0,
    1073741824.0,
    4294967296.0,
];

/// gRFC A66's count boundaries, for RPCs per connection.
pub(super) const A66_COUNT_BUCKETS: [f64; 18] = [
    0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0,
    16384.0, 32768.0, 65536.0,
];

/// Connection durations, in seconds: the conventions' boundaries for long-lived connections
/// (`kestrel.connection.duration`), up to an hour.
pub(super) const CONNECTION_DURATION_BUCKETS: [f64; 17] = [
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
    3600.0,
];

/// Every instrument of one side.
#[derive(Debug)]
pub(super) struct SideInstruments {
    /// `rpc.{server,client}.call.duration`.
    pub(super) call_duration: Histogram<f64>,
    /// The gRFC A66 instruments, when asked for.
    pub(super) a66: Option<A66Instruments>,
    /// The connection instruments, unless turned off.
    pub(super) conn: Option<ConnInstruments>,
}

/// gRFC A66's per-call (server) or per-attempt (client) instruments.
#[derive(Debug)]
pub(super) struct A66Instruments {
    pub(super) started: Counter<u64>,
    pub(super) duration: Histogram<f64>,
    /// `grpc.client.call.duration`; `None` on the server.
    pub(super) call_duration: Option<Histogram<f64>>,
    pub(super) sent: Histogram<u64>,
    pub(super) rcvd: Histogram<u64>,
}

/// The connection instruments of one side.
#[derive(Debug)]
pub(super) struct ConnInstruments {
    pub(super) open: UpDownCounter<i64>,
    pub(super) duration: Histogram<f64>,
    /// RPCs per connection; `None` on the client, whose RPCs are not tied to a connection.
    pub(super) rpcs: Option<Histogram<u64>>,
    pub(super) bytes_read: Histogram<u64>,
    pub(super) bytes_written: Histogram<u64>,
    /// `rpc.system.name = grpc`, the attributes of every connection measurement.
    pub(super) attributes: [KeyValue; 1],
}

/// The instruments of both sides.
#[derive(Debug)]
pub(super) struct Instruments {
    server: SideInstruments,
    client: SideInstruments,
}

impl Instruments {
    pub(super) fn new(meter: &Meter, a66: bool, connections: bool) -> Self {
        Instruments {
            server: SideInstruments::new(meter, Side::Server, a66, connections),
            client: SideInstruments::new(meter, Side::Client, a66, connections),
        }
    }

    pub(super) fn side(&self, side: Side) -> &SideInstruments {
        match side {
            Side::Server => &self.server,
            Side::Client => &self.client,
        }
    }
}

fn seconds(
    meter: &Meter,
    name: &'static str,
    about: &'static str,
    buckets: &[f64],
) -> Histogram<f64> {
    meter
        .f64_histogram(name)
        .with_unit("s")
        .with_description(about)
        .with_boundaries(buckets.to_vec())
        .build()
}

fn sizes(
    meter: &Meter,
    name: &'static str,
    unit: &'static str,
    about: &'static str,
    buckets: &[f64],
) -> Histogram<u64> {
    meter
        .u64_histogram(name)
        .with_unit(unit)
        .with_description(about)
        .with_boundaries(buckets.to_vec())
        .build()
}

impl SideInstruments {
    fn new(meter: &Meter, side: Side, a66: bool, connections: bool) -> Self {
        let server = side == Side::Server;
        let call_duration = if server {
            seconds(
                meter,
                RPC_SERVER_CALL_DURATION,
                "Duration of incoming RPCs",
                &SEMCONV_DURATION_BUCKETS,
            )
        } else {
            seconds(
                meter,
                RPC_CLIENT_CALL_DURATION,
                "Duration of outgoing RPCs",
                &SEMCONV_DURATION_BUCKETS,
            )
        };
        SideInstruments {
            call_duration,
            a66: a66.then(|| A66Instruments::new(meter, side)),
            conn: connections.then(|| ConnInstruments::new(meter, side)),
        }
    }
}

impl A66Instruments {
    fn new(meter: &Meter, side: Side) -> Self {
        let size = |name, about| sizes(meter, name, "By", about, &A66_SIZE_BUCKETS);
        let latency = |name, about| seconds(meter, name, about, &A66_LATENCY_BUCKETS);
        match side {
            Side::Server => A66Instruments {
                started: meter
                    .u64_counter(GRPC_SERVER_CALL_STARTED)
                    .with_unit("{call}")
                    .with_description("Number of server calls started")
                    .build(),
                duration: latency(
                    GRPC_SERVER_CALL_DURATION,
                    "End-to-end time taken to complete a call from the server's perspective",
                ),
                call_duration: None,
                sent: size(
                    GRPC_SERVER_CALL_SENT_TOTAL_COMPRESSED_MESSAGE_SIZE,
                    "Compressed message bytes sent per server call",
                ),
                rcvd: size(
                    GRPC_SERVER_CALL_RCVD_TOTAL_COMPRESSED_MESSAGE_SIZE,
                    "Compressed message bytes received per server call",
                ),
            },
            Side::Client => A66Instruments {
                started: meter
                    .u64_counter(GRPC_CLIENT_ATTEMPT_STARTED)
                    .with_unit("{attempt}")
                    .with_description("Number of client call attempts started")
                    .build(),
                duration: latency(
                    GRPC_CLIENT_ATTEMPT_DURATION,
                    "End-to-end time taken to complete a client call attempt",
                ),
                call_duration: Some(latency(
                    GRPC_CLIENT_CALL_DURATION,
                    "Time taken by gRPC to complete an RPC from the application's perspective",
                )),
                sent: size(
                    GRPC_CLIENT_ATTEMPT_SENT_TOTAL_COMPRESSED_MESSAGE_SIZE,
                    "Compressed message bytes sent per client call attempt",
                ),
                rcvd: size(
                    GRPC_CLIENT_ATTEMPT_RCVD_TOTAL_COMPRESSED_MESSAGE_SIZE,
                    "Compressed message bytes received per call attempt",
                ),
            },
        }
    }
}

impl ConnInstruments {
    fn new(meter: &Meter, side: Side) -> Self {
        let (open, duration, read, written) = match side {
            Side::Server => (
                SERVER_CONNECTION_OPEN,
                SERVER_CONNECTION_DURATION,
                SERVER_CONNECTION_BYTES_READ,
                SERVER_CONNECTION_BYTES_WRITTEN,
            ),
            Side::Client => (
                CLIENT_CONNECTION_OPEN,
                CLIENT_CONNECTION_DURATION,
                CLIENT_CONNECTION_BYTES_READ,
                CLIENT_CONNECTION_BYTES_WRITTEN,
            ),
        };
        let bytes = |name, about| sizes(meter, name, "By", about, &A66_SIZE_BUCKETS);
        ConnInstruments {
            open: meter
                .i64_up_down_counter(open)
                .with_unit("{connection}")
                .with_description("Number of open gRPC connections")
                .build(),
            duration: seconds(
                meter,
                duration,
                "Duration of gRPC connections",
                &CONNECTION_DURATION_BUCKETS,
            ),
            rpcs: (side == Side::Server).then(|| {
                sizes(
                    meter,
                    SERVER_CONNECTION_RPCS,
                    "{rpc}",
                    "Number of RPCs each connection carried",
                    &A66_COUNT_BUCKETS,
                )
            }),
            bytes_read: bytes(read, "Bytes read from each connection, framing included"),
            bytes_written: bytes(
                written,
                "Bytes written to each connection, framing included",
            ),
            attributes: [KeyValue::new(RPC_SYSTEM_NAME, GRPC)],
        }
    }
}
