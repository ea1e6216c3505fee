//! Panics, in a stats handler or in the service, never take more than they must: a panicking
//! hook is contained and the RPC goes on; a panicking service still gets exactly one `End`.

mod common;

use std::sync::atomic::Ordering;

use common::recorder::count;
use common::{Harness, Recorder, req};
use tonic::Code;

fn quiet_panics() {
    // The panics here are on purpose; keep the test output readable.
    std::panic::set_hook(Box::new(|_| {}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_panics_in_every_hook_changes_nothing_on_the_wire() {
    quiet_panics();
    let server = Recorder::new("server");
    server.panic.store(true, Ordering::Relaxed);
    let h = Harness::start_with(server).await;
    h.client.panic.store(true, Ordering::Relaxed);
    let mut client = h.client().await;

    let reply = client.unary_echo(req("hello")).await.unwrap().into_inner();
    assert_eq!(reply.message, "hello");
    let mut stream = client
        .server_streaming_echo(req("s"))
        .await
        .unwrap()
        .into_inner();
    let mut replies = Vec::new();
    while let Some(r) = stream.message().await.unwrap() {
        replies.push(r.message);
    }
    assert_eq!(replies, ["s #1", "s #2", "s #3"]);
    let status = client.unary_echo(req("error")).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    // Every hook was still called, once per event, though each one panicked.
    let server = h.server.wait_ends(3).await;
    let client_events = h.client.wait_ends(3).await;
    assert_eq!(count(&server, "TagRPC"), 3);
    assert_eq!(count(&server, "End"), 3);
    assert_eq!(count(&client_events, "End"), 3);
    assert_eq!(count(&server, "OutPayload"), 4);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_panics_still_ends_once() {
    quiet_panics();
    let h = Harness::start().await;
    let mut client = h.client().await;
    let status = client.unary_echo(req("panic")).await.unwrap_err();
    // hyper resets the stream of a panicked service task.
    assert_ne!(status.code(), Code::Ok);

    let server = h.server.wait_ends(1).await;
    let client_events = h.client.wait_ends(1).await;
    assert_eq!(count(&server, "End"), 1);
    assert_eq!(count(&client_events, "End"), 1);
    let end = server.iter().find(|e| e.name == "End").unwrap();
    assert_eq!(end.code, Some(Code::Cancelled), "dropped before any status");
    let end = client_events.iter().find(|e| e.name == "End").unwrap();
    assert_eq!(
        end.code,
        Some(status.code()),
        "the client End says what the app saw"
    );

    // The connection and the server survive.
    let reply = client.unary_echo(req("after")).await.unwrap().into_inner();
    assert_eq!(reply.message, "after");
    h.stop().await;
}
