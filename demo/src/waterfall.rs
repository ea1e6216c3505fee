//! A trace as a waterfall in the terminal: the span tree with a time bar per span, the span
//! events under each span, and the status in colour when the terminal has it.
//!
//! ```text
//! scenario: unary                              ████████████████████████████████   2.41 ms
//!   grpc.examples.echo.Echo/UnaryEcho  CLIENT  ▕██████████████████████████████▏  2.02 ms  OK
//!     +0.00 ms  Outbound headers  compression=identity metadata=1
//! ```

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanId, SpanKind, Status, TraceId};
use opentelemetry_sdk::trace::SpanData;

const BAR: usize = 32;

/// How to paint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    /// ANSI colours.
    On,
    /// Plain text.
    Off,
}

impl Colour {
    /// On for a terminal, unless `NO_COLOR` is set.
    pub fn for_stdout() -> Colour {
        use std::io::IsTerminal;
        if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
            Colour::On
        } else {
            Colour::Off
        }
    }

    fn paint(self, code: &str, text: &str) -> String {
        match self {
            Colour::On => format!("\x1b[{code}m{text}\x1b[0m"),
            Colour::Off => text.to_owned(),
        }
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn since(t: SystemTime, origin: SystemTime) -> Duration {
    t.duration_since(origin).unwrap_or_default()
}

fn kind(kind: &SpanKind) -> &'static str {
    match kind {
        SpanKind::Client => "CLIENT",
        SpanKind::Server => "SERVER",
        SpanKind::Producer => "PRODUCER",
        SpanKind::Consumer => "CONSUMER",
        SpanKind::Internal => "",
    }
}

/// Renders the spans of `trace_id` found in `spans` (children under parents, by start time),
/// plus, for each link, the linked span when it is in `spans` too.
pub fn render(spans: &[SpanData], trace_id: TraceId, colour: Colour) -> String {
    let in_trace: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.span_context.trace_id() == trace_id)
        .collect();
    let Some(start) = in_trace.iter().map(|s| s.start_time).min() else {
        return String::new();
    };
    let end = in_trace.iter().map(|s| s.end_time).max().unwrap_or(start);
    let total = since(end, start).max(Duration::from_micros(1));
    let ids: HashMap<SpanId, &SpanData> = in_trace
        .iter()
        .map(|s| (s.span_context.span_id(), *s))
        .collect();
    let mut children: HashMap<SpanId, Vec<&SpanData>> = HashMap::new();
    let mut roots = Vec::new();
    for span in &in_trace {
        if ids.contains_key(&span.parent_span_id) {
            children.entry(span.parent_span_id).or_default().push(span);
        } else {
            roots.push(*span);
        }
    }
    roots.sort_by_key(|s| s.start_time);
    children
        .values_mut()
        .for_each(|c| c.sort_by_key(|s| s.start_time));

    let mut rows = Vec::new();
    let frame = Frame {
        start,
        total,
        colour,
        spans,
        children: &children,
    };
    for root in roots {
        frame.span(&mut rows, root, 0);
    }
    // Span rows line their bars up after the longest label.
    let width = rows
        .iter()
        .filter_map(|r| r.label.as_ref())
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for row in rows {
        match row.label {
            Some(label) => {
                let pad = width - label.chars().count();
                let _ = writeln!(out, "{label}{} {}", " ".repeat(pad), row.text);
            }
            None => {
                let _ = writeln!(out, "{}", row.text);
            }
        }
    }
    out
}

/// One line: a span (its label, then bar and status) or an event or link under it.
struct Row {
    label: Option<String>,
    text: String,
}

struct Frame<'a> {
    start: SystemTime,
    total: Duration,
    colour: Colour,
    spans: &'a [SpanData],
    children: &'a HashMap<SpanId, Vec<&'a SpanData>>,
}

impl Frame<'_> {
    fn bar(&self, from: SystemTime, to: SystemTime) -> String {
        let scale = |t: SystemTime| {
            let f = since(t, self.start).as_secs_f64() / self.total.as_secs_f64();
            ((f * BAR as f64).round() as usize).min(BAR)
        };
        let a = scale(from).min(BAR - 1);
        let b = scale(to).clamp(a + 1, BAR);
        format!(
            "{}{}{}",
            " ".repeat(a),
            "█".repeat(b - a),
            " ".repeat(BAR - b)
        )
    }

    fn span(&self, rows: &mut Vec<Row>, span: &SpanData, depth: usize) {
        let indent = "  ".repeat(depth);
        let mut label = format!("{indent}{}", span.name);
        let k = kind(&span.span_kind);
        if !k.is_empty() {
            let _ = write!(label, "  {k}");
        }
        let (status, code) = match &span.status {
            Status::Error { description } if description.is_empty() => ("ERROR".to_owned(), "31"),
            Status::Error { description } => (format!("ERROR {description}"), "31"),
            Status::Ok => ("OK".to_owned(), "32"),
            Status::Unset => {
                let ok = span
                    .attributes
                    .iter()
                    .find(|kv| kv.key.as_str() == "rpc.response.status_code")
                    .map(|kv| kv.value.as_str().into_owned());
                (ok.unwrap_or_default(), "32")
            }
        };
        let duration = since(span.end_time, span.start_time);
        let bar = self
            .colour
            .paint(code, &self.bar(span.start_time, span.end_time));
        rows.push(Row {
            label: Some(label),
            text: format!(
                "{bar} {:>9.2} ms  {}",
                millis(duration),
                self.colour.paint(code, &status)
            ),
        });
        let mut note = |text: String| rows.push(Row { label: None, text });
        for event in span.events.iter() {
            let attrs: Vec<String> = event
                .attributes
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect();
            note(format!(
                "{indent}  {} {:<18} {}",
                self.colour.paint(
                    "2",
                    &format!(
                        "+{:>7.2} ms",
                        millis(since(event.timestamp, span.start_time))
                    )
                ),
                event.name,
                attrs.join(" ")
            ));
        }
        if span.events.dropped_count > 0 {
            note(format!(
                "{indent}  ({} more events dropped)",
                span.events.dropped_count
            ));
        }
        for link in span.links.iter() {
            let target = self
                .spans
                .iter()
                .find(|s| s.span_context == link.span_context);
            let what = match target {
                Some(t) => format!(
                    "{} ({:.2} ms, trace {})",
                    t.name,
                    millis(since(t.end_time, t.start_time)),
                    short(t.span_context.trace_id())
                ),
                None => format!(
                    "span {} of trace {}",
                    link.span_context.span_id(),
                    short(link.span_context.trace_id())
                ),
            };
            note(format!("{indent}  ↪ link: {what}"));
        }
        if let Some(children) = self.children.get(&span.span_context.span_id()) {
            for child in children {
                self.span(rows, child, depth + 1);
            }
        }
    }
}

fn short(id: TraceId) -> String {
    id.to_string()[..8].to_owned()
}
