//! Which failed exports are worth another try, and when: the OTLP specification's rules
//! ("Failures" in the OTLP protocol), with exponential backoff and jitter inside one time
//! budget (the export timeout), so a batch never outlives its timeout.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode, header::RETRY_AFTER};

/// What to do after an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Try again after the backoff.
    Retry,
    /// Try again after at least this long (the server's `Retry-After` or gRPC `RetryInfo`).
    RetryAfter(Duration),
    /// Give up: retrying cannot help (bad request, refused credentials, ...).
    Fail,
}

/// The longest a server may make us wait before the next attempt; the budget bounds it too.
const MAX_SERVER_DELAY: Duration = Duration::from_secs(600);

/// The OTLP/gRPC rules: `UNAVAILABLE`, `CANCELLED`, `DEADLINE_EXCEEDED`, `ABORTED`,
/// `OUT_OF_RANGE` and `DATA_LOSS` are retryable; `RESOURCE_EXHAUSTED` only when the server
/// says when (`RetryInfo`), since without it the server is out of memory for good; the rest
/// fail. A `RetryInfo` delay is honoured on any retryable code.
pub(crate) fn grpc_verdict(code: tonic::Code, retry_delay: Option<Duration>) -> Verdict {
    use tonic::Code::*;
    let retryable = match code {
        Unavailable | Cancelled | DeadlineExceeded | Aborted | OutOfRange | DataLoss => true,
        ResourceExhausted => retry_delay.is_some(),
        _ => false,
    };
    match (retryable, retry_delay) {
        (false, _) => Verdict::Fail,
        (true, Some(delay)) if !delay.is_zero() => Verdict::RetryAfter(delay.min(MAX_SERVER_DELAY)),
        (true, _) => Verdict::Retry,
    }
}

/// The OTLP/HTTP rules: 429, 502, 503 and 504 are retryable, after `Retry-After` when the
/// response has one; every other failure status fails.
pub(crate) fn http_verdict(status: StatusCode, headers: &HeaderMap) -> Verdict {
    match status.as_u16() {
        429 | 502 | 503 | 504 => match headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()) {
            Some(value) => match retry_after(value, SystemTime::now()) {
                Some(delay) if !delay.is_zero() => Verdict::RetryAfter(delay),
                _ => Verdict::Retry,
            },
            None => Verdict::Retry,
        },
        _ => Verdict::Fail,
    }
}

/// A `Retry-After` value: delay-seconds or an HTTP-date (RFC 9110 §10.2.3), as a delay from
/// `now`; `None` when it is neither.
pub(crate) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let delay = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(now).unwrap_or(Duration::ZERO)
        }
    };
    Some(delay.min(MAX_SERVER_DELAY))
}

/// Delays between attempts: exponential from `initial` up to `max`, each drawn uniformly
/// from half to one and a half of the nominal delay so that exporters that failed together
/// do not retry together.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// The policy of the OpenTelemetry SDKs: 100 ms doubling up to 5 s (bounded anyway by
    /// the export timeout).
    pub(crate) fn new() -> Backoff {
        Backoff {
            next: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }

    /// The delay before the next attempt. A server's delay is a floor: the wait is at
    /// least that, and the backoff continues from it.
    pub(crate) fn delay(&mut self, verdict: Verdict) -> Duration {
        let nominal = match verdict {
            Verdict::RetryAfter(server) => {
                self.next = self.next.max(server);
                return self.advance(server + jitter(self.next / 2));
            }
            _ => self.next,
        };
        let wait = nominal / 2 + jitter(nominal);
        self.advance(wait)
    }

    fn advance(&mut self, wait: Duration) -> Duration {
        self.next = (self.next * 2).min(self.max.max(self.next));
        wait
    }
}

/// A uniformly random duration in `0..=max`: std's randomly keyed hasher is random enough
/// for spreading retries, and costs no dependency.
fn jitter(max: Duration) -> Duration {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    let max_nanos = max.as_nanos().min(u64::MAX as u128) as u64;
    Duration::from_nanos(hasher.finish() % max_nanos.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn grpc_codes_follow_the_otlp_specification() {
        for code in [
            Code::Unavailable,
            Code::Cancelled,
            Code::DeadlineExceeded,
            Code::Aborted,
            Code::OutOfRange,
            Code::DataLoss,
        ] {
            assert_eq!(grpc_verdict(code, None), Verdict::Retry, "{code:?}");
        }
        for code in [
            Code::Ok,
            Code::Unknown,
            Code::InvalidArgument,
            Code::NotFound,
            Code::AlreadyExists,
            Code::PermissionDenied,
            Code::ResourceExhausted,
            Code::FailedPrecondition,
            Code::Unimplemented,
            Code::Internal,
            Code::Unauthenticated,
        ] {
            assert_eq!(grpc_verdict(code, None), Verdict::Fail, "{code:?}");
        }
    }

    #[test]
    fn resource_exhausted_is_retried_only_when_the_server_says_when() {
        let delay = Duration::from_secs(3);
        assert_eq!(
            grpc_verdict(Code::ResourceExhausted, Some(delay)),
            Verdict::RetryAfter(delay)
        );
        assert_eq!(
            grpc_verdict(Code::Unavailable, Some(delay)),
            Verdict::RetryAfter(delay)
        );
        assert_eq!(
            grpc_verdict(Code::InvalidArgument, Some(delay)),
            Verdict::Fail
        );
    }

    #[test]
    fn http_statuses_follow_the_otlp_specification() {
        let none = HeaderMap::new();
        for status in [429, 502, 503, 504] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(http_verdict(status, &none), Verdict::Retry, "{status}");
        }
        for status in [400, 401, 403, 404, 408, 413, 500, 501] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(http_verdict(status, &none), Verdict::Fail, "{status}");
        }
        let mut later = HeaderMap::new();
        later.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(
            http_verdict(StatusCode::TOO_MANY_REQUESTS, &later),
            Verdict::RetryAfter(Duration::from_secs(7))
        );
        assert_eq!(http_verdict(StatusCode::BAD_REQUEST, &later), Verdict::Fail);
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(retry_after(" 12 ", now), Some(Duration::from_secs(12)));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(retry_after(&date, now), Some(Duration::from_secs(30)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(retry_after("99999999", now), Some(MAX_SERVER_DELAY));
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-1", now), None);
    }

    #[test]
    fn backoff_grows_with_jitter_and_respects_the_server() {
        let mut backoff = Backoff::new();
        let first = backoff.delay(Verdict::Retry);
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(150));
        let second = backoff.delay(Verdict::Retry);
        assert!(second >= Duration::from_millis(100) && second <= Duration::from_millis(300));
        for _ in 0..20 {
            assert!(backoff.delay(Verdict::Retry) <= Duration::from_millis(7500));
        }
        let server = Duration::from_secs(9);
        assert!(backoff.delay(Verdict::RetryAfter(server)) >= server);
    }

    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..100 {
            assert!(jitter(Duration::from_millis(10)) <= Duration::from_millis(10));
        }
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
    }
}
