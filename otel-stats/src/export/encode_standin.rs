//! TEMPORARY stand-in for `encode.rs` (branch `encode`): the same signature, made with
//! `opentelemetry-proto`'s conversion and prost, so that the exporter can be written and
//! tested before the direct encoder is merged. Deleted, with its two dependencies, at the
//! merge.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;

/// Appends the bytes of one `ExportTraceServiceRequest` holding `spans` to `out`.
pub(crate) fn encode_export_trace_request(
    resource: &Resource,
    spans: &[SpanData],
    out: &mut Vec<u8>,
) {
    let resource_spans = group_spans_by_resource_and_scope(
        spans.to_vec(),
        &ResourceAttributesWithSchema::from(resource),
    );
    // Encoding into a Vec cannot run out of room.
    let _ = prost::Message::encode(&ExportTraceServiceRequest { resource_spans }, out);
}
