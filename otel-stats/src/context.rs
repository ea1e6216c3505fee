//! The caller's context, which a client RPC's context derives from.

use opentelemetry::Context;

/// The context a client RPC is made in: the current OpenTelemetry context, or, with the
/// `tracing` feature, the OpenTelemetry context of the current `tracing` span when it has a
/// valid span (so that it does not matter whether `tracing-opentelemetry` activates contexts
/// on span entry).
pub(crate) fn caller_context() -> Context {
    #[cfg(feature = "tracing")]
    {
        use opentelemetry::trace::TraceContextExt;
        use tracing_opentelemetry::OpenTelemetrySpanExt;

        let span = tracing::Span::current();
        if !span.is_disabled() {
            let cx = span.context();
            if cx.span().span_context().is_valid() {
                return cx;
            }
        }
    }
    Context::current()
}
