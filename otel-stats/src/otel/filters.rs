//! Ready filters for [`OtelHandlerBuilder::filter`](crate::OtelHandlerBuilder::filter): each
//! returns `false` for the RPCs it leaves untraced.
//!
//! ```
//! use otel_stats::{OtelHandler, filters};
//!
//! let handler = OtelHandler::builder()
//!     .filter(|info| filters::not_health_check(info) && filters::not_reflection(info))
//!     .build();
//! # let _ = handler;
//! ```

use crate::event::RpcTagInfo;

/// `false` for the gRPC health service (`grpc.health.v1.Health`), whose probes would
/// otherwise fill a backend with identical traces.
///
/// ```
/// use otel_stats::{OtelHandler, filters};
///
/// let handler = OtelHandler::builder().filter(filters::not_health_check).build();
/// # let _ = handler;
/// ```
pub fn not_health_check(info: &RpcTagInfo<'_>) -> bool {
    !info.full_method().starts_with("/grpc.health.v1.Health/")
}

/// `false` for the gRPC reflection services (`grpc.reflection.v1.ServerReflection` and
/// `grpc.reflection.v1alpha.ServerReflection`), which tools like `grpcurl` call.
///
/// ```
/// use otel_stats::{OtelHandler, filters};
///
/// let handler = OtelHandler::builder().filter(filters::not_reflection).build();
/// # let _ = handler;
/// ```
pub fn not_reflection(info: &RpcTagInfo<'_>) -> bool {
    !info.full_method().starts_with("/grpc.reflection.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_and_reflection() {
        let headers = http::HeaderMap::new();
        let info = |m| RpcTagInfo::server(m, &headers, None, None);
        assert!(!not_health_check(&info("/grpc.health.v1.Health/Check")));
        assert!(!not_health_check(&info("/grpc.health.v1.Health/Watch")));
        assert!(not_health_check(&info(
            "/grpc.examples.echo.Echo/UnaryEcho"
        )));
        assert!(!not_reflection(&info(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
        )));
        assert!(not_reflection(&info("/grpc.examples.echo.Echo/UnaryEcho")));
    }
}
