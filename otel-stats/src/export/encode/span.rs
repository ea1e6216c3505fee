//! One `opentelemetry.proto.trace.v1.Span` from one `SpanData`, field for field as
//! `opentelemetry-proto`'s `From<SpanData> for Span` fills it, in prost's field order.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{Event, Link, SpanContext, SpanId, SpanKind, Status};
use opentelemetry_sdk::trace::SpanData;

use super::value::{put_attributes, put_count};
use super::wire::{LINK_FLAGS_KEY, SPAN_FLAGS_KEY, close, fixed64_key, len_key, open};
use super::wire::{put_bytes_nonempty, put_fixed32_nonzero, put_fixed64_nonzero};
use super::wire::{put_span_id, put_trace_id};
use super::wire::{put_varint_nonzero, varint_key};

/// `Span` fields (flags, field 16, is in `wire`).
const TRACE_ID: u8 = len_key(1);
const SPAN_ID: u8 = len_key(2);
const TRACE_STATE: u8 = len_key(3);
const PARENT_SPAN_ID: u8 = len_key(4);
const NAME: u8 = len_key(5);
const KIND: u8 = varint_key(6);
const START_TIME: u8 = fixed64_key(7);
const END_TIME: u8 = fixed64_key(8);
const ATTRIBUTES: u8 = len_key(9);
const DROPPED_ATTRIBUTES: u8 = varint_key(10);
const EVENTS: u8 = len_key(11);
const DROPPED_EVENTS: u8 = varint_key(12);
const LINKS: u8 = len_key(13);
const DROPPED_LINKS: u8 = varint_key(14);
const STATUS: u8 = len_key(15);
/// `Span.Event` fields.
const EVENT_TIME: u8 = fixed64_key(1);
const EVENT_NAME: u8 = len_key(2);
const EVENT_ATTRIBUTES: u8 = len_key(3);
const EVENT_DROPPED_ATTRIBUTES: u8 = varint_key(4);
/// `Span.Link` fields (flags, field 6, is in `wire`).
const LINK_TRACE_ID: u8 = len_key(1);
const LINK_SPAN_ID: u8 = len_key(2);
const LINK_TRACE_STATE: u8 = len_key(3);
const LINK_ATTRIBUTES: u8 = len_key(4);
const LINK_DROPPED_ATTRIBUTES: u8 = varint_key(5);
/// `Status` fields.
const STATUS_MESSAGE: u8 = len_key(2);
const STATUS_CODE: u8 = varint_key(3);

/// `SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK`: the SDK always knows.
const HAS_IS_REMOTE: u32 = 0x100;
/// `SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK`.
const IS_REMOTE: u32 = 0x200;

/// Writes the body of a `Span` message.
pub(super) fn put_span_body(out: &mut Vec<u8>, span: &SpanData) {
    let context = &span.span_context;
    put_trace_id(out, TRACE_ID, context.trace_id().to_bytes());
    put_span_id(out, SPAN_ID, context.span_id().to_bytes());
    put_trace_state(out, TRACE_STATE, context);
    if span.parent_span_id != SpanId::INVALID {
        put_span_id(out, PARENT_SPAN_ID, span.parent_span_id.to_bytes());
    }
    put_bytes_nonempty(out, NAME, span.name.as_bytes());
    put_varint_nonzero(out, KIND, kind_number(&span.span_kind));
    put_fixed64_nonzero(out, START_TIME, unix_nanos(span.start_time));
    put_fixed64_nonzero(out, END_TIME, unix_nanos(span.end_time));
    put_attributes(out, ATTRIBUTES, &span.attributes);
    put_count(out, DROPPED_ATTRIBUTES, span.dropped_attributes_count);
    for event in span.events.iter() {
        // An event with a few attributes stays under 128 bytes.
        let field = open(out, EVENTS, 1);
        put_event_body(out, event);
        close(out, field);
    }
    put_count(out, DROPPED_EVENTS, span.events.dropped_count);
    for link in span.links.iter() {
        let field = open(out, LINKS, 1);
        put_link_body(out, link);
        close(out, field);
    }
    put_count(out, DROPPED_LINKS, span.links.dropped_count);
    put_status(out, &span.status);
    put_fixed32_nonzero(
        out,
        &SPAN_FLAGS_KEY,
        flags(context, span.parent_span_is_remote),
    );
}

fn put_event_body(out: &mut Vec<u8>, event: &Event) {
    put_fixed64_nonzero(out, EVENT_TIME, unix_nanos(event.timestamp));
    put_bytes_nonempty(out, EVENT_NAME, event.name.as_bytes());
    put_attributes(out, EVENT_ATTRIBUTES, &event.attributes);
    put_count(
        out,
        EVENT_DROPPED_ATTRIBUTES,
        event.dropped_attributes_count,
    );
}

fn put_link_body(out: &mut Vec<u8>, link: &Link) {
    let context = &link.span_context;
    put_trace_id(out, LINK_TRACE_ID, context.trace_id().to_bytes());
    put_span_id(out, LINK_SPAN_ID, context.span_id().to_bytes());
    put_trace_state(out, LINK_TRACE_STATE, context);
    put_attributes(out, LINK_ATTRIBUTES, &link.attributes);
    put_count(out, LINK_DROPPED_ATTRIBUTES, link.dropped_attributes_count);
    // A link's flags carry the linked context's own remoteness.
    put_fixed32_nonzero(out, &[LINK_FLAGS_KEY], flags(context, context.is_remote()));
}

/// The `Status` field, present even when unset (the conversion always sets it); only an
/// error carries its description.
fn put_status(out: &mut Vec<u8>, status: &Status) {
    let field = open(out, STATUS, 1);
    let code = match status {
        Status::Unset => 0,
        Status::Ok => 1,
        Status::Error { description } => {
            put_bytes_nonempty(out, STATUS_MESSAGE, description.as_bytes());
            2
        }
    };
    put_varint_nonzero(out, STATUS_CODE, code);
    close(out, field);
}

/// The W3C `tracestate` header; empty (and not written) for almost every span, so the
/// `String` the SDK builds is allocated only when there is something in it.
fn put_trace_state(out: &mut Vec<u8>, key: u8, context: &SpanContext) {
    let header = context.trace_state().header();
    put_bytes_nonempty(out, key, header.as_bytes());
}

/// The trace flags with the OTLP bits saying whether the parent (for a link: the linked
/// context) is remote.
fn flags(context: &SpanContext, remote: bool) -> u32 {
    let mut flags = u32::from(context.trace_flags().to_u8()) | HAS_IS_REMOTE;
    if remote {
        flags |= IS_REMOTE;
    }
    flags
}

/// `opentelemetry.proto.trace.v1.Span.SpanKind`.
fn kind_number(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// Nanoseconds since the epoch; a time before it is 0, as in the standard conversion.
fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_unset_is_an_empty_message_and_error_has_code_2_and_message() {
        let mut out = Vec::new();
        put_status(&mut out, &Status::Unset);
        assert_eq!(out, [0x7a, 0x00]);
        out.clear();
        put_status(&mut out, &Status::error("no"));
        assert_eq!(out, [0x7a, 0x06, 0x12, 0x02, b'n', b'o', 0x18, 0x02]);
    }

    #[test]
    fn flags_carry_trace_flags_and_remoteness() {
        use opentelemetry::trace::{TraceFlags, TraceId, TraceState};
        let context = SpanContext::new(
            TraceId::from(1),
            SpanId::from(2),
            TraceFlags::SAMPLED,
            true,
            TraceState::NONE,
        );
        assert_eq!(flags(&context, false), 0x101);
        assert_eq!(flags(&context, true), 0x301);
    }
}
