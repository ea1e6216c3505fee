//! Full method names, `/package.Service/Method`, and their parts.

/// A full method `/package.Service/Method` split into the span name `package.Service/Method`,
/// the service and the method. Anything else is its own name, with an empty service.
pub(crate) fn split_method(full_method: &str) -> (&str, &str, &str) {
    let name = full_method.strip_prefix('/').unwrap_or(full_method);
    match name.rsplit_once('/') {
        Some((service, method)) => (name, service, method),
        None => (name, "", name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names() {
        assert_eq!(
            split_method("/grpc.examples.echo.Echo/UnaryEcho"),
            (
                "grpc.examples.echo.Echo/UnaryEcho",
                "grpc.examples.echo.Echo",
                "UnaryEcho"
            )
        );
        assert_eq!(split_method("odd"), ("odd", "", "odd"));
    }
}
