//! Where the spans of [`init_otlp`](crate::init_otlp)'s pipeline went: ended, exported,
//! failed to export, or dropped by the batch queue; and a `tracing` warning (target
//! `otel_stats::export`) when spans are lost, at most one every [`REPORT_EVERY`], never one
//! per span. The library prints nothing: the program's subscriber, or its own look at
//! [`ExportStats`], decides what the user sees.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};

/// The least time between two warnings about lost spans.
pub(super) const REPORT_EVERY: Duration = Duration::from_secs(10);

/// What happened to the sampled spans of a pipeline so far.
///
/// `exported + failed + dropped == ended` once the pipeline has been flushed; before, spans
/// still queued count as dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ExportStats {
    /// Sampled spans that ended (and so were handed to the batch processor).
    pub ended: u64,
    /// Spans the collector accepted.
    pub exported: u64,
    /// Spans in export requests that failed (collector unreachable, refusing, too slow).
    pub failed: u64,
}

impl ExportStats {
    /// Spans that never reached an export request: dropped because the queue was full (or
    /// still queued, before a flush).
    pub fn dropped(&self) -> u64 {
        self.ended.saturating_sub(self.exported + self.failed)
    }
}

impl fmt::Display for ExportStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} spans ended, {} exported, {} failed to export, {} dropped",
            self.ended,
            self.exported,
            self.failed,
            self.dropped()
        )
    }
}

/// The counters a pipeline's processor and exporter share.
#[derive(Debug)]
pub(super) struct Counters {
    ended: AtomicU64,
    exported: AtomicU64,
    failed: AtomicU64,
    /// Spans the queue and one batch in flight can hold: a larger backlog means drops.
    capacity: u64,
    last_warning: Mutex<Option<Instant>>,
}

impl Counters {
    pub(super) fn new(capacity: u64) -> Arc<Counters> {
        Arc::new(Counters {
            ended: AtomicU64::new(0),
            exported: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            capacity,
            last_warning: Mutex::new(None),
        })
    }

    pub(super) fn stats(&self) -> ExportStats {
        ExportStats {
            ended: self.ended.load(Ordering::Relaxed),
            exported: self.exported.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }

    /// Emits `what` and the figures as a warning, unless one went out less than
    /// [`REPORT_EVERY`] ago.
    fn warn(&self, what: fmt::Arguments<'_>) {
        let Ok(mut last) = self.last_warning.try_lock() else {
            return; // another thread is warning right now
        };
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < REPORT_EVERY) {
            return;
        }
        *last = Some(now);
        let stats = self.stats();
        report(
            stats,
            format_args!("{what} ({stats}; at most one such warning every {REPORT_EVERY:?})"),
        );
    }

    /// Warns, at the end, if anything was lost.
    pub(super) fn final_report(&self) {
        let stats = self.stats();
        if stats.failed + stats.dropped() > 0 {
            report(
                stats,
                format_args!("spans lost by the OTLP pipeline: {stats}"),
            );
        }
    }
}

/// The direct exporter reports its outcomes itself, as it settles requests after `export`.
impl crate::export::ExportTally for Counters {
    fn exported(&self, spans: u64) {
        self.exported.fetch_add(spans, Ordering::Relaxed);
    }

    fn failed(&self, spans: u64, error: &dyn fmt::Display) {
        self.failed.fetch_add(spans, Ordering::Relaxed);
        self.warn(format_args!("exporting {spans} spans failed: {error}"));
    }

    fn dropped(&self, _spans: u64, error: &dyn fmt::Display) {
        self.warn(format_args!("{error}"));
    }
}

/// A warning about lost spans, with the figures as fields for structured subscribers.
fn report(stats: ExportStats, message: fmt::Arguments<'_>) {
    tracing::warn!(
        target: "otel_stats::export",
        ended = stats.ended,
        exported = stats.exported,
        failed = stats.failed,
        dropped = stats.dropped(),
        "{message}"
    );
}

/// Counts the sampled spans that end, in front of the batch processor.
#[derive(Debug)]
pub(super) struct CountingProcessor<P> {
    pub(super) inner: P,
    pub(super) counters: Arc<Counters>,
    /// otel-stats' own export path's requests in flight (sent, not yet answered: not a
    /// backlog of the queue), and how long a flush waits for them.
    pub(super) settle: Option<(crate::export::DirectExportHandle, Duration)>,
}

impl<P: SpanProcessor> SpanProcessor for CountingProcessor<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            let c = &self.counters;
            let ended = c.ended.fetch_add(1, Ordering::Relaxed) + 1;
            let settled = c.exported.load(Ordering::Relaxed) + c.failed.load(Ordering::Relaxed);
            // The requests in flight are only looked up (a lock) once the backlog looks
            // too long: a slow collector holds requests, not queued spans.
            let in_flight = || self.settle.as_ref().map_or(0, |(h, _)| h.in_flight_spans());
            if ended.saturating_sub(settled) > c.capacity
                && ended.saturating_sub(settled + in_flight()) > c.capacity
            {
                c.warn(format_args!(
                    "the span queue is full; spans are being dropped"
                ));
            }
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        let queued = self.inner.force_flush();
        match &self.settle {
            Some((handle, timeout)) => queued.and(handle.flush(*timeout)),
            None => queued,
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Counts what the collector accepted and what failed.
#[derive(Debug)]
pub(super) struct CountingExporter<E> {
    pub(super) inner: E,
    pub(super) counters: Arc<Counters>,
}

impl<E: SpanExporter> SpanExporter for CountingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len() as u64;
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) => {
                self.counters.exported.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                self.counters.failed.fetch_add(n, Ordering::Relaxed);
                self.counters
                    .warn(format_args!("exporting {n} spans failed: {e}"));
            }
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_is_what_never_reached_an_export() {
        let stats = ExportStats {
            ended: 100,
            exported: 60,
            failed: 10,
        };
        assert_eq!(stats.dropped(), 30);
        assert_eq!(
            stats.to_string(),
            "100 spans ended, 60 exported, 10 failed to export, 30 dropped"
        );
    }

    #[test]
    fn warnings_are_rate_limited() {
        let counters = Counters::new(1);
        counters.warn(format_args!("first"));
        let first = *counters.last_warning.lock().unwrap();
        counters.warn(format_args!("second, suppressed"));
        assert_eq!(*counters.last_warning.lock().unwrap(), first);
    }
}
