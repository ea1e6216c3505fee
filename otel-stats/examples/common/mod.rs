//! What the examples share: the echo service of grpc-go's examples (the tests' generated
//! code) and a server for it that answers unary calls.

// Each example uses a part of this module (the client no server, the server no client).
#![allow(dead_code, unused_imports)]

use std::pin::Pin;

use opentelemetry::KeyValue;
use otel_stats::RpcRequestExt;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

#[path = "../../tests/common/echo.rs"]
pub mod echo;

pub use echo::echo_client::EchoClient;
pub use echo::echo_server::EchoServer;
pub use echo::{EchoRequest, EchoResponse};

/// Where the server example listens and the client example connects.
pub const ADDR: &str = "127.0.0.1:50051";

/// Echoes unary calls; the streaming methods are not part of the examples.
#[derive(Debug, Default)]
pub struct Echo;

type Replies = Pin<Box<dyn Stream<Item = Result<EchoResponse, Status>> + Send>>;

#[tonic::async_trait]
impl echo::echo_server::Echo for Echo {
    async fn unary_echo(
        &self,
        request: Request<EchoRequest>,
    ) -> Result<Response<EchoResponse>, Status> {
        // The RPC span the stats layer made (a no-op span without a span-making handler):
        // the service adds what only it knows.
        let length = request.get_ref().message.len() as i64;
        request
            .rpc_span()
            .set_attribute(KeyValue::new("echo.message.length", length));
        let message = request.into_inner().message;
        Ok(Response::new(EchoResponse { message }))
    }

    type ServerStreamingEchoStream = Replies;

    async fn server_streaming_echo(
        &self,
        _request: Request<EchoRequest>,
    ) -> Result<Response<Replies>, Status> {
        Err(Status::unimplemented("the examples only echo unary calls"))
    }

    async fn client_streaming_echo(
        &self,
        _request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoResponse>, Status> {
        Err(Status::unimplemented("the examples only echo unary calls"))
    }

    type BidirectionalStreamingEchoStream = Replies;

    async fn bidirectional_streaming_echo(
        &self,
        _request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<Replies>, Status> {
        Err(Status::unimplemented("the examples only echo unary calls"))
    }
}
