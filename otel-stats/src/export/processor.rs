//! [`DirectSpanProcessor`]: a `SpanProcessor` that encodes each span into OTLP protobuf when
//! it ends, on the thread that ends it, frees the `SpanData` there, and hands batches of
//! those bytes to the direct exporter's sender (same transport, retries, byte bound and
//! accounts as [`DirectSpanExporter`](super::DirectSpanExporter)).

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use hyper_util::client::legacy::connect::Connect;
use opentelemetry::Context;
use opentelemetry::InstrumentationScope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use tokio::sync::mpsc;

use super::client::{HttpsConnector, https_connector};
use super::config::SignalConfig;
use super::encode::{encode_request_from_framed, put_framed_span, same_scope};
use super::env::BspLimits;
use super::error::ConfigError;
use super::exporter::{DEFAULT_MAX_IN_FLIGHT_BYTES, ExportTally, Sender, SenderThread};
use super::{DirectExportHandle, DirectExportStats};

/// An OTLP span processor that encodes each span once, when it ends, on the thread that
/// ends it, straight from its [`SpanData`] into the bytes of a `ScopeSpans.spans` field, and
/// frees the `SpanData` right there. The bytes wait in a buffer per instrumentation scope;
/// a full batch, the schedule delay, [`force_flush`](SpanProcessor::force_flush) or
/// [`shutdown`](SpanProcessor::shutdown_with_timeout) hand them to a task on the
/// processor's own thread, which puts them in one `ExportTraceServiceRequest` (the bytes
/// [`encode_export_trace_request`](super::encode_export_trace_request) writes for the same
/// spans) and sends it as [`DirectSpanExporter`](super::DirectSpanExporter) does: OTLP/gRPC
/// or OTLP/HTTP, gzip, retries, a bound in bytes on what is in flight, the same
/// [`stats`](Self::stats).
///
/// It replaces the SDK's batch processor and an exporter behind it: no queue of `SpanData`,
/// no batch thread. Ending a span never waits for the network: it encodes (a fraction of a
/// microsecond for a span with a few attributes and events), takes a lock for as long as a
/// copy of those bytes takes, and, once per batch, wakes the sending thread.
///
/// - **Bounded.** At most [`with_max_queue_size`](DirectSpanProcessorBuilder::with_max_queue_size)
///   spans (`OTEL_BSP_MAX_QUEUE_SIZE`, 2048) wait to be put in a request; a span ending
///   when they are there is dropped and counted in
///   [`DirectExportStats::dropped`]. Requests then obey the byte bound of the exporter.
/// - **Batched** as the SDK's batch processor batches: a request every
///   `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` spans (512), or every `OTEL_BSP_SCHEDULE_DELAY`
///   milliseconds (5000) for what is waiting.
/// - **Flushed.** `force_flush` and `shutdown` send what waits and wait for the
///   collector's answers (up to the export timeout, or the shutdown's).
///
/// # Examples
///
/// ```no_run
/// use otel_stats::export::{DirectSpanProcessor, Protocol, SignalConfig};
/// use opentelemetry_sdk::trace::SdkTracerProvider;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = SignalConfig::new(Protocol::Grpc, "http://localhost:4317".parse()?);
/// let processor = DirectSpanProcessor::builder(&config).build()?;
/// let provider = SdkTracerProvider::builder()
///     .with_span_processor(processor)
///     .build();
/// // ... spans ...
/// provider.shutdown()?;
/// # Ok(()) }
/// ```
pub struct DirectSpanProcessor<C = HttpsConnector> {
    shared: Arc<Shared>,
    sender: Arc<Sender<C>>,
    commands: mpsc::UnboundedSender<Command>,
    thread: SenderThread,
    limits: Limits,
}

/// How many spans wait, how many make a request, how long a span may wait.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_queue_size: usize,
    max_export_batch_size: usize,
    scheduled_delay: Duration,
    max_in_flight_bytes: usize,
}

/// The settings of a [`DirectSpanProcessor`]: the `OTEL_BSP_*` variables, unless set here.
#[derive(Debug, Clone)]
pub struct DirectSpanProcessorBuilder {
    config: SignalConfig,
    limits: Limits,
}

/// What the ending threads and the sending task share.
#[derive(Debug)]
struct Shared {
    /// The spans encoded and not yet handed over.
    pending: Mutex<Pending>,
    /// Spans accepted and not yet in a request: pending, or handed over and not yet put in
    /// a request.
    queued: AtomicUsize,
    resource: RwLock<Resource>,
}

/// Encoded spans, per scope, in the order the scopes first came.
#[derive(Debug, Default)]
struct Pending {
    /// Set under the lock by `shutdown`: a span that finds it set is dropped and counted,
    /// never left where no request will take it.
    closed: bool,
    scopes: Vec<ScopeBuffer>,
    spans: usize,
    /// The scope of the last span, where the next one most likely belongs.
    last: usize,
    /// The bytes of the last batch handed over, to size the next at once.
    size_hint: usize,
}

/// One scope's spans, each framed as a `ScopeSpans.spans` field.
#[derive(Debug)]
struct ScopeBuffer {
    scope: InstrumentationScope,
    framed: Vec<u8>,
}

/// What the sending task is told.
#[derive(Debug)]
enum Command {
    /// Put these spans in a request and send it.
    Ship(Pending),
    /// Send what is pending, then answer once everything before is sent.
    Flush(std::sync::mpsc::SyncSender<()>),
}

/// Why a span was dropped before it joined the queue.
const AFTER_SHUTDOWN: &str = "a span ended after the processor shut down";
const QUEUE_FULL: &str = "a span was dropped: the processor's queue is full";

thread_local! {
    /// Where a span is encoded before it is copied under the lock, per thread.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Default for Limits {
    fn default() -> Limits {
        let bsp = BspLimits::from_env();
        Limits {
            max_queue_size: bsp.max_queue_size.max(1),
            max_export_batch_size: bsp.max_export_batch_size.max(1),
            scheduled_delay: bsp.scheduled_delay,
            max_in_flight_bytes: DEFAULT_MAX_IN_FLIGHT_BYTES,
        }
    }
}

impl DirectSpanProcessor<HttpsConnector> {
    /// A builder for a processor exporting as `config` says, with the limits of the
    /// `OTEL_BSP_*` variables (or the SDK's defaults).
    pub fn builder(config: &SignalConfig) -> DirectSpanProcessorBuilder {
        DirectSpanProcessorBuilder {
            config: config.clone(),
            limits: Limits::default(),
        }
    }
}

impl DirectSpanProcessorBuilder {
    /// The most spans that wait to be sent (`OTEL_BSP_MAX_QUEUE_SIZE`).
    pub fn with_max_queue_size(mut self, spans: usize) -> DirectSpanProcessorBuilder {
        self.limits.max_queue_size = spans.max(1);
        self
    }

    /// The spans of one request (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`); at most the queue's size.
    pub fn with_max_export_batch_size(mut self, spans: usize) -> DirectSpanProcessorBuilder {
        self.limits.max_export_batch_size = spans.max(1);
        self
    }

    /// How long spans wait for a full batch before they are sent anyway
    /// (`OTEL_BSP_SCHEDULE_DELAY`).
    pub fn with_scheduled_delay(mut self, delay: Duration) -> DirectSpanProcessorBuilder {
        self.limits.scheduled_delay = delay;
        self
    }

    /// Bounds the bytes of requests in flight or waiting to be retried (default
    /// [`DEFAULT_MAX_IN_FLIGHT_BYTES`]).
    pub fn with_max_in_flight_bytes(mut self, bytes: usize) -> DirectSpanProcessorBuilder {
        self.limits.max_in_flight_bytes = bytes;
        self
    }

    /// The processor, for an `http` or `https` endpoint (rustls, with the config's TLS).
    pub fn build(self) -> Result<DirectSpanProcessor<HttpsConnector>, ConfigError> {
        let connector = https_connector(&self.config)?;
        self.build_with_connector(connector)
    }

    /// The processor, opening its connections with `connector`.
    pub fn build_with_connector<C>(
        self,
        connector: C,
    ) -> Result<DirectSpanProcessor<C>, ConfigError>
    where
        C: Connect + Clone + Send + Sync + 'static,
    {
        let mut limits = self.limits;
        limits.max_export_batch_size = limits.max_export_batch_size.min(limits.max_queue_size);
        let (sender, thread) = Sender::start(&self.config, connector)?;
        let shared = Arc::new(Shared {
            pending: Mutex::default(),
            queued: AtomicUsize::new(0),
            resource: RwLock::new(Resource::builder_empty().build()),
        });
        let (commands, received) = mpsc::unbounded_channel();
        thread.handle.spawn(run(
            Arc::clone(&shared),
            Arc::clone(&sender),
            received,
            limits,
        ));
        Ok(DirectSpanProcessor {
            shared,
            sender,
            commands,
            thread,
            limits,
        })
    }
}

impl<C> DirectSpanProcessor<C> {
    /// Reports outcomes to `tally` as well as to [`stats`](Self::stats).
    pub(crate) fn with_tally(self, tally: Arc<dyn ExportTally>) -> DirectSpanProcessor<C> {
        self.sender.report_to(tally);
        self
    }

    /// What became of the spans ended so far (those dropped at the queue's bound included).
    pub fn stats(&self) -> DirectExportStats {
        self.sender.ledger.counts.snapshot()
    }

    /// A handle on the processor's [`stats`](Self::stats) and requests in flight, usable
    /// once the processor is in a provider.
    pub fn handle(&self) -> DirectExportHandle {
        DirectExportHandle(Arc::clone(&self.sender.ledger))
    }

    /// Counts a span dropped before it was encoded.
    fn drop_span(&self, why: &'static str) {
        self.sender.dropped(1, 0, &why);
    }

    /// Asks the sending task to send what is pending, and waits until it has, at most
    /// `timeout`; then waits for the collector's answers in what is left of it.
    fn flush_within(&self, timeout: Duration) -> OTelSdkResult {
        let start = Instant::now();
        let (ack, acked) = std::sync::mpsc::sync_channel(1);
        self.commands
            .send(Command::Flush(ack))
            .map_err(|_| OTelSdkError::AlreadyShutdown)?;
        acked
            .recv_timeout(timeout)
            .map_err(|_| OTelSdkError::Timeout(timeout))?;
        let left = timeout.saturating_sub(start.elapsed());
        self.sender.ledger.wait_settled(left)
    }
}

impl<C> fmt::Debug for DirectSpanProcessor<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectSpanProcessor")
            .field("limits", &self.limits)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<C> SpanProcessor for DirectSpanProcessor<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, mut span: SpanData) {
        if self.thread.shut_down.load(Ordering::Relaxed) {
            return self.drop_span(AFTER_SHUTDOWN);
        }
        // A full queue costs no encoding (checked again, for sure, under the lock).
        if self.shared.queued.load(Ordering::Relaxed) >= self.limits.max_queue_size {
            return self.drop_span(QUEUE_FULL);
        }
        let refused = SCRATCH.with_borrow_mut(|scratch| {
            scratch.clear();
            put_framed_span(scratch, &span);
            // Whether the span is taken is decided under the lock `shutdown` closes the
            // queue under, and a full batch is handed over under it too: a flush or a
            // shutdown that follows finds the batch ahead of it in the task's queue.
            let mut pending = self.shared.lock();
            if pending.closed {
                return Some(AFTER_SHUTDOWN);
            }
            if self.shared.queued.load(Ordering::Acquire) >= self.limits.max_queue_size {
                return Some(QUEUE_FULL);
            }
            self.shared.queued.fetch_add(1, Ordering::AcqRel);
            pending.push(&mut span.instrumentation_scope, scratch);
            if pending.spans >= self.limits.max_export_batch_size {
                // Never blocks (the channel is unbounded; the queue bound is `queued`). The
                // task lives as long as the processor; a batch it never takes is counted by
                // `shutdown` as the thread stops.
                let _ = self.commands.send(Command::Ship(pending.take()));
            }
            None
        });
        if let Some(why) = refused {
            self.drop_span(why);
        }
        // Freed here, on the thread that made it, after the lock.
        drop(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        if self.thread.shut_down.load(Ordering::Acquire) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        self.flush_within(self.sender.timeout)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        if self.thread.shut_down.swap(true, Ordering::AcqRel) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        // From here no span joins the queue: what is in it now is sent or counted below.
        self.shared.lock().closed = true;
        let flushed = self.flush_within(timeout);
        // Requests still in flight are cancelled with the thread, and count as failed.
        self.thread.stop();
        // Spans the task never put in a request (it was still busy at the timeout).
        let lost = self.shared.queued.swap(0, Ordering::AcqRel);
        if lost > 0 {
            self.sender.dropped(
                lost as u64,
                0,
                &"the processor shut down before these spans were in a request",
            );
        }
        flushed
    }

    fn set_resource(&mut self, resource: &Resource) {
        *self
            .shared
            .resource
            .write()
            .unwrap_or_else(PoisonError::into_inner) = resource.clone();
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Pending {
    /// Appends one framed span to its scope's buffer (taking the scope from the span when
    /// it is the batch's first of that scope).
    fn push(&mut self, scope: &mut InstrumentationScope, framed: &[u8]) {
        let index = match self.scopes.get(self.last) {
            Some(buffer) if same_scope(&buffer.scope, scope) => self.last,
            _ => match self
                .scopes
                .iter()
                .position(|buffer| same_scope(&buffer.scope, scope))
            {
                Some(index) => index,
                None => {
                    // The batch's first scope gets room for a batch like the last one.
                    let capacity = if self.scopes.is_empty() {
                        self.size_hint
                    } else {
                        0
                    };
                    self.scopes.push(ScopeBuffer {
                        scope: std::mem::take(scope),
                        framed: Vec::with_capacity(capacity),
                    });
                    self.scopes.len() - 1
                }
            },
        };
        self.scopes[index].framed.extend_from_slice(framed);
        self.spans += 1;
        self.last = index;
    }

    /// The pending spans, leaving none (and the size hint, and whether the queue is closed).
    fn take(&mut self) -> Pending {
        let bytes = self.scopes.iter().map(|s| s.framed.len()).sum();
        let closed = self.closed;
        let taken = std::mem::take(self);
        self.size_hint = bytes;
        self.closed = closed;
        taken
    }
}

/// The sending task: puts batches in requests and sends them, on the schedule delay and
/// when told.
async fn run<C>(
    shared: Arc<Shared>,
    sender: Arc<Sender<C>>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    limits: Limits,
) where
    C: Connect + Clone + Send + Sync + 'static,
{
    let mut scratch = Vec::new();
    let mut size_hint = 0;
    let mut ship = |batch: Pending| {
        if batch.spans == 0 {
            return;
        }
        let spans = batch.spans;
        let body = {
            let resource = shared
                .resource
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            let scopes = batch.scopes.iter().map(|s| (&s.scope, s.framed.as_slice()));
            sender.transport.body(size_hint, &mut scratch, |out| {
                encode_request_from_framed(&resource, scopes, out)
            })
        };
        drop(batch);
        size_hint = body.len();
        shared.queued.fetch_sub(spans, Ordering::AcqRel);
        // A request over the byte bound is dropped and counted there.
        let _ = Sender::send(&sender, body, spans as u64, limits.max_in_flight_bytes);
    };
    let mut deadline = tokio::time::Instant::now() + limits.scheduled_delay;
    loop {
        match tokio::time::timeout_at(deadline, commands.recv()).await {
            Ok(Some(Command::Ship(batch))) => {
                ship(batch);
                deadline = tokio::time::Instant::now() + limits.scheduled_delay;
            }
            Ok(Some(Command::Flush(ack))) => {
                let batch = shared.lock().take();
                ship(batch);
                let _ = ack.send(());
            }
            Ok(None) => break,
            Err(_) => {
                let batch = shared.lock().take();
                ship(batch);
                deadline = tokio::time::Instant::now() + limits.scheduled_delay;
            }
        }
    }
}
