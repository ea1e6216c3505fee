//! What the demo client does, like grpc-go's stats_monitoring client and then some: every
//! kind of call, an error, a cancelled stream and a deadline.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::client::GrpcService;
use tonic::codec::CompressionEncoding;
use tonic::codegen::{Body, Bytes, StdError};
use tonic::{Code, Request, Status};

use crate::proto::EchoRequest;
use crate::proto::echo_client::EchoClient;

/// One scenario of the demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// A unary call.
    Unary,
    /// A unary call, gzip-compressed both ways.
    UnaryGzip,
    /// Three replies to one request.
    ServerStreaming,
    /// Three requests, one reply.
    ClientStreaming,
    /// Ping-pong: each message echoed before the next one goes.
    Bidi,
    /// The server fails the call with `INVALID_ARGUMENT`.
    Error,
    /// The client stops reading a stream after the first reply.
    CancelledStream,
    /// The client's 100 ms deadline passes while the server sleeps.
    Deadline,
}

impl Scenario {
    /// All of them, in the order the demo runs them.
    pub const ALL: [Scenario; 8] = [
        Scenario::Unary,
        Scenario::UnaryGzip,
        Scenario::ServerStreaming,
        Scenario::ClientStreaming,
        Scenario::Bidi,
        Scenario::Error,
        Scenario::CancelledStream,
        Scenario::Deadline,
    ];

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Unary => "unary",
            Scenario::UnaryGzip => "unary, gzip",
            Scenario::ServerStreaming => "server streaming",
            Scenario::ClientStreaming => "client streaming",
            Scenario::Bidi => "bidi streaming",
            Scenario::Error => "error",
            Scenario::CancelledStream => "cancelled stream",
            Scenario::Deadline => "deadline exceeded",
        }
    }

    /// The status code the application sees when the scenario goes as designed.
    pub fn expected_code(self) -> Code {
        match self {
            Scenario::Error => Code::InvalidArgument,
            Scenario::CancelledStream => Code::Cancelled,
            Scenario::Deadline => Code::DeadlineExceeded,
            _ => Code::Ok,
        }
    }
}

fn request(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.to_owned(),
    }
}

/// Runs `scenario` with `client` and says what the application saw: the replies, or the
/// status.
pub async fn run<T>(client: &mut EchoClient<T>, scenario: Scenario) -> Result<String, Status>
where
    T: GrpcService<tonic::body::Body> + Clone,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    match scenario {
        Scenario::Unary => Ok(client
            .unary_echo(request("hello"))
            .await?
            .into_inner()
            .message),
        Scenario::UnaryGzip => {
            let mut gzip = client
                .clone()
                .send_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Gzip);
            let message = "compressible ".repeat(20);
            let reply = gzip
                .unary_echo(request(&message))
                .await?
                .into_inner()
                .message;
            Ok(format!("{} bytes, compressed on the wire", reply.len()))
        }
        Scenario::ServerStreaming => {
            let mut stream = client
                .server_streaming_echo(request("stream"))
                .await?
                .into_inner();
            let mut replies = Vec::new();
            while let Some(reply) = stream.message().await? {
                replies.push(reply.message);
            }
            Ok(replies.join(" | "))
        }
        Scenario::ClientStreaming => {
            let messages = ["c1", "c2", "c3"].map(request);
            let reply = client
                .client_streaming_echo(tokio_stream::iter(messages))
                .await?;
            Ok(reply.into_inner().message)
        }
        Scenario::Bidi => {
            let (tx, rx) = mpsc::channel(1);
            let _ = tx.send(request("b1")).await;
            let mut replies = client
                .bidirectional_streaming_echo(ReceiverStream::new(rx))
                .await?
                .into_inner();
            let mut seen = Vec::new();
            for next in ["b2", "b3", ""] {
                match replies.message().await? {
                    Some(reply) => seen.push(reply.message),
                    None => break,
                }
                if next.is_empty() {
                    break;
                }
                let _ = tx.send(request(next)).await;
            }
            drop(tx);
            while replies.message().await?.is_some() {}
            Ok(seen.join(" | "))
        }
        Scenario::Error => {
            let reply = client.unary_echo(request("error: please fail")).await?;
            Ok(reply.into_inner().message)
        }
        Scenario::CancelledStream => {
            let mut stream = client
                .server_streaming_echo(request("sleep:50"))
                .await?
                .into_inner();
            let first = stream
                .message()
                .await?
                .map(|r| r.message)
                .unwrap_or_default();
            drop(stream);
            Err(Status::cancelled(format!(
                "stopped reading after {first:?}"
            )))
        }
        Scenario::Deadline => {
            let mut call = Request::new(request("sleep:500"));
            call.set_timeout(Duration::from_millis(100));
            match client.unary_echo(call).await {
                // tonic's channel reports its own deadline as CANCELLED "Timeout expired".
                Err(s) if s.code() == Code::Cancelled && s.message() == "Timeout expired" => {
                    Err(Status::deadline_exceeded("100 ms deadline passed"))
                }
                other => Ok(other?.into_inner().message),
            }
        }
    }
}
