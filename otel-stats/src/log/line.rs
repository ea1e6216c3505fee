use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::event::{ConnStats, ConnTagInfo, RpcStats, Side};
use crate::semconv::{code_name, split_method};

/// What the handler put in the context at `tag_*`.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Tagged<'a> {
    pub(super) conn_id: Option<u64>,
    pub(super) remote_addr: Option<SocketAddr>,
    pub(super) rpc_id: Option<u64>,
    pub(super) method: Option<&'a str>,
}

/// One event, ready to be written as text or JSON.
pub(super) struct Line<'a> {
    event: &'static str,
    hook: &'static str,
    side: Side,
    time: SystemTime,
    tags: Tagged<'a>,
    fields: Vec<(&'static str, Value)>,
}

fn addr(a: Option<SocketAddr>) -> Value {
    a.map_or(Value::Null, |a| Value::String(a.to_string()))
}

impl<'a> Line<'a> {
    fn new(hook: &'static str, event: &'static str, side: Side, tags: Tagged<'a>) -> Self {
        Line {
            event,
            hook,
            side,
            time: SystemTime::now(),
            tags,
            fields: Vec::new(),
        }
    }

    fn with(mut self, key: &'static str, value: impl Into<Value>) -> Self {
        self.fields.push((key, value.into()));
        self
    }

    pub(super) fn tag_rpc(side: Side, tags: Tagged<'a>, authority: Option<&str>) -> Self {
        let line = Line::new("TagRPC", "TagRPC", side, tags);
        match authority {
            Some(a) => line.with("authority", a),
            None => line,
        }
    }

    pub(super) fn tag_conn(tags: Tagged<'a>, info: &ConnTagInfo) -> Self {
        Line::new("TagConn", "TagConn", info.side, tags)
            .with("remote_addr", addr(info.remote_addr))
            .with("local_addr", addr(info.local_addr))
    }

    pub(super) fn conn(tags: Tagged<'a>, stats: &ConnStats) -> Self {
        let line = Line::new("HandleConn", stats.name(), stats.side(), tags);
        match stats {
            ConnStats::End(end) => line
                .with("bytes_read", end.bytes_read)
                .with("bytes_written", end.bytes_written)
                .with("duration_us", end.duration().as_micros() as u64),
            _ => line,
        }
    }

    pub(super) fn rpc(tags: Tagged<'a>, stats: &RpcStats<'_>) -> Self {
        let mut line = Line::new("HandleRPC", stats.name(), stats.side(), tags);
        line.time = stats.time();
        match stats {
            RpcStats::Begin(b) => match b.timeout {
                Some(t) => line.with("timeout_us", t.as_micros() as u64),
                None => line,
            },
            RpcStats::InHeader(h) | RpcStats::OutHeader(h) => line
                .with("compression", h.compression.unwrap_or(""))
                .with("metadata_entries", h.metadata.len()),
            RpcStats::InPayload(p) | RpcStats::OutPayload(p) => line
                .with("seq", p.seq)
                .with("compressed", p.compressed)
                .with("length", p.length)
                .with("compressed_length", p.compressed_length)
                .with("wire_length", p.wire_length),
            RpcStats::InTrailer(t) | RpcStats::OutTrailer(t) => line
                .with("metadata_entries", t.metadata.len())
                .with("trailers_only", t.trailers_only),
            RpcStats::End(e) => {
                let line = line
                    .with("code", e.code as i32)
                    .with("status", code_name(e.code))
                    .with("message", e.message)
                    .with("duration_us", e.duration().as_micros() as u64);
                match e.frame_error {
                    Some(err) => line.with("frame_error", err.to_string()),
                    None => line,
                }
            }
        }
    }

    /// `[client addr: 127.0.0.1:50412] HandleRPC: InPayload method=UnaryEcho seq=0 ...`
    pub(super) fn to_text(&self) -> String {
        let mut out = String::with_capacity(128);
        // grpc-go's example names the other end: the server's method on the client, the
        // client's address on the server.
        match (self.side, self.tags.method) {
            (Side::Client, Some(m)) => {
                let _ = write!(out, "[server method: {}] ", method_name(m));
            }
            (Side::Client, None) => out.push_str("[client] "),
            (Side::Server, _) => match self.tags.remote_addr {
                Some(a) => {
                    let _ = write!(out, "[client addr: {a}] ");
                }
                None => out.push_str("[server] "),
            },
        }
        let _ = write!(out, "{}: {}", self.hook, self.event);
        if let (Side::Server, Some(m)) = (self.side, self.tags.method) {
            let _ = write!(out, " method={}", method_name(m));
        }
        for (key, value) in &self.fields {
            match value {
                Value::String(s) if s.is_empty() => continue,
                Value::String(s) => {
                    let _ = write!(out, " {key}={s}");
                }
                Value::Null => continue,
                other => {
                    let _ = write!(out, " {key}={other}");
                }
            }
        }
        out
    }

    pub(super) fn to_json(&self) -> String {
        let mut map = Map::new();
        map.insert("event".into(), self.event.into());
        map.insert("side".into(), self.side.as_str().into());
        map.insert("method".into(), self.tags.method.into());
        map.insert("time_unix_nano".into(), unix_nanos(self.time).into());
        if let Some(id) = self.tags.conn_id {
            map.insert("conn_id".into(), id.into());
        }
        if let Some(id) = self.tags.rpc_id {
            map.insert("rpc_id".into(), id.into());
        }
        if let Some(a) = self.tags.remote_addr {
            map.entry("remote_addr")
                .or_insert_with(|| json!(a.to_string()));
        }
        for (key, value) in &self.fields {
            map.insert((*key).into(), value.clone());
        }
        Value::Object(map).to_string()
    }
}

/// `UnaryEcho` for `/grpc.examples.echo.Echo/UnaryEcho`, as grpc-go's example prints it.
fn method_name(full: &str) -> &str {
    split_method(full).2
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Payload;

    fn payload() -> RpcStats<'static> {
        RpcStats::InPayload(Payload {
            side: Side::Server,
            seq: 0,
            compressed: false,
            length: Some(7),
            compressed_length: 7,
            wire_length: 12,
            data: None,
            time: SystemTime::now(),
        })
    }

    fn tags() -> Tagged<'static> {
        Tagged {
            conn_id: Some(1),
            remote_addr: Some("127.0.0.1:4000".parse().unwrap()),
            rpc_id: Some(2),
            method: Some("/grpc.examples.echo.Echo/UnaryEcho"),
        }
    }

    #[test]
    fn text_reads_like_grpc_go_example() {
        let text = Line::rpc(tags(), &payload()).to_text();
        assert_eq!(
            text,
            "[client addr: 127.0.0.1:4000] HandleRPC: InPayload method=UnaryEcho seq=0 \
             compressed=false length=7 compressed_length=7 wire_length=12"
        );
    }

    #[test]
    fn status_names_are_the_ones_spans_and_metrics_use() {
        let method = "/grpc.examples.echo.Echo/UnaryEcho";
        let mut end = crate::event::End::new(Side::Server, method, tonic::Code::NotFound);
        end.message = "gone";
        let text = Line::rpc(tags(), &RpcStats::End(end)).to_text();
        assert!(
            text.contains(" code=5 status=NOT_FOUND message=gone "),
            "{text}"
        );
    }

    #[test]
    fn json_has_grpc_go_names() {
        let v: Value = serde_json::from_str(&Line::rpc(tags(), &payload()).to_json()).unwrap();
        assert_eq!(v["event"], "InPayload");
        assert_eq!(v["side"], "server");
        assert_eq!(v["method"], "/grpc.examples.echo.Echo/UnaryEcho");
        assert_eq!(v["length"], 7);
        assert_eq!(v["wire_length"], 12);
        assert_eq!(v["remote_addr"], "127.0.0.1:4000");
    }
}
