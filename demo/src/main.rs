//! `cargo run -p demo`: runs every scenario against an in-process server and prints each
//! trace as a waterfall. No Docker, no collector.

use std::process::ExitCode;

use demo::telemetry::MetricsSummary;
use demo::waterfall::{self, Colour};
use demo::{cli, embedded};

/// The metrics in a few lines: calls and median duration per side, method and status, then
/// the connections.
fn metrics_summary(metrics: &MetricsSummary) -> String {
    let mut out = String::from("\n━━ metrics ━━ rpc.{client,server}.call.duration\n");
    for call in &metrics.calls {
        out.push_str(&format!(
            "  {:<6} {:<50} {:<18} {:>3} calls  p50 {:>7.2} ms\n",
            call.side,
            call.method,
            call.status,
            call.calls,
            call.p50_seconds * 1e3
        ));
    }
    let (client, server) = (&metrics.client_connections, &metrics.server_connections);
    out.push_str(&format!(
        "  connections: client {} closed, {} open; server {} closed, {} open\n",
        client.closed, client.open, server.closed, server.open
    ));
    out
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match cli::from_args("127.0.0.1:0") {
        Ok(options) => options,
        Err(exit) => return exit,
    };
    let report = match embedded::run(options.stats_log).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("demo failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let colour = Colour::for_stdout();
    for outcome in &report.outcomes {
        let result = match &outcome.result {
            Ok(replies) => format!("OK  {replies}"),
            Err(status) => format!("{:?}  {}", status.code(), status.message()),
        };
        println!("\n━━ {} ━━ {result}", outcome.scenario.name());
        print!(
            "{}",
            waterfall::render(&report.spans, outcome.trace_id, colour)
        );
    }
    print!("{}", metrics_summary(&report.metrics));
    println!(
        "\n{} spans from {} scenarios. To see them in Jaeger: docker compose up, then open \
         http://localhost:16686",
        report.spans.len(),
        report.outcomes.len()
    );
    ExitCode::SUCCESS
}
