//! The echo service, wire-compatible with grpc-go's `examples/features/proto/echo`.
//!
//! - a message starting with `error` fails with `INVALID_ARGUMENT`;
//! - `whoami` (unary) answers what tonic tells the service of the caller:
//!   `<remote address> certs=<number of client certificates>`;
//! - `sleep:<ms>` delays each reply that long;
//! - server streaming sends 3 replies, `<msg> #1` to `<msg> #3`;
//! - client streaming joins the messages with `,`;
//! - bidi echoes each message as it arrives.

use std::pin::Pin;
use std::time::Duration;

use opentelemetry::KeyValue;
use otel_stats::RpcRequestExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use crate::proto::echo_server::{self, EchoServer};
use crate::proto::{EchoRequest, EchoResponse};

/// The span attribute of a unary RPC whose message asked for a delay: the delay, in
/// milliseconds.
pub const DELAY_ATTRIBUTE: &str = "echo.delay_ms";

/// The service. Build the tonic server with [`Echo::server`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo;

impl Echo {
    /// The tonic service, accepting gzip-compressed requests and compressing replies for
    /// clients that ask for it.
    pub fn server() -> EchoServer<Echo> {
        use tonic::codec::CompressionEncoding::Gzip;
        EchoServer::new(Echo)
            .accept_compressed(Gzip)
            .send_compressed(Gzip)
    }
}

type ReplyStream = Pin<Box<dyn Stream<Item = Result<EchoResponse, Status>> + Send>>;

fn reply(message: impl Into<String>) -> EchoResponse {
    EchoResponse {
        message: message.into(),
    }
}

/// What `message` asks of the server: an error, or how long to wait before replying.
fn behaviour(message: &str) -> Result<Option<Duration>, Status> {
    if message.starts_with("error") {
        return Err(Status::invalid_argument("echo: requested error"));
    }
    match message.strip_prefix("sleep:") {
        None => Ok(None),
        Some(ms) => {
            let ms = ms
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|d| d.parse().ok())
                .ok_or_else(|| Status::invalid_argument("sleep:<milliseconds>"))?;
            Ok(Some(Duration::from_millis(ms)))
        }
    }
}

/// The caller as tonic reports it: `<remote address> certs=<number of client certificates>`.
fn whoami<T>(request: &Request<T>) -> String {
    let remote = request
        .remote_addr()
        .map_or_else(|| "unknown".to_owned(), |addr| addr.to_string());
    let certs = request.peer_certs().map_or(0, |certs| certs.len());
    format!("{remote} certs={certs}")
}

async fn pause(delay: Option<Duration>) {
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
}

#[tonic::async_trait]
impl echo_server::Echo for Echo {
    async fn unary_echo(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<EchoResponse>, Status> {
        if request.get_ref().message == "whoami" {
            return Ok(Response::new(reply(whoami(&request))));
        }
        // The RPC span the stats layer made: the application adds what only it knows.
        let delay = behaviour(&request.get_ref().message)?;
        if let Some(delay) = delay {
            let ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
            request
                .rpc_span()
                .set_attribute(KeyValue::new(DELAY_ATTRIBUTE, ms));
        }
        pause(delay).await;
        Ok(Response::new(reply(request.into_inner().message)))
    }

    type ServerStreamingEchoStream = ReplyStream;

    async fn server_streaming_echo(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<ReplyStream>, Status> {
        let message = request.into_inner().message;
        let delay = behaviour(&message)?;
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            for i in 1..=3 {
                pause(delay).await;
                if tx.send(Ok(reply(format!("{message} #{i}")))).await.is_err() {
                    return; // the client went away
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn client_streaming_echo(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoResponse>, Status> {
        let mut stream = request.into_inner();
        let mut messages = Vec::new();
        while let Some(request) = stream.message().await? {
            behaviour(&request.message)?;
            messages.push(request.message);
        }
        Ok(Response::new(reply(messages.join(","))))
    }

    type BidirectionalStreamingEchoStream = ReplyStream;

    async fn bidirectional_streaming_echo(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<ReplyStream>, Status> {
        let replies = request.into_inner().then(|request| async move {
            let message = request?.message;
            pause(behaviour(&message)?).await;
            Ok(reply(message))
        });
        Ok(Response::new(Box::pin(replies)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviours() {
        assert!(behaviour("error: please").is_err());
        assert_eq!(
            behaviour("sleep:25").unwrap(),
            Some(Duration::from_millis(25))
        );
        assert_eq!(
            behaviour("sleep:25 then more").unwrap(),
            Some(Duration::from_millis(25))
        );
        assert!(behaviour("sleep:x").is_err());
        assert_eq!(behaviour("hello").unwrap(), None);
    }

    #[test]
    fn whoami_without_a_connection_says_so() {
        assert_eq!(whoami(&Request::new(())), "unknown certs=0");
    }
}
