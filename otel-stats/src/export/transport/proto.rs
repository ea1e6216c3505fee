//! The few protobuf messages a collector sends back, read without generated code: the
//! partial success of an `ExportTraceServiceResponse`, and a `google.rpc.Status`'s message
//! and `RetryInfo`. Collector replies are network input: anything malformed reads as absent,
//! never as a panic.

use std::time::Duration;

/// A field's value, by wire type.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// A fixed32/fixed64 field: none of the messages read here has one.
    Fixed,
}

/// The fields of one message, in wire order; stops at the first malformed byte.
struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Iterator for Fields<'a> {
    type Item = (u64, Value<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => self.skip(8)?,
            2 => {
                let len = usize::try_from(self.varint()?).ok()?;
                let (bytes, rest) = self.buf.split_at_checked(len)?;
                self.buf = rest;
                Value::Bytes(bytes)
            }
            5 => self.skip(4)?,
            _ => return self.stop(),
        };
        Some((key >> 3, value))
    }
}

impl<'a> Fields<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for (i, &byte) in self.buf.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.buf = &self.buf[i + 1..];
                return Some(value);
            }
        }
        self.stop()
    }

    fn skip(&mut self, len: usize) -> Option<Value<'a>> {
        let Some((_, rest)) = self.buf.split_at_checked(len) else {
            return self.stop();
        };
        self.buf = rest;
        Some(Value::Fixed)
    }

    fn stop<T>(&mut self) -> Option<T> {
        self.buf = &[];
        None
    }
}

fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf }
}

/// The last occurrence of a length-delimited field (protobuf's rule for singular fields).
fn bytes_field(buf: &[u8], number: u64) -> Option<&[u8]> {
    fields(buf)
        .filter_map(|(n, v)| match v {
            Value::Bytes(b) if n == number => Some(b),
            _ => None,
        })
        .last()
}

fn varint_field(buf: &[u8], number: u64) -> Option<u64> {
    fields(buf)
        .filter_map(|(n, v)| match v {
            Value::Varint(x) if n == number => Some(x),
            _ => None,
        })
        .last()
}

/// What a collector said it did not take from an accepted request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartialSuccess {
    /// Spans the collector rejected.
    pub(crate) rejected: u64,
    /// Why, in the collector's words.
    pub(crate) message: String,
}

/// The `partial_success` of an `ExportTraceServiceResponse`, when it reports something.
pub(crate) fn partial_success(response: &[u8]) -> Option<PartialSuccess> {
    let partial = bytes_field(response, 1)?;
    // `rejected_spans` is an int64: a negative count is malformed, read as none.
    let rejected = varint_field(partial, 1).filter(|&n| i64::try_from(n).is_ok());
    let message = bytes_field(partial, 2)
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .unwrap_or_default();
    let rejected = rejected.unwrap_or(0);
    (rejected > 0 || !message.is_empty()).then_some(PartialSuccess { rejected, message })
}

/// The `message` of a `google.rpc.Status` (the body of an OTLP/HTTP error response).
pub(crate) fn status_message(status: &[u8]) -> Option<String> {
    let message = bytes_field(status, 2)?;
    Some(String::from_utf8_lossy(message).into_owned())
}

/// The delay of the `google.rpc.RetryInfo` among a `google.rpc.Status`'s details (the
/// `grpc-status-details-bin` trailer).
pub(crate) fn retry_delay(status: &[u8]) -> Option<Duration> {
    const RETRY_INFO: &[u8] = b"type.googleapis.com/google.rpc.RetryInfo";
    let info = fields(status)
        .filter_map(|(n, v)| match v {
            Value::Bytes(any) if n == 3 => Some(any),
            _ => None,
        })
        .find(|any| bytes_field(any, 1) == Some(RETRY_INFO))
        .and_then(|any| bytes_field(any, 2))?;
    let delay = bytes_field(info, 1)?;
    let seconds = varint_field(delay, 1).unwrap_or(0);
    let nanos = varint_field(delay, 2).unwrap_or(0);
    // Negative fields (int64/int32 as 10-byte varints) are malformed: no delay.
    if i64::try_from(seconds).is_err() || nanos >= 1_000_000_000 {
        return None;
    }
    Some(Duration::new(seconds, nanos as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn field(number: u64, bytes: &[u8], out: &mut Vec<u8>) {
        varint(number << 3 | 2, out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }

    fn int(number: u64, v: u64, out: &mut Vec<u8>) {
        varint(number << 3, out);
        varint(v, out);
    }

    #[test]
    fn partial_success_reads_rejected_spans_and_message() {
        let mut partial = Vec::new();
        int(1, 42, &mut partial);
        field(2, b"too old", &mut partial);
        let mut response = Vec::new();
        field(1, &partial, &mut response);
        assert_eq!(
            partial_success(&response),
            Some(PartialSuccess {
                rejected: 42,
                message: "too old".into()
            })
        );
        assert_eq!(partial_success(&[]), None);
        let mut empty = Vec::new();
        field(1, &[], &mut empty);
        assert_eq!(partial_success(&empty), None);
    }

    #[test]
    fn retry_delay_is_found_among_the_details() {
        let mut duration = Vec::new();
        int(1, 2, &mut duration);
        int(2, 500_000_000, &mut duration);
        let mut info = Vec::new();
        field(1, &duration, &mut info);
        let mut other = Vec::new();
        field(1, b"type.googleapis.com/google.rpc.DebugInfo", &mut other);
        let mut any = Vec::new();
        field(1, b"type.googleapis.com/google.rpc.RetryInfo", &mut any);
        field(2, &info, &mut any);
        let mut status = Vec::new();
        int(1, 8, &mut status);
        field(2, b"slow down", &mut status);
        field(3, &other, &mut status);
        field(3, &any, &mut status);
        assert_eq!(retry_delay(&status), Some(Duration::from_millis(2500)));
        assert_eq!(status_message(&status).as_deref(), Some("slow down"));
    }

    #[test]
    fn malformed_input_reads_as_absent() {
        for bytes in [
            &[0x0a][..],
            &[0x0a, 0x05, 0x08],
            &[0xff; 12],
            &[0x0b, 0x01],
            &[0x0d, 0x01, 0x02],
            &[
                0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
        ] {
            assert_eq!(partial_success(bytes), None);
            assert_eq!(retry_delay(bytes), None);
            assert_eq!(status_message(bytes), None);
        }
        let mut negative = Vec::new();
        int(1, u64::MAX, &mut negative);
        let mut response = Vec::new();
        field(1, &negative, &mut response);
        assert_eq!(partial_success(&response), None);
    }

    /// The messages as prost encodes them: an encoder that is not ours, for the decoder's
    /// round trips.
    mod wire {
        #[derive(Clone, PartialEq, prost::Message)]
        pub(super) struct Status {
            #[prost(int32, tag = "1")]
            pub(super) code: i32,
            #[prost(string, tag = "2")]
            pub(super) message: String,
            #[prost(message, repeated, tag = "3")]
            pub(super) details: Vec<Any>,
        }

        #[derive(Clone, PartialEq, prost::Message)]
        pub(super) struct Any {
            #[prost(string, tag = "1")]
            pub(super) type_url: String,
            #[prost(bytes = "vec", tag = "2")]
            pub(super) value: Vec<u8>,
        }

        #[derive(Clone, PartialEq, prost::Message)]
        pub(super) struct RetryInfo {
            #[prost(message, optional, tag = "1")]
            pub(super) retry_delay: Option<Duration>,
        }

        #[derive(Clone, PartialEq, prost::Message)]
        pub(super) struct Duration {
            #[prost(int64, tag = "1")]
            pub(super) seconds: i64,
            #[prost(int32, tag = "2")]
            pub(super) nanos: i32,
        }
    }

    mod properties {
        use opentelemetry_proto::tonic::collector::trace::v1::{
            ExportTracePartialSuccess, ExportTraceServiceResponse,
        };
        use proptest::prelude::*;
        use prost::Message;

        use super::super::*;
        use super::wire;

        fn detail() -> impl Strategy<Value = wire::Any> {
            ("[a-z./]{0,40}", prop::collection::vec(any::<u8>(), 0..40))
                .prop_map(|(type_url, value)| wire::Any { type_url, value })
        }

        proptest! {
            /// A collector's reply is network input: any bytes read as something or as
            /// nothing, never as a panic.
            #[test]
            fn any_bytes_read_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
                let _ = partial_success(&bytes);
                let _ = status_message(&bytes);
                let _ = retry_delay(&bytes);
            }

            #[test]
            fn partial_success_reads_what_prost_wrote(
                rejected in 0..=i64::MAX,
                message in ".{0,40}",
            ) {
                let response = ExportTraceServiceResponse {
                    partial_success: Some(ExportTracePartialSuccess {
                        rejected_spans: rejected,
                        error_message: message.clone(),
                    }),
                };
                let expected = (rejected > 0 || !message.is_empty()).then_some(PartialSuccess {
                    rejected: rejected as u64,
                    message,
                });
                prop_assert_eq!(partial_success(&response.encode_to_vec()), expected);
            }

            #[test]
            fn retry_delay_and_message_read_what_prost_wrote(
                seconds in any::<i64>(),
                nanos in 0..1_000_000_000i32,
                message in ".{0,40}",
                before in prop::collection::vec(detail(), 0..3),
                after in prop::collection::vec(detail(), 0..3),
            ) {
                let info = wire::RetryInfo {
                    retry_delay: Some(wire::Duration { seconds, nanos }),
                };
                let retry = wire::Any {
                    type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
                    value: info.encode_to_vec(),
                };
                let details = before.iter().cloned().chain([retry]).chain(after.iter().cloned());
                let status = wire::Status {
                    code: 8,
                    message: message.clone(),
                    details: details.collect(),
                };
                let bytes = status.encode_to_vec();
                // A negative delay is malformed: none. (A detail generated before it cannot
                // carry RetryInfo's type URL: the generator has no capitals.)
                let expected = u64::try_from(seconds)
                    .ok()
                    .map(|s| Duration::new(s, nanos as u32));
                prop_assert_eq!(retry_delay(&bytes), expected);
                prop_assert_eq!(
                    status_message(&bytes),
                    (!message.is_empty()).then_some(message)
                );
            }
        }
    }
}
