//! The demo echo client: runs every scenario once, or round after round with `--loop`, a new
//! connection per round so that each round is a finished trace in Jaeger.
//!
//! ```sh
//! cargo run -p demo --bin client -- --addr http://127.0.0.1:50051 --stats-log json
//! # TLS (and mTLS with a client certificate); `whoami` asks who the server thinks we are:
//! cargo run -p demo --bin client -- --addr https://localhost:50051 --tls-ca ca.pem \
//!     --tls-cert client.pem --tls-key client.key --unary whoami
//! ```

use std::process::ExitCode;

use demo::proto::EchoRequest;
use demo::proto::echo_client::EchoClient;
use demo::scenarios::{self, Scenario};
use demo::{cli, telemetry};
use opentelemetry::context::FutureExt;
use opentelemetry::trace::{TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue, global};
use otel_stats::{ClientStatsLayer, ClientStatsService};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

fn endpoint(options: &cli::Options) -> Result<Endpoint, String> {
    let addr = &options.addr;
    let uri = if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    };
    let endpoint =
        Endpoint::from_shared(uri.clone()).map_err(|e| format!("bad --addr {uri:?}: {e}"))?;
    match options.client_tls()? {
        Some(tls) => endpoint
            .tls_config(tls)
            .map_err(|e| format!("bad TLS settings: {e}")),
        None => Ok(endpoint),
    }
}

type Stats = ClientStatsLayer<Vec<Box<dyn otel_stats::StatsHandler>>>;

/// A new connection to `endpoint`, through the stats layer.
async fn connect(
    stats: &Stats,
    endpoint: &Endpoint,
) -> Result<ClientStatsService<Channel, Vec<Box<dyn otel_stats::StatsHandler>>>, String> {
    stats
        .connect(endpoint.clone())
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", endpoint.uri()))
}

/// `--unary TEXT`: one `UnaryEcho` through the stats layer; the reply on stdout.
async fn unary(stats: &Stats, endpoint: &Endpoint, message: &str) -> Result<(), String> {
    let channel = connect(stats, endpoint).await?;
    let reply = EchoClient::new(channel)
        .unary_echo(EchoRequest {
            message: message.to_owned(),
        })
        .await
        .map_err(|status| format!("{:?}: {}", status.code(), status.message()))?;
    println!("{}", reply.into_inner().message);
    Ok(())
}

async fn round(stats: &Stats, endpoint: &Endpoint) -> Result<(), String> {
    let channel = connect(stats, endpoint).await?;
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

/// The scenarios, once or (`--loop`) until Ctrl-C or SIGTERM.
async fn rounds(stats: &Stats, endpoint: &Endpoint, options: &cli::Options) -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    loop {
        if let Err(message) = round(stats, endpoint).await {
            eprintln!("{message}");
            status = ExitCode::FAILURE;
        }
        if !options.repeat {
            return status;
        }
        tokio::select! {
            () = tokio::time::sleep(options.interval) => {}
            () = demo::serve::shutdown_signal() => return status,
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match cli::from_args("http://127.0.0.1:50051") {
        Ok(options) => options,
        Err(exit) => return exit,
    };
    let endpoint = match endpoint(&options) {
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
    let status = match &options.unary {
        Some(message) => match unary(&stats, &endpoint, message).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("{message}");
                ExitCode::FAILURE
            }
        },
        None => rounds(&stats, &endpoint, &options).await,
    };
    if let Some(export) = export {
        let _ = tokio::task::spawn_blocking(move || export.shutdown()).await;
    }
    status
}
