//! The tracer spans are made with: the SDK's own when the handler was given an
//! `SdkTracerProvider` (spans stay unboxed and calls on them are direct), else a boxed one
//! (any other provider, or the global one).

use std::any::Any;

use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{Span, SpanBuilder, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

use super::span::{MessageEventCap, RpcSpan};
use crate::semconv::scope;

/// A tracer of this crate's instrumentation scope.
pub(super) enum SpanTracer {
    Sdk(SdkTracer),
    Boxed(BoxedTracer),
}

impl SpanTracer {
    /// The tracer of `provider`, unboxed when it is the SDK's.
    pub(super) fn of<P>(provider: P) -> Self
    where
        P: TracerProvider + 'static,
        P::Tracer: Send + Sync + 'static,
        <P::Tracer as Tracer>::Span: Send + Sync + 'static,
    {
        match (&provider as &dyn Any).downcast_ref::<SdkTracerProvider>() {
            Some(sdk) => SpanTracer::Sdk(sdk.tracer_with_scope(scope())),
            None => SpanTracer::Boxed(BoxedTracer::new(Box::new(
                provider.tracer_with_scope(scope()),
            ))),
        }
    }

    /// Starts the span `builder` describes, a child of `parent`'s span, and returns `into` with
    /// it as the current span. A recording span first gets the
    /// attributes `more` gives (while the span is still owned here, no lock is taken for them).
    /// With `rpc: Some(cap)` the span is an [`RpcSpan`] keeping at most `cap` message events.
    pub(super) fn start<I>(
        &self,
        builder: SpanBuilder,
        parent: &Context,
        into: &Context,
        rpc: Option<MessageEventCap>,
        more: impl FnOnce() -> I,
    ) -> Context
    where
        I: IntoIterator<Item = KeyValue>,
    {
        match self {
            SpanTracer::Sdk(t) => with_span(t.build_with_context(builder, parent), into, rpc, more),
            SpanTracer::Boxed(t) => {
                with_span(t.build_with_context(builder, parent), into, rpc, more)
            }
        }
    }
}

fn with_span<S, I>(
    mut span: S,
    into: &Context,
    rpc: Option<MessageEventCap>,
    more: impl FnOnce() -> I,
) -> Context
where
    S: Span + Send + Sync + 'static,
    I: IntoIterator<Item = KeyValue>,
{
    if !span.is_recording() {
        // A span that records nothing is only its identity: the context keeps that, without
        // the span (no box, no lock on each event, nothing to end). Children and propagation
        // see the same trace and span ids and the same sampled flag.
        return into.with_remote_span_context(span.span_context().clone());
    }
    span.set_attributes(more());
    match rpc {
        Some(max_messages) => into.with_span(RpcSpan::new(span, max_messages)),
        None => into.with_span(span),
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::noop::NoopTracerProvider;
    use opentelemetry_sdk::trace::InMemorySpanExporter;

    use super::*;

    #[test]
    fn the_sdk_provider_gets_an_unboxed_tracer() {
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(InMemorySpanExporter::default())
            .build();
        assert!(matches!(SpanTracer::of(provider), SpanTracer::Sdk(_)));
        assert!(matches!(
            SpanTracer::of(NoopTracerProvider::new()),
            SpanTracer::Boxed(_)
        ));
    }

    #[test]
    fn only_recording_spans_get_the_extra_attributes() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let tracer = SpanTracer::of(provider);
        let mut asked = false;
        let root = Context::new();
        let cx = tracer.start(SpanBuilder::from_name("s"), &root, &root, None, || {
            asked = true;
            [KeyValue::new("k", 1)]
        });
        assert!(cx.span().is_recording() && asked);
        cx.span().end();
        let spans = exporter.get_finished_spans().unwrap();
        assert_eq!(spans[0].attributes, vec![KeyValue::new("k", 1)]);

        let cx = SpanTracer::of(NoopTracerProvider::new()).start(
            SpanBuilder::from_name("s"),
            &root,
            &root,
            None,
            || -> [KeyValue; 0] { panic!("not recording: no attributes to build") },
        );
        assert!(!cx.span().is_recording());
    }

    #[test]
    fn an_unsampled_span_leaves_its_identity_in_the_context() {
        use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
        use opentelemetry_sdk::trace::Sampler;

        let provider = SdkTracerProvider::builder()
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)))
            .build();
        let caller = SpanContext::new(
            TraceId::from(7),
            SpanId::from(9),
            TraceFlags::default(),
            true,
            TraceState::default(),
        );
        let parent = Context::new().with_remote_span_context(caller.clone());
        let cx = SpanTracer::of(provider).start(
            SpanBuilder::from_name("s"),
            &parent,
            &parent,
            Some(Some(10)),
            || -> [KeyValue; 0] { panic!("not recording") },
        );
        let span = cx.span();
        let own = span.span_context();
        assert!(!span.is_recording());
        assert_eq!(own.trace_id(), caller.trace_id(), "the caller's trace");
        assert!(
            own.is_valid() && own.span_id() != caller.span_id(),
            "an id of its own"
        );
        assert!(!own.is_sampled());
        assert!(!own.is_remote());
    }
}
