//! `cargo run -p demo`'s scenario, end to end in process: every scenario's outcome, and the
//! spans it produced on both sides.

use demo::scenarios::Scenario;
use demo::waterfall::{self, Colour};
use demo::{echo, embedded};
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry_sdk::trace::SpanData;
use tonic::Code;

fn attr(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_makes_one_trace_across_client_and_server() {
    let report = embedded::run(None).await.unwrap();
    assert_eq!(report.outcomes.len(), Scenario::ALL.len());
    let connections: Vec<&SpanData> = report
        .spans
        .iter()
        .filter(|s| s.name == "grpc.connection")
        .collect();
    assert_eq!(
        connections.len(),
        2 * Scenario::ALL.len(),
        "a connection per scenario, both sides"
    );

    for outcome in &report.outcomes {
        let scenario = outcome.scenario;
        let code = outcome.result.as_ref().err().map_or(Code::Ok, |s| s.code());
        assert_eq!(
            code,
            scenario.expected_code(),
            "{scenario:?}: {:?}",
            outcome.result
        );

        let trace: Vec<&SpanData> = report
            .spans
            .iter()
            .filter(|s| s.span_context.trace_id() == outcome.trace_id)
            .collect();
        let client: Vec<_> = trace
            .iter()
            .filter(|s| s.span_kind == SpanKind::Client)
            .collect();
        let server: Vec<_> = trace
            .iter()
            .filter(|s| s.span_kind == SpanKind::Server)
            .collect();
        assert_eq!(
            (client.len(), server.len()),
            (1, 1),
            "{scenario:?}: {trace:#?}"
        );
        let (client, server) = (client[0], server[0]);
        assert!(
            client.name.starts_with("grpc.examples.echo.Echo/"),
            "{}",
            client.name
        );
        assert_eq!(client.name, server.name);
        assert_eq!(
            server.parent_span_id,
            client.span_context.span_id(),
            "{scenario:?}"
        );
        assert!(server.parent_span_is_remote);
        let link = &server.links.links[0].span_context;
        assert!(
            connections.iter().any(|c| &c.span_context == link),
            "{scenario:?}: the server span links its connection span"
        );
        assert!(!client.events.is_empty() && !server.events.is_empty());

        // Status rules: the client marks every failure; the server only server faults.
        let client_error = matches!(client.status, Status::Error { .. });
        assert_eq!(
            client_error,
            code != Code::Ok,
            "{scenario:?}: {:?}",
            client.status
        );
        let server_error = matches!(server.status, Status::Error { .. });
        assert_eq!(
            server_error,
            scenario == Scenario::Deadline,
            "{scenario:?}: {:?}",
            server.status
        );
        let expected_server_code = match scenario {
            Scenario::Error => "INVALID_ARGUMENT",
            Scenario::CancelledStream => "CANCELLED",
            Scenario::Deadline => "DEADLINE_EXCEEDED",
            _ => "OK",
        };
        assert_eq!(
            attr(server, "rpc.response.status_code").as_deref(),
            Some(expected_server_code)
        );
        // The echo service adds its own attribute to the RPC span it reaches from the request.
        let expected_delay = (scenario == Scenario::Deadline).then(|| "500".to_owned());
        assert_eq!(
            attr(server, echo::DELAY_ATTRIBUTE),
            expected_delay,
            "{scenario:?}"
        );

        let picture = waterfall::render(&report.spans, outcome.trace_id, Colour::Off);
        assert!(
            picture.contains(&format!("scenario: {}", scenario.name())),
            "{picture}"
        );
        assert!(
            picture.contains("CLIENT") && picture.contains("SERVER"),
            "{picture}"
        );
        assert!(picture.contains("link: grpc.connection"), "{picture}");
    }
}
