//! The few protobuf wire primitives the OTLP encoder needs, writing into a `Vec<u8>`.
//!
//! A length-delimited field's length comes before its body, so [`open`] leaves a hole sized
//! for the length the caller expects and [`close`] fills it in once the body is written. A
//! body whose length needs a different number of bytes than guessed is moved once, by the
//! difference; the guesses below make that rare (attributes and events under 128 bytes, a
//! span under 16 KiB). Lengths are always minimal varints, so the bytes are exactly what
//! prost writes for the same message, and no size is computed twice.

/// Wire type of a varint field.
const VARINT: u8 = 0;
/// Wire type of a fixed 64-bit field.
const FIXED64: u8 = 1;
/// Wire type of a length-delimited field (string, bytes, message).
const LEN: u8 = 2;
/// Wire type of a fixed 32-bit field.
const FIXED32: u8 = 5;

/// The key of field `number` with wire type `wire`: one byte for fields 1..=15.
const fn key(number: u8, wire: u8) -> u8 {
    (number << 3) | wire
}

/// The one-byte key of a varint field.
pub(super) const fn varint_key(number: u8) -> u8 {
    key(number, VARINT)
}

/// The one-byte key of a length-delimited field.
pub(super) const fn len_key(number: u8) -> u8 {
    key(number, LEN)
}

/// The one-byte key of a fixed 64-bit field.
pub(super) const fn fixed64_key(number: u8) -> u8 {
    key(number, FIXED64)
}

/// The key of `Span.flags` (field 16, fixed32): past field 15 a key takes two bytes,
/// here `(16 << 3) | 5 = 133` as a varint.
pub(super) const SPAN_FLAGS_KEY: [u8; 2] = [0x85, 0x01];

/// The key of `Link.flags` (field 6, fixed32).
pub(super) const LINK_FLAGS_KEY: u8 = key(6, FIXED32);

/// How many bytes `value` takes as a varint.
pub(super) const fn varint_len(value: u64) -> usize {
    if value < 0x80 {
        return 1;
    }
    // One byte per started group of 7 bits; zero still takes one byte.
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Appends `value` as a varint.
#[inline]
pub(super) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a string or bytes field, even when empty (a `oneof` member is present when set).
#[inline]
pub(super) fn put_bytes(out: &mut Vec<u8>, key: u8, bytes: &[u8]) {
    out.push(key);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends a proto3 string or bytes field unless it is empty (the default is not written).
#[inline]
pub(super) fn put_bytes_nonempty(out: &mut Vec<u8>, key: u8, bytes: &[u8]) {
    if !bytes.is_empty() {
        put_bytes(out, key, bytes);
    }
}

/// Appends a proto3 varint field (`uint32`, `int32`, enum) unless it is zero.
#[inline]
pub(super) fn put_varint_nonzero(out: &mut Vec<u8>, key: u8, value: u64) {
    if value != 0 {
        out.push(key);
        put_varint(out, value);
    }
}

/// Appends a fixed64 field (one copy of key and value).
#[inline]
pub(super) fn put_fixed64(out: &mut Vec<u8>, key: u8, value: u64) {
    let mut field = [key; 9];
    field[1..].copy_from_slice(&value.to_le_bytes());
    out.extend_from_slice(&field);
}

/// Appends a proto3 fixed64 field unless it is zero.
#[inline]
pub(super) fn put_fixed64_nonzero(out: &mut Vec<u8>, key: u8, value: u64) {
    if value != 0 {
        put_fixed64(out, key, value);
    }
}

/// Appends a trace id (16 bytes) as bytes field `key`, in one copy.
#[inline]
pub(super) fn put_trace_id(out: &mut Vec<u8>, key: u8, id: [u8; 16]) {
    let mut field = [key, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    field[2..].copy_from_slice(&id);
    out.extend_from_slice(&field);
}

/// Appends a span id (8 bytes) as bytes field `key`, in one copy.
#[inline]
pub(super) fn put_span_id(out: &mut Vec<u8>, key: u8, id: [u8; 8]) {
    let mut field = [key, 8, 0, 0, 0, 0, 0, 0, 0, 0];
    field[2..].copy_from_slice(&id);
    out.extend_from_slice(&field);
}

/// Appends a proto3 fixed32 field unless it is zero; `key` is the field's encoded key.
#[inline]
pub(super) fn put_fixed32_nonzero(out: &mut Vec<u8>, key: &[u8], value: u32) {
    if value != 0 {
        out.extend_from_slice(key);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

/// A length-delimited field being written: where its body starts and how many bytes were
/// left for its length.
#[derive(Debug)]
#[must_use = "close the field to write its length"]
pub(super) struct Open {
    body: usize,
    hole: usize,
}

/// Starts the length-delimited field `key`, leaving `hole` bytes (1 to 3) for its length:
/// 1 for bodies under 128 bytes, 2 under 16 KiB, 3 under 2 MiB.
#[inline]
pub(super) fn open(out: &mut Vec<u8>, key: u8, hole: usize) -> Open {
    out.push(key);
    out.extend_from_slice(&[0; 3][..hole]);
    Open {
        body: out.len(),
        hole,
    }
}

/// Ends a field started with [`open`]: writes its length as a minimal varint, moving the
/// body when the length needs more or fewer bytes than the hole.
#[inline]
pub(super) fn close(out: &mut Vec<u8>, field: Open) {
    let len = out.len() - field.body;
    if field.hole == 1 && len < 0x80 {
        out[field.body - 1] = len as u8;
    } else {
        close_moving(out, field, len);
    }
}

/// [`close`] for a hole of more than one byte or a body that outgrew it.
#[inline(never)]
fn close_moving(out: &mut Vec<u8>, field: Open, len: usize) {
    let need = varint_len(len as u64);
    let start = field.body - field.hole;
    if need != field.hole {
        let end = out.len();
        if need > field.hole {
            out.resize(end + need - field.hole, 0);
        }
        out.copy_within(field.body..end, start + need);
        out.truncate(start + need + len);
    }
    let mut value = len;
    for byte in &mut out[start..start + need - 1] {
        *byte = (value as u8) | 0x80;
        value >>= 7;
    }
    out[start + need - 1] = value as u8;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_len_matches_written_bytes() {
        for value in [0, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value), "{value}");
        }
    }

    #[test]
    fn varint_300_is_ac_02() {
        let mut out = Vec::new();
        put_varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
    }

    #[test]
    fn span_flags_key_is_field_16_fixed32() {
        // (16 << 3) | 5 = 133 = 0x85, as a varint: 0x85 0x01.
        assert_eq!(SPAN_FLAGS_KEY, [0x85, 0x01]);
    }

    fn field_of_len(body_len: usize, hole: usize) -> Vec<u8> {
        let mut out = vec![0xEE];
        let field = open(&mut out, len_key(1), hole);
        out.extend((0..body_len).map(|i| i as u8));
        close(&mut out, field);
        out
    }

    fn expected(body_len: usize) -> Vec<u8> {
        let mut out = vec![0xEE, len_key(1)];
        put_varint(&mut out, body_len as u64);
        out.extend((0..body_len).map(|i| i as u8));
        out
    }

    #[test]
    fn a_body_that_fits_the_hole_stays_in_place() {
        assert_eq!(field_of_len(3, 1), [0xEE, 0x0A, 3, 0, 1, 2]);
        assert_eq!(field_of_len(200, 2), expected(200));
    }

    #[test]
    fn a_longer_body_moves_right_and_a_shorter_one_left() {
        for (len, hole) in [
            (128, 1),
            (20_000, 1),
            (0, 2),
            (127, 2),
            (100, 3),
            (20_000, 2),
        ] {
            assert_eq!(
                field_of_len(len, hole),
                expected(len),
                "len {len} hole {hole}"
            );
        }
    }
}
