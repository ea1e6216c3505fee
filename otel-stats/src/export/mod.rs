//! Exporting spans to OTLP without the generic conversion: [`encode_export_trace_request`]
//! writes the protobuf bytes of an export request straight from the SDK's `SpanData`.

mod encode;

pub use encode::{encode_export_trace_request, encode_span};
