//! `MetricsHandler`'s connection instruments across connects and disconnects: connections
//! open, their durations, the bytes read and written, and the RPCs each server connection
//! carried.

mod common;
mod metrics_common;

use common::otel::TestServer;
use common::req;
use metrics_common::{Collected, Kind, Metrics};
use otel_stats::metrics::names::*;

fn open(c: &Collected, name: &str) -> f64 {
    c.value(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_counted_open_and_measured_when_they_close() {
    let metrics = Metrics::new();
    let server = TestServer::start(metrics.handler()).await;

    let mut first = server.client(metrics.handler()).await;
    let mut second = server.client(metrics.handler()).await;
    first.unary_echo(req("one")).await.unwrap();
    for _ in 0..2 {
        second.unary_echo(req("two")).await.unwrap();
    }
    let c = metrics
        .wait_for("two connections open on each side", |c| {
            open(c, SERVER_CONNECTION_OPEN) == 2.0 && open(c, CLIENT_CONNECTION_OPEN) == 2.0
        })
        .await;
    for name in [SERVER_CONNECTION_OPEN, CLIENT_CONNECTION_OPEN] {
        let instrument = c.instrument(name);
        assert_eq!(
            (instrument.kind, instrument.unit.as_str()),
            (Kind::UpDownCounter, "{connection}")
        );
        assert_eq!(instrument.point(&[("rpc.system.name", "grpc")]).sum, 2.0);
    }
    // Nothing has closed yet.
    assert!(
        c.get(SERVER_CONNECTION_DURATION).is_none(),
        "{:?}",
        c.names()
    );

    // The first client goes away: one connection closes on each side.
    drop(first);
    let c = metrics
        .wait_for("the first connection closed on each side", |c| {
            // One collection reads the instruments one after the other, so a connection that
            // closes meanwhile can show in some and not yet in others: wait for all of them.
            c.count(SERVER_CONNECTION_DURATION) == 1
                && c.count(CLIENT_CONNECTION_DURATION) == 1
                && c.count(SERVER_CONNECTION_RPCS) == 1
                && open(c, SERVER_CONNECTION_OPEN) == 1.0
                && open(c, CLIENT_CONNECTION_OPEN) == 1.0
        })
        .await;
    assert_eq!(open(&c, SERVER_CONNECTION_OPEN), 1.0);
    assert_eq!(open(&c, CLIENT_CONNECTION_OPEN), 1.0);
    let rpcs = c.instrument(SERVER_CONNECTION_RPCS);
    assert_eq!(
        (rpcs.kind, rpcs.unit.as_str()),
        (Kind::HistogramU64, "{rpc}")
    );
    let point = rpcs.point(&[("rpc.system.name", "grpc")]);
    assert_eq!(
        (point.count, point.sum),
        (1, 1.0),
        "one connection, one RPC"
    );

    // And the second: all closed, each measured once.
    drop(second);
    let c = metrics
        .wait_for("both connections closed on each side", |c| {
            c.count(SERVER_CONNECTION_DURATION) == 2
                && c.count(CLIENT_CONNECTION_DURATION) == 2
                && c.count(SERVER_CONNECTION_RPCS) == 2
                && open(c, SERVER_CONNECTION_OPEN) == 0.0
                && open(c, CLIENT_CONNECTION_OPEN) == 0.0
        })
        .await;
    assert_eq!(open(&c, SERVER_CONNECTION_OPEN), 0.0);
    assert_eq!(open(&c, CLIENT_CONNECTION_OPEN), 0.0);
    let point = c
        .instrument(SERVER_CONNECTION_RPCS)
        .point(&[("rpc.system.name", "grpc")]);
    assert_eq!((point.count, point.sum), (2, 3.0), "1 + 2 RPCs");
    // The client's RPCs are not tied to a connection: no client RPCs-per-connection.
    assert!(c.get("otel_stats.client.connection.rpcs").is_none());

    for name in [SERVER_CONNECTION_DURATION, CLIENT_CONNECTION_DURATION] {
        let instrument = c.instrument(name);
        assert_eq!(
            (instrument.kind, instrument.unit.as_str()),
            (Kind::HistogramF64, "s"),
            "{name}"
        );
        let point = instrument.point(&[("rpc.system.name", "grpc")]);
        assert!(point.sum > 0.0, "{name}");
        assert_eq!(
            point.bounds.last(),
            Some(&3600.0),
            "{name}: buckets up to an hour"
        );
    }
    for (read, written) in [
        (
            SERVER_CONNECTION_BYTES_READ,
            SERVER_CONNECTION_BYTES_WRITTEN,
        ),
        (
            CLIENT_CONNECTION_BYTES_READ,
            CLIENT_CONNECTION_BYTES_WRITTEN,
        ),
    ] {
        for name in [read, written] {
            let instrument = c.instrument(name);
            assert_eq!(
                (instrument.kind, instrument.unit.as_str()),
                (Kind::HistogramU64, "By"),
                "{name}"
            );
            let point = instrument.point(&[("rpc.system.name", "grpc")]);
            assert_eq!(point.count, 2, "{name}: one per connection");
            // HTTP/2 preface, settings, headers and three messages at the least.
            assert!(point.sum > 100.0, "{name}: {}", point.sum);
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_metrics_can_be_turned_off() {
    let metrics = Metrics::new();
    let handler = || metrics.builder().connection_metrics(false).build();
    let (server, mut client) = TestServer::pair(handler).await;
    client.unary_echo(req("hello")).await.unwrap();
    drop(client);
    let c = metrics.wait_calls(1).await;
    assert_eq!(
        c.names(),
        [RPC_CLIENT_CALL_DURATION, RPC_SERVER_CALL_DURATION]
    );
    server.stop().await;
}
