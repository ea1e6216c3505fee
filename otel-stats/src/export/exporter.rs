//! [`DirectSpanExporter`]: a `SpanExporter` for the SDK's batch processor that encodes each
//! batch once, straight into the bytes of an OTLP request, and hands them to a sender that
//! ships, retries and accounts for them on a thread of its own.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper_util::client::legacy::connect::Connect;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use super::client::{HttpsConnector, https_connector};
use super::config::SignalConfig;
use super::encode::encode_export_trace_request;
use super::error::ConfigError;
use super::retry::{Backoff, Verdict};
use super::transport::{Accepted, Failure, Transport};

/// The default bound on the bytes of requests in flight or waiting to be retried.
pub const DEFAULT_MAX_IN_FLIGHT_BYTES: usize = 32 * 1024 * 1024;

/// Where an exporter reports what became of the spans it was given: [`ExportStats`]
/// (`init_otlp`'s counters) implements it. Spans neither exported nor failed were dropped.
///
/// [`ExportStats`]: crate::ExportStats
pub(crate) trait ExportTally: Send + Sync + fmt::Debug {
    /// The collector took `spans`.
    fn exported(&self, spans: u64);
    /// `spans` were in a request that failed, or the collector rejected them.
    fn failed(&self, spans: u64, error: &dyn fmt::Display);
    /// `spans` were dropped before any request, to keep memory bounded.
    fn dropped(&self, spans: u64, error: &dyn fmt::Display);
}

/// An OTLP span exporter for the SDK's [`BatchSpanProcessor`] that encodes each batch
/// straight from [`SpanData`] into the bytes of one `ExportTraceServiceRequest`, with no
/// intermediate protobuf structs, and ships them over OTLP/gRPC or OTLP/HTTP as its
/// [`SignalConfig`] says: endpoint, headers, gzip, timeout (and TLS, given a connector that
/// speaks it).
///
/// - **Pipelined.** `export` returns once the request is queued for sending, so the batch
///   processor goes on with the next batch while this one is on the wire. Requests share
///   one connection (one HTTP/2 connection for gRPC), sent from a thread of the exporter's
///   own, so neither the application's runtime nor a current-thread runtime is needed.
/// - **Retries** follow the OTLP specification: gRPC `UNAVAILABLE`, `CANCELLED`,
///   `DEADLINE_EXCEEDED`, `ABORTED`, `OUT_OF_RANGE`, `DATA_LOSS`, and `RESOURCE_EXHAUSTED`
///   with a `RetryInfo`; HTTP 429, 502, 503, 504; connection errors. Backoff is exponential
///   with jitter and honours `Retry-After` and `RetryInfo`; every attempt of a request fits
///   in the configured timeout. Other failures fail the request at once.
/// - **Bounded in bytes.** Requests in flight or waiting to retry hold at most
///   [`with_max_in_flight_bytes`](Self::with_max_in_flight_bytes) bytes
///   ([`DEFAULT_MAX_IN_FLIGHT_BYTES`]); a batch that would exceed it is dropped and counted
///   (a single request larger than the bound is still sent when nothing else is in flight).
/// - **Accounted.** [`stats`](Self::stats) says what was exported, rejected (a collector's
///   partial success), failed and dropped.
/// - **Flushed.** [`force_flush`](SpanExporter::force_flush) and
///   [`shutdown`](SpanExporter::shutdown_with_timeout) wait for the requests in flight, up
///   to their timeout. The batch processor calls the exporter's `shutdown` when it shuts
///   down, but not its `force_flush` when it flushes: a flush of the provider has handed
///   every span to the exporter when it returns, not necessarily to the collector.
///
/// # Examples
///
/// ```no_run
/// use otel_stats::export::{DirectSpanExporter, Protocol, SignalConfig};
/// use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = SignalConfig::new(Protocol::Grpc, "http://localhost:4317".parse()?);
/// let exporter = DirectSpanExporter::new(&config)?;
/// let provider = SdkTracerProvider::builder()
///     .with_span_processor(BatchSpanProcessor::builder(exporter).build())
///     .build();
/// // ... spans ...
/// provider.shutdown()?;
/// # Ok(()) }
/// ```
///
/// [`BatchSpanProcessor`]: opentelemetry_sdk::trace::BatchSpanProcessor
pub struct DirectSpanExporter<C = HttpsConnector> {
    sender: Arc<Sender<C>>,
    max_in_flight_bytes: usize,
    resource: Resource,
    /// The uncompressed request when compressing, reused across batches (`export` is never
    /// called concurrently; the lock is for `Sync`).
    scratch: Mutex<Vec<u8>>,
    /// The size of the last request, to allocate the next one at once.
    size_hint: AtomicUsize,
    thread: SenderThread,
}

impl DirectSpanExporter<HttpsConnector> {
    /// An exporter for `config`'s endpoint, `http` or `https` (rustls, with `config.tls`).
    pub fn new(config: &SignalConfig) -> Result<DirectSpanExporter<HttpsConnector>, ConfigError> {
        Self::with_connector(config, https_connector(config)?)
    }
}

impl<C> DirectSpanExporter<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    /// An exporter that opens its connections with `connector` (a TLS connector for `https`
    /// endpoints; for HTTP/2 over TLS it must negotiate `h2` with ALPN).
    pub fn with_connector(
        config: &SignalConfig,
        connector: C,
    ) -> Result<DirectSpanExporter<C>, ConfigError> {
        let (sender, thread) = Sender::start(config, connector)?;
        Ok(DirectSpanExporter {
            sender,
            max_in_flight_bytes: DEFAULT_MAX_IN_FLIGHT_BYTES,
            resource: Resource::builder_empty().build(),
            scratch: Mutex::new(Vec::new()),
            size_hint: AtomicUsize::new(0),
            thread,
        })
    }

    /// Bounds the bytes of requests in flight or waiting to be retried (default
    /// [`DEFAULT_MAX_IN_FLIGHT_BYTES`]).
    pub fn with_max_in_flight_bytes(mut self, bytes: usize) -> DirectSpanExporter<C> {
        self.max_in_flight_bytes = bytes;
        self
    }

    /// Reports outcomes to `tally` as well as to [`stats`](Self::stats).
    pub(crate) fn with_tally(self, tally: Arc<dyn ExportTally>) -> DirectSpanExporter<C> {
        self.sender.report_to(tally);
        self
    }
}

impl<C> DirectSpanExporter<C> {
    /// What became of the spans exported so far.
    pub fn stats(&self) -> DirectExportStats {
        self.sender.ledger.counts.snapshot()
    }

    /// A handle on the exporter's [`stats`](Self::stats) and requests in flight, usable once
    /// the exporter is in a processor: to read the figures, or to wait for the collector's
    /// answers after the processor's flush (which hands spans to the exporter, but does not
    /// wait for the requests it sent).
    ///
    /// ```no_run
    /// # use otel_stats::export::{DirectSpanExporter, Protocol, SignalConfig};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let config = SignalConfig::new(Protocol::Grpc, "http://localhost:4317".parse()?);
    /// let exporter = DirectSpanExporter::new(&config)?;
    /// let handle = exporter.handle();
    /// // ... install the exporter, export, flush the provider ...
    /// handle.flush(std::time::Duration::from_secs(5))?;
    /// println!("{:?}", handle.stats());
    /// # Ok(()) }
    /// ```
    pub fn handle(&self) -> DirectExportHandle {
        DirectExportHandle(Arc::clone(&self.sender.ledger))
    }
}

/// A shared handle on a [`DirectSpanExporter`]: its figures and its requests in flight.
#[derive(Debug, Clone)]
pub struct DirectExportHandle(pub(super) Arc<Ledger>);

impl DirectExportHandle {
    /// What became of the spans exported so far.
    pub fn stats(&self) -> DirectExportStats {
        self.0.counts.snapshot()
    }

    /// Waits until every request sent so far has its answer (or has failed), at most
    /// `timeout`.
    pub fn flush(&self, timeout: Duration) -> OTelSdkResult {
        self.0.wait_settled(timeout)
    }

    /// The spans in requests in flight or waiting to be retried: handed over, not settled.
    pub(crate) fn in_flight_spans(&self) -> u64 {
        self.0.lock().spans
    }
}

impl<C> fmt::Debug for DirectSpanExporter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectSpanExporter")
            .field("timeout", &self.sender.timeout)
            .field("max_in_flight_bytes", &self.max_in_flight_bytes)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<C> SpanExporter for DirectSpanExporter<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        // All the work is synchronous: encode, then hand over to the sender's thread.
        let result = self.encode_and_send(batch);
        async move { result }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.sender.ledger.wait_settled(self.sender.timeout)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        if self.thread.shut_down.swap(true, Ordering::AcqRel) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let settled = self.sender.ledger.wait_settled(timeout);
        // Requests still in flight are cancelled with the thread, and count as failed.
        self.thread.stop();
        settled
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.clone();
    }
}

impl<C> DirectSpanExporter<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    fn encode_and_send(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        if self.thread.shut_down.load(Ordering::Acquire) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        if batch.is_empty() {
            return Ok(());
        }
        let spans = batch.len() as u64;
        let body = {
            let mut scratch = self.scratch.lock().unwrap_or_else(PoisonError::into_inner);
            self.sender.transport.body(
                self.size_hint.load(Ordering::Relaxed),
                &mut scratch,
                |out| encode_export_trace_request(&self.resource, &batch, out),
            )
        };
        // Freed here, on the batch processor's thread, before the request is on its way.
        drop(batch);
        self.size_hint.store(body.len(), Ordering::Relaxed);
        Sender::send(&self.sender, body, spans, self.max_in_flight_bytes)
    }
}

/// What a [`DirectSpanExporter`] did with the spans it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DirectExportStats {
    /// Spans the collector accepted.
    pub exported: u64,
    /// Spans the collector refused in an accepted request (OTLP partial success).
    pub rejected: u64,
    /// Spans in requests that failed (non-retryable error, retries exhausted, timeout).
    pub failed: u64,
    /// Spans dropped before sending because the in-flight bytes were at their bound.
    pub dropped: u64,
    /// Bytes of the requests dropped.
    pub dropped_bytes: u64,
    /// Requests sent, counting each attempt.
    pub attempts: u64,
    /// Attempts that were retries.
    pub retries: u64,
}

#[derive(Debug, Default)]
pub(super) struct Counts {
    exported: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    dropped_bytes: AtomicU64,
    attempts: AtomicU64,
    retries: AtomicU64,
}

impl Counts {
    pub(super) fn snapshot(&self) -> DirectExportStats {
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        DirectExportStats {
            exported: get(&self.exported),
            rejected: get(&self.rejected),
            failed: get(&self.failed),
            dropped: get(&self.dropped),
            dropped_bytes: get(&self.dropped_bytes),
            attempts: get(&self.attempts),
            retries: get(&self.retries),
        }
    }
}

/// The requests in flight or waiting to be retried.
#[derive(Debug, Default)]
struct InFlight {
    requests: usize,
    bytes: usize,
    spans: u64,
}

/// The accounts of an exporter's requests, shared with its handles.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    pub(super) counts: Counts,
    in_flight: Mutex<InFlight>,
    /// Signalled whenever a request settles.
    settled: Condvar,
}

impl Ledger {
    fn lock(&self) -> std::sync::MutexGuard<'_, InFlight> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until no request is in flight, at most `timeout`.
    pub(super) fn wait_settled(&self, timeout: Duration) -> OTelSdkResult {
        let (in_flight, wait) = self
            .settled
            .wait_timeout_while(self.lock(), timeout, |f| f.requests > 0)
            .unwrap_or_else(PoisonError::into_inner);
        if wait.timed_out() && in_flight.requests > 0 {
            return Err(OTelSdkError::Timeout(timeout));
        }
        Ok(())
    }
}

/// Ships requests on the exporter's thread, and keeps their accounts.
#[derive(Debug)]
pub(super) struct Sender<C> {
    pub(super) transport: Transport<C>,
    /// The time every attempt of one request fits in.
    pub(super) timeout: Duration,
    pub(super) ledger: Arc<Ledger>,
    tally: OnceLock<Arc<dyn ExportTally>>,
    pub(super) runtime: Handle,
}

impl<C> Sender<C> {
    /// Reports outcomes to `tally` too (once; a second tally is ignored).
    pub(super) fn report_to(&self, tally: Arc<dyn ExportTally>) {
        let _ = self.tally.set(tally);
    }
}

impl<C> Sender<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    /// A sender for `config`'s endpoint, and the thread it sends from.
    pub(super) fn start(
        config: &SignalConfig,
        connector: C,
    ) -> Result<(Arc<Sender<C>>, SenderThread), ConfigError> {
        let transport = Transport::new(config, connector)?;
        let thread = SenderThread::start()?;
        let sender = Arc::new(Sender {
            transport,
            timeout: config.timeout,
            ledger: Arc::default(),
            tally: OnceLock::new(),
            runtime: thread.handle.clone(),
        });
        Ok((sender, thread))
    }

    /// Admits the request within the byte bound and starts it, or drops it.
    pub(super) fn send(
        this: &Arc<Sender<C>>,
        body: Bytes,
        spans: u64,
        max_bytes: usize,
    ) -> OTelSdkResult {
        let bytes = body.len();
        {
            let mut in_flight = this.ledger.lock();
            if in_flight.requests > 0 && in_flight.bytes + bytes > max_bytes {
                let held = in_flight.bytes;
                drop(in_flight);
                let error = format!(
                    "{spans} spans dropped: {held} bytes of requests are in flight or \
                     retrying, and {bytes} more would pass the bound of {max_bytes}"
                );
                this.dropped(spans, bytes, &error);
                return Err(OTelSdkError::InternalFailure(error));
            }
            in_flight.requests += 1;
            in_flight.bytes += bytes;
            in_flight.spans += spans;
        }
        let request = Request {
            sender: Arc::clone(this),
            spans,
            bytes,
            settled: false,
        };
        this.runtime.spawn(request.ship(body));
        Ok(())
    }
}

impl<C> Sender<C> {
    /// Counts `spans` (`bytes` of them encoded) as dropped before any request.
    pub(super) fn dropped(&self, spans: u64, bytes: usize, error: &dyn fmt::Display) {
        let counts = &self.ledger.counts;
        counts.dropped.fetch_add(spans, Ordering::Relaxed);
        counts
            .dropped_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
        if let Some(tally) = self.tally.get() {
            tally.dropped(spans, error);
        }
    }

    fn exported(&self, spans: u64) {
        self.ledger
            .counts
            .exported
            .fetch_add(spans, Ordering::Relaxed);
        if let Some(tally) = self.tally.get() {
            tally.exported(spans);
        }
    }

    pub(super) fn failed(&self, spans: u64, error: &dyn fmt::Display) {
        self.ledger
            .counts
            .failed
            .fetch_add(spans, Ordering::Relaxed);
        if let Some(tally) = self.tally.get() {
            tally.failed(spans, error);
        }
    }
}

/// One request from admission to its outcome; whatever ends it (an answer, a give-up, the
/// thread stopping), it leaves the in-flight accounts and its spans are counted once.
struct Request<C> {
    sender: Arc<Sender<C>>,
    spans: u64,
    bytes: usize,
    settled: bool,
}

impl<C> Request<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    async fn ship(mut self, body: Bytes) {
        let sender = Arc::clone(&self.sender);
        let deadline = Instant::now() + sender.timeout;
        let mut backoff = Backoff::new();
        let mut attempt = 0u64;
        let outcome = loop {
            sender
                .ledger
                .counts
                .attempts
                .fetch_add(1, Ordering::Relaxed);
            if attempt > 0 {
                sender.ledger.counts.retries.fetch_add(1, Ordering::Relaxed);
            }
            attempt += 1;
            let time_left = deadline.saturating_duration_since(Instant::now());
            let failure = match sender.transport.send(body.clone(), time_left).await {
                Ok(accepted) => break Ok(accepted),
                Err(failure) => failure,
            };
            if failure.verdict == Verdict::Fail {
                break Err(failure);
            }
            let wait = backoff.delay(failure.verdict);
            if Instant::now() + wait >= deadline {
                break Err(Failure {
                    error: format!(
                        "{} (after {attempt} attempts; no time left to retry within {:?})",
                        failure.error, sender.timeout
                    ),
                    ..failure
                });
            }
            tokio::time::sleep(wait).await;
        };
        self.settle(outcome);
    }

    fn settle(&mut self, outcome: Result<Accepted, Failure>) {
        self.settled = true;
        let sender = &self.sender;
        match outcome {
            Ok(Accepted { partial: None }) => sender.exported(self.spans),
            Ok(Accepted {
                partial: Some(partial),
            }) => {
                let rejected = partial.rejected.min(self.spans);
                sender
                    .ledger
                    .counts
                    .rejected
                    .fetch_add(rejected, Ordering::Relaxed);
                sender.exported(self.spans - rejected);
                if rejected > 0 {
                    sender.failed(
                        rejected,
                        &format_args!(
                            "the collector rejected {rejected} spans: {}",
                            partial.message
                        ),
                    );
                }
            }
            Err(failure) => sender.failed(self.spans, &failure.error),
        }
    }
}

impl<C> Drop for Request<C> {
    fn drop(&mut self) {
        if !self.settled {
            self.sender.failed(
                self.spans,
                &"the exporter shut down before the collector answered",
            );
        }
        let mut in_flight = self.sender.ledger.lock();
        in_flight.requests -= 1;
        in_flight.bytes -= self.bytes;
        in_flight.spans -= self.spans;
        drop(in_flight);
        self.sender.ledger.settled.notify_all();
    }
}

/// The thread requests are sent from: a current-thread runtime that runs until the
/// exporter shuts down, or is dropped (which drops `stop`, without waiting for the thread).
#[derive(Debug)]
pub(super) struct SenderThread {
    pub(super) handle: Handle,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    pub(super) shut_down: AtomicBool,
}

impl SenderThread {
    fn start() -> Result<SenderThread, ConfigError> {
        let failed = |e: std::io::Error| ConfigError::new("exporter thread", "", e.to_string());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(failed)?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("otel-stats-otlp".into())
            .spawn(move || {
                // Returns when told to stop or when the exporter is dropped; dropping the
                // runtime then cancels what is left.
                let _ = runtime.block_on(stopped);
            })
            .map_err(failed)?;
        Ok(SenderThread {
            handle,
            stop: Mutex::new(Some(stop)),
            thread: Mutex::new(Some(thread)),
            shut_down: AtomicBool::new(false),
        })
    }

    pub(super) fn stop(&self) {
        drop(
            self.stop
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // Not from the thread itself (a request's task never shuts its exporter down).
        if let Some(thread) = thread
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}
