use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry::Context;

use super::line::{Line, Tagged};
use crate::event::{ConnStats, ConnTagInfo, RpcStats, RpcTagInfo};
use crate::handler::StatsHandler;

/// How [`LogHandler`] writes its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// For people, like grpc-go's example:
    /// `[client addr: 127.0.0.1:50412] HandleRPC: InPayload method=UnaryEcho seq=0 length=7 wire_length=12`.
    #[default]
    Text,
    /// One JSON object per line, whose `event` is grpc-go's type name (`TagConn`, `ConnBegin`,
    /// `TagRPC`, `Begin`, `InHeader`, `InPayload`, `InTrailer`, `OutHeader`, `OutPayload`,
    /// `OutTrailer`, `End`, `ConnEnd`), with `side`, `method` and the event's sizes,
    /// compression and status code.
    Json,
}

/// A [`StatsHandler`] that writes one line per event.
///
/// Writing takes a lock on the writer: this handler is for demos, debugging and tests, not for
/// hot paths. Write errors are ignored; they never fail an RPC.
///
/// Clones share the writer and the numbering of RPCs and connections, so a server and a
/// client can log to one stream with ids that do not collide.
///
/// # Examples
///
/// ```
/// use otel_stats::{LogFormat, LogHandler};
///
/// let to_stderr = LogHandler::text(std::io::stderr());
/// let json_lines = LogHandler::new(Vec::<u8>::new(), LogFormat::Json);
/// # let _ = (to_stderr, json_lines);
/// ```
#[derive(Clone)]
pub struct LogHandler {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
    format: LogFormat,
    next_id: Arc<AtomicU64>,
}

impl std::fmt::Debug for LogHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogHandler")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl LogHandler {
    /// A handler writing `format` lines to `out`.
    pub fn new(out: impl Write + Send + 'static, format: LogFormat) -> Self {
        LogHandler {
            out: Arc::new(Mutex::new(Box::new(out))),
            format,
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    /// A handler writing human-readable lines to `out`.
    pub fn text(out: impl Write + Send + 'static) -> Self {
        Self::new(out, LogFormat::Text)
    }

    /// A handler writing JSON lines to `out`.
    pub fn json(out: impl Write + Send + 'static) -> Self {
        Self::new(out, LogFormat::Json)
    }

    fn write(&self, line: &Line<'_>) {
        let text = match self.format {
            LogFormat::Text => line.to_text(),
            LogFormat::Json => line.to_json(),
        };
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let _ = writeln!(out, "{text}");
    }

    fn id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// What the handler keeps in a connection's context.
#[derive(Debug, Clone)]
struct ConnTag {
    id: u64,
    remote_addr: Option<SocketAddr>,
}

/// What the handler keeps in an RPC's context.
#[derive(Debug, Clone)]
struct RpcTag {
    id: u64,
    method: Arc<str>,
}

fn tagged(cx: &Context) -> Tagged<'_> {
    let conn = cx.get::<ConnTag>();
    let rpc = cx.get::<RpcTag>();
    Tagged {
        conn_id: conn.map(|c| c.id),
        remote_addr: conn.and_then(|c| c.remote_addr),
        rpc_id: rpc.map(|r| r.id),
        method: rpc.map(|r| &*r.method),
    }
}

impl StatsHandler for LogHandler {
    fn tag_rpc(&self, cx: Context, info: &mut RpcTagInfo<'_>) -> Context {
        let tag = RpcTag {
            id: self.id(),
            method: info.full_method().into(),
        };
        let cx = cx.with_value(tag);
        let mut tags = tagged(&cx);
        if tags.remote_addr.is_none() {
            tags.remote_addr = info.remote_addr();
        }
        self.write(&Line::tag_rpc(info.side(), tags, info.authority()));
        cx
    }

    fn handle_rpc(&self, cx: &Context, stats: &RpcStats<'_>) {
        self.write(&Line::rpc(tagged(cx), stats));
    }

    fn tag_conn(&self, cx: Context, info: &ConnTagInfo) -> Context {
        let cx = cx.with_value(ConnTag {
            id: self.id(),
            remote_addr: info.remote_addr,
        });
        self.write(&Line::tag_conn(tagged(&cx), info));
        cx
    }

    fn handle_conn(&self, cx: &Context, stats: &ConnStats) {
        self.write(&Line::conn(tagged(cx), stats));
    }
}
