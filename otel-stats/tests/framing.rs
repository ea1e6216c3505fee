//! One payload event per gRPC message, however the messages are cut into DATA frames: many
//! messages in one frame, a message cut at every byte, messages larger than a frame, a body
//! that ends mid-message, and requests that are not gRPC at all.

mod common;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use common::echo::echo_server::EchoServer;
use common::recorder::count;
use common::{Event, Harness, Recorder, req};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use otel_stats::ServerStatsLayer;
use prost::Message;
use tonic::Code;
use tower::{Layer, ServiceExt};

/// The gRPC encoding of `messages`, prefix and all.
fn grpc_bytes(messages: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        let encoded = req(m).encode_to_vec();
        out.push(0);
        out.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
        out.extend_from_slice(&encoded);
    }
    out
}

/// Sends `chunks` as the DATA frames of a client-streaming request straight into the
/// instrumented tonic router, reads the whole response, and returns the server's events.
async fn client_stream(chunks: Vec<Vec<u8>>, content_type: &str) -> (Vec<Event>, Bytes) {
    let recorder = Arc::new(Recorder::new("server"));
    let routes = tonic::service::Routes::new(EchoServer::new(common::service::Echo));
    let service = ServerStatsLayer::from_arc(Arc::clone(&recorder)).layer(routes);
    let frames = chunks
        .into_iter()
        .map(|c| Ok::<_, Infallible>(Frame::data(Bytes::from(c))));
    let request = http::Request::builder()
        .method("POST")
        .uri("http://localhost/grpc.examples.echo.Echo/ClientStreamingEcho")
        .header("content-type", content_type)
        .header("te", "trailers")
        .body(StreamBody::new(futures_util::stream::iter(frames)))
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (recorder.events(), bytes)
}

fn payloads(events: &[Event]) -> Vec<&Event> {
    events.iter().filter(|e| e.name == "InPayload").collect()
}

fn end(events: &[Event]) -> &Event {
    events.iter().find(|e| e.name == "End").unwrap()
}

#[tokio::test]
async fn several_messages_in_one_frame() {
    let bytes = grpc_bytes(&["a", "bb", "ccc"]);
    let (events, _) = client_stream(vec![bytes], "application/grpc").await;
    let p = payloads(&events);
    assert_eq!(p.len(), 3);
    assert_eq!(
        p.iter().map(|e| e.length.unwrap()).collect::<Vec<_>>(),
        [3, 4, 5]
    );
    assert_eq!(
        p.iter().map(|e| e.seq.unwrap()).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert!(
        p.iter().all(|e| e.has_data),
        "whole messages come with their bytes"
    );
    assert_eq!(end(&events).code, Some(Code::Ok));
}

#[tokio::test]
async fn every_message_cut_at_every_byte() {
    let bytes = grpc_bytes(&["a", "bb", "ccc"]);
    let chunks = bytes.iter().map(|b| vec![*b]).collect();
    let (events, _) = client_stream(chunks, "application/grpc").await;
    let p = payloads(&events);
    assert_eq!(
        p.iter().map(|e| e.length.unwrap()).collect::<Vec<_>>(),
        [3, 4, 5]
    );
    assert_eq!(
        p.iter().map(|e| e.wire_length.unwrap()).collect::<Vec<_>>(),
        [8, 9, 10]
    );
    assert!(
        p.iter().all(|e| !e.has_data),
        "split messages are not copied together"
    );
    assert_eq!(end(&events).code, Some(Code::Ok));
}

#[tokio::test]
async fn prefix_and_body_split_across_frames_with_the_next_message_packed_in() {
    let bytes = grpc_bytes(&["first", "second"]);
    // [prefix 3 bytes] [rest of prefix + body + the whole next message]
    let chunks = vec![bytes[..3].to_vec(), bytes[3..].to_vec()];
    let (events, _) = client_stream(chunks, "application/grpc").await;
    let p = payloads(&events);
    assert_eq!(p.len(), 2);
    assert!(
        p[0].has_data,
        "the body of the first message came in one frame"
    );
    assert!(p[1].has_data);
}

#[tokio::test]
async fn a_body_ending_mid_message_is_reported_as_malformed() {
    let mut bytes = grpc_bytes(&["complete", "truncated"]);
    bytes.truncate(bytes.len() - 3);
    let (events, _) = client_stream(vec![bytes], "application/grpc").await;
    assert_eq!(payloads(&events).len(), 1, "only the complete message");
    let end = end(&events);
    assert_eq!(count(&events, "End"), 1);
    assert!(
        end.frame_error
            .as_deref()
            .unwrap_or("")
            .contains("3 bytes missing"),
        "{end:?}"
    );
}

#[tokio::test]
async fn a_declared_length_of_4_gib_allocates_nothing() {
    let bytes = vec![0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3];
    let (events, _) = client_stream(vec![bytes], "application/grpc").await;
    assert_eq!(payloads(&events).len(), 0);
    assert_eq!(count(&events, "End"), 1);
    // tonic refuses the message by its declared size before the body ends; the RPC ends with
    // tonic's status and nothing was buffered on the way.
    assert_eq!(
        end(&events).code,
        Some(Code::OutOfRange),
        "{:?}",
        end(&events)
    );
}

#[tokio::test]
async fn requests_that_are_not_grpc_pass_through_unreported() {
    let (events, _) = client_stream(vec![b"hello".to_vec()], "text/plain").await;
    assert!(events.is_empty(), "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_larger_than_a_frame_over_a_real_connection() {
    let h = Harness::start().await;
    let mut client = h.client().await;
    let big = "x".repeat(1 << 20);
    let reply = client.unary_echo(req(&big)).await.unwrap().into_inner();
    assert_eq!(reply.message.len(), big.len());
    h.server.wait_ends(1).await;
    h.client.wait_ends(1).await;
    let encoded_len = req(&big).encoded_len();
    for (recorder, kind) in [(&h.server, "InPayload"), (&h.client, "OutPayload")] {
        let events = recorder.events();
        let p: Vec<_> = events.iter().filter(|e| e.name == kind).collect();
        assert_eq!(p.len(), 1, "{kind}: one event for one message");
        assert_eq!(p[0].length, Some(encoded_len));
        assert_eq!(p[0].wire_length, Some(encoded_len + 5));
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_stream_reports_every_message_in_order() {
    let h = Harness::start().await;
    let mut client = h.client().await;
    let mut stream = client
        .server_streaming_echo(req("count:2000"))
        .await
        .unwrap()
        .into_inner();
    let mut n = 0;
    while stream.message().await.unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 2000);
    for recorder in [&h.server, &h.client] {
        let events = recorder.wait_ends(1).await;
        let seqs: Vec<u64> = events.iter().filter_map(|e| e.seq).collect();
        assert_eq!(seqs.len(), 2001, "2000 replies and the request");
    }
    let client_events = h.client.events();
    let seqs: Vec<u64> = client_events
        .iter()
        .filter(|e| e.name == "InPayload")
        .filter_map(|e| e.seq)
        .collect();
    assert_eq!(seqs, (0..2000).collect::<Vec<_>>());
    h.stop().await;
}
