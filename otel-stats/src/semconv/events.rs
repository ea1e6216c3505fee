//! The names of an RPC span's events: one per message (gRFC A72's names) and one per header
//! and trailer block.

pub(crate) const OUTBOUND_MESSAGE: &str = "Outbound message";
pub(crate) const INBOUND_MESSAGE: &str = "Inbound message";
pub(crate) const OUTBOUND_HEADERS: &str = "Outbound headers";
pub(crate) const INBOUND_HEADERS: &str = "Inbound headers";
pub(crate) const OUTBOUND_TRAILERS: &str = "Outbound trailers";
pub(crate) const INBOUND_TRAILERS: &str = "Inbound trailers";
