//! The OpenTelemetry handler: [`OtelHandler`] turns the stats events into RPC spans with
//! span events, connection spans, and trace context propagated in the request metadata.
//!
//! One concern per file: the handler (`handler.rs`), its options (`builder.rs`), the
//! attributes after the semantic conventions (`attributes.rs`), the span events
//! (`events.rs`), the RPC span with its message-event cap (`span.rs`), which codes are errors (`status.rs`), propagation through gRPC metadata
//! (`propagation.rs`), the tracer spans are made with (`tracer.rs`), ready filters (`filters.rs`) and, with the `otlp` feature, the
//! one-call OTLP setup (`setup.rs`) with its accounting of lost spans (`accounting.rs`).

#[cfg(feature = "otlp")]
mod accounting;
pub(crate) mod attributes;
pub(crate) mod builder;
mod events;
pub mod filters;
mod handler;
mod propagation;
#[cfg(feature = "otlp")]
mod setup;
mod span;
pub(crate) mod status;
mod tracer;

#[cfg(feature = "otlp")]
pub use accounting::ExportStats;
pub use builder::OtelHandlerBuilder;
pub use handler::OtelHandler;
#[cfg(feature = "otlp")]
pub use setup::{OtelGuard, init_otlp, init_otlp_with};
