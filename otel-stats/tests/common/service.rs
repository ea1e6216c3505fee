//! The echo service, behaving like grpc-go's stats_monitoring example server plus the cases
//! the scenarios need.

use std::pin::Pin;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use otel_stats::RpcRequestExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::echo::{EchoRequest, EchoResponse, echo_server};
use super::recorder::RpcTag;

pub struct Echo;

/// What the service can see of the stats layer: the RPC tag in the request's context
/// extension, in the current context, and the peer address tonic reports.
fn whoami(request: &Request<EchoRequest>) -> String {
    let from_extensions = request
        .rpc_context()
        .and_then(|cx| cx.get::<RpcTag>().map(|t| t.0));
    let current = opentelemetry::Context::current()
        .get::<RpcTag>()
        .map(|t| t.0);
    let remote = request.remote_addr();
    format!("extensions={from_extensions:?} current={current:?} remote={remote:?}")
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<EchoResponse, Status>> + Send>>;

fn reply(message: impl Into<String>) -> EchoResponse {
    EchoResponse {
        message: message.into(),
    }
}

/// `error...` fails with INVALID_ARGUMENT, `sleep:<ms>` waits, `panic` panics, others echo.
async fn answer(message: String) -> Result<EchoResponse, Status> {
    if message.starts_with("error") {
        return Err(Status::invalid_argument("echo: requested error"));
    }
    if message == "panic" {
        panic!("the echo handler was asked to panic");
    }
    // `sleepctx:` is grpc-go's context-aware variant; a tonic handler future is dropped on
    // cancel, so it is context-aware either way.
    if let Some(ms) = message
        .strip_prefix("sleep:")
        .or_else(|| message.strip_prefix("sleepctx:"))
    {
        let ms = ms
            .parse()
            .map_err(|_| Status::invalid_argument("sleep:<ms>"))?;
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    Ok(reply(message))
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
        answer(request.into_inner().message)
            .await
            .map(Response::new)
    }

    type ServerStreamingEchoStream = ResponseStream;

    /// Three replies, `<msg> #1` to `#3`; for `slow`, one reply and then nothing for a long
    /// while (the client is expected to cancel).
    async fn server_streaming_echo(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<Self::ServerStreamingEchoStream>, Status> {
        let message = request.into_inner().message;
        if message.starts_with("error") {
            return Err(Status::invalid_argument("echo: requested error"));
        }
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            if message == "slow" {
                let _ = tx.send(Ok(reply("slow #1"))).await;
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                    _ = tx.closed() => {}
                }
                return;
            }
            if let Some(n) = message.strip_prefix("count:") {
                for i in 0..n.parse::<usize>().unwrap_or(0) {
                    if tx.send(Ok(reply(format!("#{i}")))).await.is_err() {
                        return;
                    }
                }
                return;
            }
            for i in 1..=3 {
                if tx.send(Ok(reply(format!("{message} #{i}")))).await.is_err() {
                    return;
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
        let mut all = Vec::new();
        while let Some(message) = stream.message().await? {
            all.push(message.message);
        }
        Ok(Response::new(reply(all.join(","))))
    }

    type BidirectionalStreamingEchoStream = ResponseStream;

    async fn bidirectional_streaming_echo(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<Self::BidirectionalStreamingEchoStream>, Status> {
        let stream = request.into_inner();
        Ok(Response::new(Box::pin(
            stream.map(|message| message.map(|m| reply(m.message))),
        )))
    }
}
