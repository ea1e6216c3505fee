//! A handler chosen at run time, `Arc<dyn StatsHandler>`, goes into both layers with
//! `from_arc` as it is (no `Arc` around the `Arc`) and sees every event of a real server and
//! client, connections included, in grpc-go's order.

mod common;

use std::sync::Arc;

use common::echo::echo_server::EchoServer;
use common::recorder::count;
use common::service::Echo;
use common::{EchoClient, Recorder, Serving, req};
use otel_stats::{BoxHandler, ClientStatsLayer, ServerStatsLayer, StatsChannel, StatsHandler};
use tokio::net::TcpListener;
use tonic::transport::{Endpoint, Server, server::TcpIncoming};

#[tokio::test]
async fn a_dyn_handler_sees_every_event_on_both_sides() {
    let server = Arc::new(Recorder::new("server"));
    let client = Arc::new(Recorder::new("client"));
    let server_handler: BoxHandler = server.clone();
    let client_handler: BoxHandler = client.clone();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stats: ServerStatsLayer<dyn StatsHandler> = ServerStatsLayer::from_arc(server_handler);
    let incoming = stats.incoming(TcpIncoming::from(listener));
    let serving = Serving::spawn(|signal| async move {
        Server::builder()
            .layer(stats)
            .add_service(EchoServer::new(Echo))
            .serve_with_incoming_shutdown(incoming, async {
                let _ = signal.await;
            })
            .await
            .unwrap();
    });

    let endpoint = Endpoint::from_shared(format!("http://{addr}")).unwrap();
    let channel: StatsChannel = ClientStatsLayer::from_arc(client_handler)
        .connect(endpoint)
        .await
        .unwrap();
    let mut echo = EchoClient::new(channel);
    echo.unary_echo(req("hello")).await.unwrap();
    server.wait_ends(1).await;
    client.wait_ends(1).await;

    let rpc = server.rpc_ids()[0];
    assert_eq!(
        server.rpc_sequence(rpc).join(" "),
        "TagRPC InHeader Begin InPayload OutHeader OutPayload OutTrailer End"
    );
    let rpc = client.rpc_ids()[0];
    assert_eq!(
        client.rpc_sequence(rpc).join(" "),
        "TagRPC Begin OutHeader OutPayload InHeader InPayload InTrailer End"
    );

    drop(echo);
    let ended = |events: &[common::Event]| count(events, "ConnEnd") == 1;
    server.wait_for("the server's ConnEnd", ended).await;
    client.wait_for("the client's ConnEnd", ended).await;
    for side in [&server, &client] {
        assert_eq!(count(&side.events(), "ConnBegin"), 1);
    }
    serving.stop().await;
}
