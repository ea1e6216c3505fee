//! Names for the stacks users store in their own types.

use tonic::transport::Channel;

#[cfg(doc)]
use crate::BoxHandler;
use crate::{ClientStatsService, MetricsHandler, OtelHandler, StatsHandler};

/// A tonic channel whose RPCs are reported to `H`: what
/// [`ClientStatsLayer::connect`](crate::ClientStatsLayer::connect) returns, and what a
/// generated client wraps. Without `H`, a `dyn StatsHandler`: what
/// [`ClientStatsLayer::from_arc`](crate::ClientStatsLayer::from_arc) makes of a [`BoxHandler`].
///
/// ```no_run
/// use otel_stats::{ClientStatsLayer, OtelAndMetrics, StatsChannel};
/// use tonic::transport::Endpoint;
///
/// /// An application's state: the channel (or a generated client around it) is stored.
/// struct App {
///     channel: StatsChannel<OtelAndMetrics>, // not ClientStatsService<Channel, (OtelHandler, MetricsHandler)>
/// }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let stats = ClientStatsLayer::new(OtelAndMetrics::default());
/// let app = App {
///     channel: stats.connect(Endpoint::from_static("http://127.0.0.1:50051")).await?,
/// };
/// # let _ = app.channel;
/// # Ok(()) }
/// ```
pub type StatsChannel<H = dyn StatsHandler> = ClientStatsService<Channel, H>;

/// Spans and metrics from the same events, the usual pair of handlers. `Default` gives both
/// with the global providers.
pub type OtelAndMetrics = (OtelHandler, MetricsHandler);
