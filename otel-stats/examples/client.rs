//! An echo client that reports its RPCs and its connection: a line per event on stderr
//! ([`LogHandler`]), and OpenTelemetry spans ([`OtelHandler`]) whose trace context goes to the
//! server in the request metadata.
//!
//! ```text
//! cargo run -p otel-stats --example server    # first, in another terminal
//! cargo run -p otel-stats --example client
//! ```

mod common;

use common::{ADDR, EchoClient, EchoRequest};
use otel_stats::{ClientStatsLayer, LogHandler, OtelHandler, StatsChannel};
use tonic::transport::Endpoint;

/// The client an application would keep: the generated client around the stats channel.
type Client = EchoClient<StatsChannel<(OtelHandler, LogHandler)>>;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let stats = ClientStatsLayer::new((OtelHandler::new(), LogHandler::text(std::io::stderr())));
    // `connect` reports the channel's connections and wraps the channel in the layer.
    let channel = stats
        .connect(Endpoint::from_shared(format!("http://{ADDR}"))?)
        .await?;
    let mut client: Client = EchoClient::new(channel);
    for message in ["hello", "world"] {
        let request = EchoRequest {
            message: message.to_owned(),
        };
        let reply = client.unary_echo(request).await?;
        println!("{}", reply.into_inner().message);
    }
    Ok(())
}
