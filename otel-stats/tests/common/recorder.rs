//! A handler that records every event it sees, with what its context carried.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use opentelemetry::Context;
use otel_stats::{ConnStats, ConnTagInfo, RpcStats, RpcTagInfo, Side, StatsHandler};
use tokio::sync::Notify;
use tonic::Code;

use super::PATIENCE;

/// What `tag_conn` put in the context.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnTag(pub u64);

/// What `tag_rpc` put in the context.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RpcTag(pub u64);

/// One recorded event, named as grpc-go names its type (`TagRPC`, `Begin`, ...).
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub name: &'static str,
    pub side: Option<Side>,
    pub method: Option<String>,
    pub conn: Option<u64>,
    pub rpc: Option<u64>,
    pub seq: Option<u64>,
    pub length: Option<usize>,
    pub wire_length: Option<usize>,
    pub compressed: Option<bool>,
    pub has_data: bool,
    pub compression: Option<String>,
    pub metadata_keys: Vec<String>,
    pub code: Option<Code>,
    pub message: Option<String>,
    pub trailers_only: Option<bool>,
    pub frame_error: Option<String>,
    pub remote_addr: Option<std::net::SocketAddr>,
    pub local_addr: Option<std::net::SocketAddr>,
}

pub struct Recorder {
    label: &'static str,
    events: Mutex<Vec<Event>>,
    changed: Notify,
    next_id: AtomicU64,
    /// Panic in every hook after recording (to prove panics are contained).
    pub panic: AtomicBool,
    /// Headers to add to outgoing requests in `tag_rpc`.
    pub inject: Mutex<Vec<(&'static str, &'static str)>>,
    /// Another handler that sees every call too, after the recorder.
    tee: Option<Box<dyn StatsHandler>>,
}

impl Recorder {
    pub fn new(label: &'static str) -> Self {
        Recorder {
            label,
            events: Mutex::new(Vec::new()),
            changed: Notify::new(),
            next_id: AtomicU64::new(1),
            panic: AtomicBool::new(false),
            inject: Mutex::new(Vec::new()),
            tee: None,
        }
    }

    /// A recorder that also passes every call on to `tee`.
    pub fn with_tee(label: &'static str, tee: impl StatsHandler) -> Self {
        Recorder {
            tee: Some(Box::new(tee)),
            ..Self::new(label)
        }
    }

    fn push(&self, event: Event) {
        self.events.lock().unwrap().push(event);
        self.changed.notify_waiters();
        if self.panic.load(Ordering::Relaxed) {
            panic!("{} recorder panics on purpose", self.label);
        }
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.events.lock().unwrap().clear();
    }

    /// Waits until `done` holds for the events, or fails the test after [`PATIENCE`].
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[Event]) -> bool) -> Vec<Event> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let notified = self.changed.notified();
            {
                let events = self.events.lock().unwrap();
                if done(&events) {
                    return events.clone();
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "{}: timed out waiting for {what}; events: {:#?}",
                    self.label,
                    self.names()
                );
            }
        }
    }

    /// Waits for the `End` of `n` RPCs.
    pub async fn wait_ends(&self, n: usize) -> Vec<Event> {
        self.wait_for(&format!("{n} End events"), |e| count(e, "End") >= n)
            .await
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.events().iter().map(|e| e.name).collect()
    }

    /// The ids of the RPCs tagged so far, in order.
    pub fn rpc_ids(&self) -> Vec<u64> {
        self.events()
            .iter()
            .filter(|e| e.name == "TagRPC")
            .filter_map(|e| e.rpc)
            .collect()
    }

    /// The names of the events of one RPC, `TagRPC` first.
    pub fn rpc_sequence(&self, rpc: u64) -> Vec<&'static str> {
        self.events()
            .iter()
            .filter(|e| e.rpc == Some(rpc))
            .map(|e| e.name)
            .collect()
    }

    pub fn rpc_events(&self, rpc: u64) -> Vec<Event> {
        self.events()
            .into_iter()
            .filter(|e| e.rpc == Some(rpc))
            .collect()
    }
}

pub fn count(events: &[Event], name: &str) -> usize {
    events.iter().filter(|e| e.name == name).count()
}

fn ids(cx: &Context) -> (Option<u64>, Option<u64>) {
    (
        cx.get::<ConnTag>().map(|t| t.0),
        cx.get::<RpcTag>().map(|t| t.0),
    )
}

impl StatsHandler for Recorder {
    fn tag_rpc(&self, cx: Context, info: &mut RpcTagInfo<'_>) -> Context {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        for (k, v) in self.inject.lock().unwrap().iter() {
            if let Some(md) = info.metadata_mut() {
                md.insert(*k, http::HeaderValue::from_static(v));
            }
        }
        let mut cx = cx.with_value(RpcTag(id));
        if let Some(tee) = &self.tee {
            cx = tee.tag_rpc(cx, info);
        }
        let (conn, rpc) = ids(&cx);
        self.push(Event {
            name: "TagRPC",
            side: Some(info.side()),
            method: Some(info.full_method().to_owned()),
            conn,
            rpc,
            metadata_keys: info.metadata().keys().map(|k| k.to_string()).collect(),
            remote_addr: info.remote_addr(),
            local_addr: info.local_addr(),
            ..Event::default()
        });
        cx
    }

    fn handle_rpc(&self, cx: &Context, stats: &RpcStats<'_>) {
        if let Some(tee) = &self.tee {
            tee.handle_rpc(cx, stats);
        }
        let (conn, rpc) = ids(cx);
        let mut event = Event {
            name: stats.name(),
            side: Some(stats.side()),
            conn,
            rpc,
            ..Event::default()
        };
        match stats {
            RpcStats::InHeader(h) | RpcStats::OutHeader(h) => {
                event.method = Some(h.full_method.to_owned());
                event.compression = h.compression.map(str::to_owned);
                event.metadata_keys = h.metadata.keys().map(|k| k.to_string()).collect();
                event.remote_addr = h.remote_addr;
                event.local_addr = h.local_addr;
            }
            RpcStats::InPayload(p) | RpcStats::OutPayload(p) => {
                event.seq = Some(p.seq);
                event.length = p.length;
                event.wire_length = Some(p.wire_length);
                event.compressed = Some(p.compressed);
                event.has_data = p.data.is_some();
            }
            RpcStats::InTrailer(t) | RpcStats::OutTrailer(t) => {
                event.trailers_only = Some(t.trailers_only);
                event.metadata_keys = t.metadata.keys().map(|k| k.to_string()).collect();
            }
            RpcStats::End(e) => {
                event.code = Some(e.code);
                event.message = Some(e.message.to_owned());
                event.frame_error = e.frame_error.map(|f| f.to_string());
            }
            _ => {}
        }
        self.push(event);
    }

    fn tag_conn(&self, cx: Context, info: &ConnTagInfo) -> Context {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut cx = cx.with_value(ConnTag(id));
        if let Some(tee) = &self.tee {
            cx = tee.tag_conn(cx, info);
        }
        self.push(Event {
            name: "TagConn",
            side: Some(info.side),
            conn: Some(id),
            remote_addr: info.remote_addr,
            local_addr: info.local_addr,
            ..Event::default()
        });
        cx
    }

    fn handle_conn(&self, cx: &Context, stats: &ConnStats) {
        if let Some(tee) = &self.tee {
            tee.handle_conn(cx, stats);
        }
        let (conn, _) = ids(cx);
        self.push(Event {
            name: stats.name(),
            side: Some(stats.side()),
            conn,
            ..Event::default()
        });
    }
}
