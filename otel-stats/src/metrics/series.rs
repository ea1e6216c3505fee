//! The attributes each method's measurements carry, built once per method (and, on the client,
//! per target) and then shared by all of its RPCs: with the cache warm, `tag_rpc` and `End`
//! neither allocate nor build attributes, and they hand the SDK the same slice every time, in
//! the same order, which is the SDK's fast path (its attribute map is looked up with the slice
//! as given before it sorts a copy).
//!
//! The cache is bounded ([`MAX_SERIES`] per side) and only learns methods that ended known by
//! name: a method bucketed as `_OTHER`/`other` (made up by a caller, refused by the allow-list
//! or answered `UNIMPLEMENTED` without one) never takes a place. A hook never waits for the
//! cache's lock: a reader that finds it being written takes the uncached path, and a writer
//! that finds it busy leaves the method for a later RPC to add.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use opentelemetry::KeyValue;
use opentelemetry_semantic_conventions::attribute::{
    ERROR_TYPE, RPC_METHOD, RPC_RESPONSE_STATUS_CODE, RPC_SYSTEM_NAME,
};
use tonic::Code;

use crate::event::Side;
use crate::semconv::Method;
use crate::semconv::{GRPC, code_name, is_error, push_server};

/// gRFC A66's attribute names.
const GRPC_METHOD: &str = "grpc.method";
const GRPC_STATUS: &str = "grpc.status";
const GRPC_TARGET: &str = "grpc.target";

/// Methods (with their targets, on the client) whose attributes a handler keeps, per side.
/// Past this, new methods are measured all the same, with attributes built per RPC. Each
/// costs ~4 KiB (up to ~9 KiB on a client with the A66 instruments).
pub(super) const MAX_SERIES: usize = 256;

/// The gRPC status codes, `OK` (0) to `UNAUTHENTICATED` (16).
const CODES: [Code; 17] = [
    Code::Ok,
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
];

/// What an RPC's attributes are made of, known when it is tagged.
#[derive(Debug)]
pub(super) struct Parts {
    side: Side,
    method: Method,
    /// `server.address` and `server.port` (client side).
    server: Vec<KeyValue>,
    /// `grpc.target` (client side, with the A66 instruments).
    target: Option<KeyValue>,
    a66: bool,
}

impl Parts {
    pub(super) fn new(side: Side, method: Method, authority: Option<&str>, a66: bool) -> Self {
        let (mut server, mut target) = (Vec::new(), None);
        if side == Side::Client {
            push_server(&mut server, authority);
            if a66 {
                target = authority.map(|a| KeyValue::new(GRPC_TARGET, a.to_owned()));
            }
        }
        Parts {
            side,
            method,
            server,
            target,
            a66,
        }
    }

    /// `grpc.method` (and `grpc.target`): the attributes of A66's `started` counter, empty
    /// without the A66 instruments.
    fn started(&self) -> Box<[KeyValue]> {
        if !self.a66 {
            return Box::default();
        }
        let method = KeyValue::new(GRPC_METHOD, self.method.a66());
        std::iter::once(method)
            .chain(self.target.iter().cloned())
            .collect()
    }

    /// The attributes of an RPC that ended with `code`.
    pub(super) fn at_end(&self, code: Code) -> EndAttributes {
        let method = self.method.at_end(code);
        let name = code_name(code);
        let mut semconv = Vec::with_capacity(4 + self.server.len());
        semconv.extend([
            KeyValue::new(RPC_SYSTEM_NAME, GRPC),
            KeyValue::new(RPC_METHOD, method.semconv()),
            KeyValue::new(RPC_RESPONSE_STATUS_CODE, name),
        ]);
        if is_error(self.side, code) {
            semconv.push(KeyValue::new(ERROR_TYPE, name));
        }
        semconv.extend(self.server.iter().cloned());
        let a66 = if self.a66 {
            [
                KeyValue::new(GRPC_METHOD, method.a66()),
                KeyValue::new(GRPC_STATUS, name),
            ]
            .into_iter()
            .chain(self.target.iter().cloned())
            .collect()
        } else {
            Box::default()
        };
        EndAttributes {
            semconv: semconv.into_boxed_slice(),
            a66,
        }
    }
}

/// The attributes of the measurements of an RPC's end.
#[derive(Debug)]
pub(super) struct EndAttributes {
    /// Of `rpc.{server,client}.call.duration`.
    pub(super) semconv: Box<[KeyValue]>,
    /// Of A66's duration and size instruments; empty without them.
    pub(super) a66: Box<[KeyValue]>,
}

/// Every attribute set of one method (and target), one per status code.
#[derive(Debug)]
pub(super) struct Series {
    /// The client's target (`:authority`), part of the cache key.
    authority: Option<Box<str>>,
    started: Box<[KeyValue]>,
    ends: Box<[EndAttributes]>,
}

impl Series {
    fn new(parts: &Parts, authority: Option<&str>) -> Self {
        Series {
            authority: authority.map(Box::from),
            started: parts.started(),
            ends: CODES.iter().map(|&code| parts.at_end(code)).collect(),
        }
    }

    /// The attributes of A66's `started` counter.
    pub(super) fn started(&self) -> &[KeyValue] {
        &self.started
    }

    /// The attributes of an RPC that ended with `code`.
    pub(super) fn at_end(&self, code: Code) -> Option<&EndAttributes> {
        self.ends.get(usize::try_from(i32::from(code)).ok()?)
    }
}

/// An RPC whose method was not in the cache when it was tagged: what it needs to be
/// measured, and to add its method to the cache when it ends.
#[derive(Debug)]
pub(super) struct Uncached {
    pub(super) full_method: Box<str>,
    pub(super) authority: Option<Box<str>>,
    pub(super) parts: Parts,
    pub(super) started: Box<[KeyValue]>,
}

impl Uncached {
    pub(super) fn new(full_method: &str, authority: Option<&str>, parts: Parts) -> Self {
        Uncached {
            full_method: full_method.into(),
            authority: authority.map(Box::from),
            started: parts.started(),
            parts,
        }
    }
}

/// One side's cache: full method -> its series, one per target on the client.
#[derive(Debug, Default)]
pub(super) struct SeriesCache {
    map: RwLock<Map>,
}

#[derive(Debug, Default)]
struct Map {
    methods: HashMap<Box<str>, Vec<Arc<Series>>>,
    len: usize,
}

impl SeriesCache {
    /// The series of `full_method` sent to `authority`, if cached (and the cache is not being
    /// written right now).
    pub(super) fn get(&self, full_method: &str, authority: Option<&str>) -> Option<Arc<Series>> {
        let map = self.map.try_read().ok()?;
        map.methods
            .get(full_method)?
            .iter()
            .find(|s| s.authority.as_deref() == authority)
            .cloned()
    }

    /// The series of `rpc`, added to the cache, when its method ended with `code` known by
    /// name and there is room; `None` otherwise.
    pub(super) fn learn(&self, rpc: &Uncached, code: Code) -> Option<Arc<Series>> {
        if !rpc.parts.method.at_end(code).is_known() {
            return None;
        }
        let authority = rpc.authority.as_deref();
        if let Some(known) = self.get(&rpc.full_method, authority) {
            return Some(known);
        }
        if self.map.try_read().ok()?.len >= MAX_SERIES {
            return None;
        }
        // Built before taking the lock, which is held for the insertion only.
        let series = Arc::new(Series::new(&rpc.parts, authority));
        let mut map = self.map.try_write().ok()?;
        if map.len >= MAX_SERIES {
            return None;
        }
        let entries = map.methods.entry(rpc.full_method.clone()).or_default();
        if let Some(known) = entries.iter().find(|s| s.authority.as_deref() == authority) {
            return Some(Arc::clone(known));
        }
        entries.push(Arc::clone(&series));
        map.len += 1;
        Some(series)
    }
}

/// The series every unknown method of a server shares (`_OTHER`, `other`): a server's unknown
/// methods all have the same attributes, so they need neither the cache nor an allocation.
pub(super) fn server_other(a66: bool) -> Arc<Series> {
    Arc::new(Series::new(
        &Parts::new(Side::Server, Method::unknown(), None, a66),
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::semconv::Methods;

    const ECHO: &str = "/grpc.examples.echo.Echo/UnaryEcho";

    fn value(attrs: &[KeyValue], key: &str) -> Option<String> {
        attrs
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.as_str().into_owned())
    }

    #[test]
    fn every_code_has_its_attributes_in_its_place() {
        let parts = Parts::new(
            Side::Client,
            Methods::default().classify(ECHO, Side::Client),
            Some("h:1"),
            true,
        );
        let series = Series::new(&parts, Some("h:1"));
        for code in CODES {
            let end = series.at_end(code).unwrap();
            let direct = parts.at_end(code);
            assert_eq!(end.semconv, direct.semconv);
            assert_eq!(end.a66, direct.a66);
            assert_eq!(
                value(&end.semconv, RPC_RESPONSE_STATUS_CODE).unwrap(),
                code_name(code)
            );
        }
        assert_eq!(value(series.started(), GRPC_TARGET).as_deref(), Some("h:1"));
    }

    #[test]
    fn a_provisional_method_answered_unimplemented_is_other_and_not_learnt() {
        let cache = SeriesCache::default();
        let method = Methods::default().classify(ECHO, Side::Server);
        let rpc = Uncached::new(ECHO, None, Parts::new(Side::Server, method, None, false));
        assert!(cache.learn(&rpc, Code::Unimplemented).is_none());
        assert!(cache.get(ECHO, None).is_none());
        let learnt = cache.learn(&rpc, Code::Ok).unwrap();
        assert!(Arc::ptr_eq(&learnt, &cache.get(ECHO, None).unwrap()));
        // The cached series still names a later UNIMPLEMENTED answer `_OTHER`.
        let end = learnt.at_end(Code::Unimplemented).unwrap();
        assert_eq!(value(&end.semconv, RPC_METHOD).as_deref(), Some("_OTHER"));
    }

    #[test]
    fn the_cache_is_bounded_and_keyed_by_target() {
        let cache = SeriesCache::default();
        let methods = Methods::default();
        for i in 0..MAX_SERIES + 10 {
            let full = format!("/svc/M{i}");
            let parts = Parts::new(
                Side::Client,
                methods.classify(&full, Side::Client),
                Some("a:1"),
                false,
            );
            let learnt = cache.learn(&Uncached::new(&full, Some("a:1"), parts), Code::Ok);
            assert_eq!(learnt.is_some(), i < MAX_SERIES, "{i}");
        }
        assert!(cache.get("/svc/M0", Some("a:1")).is_some());
        assert!(cache.get("/svc/M0", Some("b:1")).is_none());
        assert!(
            cache
                .get(&format!("/svc/M{MAX_SERIES}"), Some("a:1"))
                .is_none()
        );
    }
}
