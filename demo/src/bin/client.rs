//! The demo echo client: runs every scenario once, or round after round with `--loop`, a new
//! connection per round so that each round is a finished trace in Jaeger.
//!
//! ```sh
//! cargo run -p demo --bin client -- --addr http://127.0.0.1:50051 --stats-log json
//! ```

use std::process::ExitCode;

use demo::proto::echo_client::EchoClient;
use demo::scenarios::{self, Scenario};
use demo::{cli, telemetry};
use opentelemetry::context::FutureExt;
use opentelemetry::trace::{TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue, global};
use otel_stats::ClientStatsLayer;
use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

fn endpoint(addr: &str) -> Result<Endpoint, String> {
    let uri = if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    };
    Endpoint::from_shared(uri.clone()).map_err(|e| format!("bad --addr {uri:?}: {e}"))
}

async fn round(
    stats: &ClientStatsLayer<Vec<Box<dyn otel_stats::StatsHandler>>>,
    endpoint: &Endpoint,
) -> Result<(), String> {
    let channel = stats
        .connect(endpoint.clone())
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", endpoint.uri()))?;
    let mut client = EchoClient::new(channel);
    let tracer = global::tracer("otel-stats-demo");
    for scenario in Scenario::ALL {
        let span = tracer
            .span_builder(format!("scenario: {}", scenario.name()))
            .with_attributes([KeyValue::new("demo.scenario", scenario.name())])
            .start(&tracer);
        let cx = Context::current_with_span(span);
        let result = scenarios::run(&mut client, scenario)
            .with_context(cx.clone())
            .await;
        cx.span().end();
        match result {
            Ok(replies) => println!("{:<18} OK  {replies}", scenario.name()),
            Err(status) => println!(
                "{:<18} {:?}  {}",
                scenario.name(),
                status.code(),
                status.message()
            ),
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match cli::from_args("http://127.0.0.1:50051") {
        Ok(options) => options,
        Err(exit) => return exit,
    };
    let endpoint = match endpoint(&options.addr) {
        Ok(endpoint) => endpoint,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    if options.probe {
        // The gRPC health service, as a load balancer would ask it: the server's handler
        // traces no health checks, so probes fill no backend.
        let probe = async {
            type Failure = Box<dyn std::error::Error>;
            let mut client = HealthClient::new(endpoint.connect().await?);
            let reply = client
                .check(HealthCheckRequest {
                    service: "grpc.examples.echo.Echo".into(),
                })
                .await?;
            match reply.into_inner().status() {
                ServingStatus::Serving => Ok::<(), Failure>(()),
                status => Err(format!("the echo service is {status:?}").into()),
            }
        };
        return match probe.await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("probe failed: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let export = match telemetry::otlp_from_env("echo-client") {
        Ok(export) => export,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let stats = ClientStatsLayer::new(telemetry::handlers(true, None, options.stats_log));
    let mut status = ExitCode::SUCCESS;
    loop {
        if let Err(message) = round(&stats, &endpoint).await {
            eprintln!("{message}");
            status = ExitCode::FAILURE;
        }
        if !options.repeat {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(options.interval) => {}
            () = demo::serve::shutdown_signal() => break,
        }
    }
    if let Some(export) = export {
        let _ = tokio::task::spawn_blocking(move || export.shutdown()).await;
    }
    status
}
