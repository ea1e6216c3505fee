//! Which methods are recorded under their own name, and which are bucketed as `_OTHER`
//! (semantic conventions) or `other` (gRFC A66), so that callers cannot explode the
//! cardinality of the instruments by sending made-up method names.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use opentelemetry::Value;
use tonic::Code;

use super::{A66_OTHER_METHOD, OTHER_METHOD, split_method};
use crate::event::Side;

/// Decides, from the full method `/package.Service/Method`, whether a method is known.
pub(crate) type MethodFilter = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// The rule of a handler.
#[derive(Default)]
pub(crate) struct Methods {
    /// Known methods, `package.Service/Method` (no leading slash).
    allowed: HashSet<Arc<str>>,
    filter: Option<MethodFilter>,
}

/// The method of one RPC, as its measurements name it.
#[derive(Debug, Clone)]
pub(crate) struct Method {
    /// `package.Service/Method`, or `None` when the method is not known.
    name: Option<Arc<str>>,
    /// Known only because nothing was configured: a server that answers `UNIMPLEMENTED`
    /// (tonic's answer for a method no service has) makes it unknown after all.
    provisional: bool,
}

impl Methods {
    /// Adds `method`, with or without its leading slash, to the allow-list.
    pub(crate) fn allow(&mut self, method: &str) {
        let (name, _, _) = split_method(method);
        if !self.allowed.contains(name) {
            self.allowed.insert(Arc::from(name));
        }
    }

    pub(crate) fn set_filter(&mut self, filter: MethodFilter) {
        self.filter = Some(filter);
    }

    /// Whether an allow-list or a filter was given.
    pub(crate) fn configured(&self) -> bool {
        !self.allowed.is_empty() || self.filter.is_some()
    }

    /// Whether the allow-list or the filter accepts `full_method`; `None` when neither was
    /// given, so that only the RPC's status can tell. Allocates nothing.
    pub(crate) fn recognizes(&self, full_method: &str) -> Option<bool> {
        if !self.configured() {
            return None;
        }
        let (name, _, _) = split_method(full_method);
        Some(self.allowed.contains(name) || self.filter_accepts(full_method))
    }

    /// Whether a filter was given and accepts `full_method`.
    fn filter_accepts(&self, full_method: &str) -> bool {
        self.filter
            .as_ref()
            .is_some_and(|accepts| accepts(full_method))
    }

    /// The method of a new RPC, seen on `side`.
    ///
    /// With an allow-list or a filter, a method is known when it is listed or the filter
    /// accepts it. Without either, every method is known, except that a server RPC answered
    /// `UNIMPLEMENTED` is recorded as unknown at its end (see [`Method::at_end`]).
    pub(crate) fn classify(&self, full_method: &str, side: Side) -> Method {
        let (name, _, _) = split_method(full_method);
        if !self.configured() {
            return Method {
                name: Some(Arc::from(name)),
                provisional: side == Side::Server,
            };
        }
        let name = match self.allowed.get(name) {
            Some(listed) => Some(Arc::clone(listed)),
            None => self.filter_accepts(full_method).then(|| Arc::from(name)),
        };
        Method {
            name,
            provisional: false,
        }
    }
}

impl Method {
    /// An unknown method: `_OTHER` / `other`.
    pub(crate) fn unknown() -> Method {
        Method {
            name: None,
            provisional: false,
        }
    }

    /// Whether the method keeps its own name (for now, if provisional).
    pub(crate) fn is_known(&self) -> bool {
        self.name.is_some()
    }

    /// The method as named once the RPC ended with `code`.
    pub(crate) fn at_end(&self, code: Code) -> Method {
        if self.provisional && code == Code::Unimplemented {
            Method::unknown()
        } else {
            self.clone()
        }
    }

    /// `rpc.method`: the name, or `_OTHER`.
    pub(crate) fn semconv(&self) -> Value {
        self.value(OTHER_METHOD)
    }

    /// `grpc.method`: the name, or `other`.
    pub(crate) fn a66(&self) -> Value {
        self.value(A66_OTHER_METHOD)
    }

    fn value(&self, other: &'static str) -> Value {
        match &self.name {
            Some(name) => Value::String(Arc::clone(name).into()),
            None => Value::from(other),
        }
    }
}

impl fmt::Debug for Methods {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut allowed: Vec<&str> = self.allowed.iter().map(|m| &**m).collect();
        allowed.sort_unstable();
        f.debug_struct("Methods")
            .field("allowed", &allowed)
            .field("filter", &self.filter.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ECHO: &str = "/grpc.examples.echo.Echo/UnaryEcho";

    #[test]
    fn without_configuration_every_method_is_known_until_unimplemented() {
        let methods = Methods::default();
        let server = methods.classify(ECHO, Side::Server);
        assert_eq!(
            server.semconv(),
            Value::from("grpc.examples.echo.Echo/UnaryEcho")
        );
        assert_eq!(server.at_end(Code::Ok).semconv(), server.semconv());
        assert_eq!(
            server.at_end(Code::Unimplemented).semconv(),
            Value::from("_OTHER")
        );
        assert_eq!(
            server.at_end(Code::Unimplemented).a66(),
            Value::from("other")
        );
        // A client's methods come from its own code: it keeps them whatever the answer.
        let client = methods.classify(ECHO, Side::Client);
        assert_eq!(
            client.at_end(Code::Unimplemented).semconv(),
            Value::from("grpc.examples.echo.Echo/UnaryEcho")
        );
    }

    #[test]
    fn an_allow_list_and_a_filter_decide_alone() {
        let mut methods = Methods::default();
        methods.allow("grpc.examples.echo.Echo/UnaryEcho");
        methods.allow("/grpc.examples.echo.Echo/UnaryEcho");
        methods.set_filter(Box::new(|m| m.starts_with("/grpc.health.v1.Health/")));
        let listed = methods.classify(ECHO, Side::Server);
        assert_eq!(
            listed.at_end(Code::Unimplemented).semconv(),
            Value::from("grpc.examples.echo.Echo/UnaryEcho")
        );
        let filtered = methods.classify("/grpc.health.v1.Health/Check", Side::Server);
        assert_eq!(filtered.a66(), Value::from("grpc.health.v1.Health/Check"));
        let unknown = methods.classify("/grpc.examples.echo.Echo/Nope", Side::Client);
        assert_eq!(unknown.semconv(), Value::from("_OTHER"));
        assert_eq!(unknown.a66(), Value::from("other"));
        assert_eq!(format!("{methods:?}").matches("UnaryEcho").count(), 1);
        assert_eq!(methods.recognizes(ECHO), Some(true));
        assert_eq!(
            methods.recognizes("/grpc.health.v1.Health/Check"),
            Some(true)
        );
        assert_eq!(
            methods.recognizes("/grpc.examples.echo.Echo/Nope"),
            Some(false)
        );
        assert_eq!(Methods::default().recognizes(ECHO), None);
    }
}
