//! The RPC span as it sits in the RPC's context: the tracer's span with the per-RPC state of
//! the handler folded in (the message-event cap, the message counts), so that the handler
//! keeps no context value of its own and looks nothing up per event.

use std::borrow::Cow;
use std::time::SystemTime;

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span, SpanContext, Status};

use super::attributes::{DROPPED_MESSAGE_EVENTS, MESSAGES_RECEIVED, MESSAGES_SENT};
use crate::semconv::{INBOUND_MESSAGE, OUTBOUND_MESSAGE};

/// How many message events an RPC span keeps: `Some(max)`, or `None` when message events are
/// off and messages are only counted.
pub(super) type MessageEventCap = Option<usize>;

/// An RPC span: `inner`, with at most `max_messages` message events (`Inbound message`,
/// `Outbound message`, whoever adds them); the number left out becomes the
/// `otel_stats.message_events.dropped` attribute when the span ends. Every message is counted,
/// kept or not, and the counts per direction (`otel_stats.messages.sent` and
/// `otel_stats.messages.received`) are attributes of the ended span.
#[derive(Debug)]
pub(super) struct RpcSpan<S> {
    inner: S,
    max_messages: MessageEventCap,
    sent: usize,
    received: usize,
}

impl<S: Span> RpcSpan<S> {
    pub(super) fn new(inner: S, max_messages: MessageEventCap) -> Self {
        RpcSpan {
            inner,
            max_messages,
            sent: 0,
            received: 0,
        }
    }
}

impl<S: Span> Span for RpcSpan<S> {
    fn add_event_with_timestamp<T>(
        &mut self,
        name: T,
        timestamp: SystemTime,
        attributes: Vec<KeyValue>,
    ) where
        T: Into<Cow<'static, str>>,
    {
        let name = name.into();
        let count = match &*name {
            INBOUND_MESSAGE => &mut self.received,
            OUTBOUND_MESSAGE => &mut self.sent,
            _ => {
                self.inner
                    .add_event_with_timestamp(name, timestamp, attributes);
                return;
            }
        };
        *count += 1;
        if self
            .max_messages
            .is_none_or(|max| self.sent + self.received > max)
        {
            return;
        }
        self.inner
            .add_event_with_timestamp(name, timestamp, attributes);
    }

    fn span_context(&self) -> &SpanContext {
        self.inner.span_context()
    }

    fn is_recording(&self) -> bool {
        self.inner.is_recording()
    }

    fn set_attribute(&mut self, attribute: KeyValue) {
        self.inner.set_attribute(attribute);
    }

    fn set_status(&mut self, status: Status) {
        self.inner.set_status(status);
    }

    fn update_name<T>(&mut self, new_name: T)
    where
        T: Into<Cow<'static, str>>,
    {
        self.inner.update_name(new_name);
    }

    fn add_link(&mut self, span_context: SpanContext, attributes: Vec<KeyValue>) {
        self.inner.add_link(span_context, attributes);
    }

    fn end_with_timestamp(&mut self, timestamp: SystemTime) {
        if self.inner.is_recording() {
            let messages = self.sent + self.received;
            let dropped = self
                .max_messages
                .map_or(0, |max| messages.saturating_sub(max));
            if dropped > 0 {
                self.inner
                    .set_attribute(KeyValue::new(DROPPED_MESSAGE_EVENTS, dropped as i64));
            }
            self.inner.set_attributes([
                KeyValue::new(MESSAGES_SENT, self.sent as i64),
                KeyValue::new(MESSAGES_RECEIVED, self.received as i64),
            ]);
        }
        self.inner.end_with_timestamp(timestamp);
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanBuilder, Tracer, TracerProvider};
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};

    use super::*;

    /// An RPC span with `cap`, exported to the returned exporter when it ends.
    fn recorded(
        cap: MessageEventCap,
    ) -> (
        InMemorySpanExporter,
        RpcSpan<opentelemetry_sdk::trace::Span>,
    ) {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let inner = provider
            .tracer("t")
            .build_with_context(SpanBuilder::from_name("s"), &Default::default());
        (exporter, RpcSpan::new(inner, cap))
    }

    #[test]
    fn message_events_beyond_the_cap_are_counted_not_kept() {
        let (exporter, mut span) = recorded(Some(2));
        let now = SystemTime::now();
        for name in [
            INBOUND_MESSAGE,
            "app event",
            OUTBOUND_MESSAGE,
            INBOUND_MESSAGE,
        ] {
            span.add_event_with_timestamp(name, now, Vec::new());
        }
        span.add_event_with_timestamp(OUTBOUND_MESSAGE.to_owned(), now, Vec::new());
        span.end();
        let spans = exporter.get_finished_spans().unwrap();
        let names: Vec<_> = spans[0].events.iter().map(|e| e.name.as_ref()).collect();
        assert_eq!(names, [INBOUND_MESSAGE, "app event", OUTBOUND_MESSAGE]);
        let attributes = &spans[0].attributes;
        assert!(attributes.contains(&KeyValue::new(DROPPED_MESSAGE_EVENTS, 2)));
        assert!(attributes.contains(&KeyValue::new(MESSAGES_SENT, 2)));
        assert!(attributes.contains(&KeyValue::new(MESSAGES_RECEIVED, 2)));
    }

    #[test]
    fn without_message_events_messages_are_only_counted() {
        let (exporter, mut span) = recorded(None);
        let now = SystemTime::now();
        for name in [OUTBOUND_MESSAGE, INBOUND_MESSAGE, INBOUND_MESSAGE] {
            span.add_event_with_timestamp(name, now, Vec::new());
        }
        span.end();
        let spans = exporter.get_finished_spans().unwrap();
        assert!(spans[0].events.is_empty());
        assert_eq!(
            spans[0].attributes,
            [
                KeyValue::new(MESSAGES_SENT, 1),
                KeyValue::new(MESSAGES_RECEIVED, 2)
            ],
            "counted, nothing dropped"
        );
    }
}
