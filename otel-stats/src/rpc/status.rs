//! How the final status of an RPC is decided, the same way on both sides.
//!
//! - From `grpc-status` (and `grpc-message`) in the trailers, or in the headers of a
//!   trailers-only response. A `grpc-status` that is not a number is `UNKNOWN`, as the gRPC
//!   spec says for an unparseable status; a `grpc-message` with bad percent escapes keeps them
//!   as they came, and one that does not decode to UTF-8 makes the status `UNKNOWN`, as tonic
//!   reports it to the application.
//! - An RPC dropped before any status (client cancel, connection reset, a server handler that
//!   panicked or was cut off by a timeout) is `CANCELLED`, or `DEADLINE_EXCEEDED` when the
//!   RPC's `grpc-timeout` has elapsed. tonic reports its own server timeout to the client as
//!   `CANCELLED` ("Timeout expired"); a `CANCELLED` that arrives once the deadline has passed is
//!   reported as `DEADLINE_EXCEEDED`, which is what happened.
//! - A body or service error is mapped as tonic maps it for the application: a
//!   [`tonic::Status`] keeps its code, tonic's `TimeoutExpired` is `CANCELLED` (and so
//!   `DEADLINE_EXCEEDED` once the deadline passed), an HTTP/2 reset maps by its reason code as the gRPC
//!   HTTP/2 spec says, an IO error is `UNAVAILABLE`, anything else `UNKNOWN`.

use std::any::Any;
use std::error::Error as StdError;
use std::time::{Duration, Instant};

use http::HeaderValue;
use percent_encoding::percent_decode;
use tonic::Code;

/// How close to its deadline a drop counts as the deadline: a tenth of the timeout, between
/// 2 and 20 ms. The peer's deadline clock started before ours (a client sets its deadline
/// before the request leaves; tonic's server timer runs outside the layer), timers fire on
/// millisecond ticks, and a client's reset reaches the server a network hop after the
/// client's timer fired while the request itself arrived a hop late too, so a cut that comes
/// just before our reading of the deadline is that deadline.
fn deadline_slack(timeout: Duration) -> Duration {
    (timeout / 10).clamp(Duration::from_millis(2), Duration::from_millis(20))
}

/// A final status: the code and the decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FinalStatus {
    pub(crate) code: Code,
    pub(crate) message: String,
}

impl FinalStatus {
    pub(crate) fn new(code: Code, message: impl Into<String>) -> Self {
        FinalStatus {
            code,
            message: message.into(),
        }
    }
}

/// The status that a `grpc-status` and a `grpc-message` (of trailers, or of the headers of a
/// trailers-only response) say, if there is a `grpc-status`, decided as tonic decides it for
/// the application: an unparseable `grpc-status` is `UNKNOWN`, and so is a `grpc-message` that
/// does not percent-decode to UTF-8.
pub(crate) fn from_values(
    status: Option<&HeaderValue>,
    message: Option<&HeaderValue>,
) -> Option<FinalStatus> {
    let raw = status?;
    let code = parse_code(raw.as_bytes()).unwrap_or(Code::Unknown);
    let Some(message) = message else {
        return Some(FinalStatus::new(code, ""));
    };
    Some(match percent_decode(message.as_bytes()).decode_utf8() {
        Ok(message) => FinalStatus::new(code, message),
        Err(e) => FinalStatus::new(
            Code::Unknown,
            format!("Error deserializing status message header: {e}"),
        ),
    })
}

/// `grpc-status` is a decimal number; anything else (including overflow) is `None`.
fn parse_code(raw: &[u8]) -> Option<Code> {
    if raw.is_empty() || raw.len() > 10 || !raw.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = raw.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
    i32::try_from(n).ok().map(Code::from_i32)
}

/// A request's `grpc-timeout`: at most 8 digits and a unit (`H M S m u n`).
pub(crate) fn parse_timeout(raw: &[u8]) -> Option<Duration> {
    let (&unit, digits) = raw.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The deadline of an RPC that has a `grpc-timeout`: when its clock started, and the timeout.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    started: Instant,
    timeout: Duration,
}

impl Deadline {
    /// Starts the clock of `timeout` now. Without a timeout there is no deadline and no clock
    /// to read: an RPC without one pays for no monotonic clock read.
    pub(crate) fn start(timeout: Option<Duration>) -> Option<Self> {
        timeout.map(|timeout| Deadline {
            started: Instant::now(),
            timeout,
        })
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether the deadline has passed (within the slack).
    fn passed(&self) -> bool {
        self.started.elapsed() + deadline_slack(self.timeout) >= self.timeout
    }
}

/// Whether `deadline`, if there is one, has passed.
fn deadline_passed(deadline: Option<Deadline>) -> bool {
    deadline.is_some_and(|d| d.passed())
}

/// The status of an RPC dropped before it had one.
pub(crate) fn dropped(deadline: Option<Deadline>) -> FinalStatus {
    if deadline_passed(deadline) {
        FinalStatus::new(Code::DeadlineExceeded, "deadline exceeded")
    } else {
        FinalStatus::new(Code::Cancelled, "cancelled")
    }
}

/// Applies the deadline rule to a status that arrived: `CANCELLED` after the deadline is
/// `DEADLINE_EXCEEDED`.
pub(crate) fn settle(status: FinalStatus, deadline: Option<Deadline>) -> FinalStatus {
    if status.code == Code::Cancelled && deadline_passed(deadline) {
        FinalStatus {
            code: Code::DeadlineExceeded,
            ..status
        }
    } else {
        status
    }
}

/// The status an application sees for `err`, the error of a service or a body.
pub(crate) fn from_error<E: Any>(err: &E) -> FinalStatus {
    let any: &dyn Any = err;
    if let Some(status) = any.downcast_ref::<tonic::Status>() {
        return FinalStatus::new(status.code(), status.message());
    }
    let mut cur: Option<&(dyn StdError + 'static)> =
        if let Some(boxed) = any.downcast_ref::<Box<dyn StdError + Send + Sync>>() {
            Some(&**boxed)
        } else if let Some(e) = any.downcast_ref::<tonic::transport::Error>() {
            Some(e)
        } else if let Some(e) = any.downcast_ref::<hyper::Error>() {
            Some(e)
        } else if let Some(e) = any.downcast_ref::<h2::Error>() {
            Some(e)
        } else if let Some(e) = any.downcast_ref::<std::io::Error>() {
            Some(e)
        } else {
            None
        };
    while let Some(e) = cur {
        if let Some(status) = e.downcast_ref::<tonic::Status>() {
            return FinalStatus::new(status.code(), status.message());
        }
        if let Some(reason) = e.downcast_ref::<h2::Error>().and_then(h2::Error::reason) {
            return FinalStatus::new(code_for_reset(reason), e.to_string());
        }
        if e.is::<tonic::TimeoutExpired>() {
            // tonic's own deadline timer (client channel or server): CANCELLED, as tonic says,
            // which `settle` turns into DEADLINE_EXCEEDED when the deadline has passed.
            return FinalStatus::new(Code::Cancelled, e.to_string());
        }
        if e.is::<std::io::Error>() {
            return FinalStatus::new(Code::Unavailable, e.to_string());
        }
        if e.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_canceled)
        {
            return FinalStatus::new(Code::Cancelled, e.to_string());
        }
        if e.source().is_none() {
            return FinalStatus::new(Code::Unknown, e.to_string());
        }
        cur = e.source();
    }
    FinalStatus::new(Code::Unknown, "unknown error")
}

/// The status of a response that is not gRPC, from its HTTP status, as the gRPC spec and
/// tonic infer it.
pub(crate) fn from_http(status: http::StatusCode) -> FinalStatus {
    let code = match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    };
    FinalStatus::new(code, format!("HTTP status {status} without grpc-status"))
}

/// The gRPC code for an HTTP/2 `RST_STREAM` reason (gRPC over HTTP/2, "Errors").
fn code_for_reset(reason: h2::Reason) -> Code {
    match reason {
        h2::Reason::NO_ERROR
        | h2::Reason::PROTOCOL_ERROR
        | h2::Reason::INTERNAL_ERROR
        | h2::Reason::FLOW_CONTROL_ERROR
        | h2::Reason::SETTINGS_TIMEOUT
        | h2::Reason::FRAME_SIZE_ERROR
        | h2::Reason::COMPRESSION_ERROR
        | h2::Reason::CONNECT_ERROR => Code::Internal,
        h2::Reason::REFUSED_STREAM => Code::Unavailable,
        h2::Reason::CANCEL => Code::Cancelled,
        h2::Reason::ENHANCE_YOUR_CALM => Code::ResourceExhausted,
        h2::Reason::INADEQUATE_SECURITY => Code::PermissionDenied,
        _ => Code::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(raw: &[u8]) -> HeaderValue {
        HeaderValue::from_bytes(raw).unwrap()
    }

    fn from_headers(status: Option<&[u8]>, message: Option<&[u8]>) -> Option<FinalStatus> {
        from_values(status.map(value).as_ref(), message.map(value).as_ref())
    }

    #[test]
    fn status_and_message() {
        let s = from_headers(Some(b"3"), Some(b"bad%20input%2")).unwrap();
        assert_eq!(s.code, Code::InvalidArgument);
        assert_eq!(
            s.message, "bad input%2",
            "bad escapes are kept as they came"
        );
        assert_eq!(from_headers(None, None), None);
        assert_eq!(from_headers(None, Some(b"no status")), None);
    }

    #[test]
    fn malformed_status_is_unknown() {
        let s = from_headers(Some(b"13"), Some(b"%E2%82"));
        assert_eq!(
            s.unwrap().code,
            Code::Unknown,
            "a message that is not UTF-8, as tonic"
        );
        for raw in [&b"abc"[..], b"", b"-1", b"99999999999999", b"1 "] {
            let s = from_headers(Some(raw), None).unwrap();
            assert_eq!(s.code, Code::Unknown, "{raw:?}");
        }
        // Out of range but numeric: tonic's mapping, also UNKNOWN.
        let s = from_headers(Some(b"42"), None).unwrap();
        assert_eq!(s.code, Code::Unknown);
    }

    #[test]
    fn timeouts() {
        let t = parse_timeout;
        assert_eq!(t(b"50m"), Some(Duration::from_millis(50)));
        assert_eq!(t(b"1H"), Some(Duration::from_secs(3600)));
        assert_eq!(t(b"30000000u"), Some(Duration::from_secs(30)));
        assert_eq!(t(b"123456789S"), None);
        assert_eq!(t(b"5x"), None);
        assert_eq!(t(b"m"), None);
        assert_eq!(t(b""), None);
    }

    #[test]
    fn deadline_slack_is_a_tenth_within_bounds() {
        assert_eq!(
            deadline_slack(Duration::from_millis(5)),
            Duration::from_millis(2)
        );
        assert_eq!(
            deadline_slack(Duration::from_millis(50)),
            Duration::from_millis(5)
        );
        assert_eq!(
            deadline_slack(Duration::from_secs(30)),
            Duration::from_millis(20)
        );
    }

    #[test]
    fn deadline_rule() {
        let long_ago = Instant::now() - Duration::from_secs(1);
        let deadline = |started, ms| {
            Some(Deadline {
                started,
                timeout: Duration::from_millis(ms),
            })
        };
        assert_eq!(dropped(deadline(long_ago, 50)).code, Code::DeadlineExceeded);
        assert_eq!(dropped(None).code, Code::Cancelled);
        assert_eq!(
            dropped(deadline(Instant::now(), 60_000)).code,
            Code::Cancelled
        );
        assert!(Deadline::start(None).is_none(), "no timeout, no deadline");
        let cancelled = FinalStatus::new(Code::Cancelled, "Timeout expired");
        assert_eq!(
            settle(cancelled.clone(), deadline(long_ago, 50)).code,
            Code::DeadlineExceeded
        );
        assert_eq!(
            settle(cancelled, deadline(Instant::now(), 60_000)).code,
            Code::Cancelled
        );
    }

    #[test]
    fn errors_map_like_tonic() {
        let status = tonic::Status::permission_denied("no");
        assert_eq!(from_error(&status).code, Code::PermissionDenied);
        let boxed: Box<dyn StdError + Send + Sync> = Box::new(status);
        assert_eq!(from_error(&boxed).code, Code::PermissionDenied);
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert_eq!(from_error(&io).code, Code::Unavailable);
        let reset = h2::Error::from(h2::Reason::CANCEL);
        assert_eq!(from_error(&reset).code, Code::Cancelled);
        assert_eq!(from_error(&std::fmt::Error).code, Code::Unknown);
    }
}
