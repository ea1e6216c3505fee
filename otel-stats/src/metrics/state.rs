//! What the handler keeps in an RPC's or a connection's [`Context`](opentelemetry::Context):
//! decided once when it is tagged, updated with atomics, read at its end. No locks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use opentelemetry::KeyValue;

use super::series::{Series, Uncached};
use crate::event::Side;

/// One RPC's metrics state.
#[derive(Debug)]
pub(super) struct RpcMetrics {
    pub(super) side: Side,
    pub(super) series: RpcSeries,
    /// Compressed message bytes sent and received (counted only for the A66 instruments).
    sent: AtomicU64,
    rcvd: AtomicU64,
}

/// The attributes an RPC is measured with.
#[derive(Debug)]
pub(super) enum RpcSeries {
    /// Its method's, shared with its other RPCs.
    Cached(Arc<Series>),
    /// Its own, for a method not (yet) in the cache.
    Uncached(Box<Uncached>),
}

impl RpcSeries {
    /// The attributes of A66's `started` counter.
    pub(super) fn started(&self) -> &[KeyValue] {
        match self {
            RpcSeries::Cached(series) => series.started(),
            RpcSeries::Uncached(rpc) => &rpc.started,
        }
    }
}

impl RpcMetrics {
    pub(super) fn new(side: Side, series: RpcSeries) -> Self {
        RpcMetrics {
            side,
            series,
            sent: AtomicU64::new(0),
            rcvd: AtomicU64::new(0),
        }
    }

    pub(super) fn add_sent(&self, bytes: usize) {
        self.sent.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(super) fn add_rcvd(&self, bytes: usize) {
        self.rcvd.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Bytes sent and received so far.
    pub(super) fn sizes(&self) -> (u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.rcvd.load(Ordering::Relaxed),
        )
    }
}

/// One connection's metrics state.
#[derive(Debug)]
pub(super) struct ConnMetrics {
    pub(super) side: Side,
    /// Whether `ConnBegin` counted the connection as open, so `ConnEnd` counts it closed once.
    open: AtomicBool,
    /// Server RPCs the connection carried.
    rpcs: AtomicU64,
}

impl ConnMetrics {
    pub(super) fn new(side: Side) -> Self {
        ConnMetrics {
            side,
            open: AtomicBool::new(false),
            rpcs: AtomicU64::new(0),
        }
    }

    /// Marks the connection open; `false` if it already was.
    pub(super) fn open(&self) -> bool {
        !self.open.swap(true, Ordering::Relaxed)
    }

    /// Marks the connection closed; `false` if it was not open.
    pub(super) fn close(&self) -> bool {
        self.open.swap(false, Ordering::Relaxed)
    }

    /// Counts an RPC; `true` for the connection's first.
    pub(super) fn add_rpc(&self) -> bool {
        self.rpcs.fetch_add(1, Ordering::Relaxed) == 0
    }

    pub(super) fn rpcs(&self) -> u64 {
        self.rpcs.load(Ordering::Relaxed)
    }
}
