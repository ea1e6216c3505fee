//! Method names cannot explode the cardinality of the instruments: a method the server does
//! not have, or one outside the allow-list or the filter, is `_OTHER` (semantic conventions)
//! and `other` (gRFC A66).

mod common;
mod metrics_common;

use common::otel::{TestServer, call};
use common::req;
use metrics_common::Metrics;
use otel_stats::metrics::names::*;
use tonic::Code;

const UNARY: &str = "grpc.examples.echo.Echo/UnaryEcho";
const CLIENT_STREAMING: &str = "grpc.examples.echo.Echo/ClientStreamingEcho";
const NOPE: &str = "/grpc.examples.echo.Echo/NoSuchMethod";

/// The `rpc.method` values of `instrument`, each with its status, sorted.
fn methods(c: &metrics_common::Collected, instrument: &str, key: &str) -> Vec<(String, String)> {
    let mut seen: Vec<(String, String)> = c
        .instrument(instrument)
        .points
        .iter()
        .map(|p| {
            let status = p
                .attrs
                .get("rpc.response.status_code")
                .or_else(|| p.attrs.get("grpc.status"))
                .cloned()
                .unwrap_or_default();
            (p.attrs[key].clone(), status)
        })
        .collect();
    seen.sort();
    seen
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_configuration_a_method_the_server_lacks_is_other_on_the_server() {
    let metrics = Metrics::new();
    let server = TestServer::start(metrics.a66_handler()).await;
    let mut client = server.raw_client(metrics.a66_handler()).await;
    call(&mut client, "/grpc.examples.echo.Echo/UnaryEcho")
        .await
        .unwrap();
    let status = call(&mut client, NOPE).await.unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    let c = metrics.wait_calls(2).await;

    assert_eq!(
        methods(&c, RPC_SERVER_CALL_DURATION, "rpc.method"),
        pairs(&[("_OTHER", "UNIMPLEMENTED"), (UNARY, "OK")])
    );
    let other = c.instrument(RPC_SERVER_CALL_DURATION).point(&[
        ("rpc.system.name", "grpc"),
        ("rpc.method", "_OTHER"),
        ("rpc.response.status_code", "UNIMPLEMENTED"),
        ("error.type", "UNIMPLEMENTED"),
    ]);
    assert_eq!(other.count, 1);
    assert_eq!(
        methods(&c, GRPC_SERVER_CALL_DURATION, "grpc.method"),
        pairs(&[(UNARY, "OK"), ("other", "UNIMPLEMENTED")])
    );
    // The client's methods come from its own code: it keeps the name.
    assert_eq!(
        methods(&c, RPC_CLIENT_CALL_DURATION, "rpc.method"),
        pairs(&[
            ("grpc.examples.echo.Echo/NoSuchMethod", "UNIMPLEMENTED"),
            (UNARY, "OK")
        ])
    );
    drop(client);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allow_list_names_its_methods_and_buckets_the_rest() {
    let metrics = Metrics::new();
    let handler = || {
        metrics
            .builder()
            .a66(true)
            .methods([format!("/{UNARY}")])
            .build()
    };
    let (server, mut client) = TestServer::pair(handler).await;
    client.unary_echo(req("hello")).await.unwrap();
    client
        .client_streaming_echo(tokio_stream::iter(vec![req("a")]))
        .await
        .unwrap();
    let mut raw = server.raw_client(handler()).await;
    call(&mut raw, NOPE).await.unwrap_err();
    let c = metrics.wait_calls(3).await;

    for instrument in [RPC_SERVER_CALL_DURATION, RPC_CLIENT_CALL_DURATION] {
        assert_eq!(
            methods(&c, instrument, "rpc.method"),
            pairs(&[("_OTHER", "OK"), ("_OTHER", "UNIMPLEMENTED"), (UNARY, "OK")]),
            "{instrument}"
        );
    }
    // A66: `other`, also for the started counters, which count before any status.
    for instrument in [GRPC_SERVER_CALL_STARTED, GRPC_CLIENT_ATTEMPT_STARTED] {
        let mut seen: Vec<(String, f64)> = c
            .instrument(instrument)
            .points
            .iter()
            .map(|p| (p.attrs["grpc.method"].clone(), p.sum))
            .collect();
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            seen,
            [
                ("grpc.examples.echo.Echo/UnaryEcho".to_owned(), 1.0),
                ("other".to_owned(), 2.0)
            ],
            "{instrument}"
        );
    }
    drop((client, raw));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_accepts_methods_by_their_full_name() {
    let metrics = Metrics::new();
    let handler = || {
        metrics
            .builder()
            .method_filter(|method| method.ends_with("StreamingEcho"))
            .build()
    };
    let (server, mut client) = TestServer::pair(handler).await;
    client.unary_echo(req("hello")).await.unwrap();
    client
        .client_streaming_echo(tokio_stream::iter(vec![req("a")]))
        .await
        .unwrap();
    let c = metrics.wait_calls(2).await;
    for instrument in [RPC_SERVER_CALL_DURATION, RPC_CLIENT_CALL_DURATION] {
        assert_eq!(
            methods(&c, instrument, "rpc.method"),
            pairs(&[("_OTHER", "OK"), (CLIENT_STREAMING, "OK")]),
            "{instrument}"
        );
    }
    drop(client);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_calls_keep_their_series_and_made_up_methods_stay_other() {
    // The handler keeps each method's attributes after its first call; a method the server
    // lacks is never kept, however often it is called.
    let metrics = Metrics::new();
    let server = TestServer::start(metrics.a66_handler()).await;
    let mut client = server.raw_client(metrics.a66_handler()).await;
    for _ in 0..3 {
        call(&mut client, "/grpc.examples.echo.Echo/UnaryEcho")
            .await
            .unwrap();
        let status = call(&mut client, NOPE).await.unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented);
    }
    let c = metrics.wait_calls(6).await;

    let server_point = |method, status: &str, error: bool| {
        let mut attrs = vec![
            ("rpc.system.name", "grpc"),
            ("rpc.method", method),
            ("rpc.response.status_code", status),
        ];
        if error {
            attrs.push(("error.type", status));
        }
        c.instrument(RPC_SERVER_CALL_DURATION).point(&attrs).count
    };
    assert_eq!(server_point(UNARY, "OK", false), 3);
    assert_eq!(server_point("_OTHER", "UNIMPLEMENTED", true), 3);
    assert_eq!(c.instrument(RPC_SERVER_CALL_DURATION).points.len(), 2);
    assert_eq!(
        methods(&c, GRPC_SERVER_CALL_STARTED, "grpc.method"),
        // Counted before the status is known: the made-up name, as documented.
        pairs(&[("grpc.examples.echo.Echo/NoSuchMethod", ""), (UNARY, "")])
    );
    assert_eq!(c.count(RPC_CLIENT_CALL_DURATION), 6);
    assert_eq!(c.instrument(RPC_CLIENT_CALL_DURATION).points.len(), 2);
    drop(client);
    server.stop().await;
}
