//! Attributes (`KeyValue`, `AnyValue`, `ArrayValue`) and the instrumentation scope and
//! resource messages built from them, in `opentelemetry.proto.common.v1`.

use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};

use super::wire::{close, len_key, open, put_bytes, put_bytes_nonempty, put_varint, varint_len};
use super::wire::{put_fixed64, put_varint_nonzero, varint_key};

/// `AnyValue` fields: one of them is always written, even when it holds its default
/// (`""`, `false`, `0`), as prost writes a set `oneof`.
const ANY_STRING: u8 = len_key(1);
const ANY_BOOL: u8 = varint_key(2);
const ANY_INT: u8 = varint_key(3);
const ANY_DOUBLE: u8 = super::wire::fixed64_key(4);
const ANY_ARRAY: u8 = len_key(5);
/// `ArrayValue.values`.
const ARRAY_VALUES: u8 = len_key(1);
/// `KeyValue` fields.
const KV_KEY: u8 = len_key(1);
const KV_VALUE: u8 = len_key(2);
/// `InstrumentationScope` fields.
const SCOPE_NAME: u8 = len_key(1);
const SCOPE_VERSION: u8 = len_key(2);
const SCOPE_ATTRIBUTES: u8 = len_key(3);
/// `Resource.attributes`.
const RESOURCE_ATTRIBUTES: u8 = len_key(1);

/// Writes each attribute as a repeated `KeyValue` field `key`.
pub(super) fn put_attributes<'a>(
    out: &mut Vec<u8>,
    key: u8,
    attributes: impl IntoIterator<Item = &'a KeyValue>,
) {
    for kv in attributes {
        put_key_value(out, key, kv.key.as_str(), &kv.value);
    }
}

/// Writes one `KeyValue` as field `key`: the key (omitted when empty, as prost omits an
/// empty string) and the value, always present. Sizes are computed up front, so nothing
/// here moves once written.
fn put_key_value(out: &mut Vec<u8>, key: u8, name: &str, value: &Value) {
    let any_len = any_value_len(value);
    let kv_len = nonempty_len(name.len()) + field_len(any_len);
    if kv_len < 0x80 && !name.is_empty() {
        // The common case, every length one byte: the framing goes out in fixed-size
        // copies rather than byte by byte.
        out.extend_from_slice(&[key, kv_len as u8, KV_KEY, name.len() as u8]);
        out.extend_from_slice(name.as_bytes());
        if let Value::String(s) = value {
            let s = s.as_str();
            out.extend_from_slice(&[KV_VALUE, any_len as u8, ANY_STRING, s.len() as u8]);
            out.extend_from_slice(s.as_bytes());
            return;
        }
        out.extend_from_slice(&[KV_VALUE, any_len as u8]);
    } else {
        out.push(key);
        put_varint(out, kv_len as u64);
        put_bytes_nonempty(out, KV_KEY, name.as_bytes());
        out.push(KV_VALUE);
        put_varint(out, any_len as u64);
    }
    put_any_value_body(out, value);
}

/// The size of a length-delimited field (key, length, body) with a body of `len` bytes.
fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// [`field_len`] for a proto3 string, which is not written when empty.
fn nonempty_len(len: usize) -> usize {
    if len == 0 { 0 } else { field_len(len) }
}

/// The size of the body of an `AnyValue` holding `value`.
fn any_value_len(value: &Value) -> usize {
    match value {
        Value::Bool(_) => 2,
        Value::I64(i) => 1 + varint_len(*i as u64),
        Value::F64(_) => 9,
        Value::String(s) => field_len(s.as_str().len()),
        Value::Array(array) => field_len(array_len(array)),
        _ => 0,
    }
}

/// The size of the body of an `ArrayValue`: each element is an `AnyValue` field.
fn array_len(array: &Array) -> usize {
    match array {
        Array::Bool(values) => values.len() * field_len(2),
        Array::I64(values) => values
            .iter()
            .map(|&i| field_len(1 + varint_len(i as u64)))
            .sum(),
        Array::F64(values) => values.len() * field_len(9),
        Array::String(values) => values
            .iter()
            .map(|s| field_len(field_len(s.as_str().len())))
            .sum(),
        _ => 0,
    }
}

/// Writes the body of an `AnyValue`.
fn put_any_value_body(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Bool(b) => put_bool(out, *b),
        Value::I64(i) => put_int(out, *i),
        Value::F64(f) => put_double(out, *f),
        Value::String(s) => put_bytes(out, ANY_STRING, s.as_str().as_bytes()),
        Value::Array(array) => {
            out.push(ANY_ARRAY);
            put_varint(out, array_len(array) as u64);
            put_array_body(out, array);
        }
        // A value type newer than this encoder: an empty `AnyValue` (the standard
        // conversion panics here).
        _ => {}
    }
}

fn put_bool(out: &mut Vec<u8>, value: bool) {
    out.push(ANY_BOOL);
    out.push(value as u8);
}

fn put_int(out: &mut Vec<u8>, value: i64) {
    out.push(ANY_INT);
    // `int64` is the two's complement bit pattern as a varint (ten bytes when negative).
    put_varint(out, value as u64);
}

fn put_double(out: &mut Vec<u8>, value: f64) {
    put_fixed64(out, ANY_DOUBLE, value.to_bits());
}

/// Writes the body of an `ArrayValue`: each element as an `AnyValue` of its own.
fn put_array_body(out: &mut Vec<u8>, array: &Array) {
    match array {
        Array::Bool(values) => put_elements(out, values, |out, &b| put_bool(out, b)),
        Array::I64(values) => put_elements(out, values, |out, &i| put_int(out, i)),
        Array::F64(values) => put_elements(out, values, |out, &f| put_double(out, f)),
        Array::String(values) => put_elements(out, values, |out, s| {
            put_bytes(out, ANY_STRING, s.as_str().as_bytes())
        }),
        // An array type newer than this encoder: an empty array.
        _ => {}
    }
}

/// Writes each element as an `ArrayValue.values` field holding the `AnyValue` body `put`
/// writes.
fn put_elements<T>(out: &mut Vec<u8>, values: &[T], put: impl Fn(&mut Vec<u8>, &T)) {
    for value in values {
        let field = open(out, ARRAY_VALUES, 1);
        put(out, value);
        close(out, field);
    }
}

/// Writes the body of an `InstrumentationScope` (name, version, attributes), as the
/// standard conversion fills it: no dropped attributes count.
pub(super) fn put_scope_body(out: &mut Vec<u8>, scope: &InstrumentationScope) {
    put_bytes_nonempty(out, SCOPE_NAME, scope.name().as_bytes());
    put_bytes_nonempty(out, SCOPE_VERSION, scope.version().unwrap_or("").as_bytes());
    put_attributes(out, SCOPE_ATTRIBUTES, scope.attributes());
}

/// Writes the body of a `Resource`: its attributes in the resource's own iteration order
/// (the order the standard conversion uses), nothing dropped, no entity references.
pub(super) fn put_resource_body(out: &mut Vec<u8>, resource: &opentelemetry_sdk::Resource) {
    for (key, value) in resource.iter() {
        put_key_value(out, RESOURCE_ATTRIBUTES, key.as_str(), value);
    }
}

/// Writes `value` as a proto3 `uint32` field `key` unless zero (the dropped counts).
pub(super) fn put_count(out: &mut Vec<u8>, key: u8, value: u32) {
    put_varint_nonzero(out, key, u64::from(value));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attribute_bytes(kv: KeyValue) -> Vec<u8> {
        let mut out = Vec::new();
        put_attributes(&mut out, len_key(9), [&kv]);
        out
    }

    #[test]
    fn a_string_attribute_is_key_and_string_value() {
        // 0x4a = field 9 LEN; KeyValue{ 0x0a "k", 0x12 AnyValue{ 0x0a "v" } }.
        assert_eq!(
            attribute_bytes(KeyValue::new("k", "v")),
            [0x4a, 0x08, 0x0a, 0x01, b'k', 0x12, 0x03, 0x0a, 0x01, b'v']
        );
    }

    #[test]
    fn an_empty_string_and_false_are_still_written() {
        assert_eq!(
            attribute_bytes(KeyValue::new("k", "")),
            [0x4a, 0x07, 0x0a, 0x01, b'k', 0x12, 0x02, 0x0a, 0x00]
        );
        assert_eq!(
            attribute_bytes(KeyValue::new("k", false)),
            [0x4a, 0x07, 0x0a, 0x01, b'k', 0x12, 0x02, 0x10, 0x00]
        );
    }

    #[test]
    fn a_negative_int_takes_ten_bytes() {
        let bytes = attribute_bytes(KeyValue::new("k", -1_i64));
        assert_eq!(
            bytes[5..],
            [
                0x12, 0x0b, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
            ]
        );
    }

    #[test]
    fn an_int_array_is_one_any_value_per_element() {
        let bytes = attribute_bytes(KeyValue::new("k", Value::Array(vec![1_i64, 2].into())));
        // AnyValue{ 0x2a ArrayValue{ 0x0a AnyValue{0x18 1}, 0x0a AnyValue{0x18 2} } }
        assert_eq!(
            bytes[5..],
            [
                0x12, 0x0a, 0x2a, 0x08, 0x0a, 0x02, 0x18, 0x01, 0x0a, 0x02, 0x18, 0x02
            ]
        );
    }
}
