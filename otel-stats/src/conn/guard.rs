use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::Context;

use crate::event::{ConnBegin, ConnEnd, ConnStats, ConnTagInfo, Side};
use crate::handler::{self, StatsHandler};

/// One tagged connection: fires `ConnBegin` when made, `ConnEnd` when dropped.
pub(super) struct ConnGuard<H: StatsHandler + ?Sized> {
    handler: Arc<H>,
    cx: Context,
    side: Side,
    begin_time: SystemTime,
    pub(super) bytes_read: u64,
    pub(super) bytes_written: u64,
}

impl<H: StatsHandler + ?Sized> ConnGuard<H> {
    /// Tags the connection and reports `ConnBegin`.
    pub(super) fn begin(
        handler: Arc<H>,
        side: Side,
        remote_addr: Option<SocketAddr>,
        local_addr: Option<SocketAddr>,
    ) -> Self {
        let info = ConnTagInfo::new(side, remote_addr, local_addr);
        let cx = handler::tag_conn(&*handler, Context::current(), &info);
        let begin = ConnBegin::now(side);
        handler::handle_conn(&*handler, &cx, &ConnStats::Begin(begin.clone()));
        ConnGuard {
            handler,
            cx,
            side,
            begin_time: begin.time,
            bytes_read: 0,
            bytes_written: 0,
        }
    }

    pub(super) fn context(&self) -> &Context {
        &self.cx
    }
}

impl<H: StatsHandler + ?Sized> Drop for ConnGuard<H> {
    fn drop(&mut self) {
        let end = ConnEnd {
            side: self.side,
            begin_time: self.begin_time,
            end_time: SystemTime::now(),
            bytes_read: self.bytes_read,
            bytes_written: self.bytes_written,
        };
        handler::handle_conn(&*self.handler, &self.cx, &ConnStats::End(end));
    }
}
