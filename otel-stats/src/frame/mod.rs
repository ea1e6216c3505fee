//! gRPC message framing: the 5-byte length prefix that splits an HTTP/2 body into messages.
//!
//! [`FrameDecoder`] is pure and incremental: feed it the DATA frames of a body in order, and it
//! tells you about each complete message, however the messages were split across frames or
//! packed into one. It never buffers message bytes, never allocates by a declared length, and
//! never panics; a stream that is not valid gRPC framing is reported as a [`FrameError`].

mod decoder;

pub use decoder::{FrameDecoder, FrameError, Message, PREFIX_LEN};
