//! Connection hooks on both sides, and what a tonic service sees of them.

mod common;

use common::recorder::count;
use common::{Harness, req};

/// `ClientStatsLayer::connect` makes a channel of one connection at a time: its RPCs report
/// that connection's addresses, as grpc-go's client header events do, and none once it is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_rpcs_carry_the_addresses_of_their_channels_connection() {
    let h = Harness::start().await;
    let mut client = h.client_after_one_rpc().await;
    let events = h.client.events();
    let conn = events.iter().find(|e| e.name == "TagConn").unwrap();
    let local = conn
        .local_addr
        .expect("the client connection's own address");
    for name in ["TagRPC", "OutHeader", "InHeader"] {
        let event = events.iter().find(|e| e.name == name).unwrap();
        assert_eq!(
            (event.remote_addr, event.local_addr),
            (Some(h.addr), Some(local)),
            "{name}"
        );
    }
    let server_rpc = h.server.events().into_iter().find(|e| e.name == "TagRPC");
    assert_eq!(
        server_rpc.unwrap().remote_addr,
        Some(local),
        "the server saw the same connection from the other end"
    );

    // The server goes away: the connection closes, and an RPC started after that has no
    // connection to report (it fails: nothing listens any more).
    let addr = h.addr;
    let client_recorder = std::sync::Arc::clone(&h.client);
    h.stop().await;
    client_recorder
        .wait_for("client ConnEnd", |e| count(e, "ConnEnd") == 1)
        .await;
    assert!(client.unary_echo(req("late")).await.is_err());
    let late = client_recorder.events();
    let late_tag = late.iter().filter(|e| e.name == "TagRPC").nth(1).unwrap();
    assert_eq!((late_tag.remote_addr, late_tag.local_addr), (None, None));
    assert_ne!(late_tag.remote_addr, Some(addr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_events_on_both_sides() {
    let h = Harness::start().await;
    let client = h.client_after_one_rpc().await;

    let server = h.server.events();
    let names: Vec<_> = server.iter().map(|e| e.name).collect();
    assert_eq!(
        &names[..3],
        ["TagConn", "ConnBegin", "TagRPC"],
        "server: {names:?}"
    );
    let server_conn = server[0].conn.unwrap();
    assert!(
        server
            .iter()
            .filter(|e| e.rpc.is_some())
            .all(|e| e.conn == Some(server_conn))
    );
    assert_eq!(
        server[0].remote_addr.map(|a| a.ip().to_string()).as_deref(),
        Some("127.0.0.1")
    );

    let client_events = h.client.events();
    let client_conn = client_events.iter().find(|e| e.name == "TagConn").unwrap();
    assert_eq!(
        client_conn.remote_addr,
        Some(h.addr),
        "the client's peer is the server"
    );
    assert_eq!(count(&client_events, "ConnBegin"), 1);
    assert_eq!(count(&client_events, "ConnEnd"), 0);

    // Closing the channel closes the connection: ConnEnd on both sides, once.
    drop(client);
    h.client
        .wait_for("client ConnEnd", |e| count(e, "ConnEnd") == 1)
        .await;
    h.server
        .wait_for("server ConnEnd", |e| count(e, "ConnEnd") == 1)
        .await;
    let ends = h.server.events();
    let end = ends.iter().find(|e| e.name == "ConnEnd").unwrap();
    assert_eq!(
        end.conn,
        Some(server_conn),
        "ConnEnd carries the TagConn context"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_channel_is_its_own_connection() {
    let h = Harness::start().await;
    for _ in 0..3 {
        let mut client = h.client().await;
        client.unary_echo(req("hello")).await.unwrap();
    }
    h.server
        .wait_for("3 ConnEnd", |e| count(e, "ConnEnd") == 3)
        .await;
    h.client
        .wait_for("3 ConnEnd", |e| count(e, "ConnEnd") == 3)
        .await;
    let server = h.server.events();
    assert_eq!(count(&server, "TagConn"), 3);
    assert_eq!(count(&server, "ConnBegin"), 3);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_sees_the_rpc_context_and_the_peer_address() {
    let h = Harness::start().await;
    let mut client = h.client().await;
    let reply = client
        .unary_echo(req("whoami"))
        .await
        .unwrap()
        .into_inner()
        .message;
    h.server.wait_ends(1).await;
    let rpc = h.server.rpc_ids()[0];
    let client_local = h
        .server
        .events()
        .iter()
        .find(|e| e.name == "TagConn")
        .and_then(|e| e.remote_addr)
        .unwrap();
    assert_eq!(
        reply,
        format!("extensions=Some({rpc}) current=Some({rpc}) remote=Some({client_local})"),
        "the context is in the extensions and current while the service runs, and \
         Request::remote_addr() still works behind the connection wrapper"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_rpc_contexts_derive_from_the_connection_client_ones_do_not() {
    let h = Harness::start().await;
    let _client = h.client_after_one_rpc().await;
    let server = h.server.events();
    let tag = server.iter().find(|e| e.name == "TagRPC").unwrap();
    assert!(
        tag.conn.is_some(),
        "tag_rpc gets the connection's context on the server"
    );
    let client_events = h.client.events();
    assert!(
        client_events
            .iter()
            .filter(|e| e.rpc.is_some())
            .all(|e| e.conn.is_none())
    );
    h.stop().await;
}
