//! Typed access to an RPC's context and span from the request a service receives.

use std::sync::LazyLock;

use http::Extensions;
use opentelemetry::Context;
use opentelemetry::trace::{SpanRef, TraceContextExt};

/// The RPC's context in the request extensions, under a type only this crate can insert, so
/// that another middleware's `opentelemetry::Context` is never taken for the RPC's.
#[derive(Debug, Clone)]
struct RpcContext(Context);

/// Puts the RPC's context (what `tag_rpc` returned) into a request's extensions.
pub(crate) fn insert_context(extensions: &mut Extensions, cx: &Context) {
    extensions.insert(RpcContext(cx.clone()));
}

/// The context of a request that did not pass through a stats layer: its span is a no-op.
static NO_CONTEXT: LazyLock<Context> = LazyLock::new(Context::new);

/// The RPC's context and span, from a request that passed through
/// [`ServerStatsLayer`](crate::ServerStatsLayer) or [`ClientStatsLayer`](crate::ClientStatsLayer):
/// a tonic service reads them from its `tonic::Request`, a tower middleware below a layer from
/// its `http::Request`.
///
/// The context is what the handlers' `tag_rpc` returned: with [`OtelHandler`](crate::OtelHandler)
/// it carries the RPC span, so application code can add attributes and events to it, or pass
/// the context to work it spawns onto other tasks. (While the service's future runs, the same
/// context is also [`Context::current`].)
///
/// # Examples
///
/// ```
/// use opentelemetry::KeyValue;
/// use opentelemetry::trace::TraceContextExt;
/// use otel_stats::RpcRequestExt;
///
/// fn handle(request: &tonic::Request<String>) {
///     // A no-op span when the request did not come through a stats layer.
///     request.rpc_span().set_attribute(KeyValue::new("app.user", "ann"));
///     request.rpc_span().add_event("cache miss", vec![]);
///
///     // Work on another task keeps the RPC's context, and so its span as parent.
///     if let Some(cx) = request.rpc_context() {
///         let cx = cx.clone();
///         std::thread::spawn(move || {
///             let _active = cx.attach();
///             // spans started here are children of the RPC span
///         });
///     }
/// }
///
/// let request = tonic::Request::new("hello".to_owned());
/// assert!(request.rpc_context().is_none(), "not through a stats layer");
/// assert!(!request.rpc_span().span_context().is_valid());
/// handle(&request);
/// ```
pub trait RpcRequestExt: sealed::Sealed {
    /// The RPC's context, `None` when the request did not pass through a stats layer.
    fn rpc_context(&self) -> Option<&Context>;

    /// The RPC's span: the span of [`rpc_context`](Self::rpc_context), a no-op span when
    /// there is none (no stats layer, or no handler that makes spans).
    fn rpc_span(&self) -> SpanRef<'_> {
        self.rpc_context().unwrap_or(&NO_CONTEXT).span()
    }
}

impl<T> RpcRequestExt for tonic::Request<T> {
    fn rpc_context(&self) -> Option<&Context> {
        from_extensions(self.extensions())
    }
}

impl<B> RpcRequestExt for http::Request<B> {
    fn rpc_context(&self) -> Option<&Context> {
        from_extensions(self.extensions())
    }
}

fn from_extensions(extensions: &Extensions) -> Option<&Context> {
    extensions.get::<RpcContext>().map(|rpc| &rpc.0)
}

mod sealed {
    pub trait Sealed {}
    impl<T> Sealed for tonic::Request<T> {}
    impl<B> Sealed for http::Request<B> {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_layers_context_is_the_rpcs() {
        #[derive(Debug, PartialEq)]
        struct Mark;
        let mut request = http::Request::new(());
        request.extensions_mut().insert(Context::new());
        assert!(
            request.rpc_context().is_none(),
            "a bare Context is not the RPC's"
        );
        insert_context(request.extensions_mut(), &Context::new().with_value(Mark));
        assert_eq!(
            request.rpc_context().and_then(|cx| cx.get::<Mark>()),
            Some(&Mark)
        );
        let request = tonic::Request::from_http(request);
        assert_eq!(
            request.rpc_context().and_then(|cx| cx.get::<Mark>()),
            Some(&Mark)
        );
    }
}
