//! [`LogHandler`]: one line per stats event, the Rust counterpart of the handler in grpc-go's
//! `stats_monitoring` example.

mod handler;
mod line;

pub use handler::{LogFormat, LogHandler};
