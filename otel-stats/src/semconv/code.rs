//! The names of the gRPC status codes, and which codes are errors on each side.

use tonic::Code;

use crate::event::Side;

/// The name of `code` as the gRPC spec and `rpc.response.status_code` spell it (`"OK"`,
/// `"INVALID_ARGUMENT"`, ...).
pub(crate) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Whether an RPC that ended with `code` is an error on `side`, as the semantic conventions for
/// gRPC say: any code but `OK` on the client; on the server only the codes that mean the server
/// failed (`UNKNOWN`, `DEADLINE_EXCEEDED`, `UNIMPLEMENTED`, `INTERNAL`, `UNAVAILABLE`,
/// `DATA_LOSS`), not those that blame the request.
pub(crate) fn is_error(side: Side, code: Code) -> bool {
    match side {
        Side::Client => code != Code::Ok,
        Side::Server => matches!(
            code,
            Code::Unknown
                | Code::DeadlineExceeded
                | Code::Unimplemented
                | Code::Internal
                | Code::Unavailable
                | Code::DataLoss
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_grpc_spec() {
        assert_eq!(code_name(Code::Ok), "OK");
        assert_eq!(code_name(Code::InvalidArgument), "INVALID_ARGUMENT");
        assert_eq!(code_name(Code::from_i32(16)), "UNAUTHENTICATED");
    }

    #[test]
    fn server_errors_are_the_servers_fault_only() {
        assert!(is_error(Side::Client, Code::NotFound));
        assert!(!is_error(Side::Server, Code::NotFound));
        assert!(is_error(Side::Server, Code::Internal));
        assert!(!is_error(Side::Client, Code::Ok));
        assert!(!is_error(Side::Server, Code::Ok));
    }
}
