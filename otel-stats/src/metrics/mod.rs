//! OpenTelemetry metrics from the stats events: [`MetricsHandler`] records the semantic
//! conventions' RPC durations, optionally gRFC A66's gRPC instruments, and connection
//! instruments, for every RPC whether its trace is sampled or not.
//!
//! One concern per file: the handler (`handler.rs`), its options (`builder.rs`), the
//! instruments and their buckets (`instruments.rs`), the names of the instruments
//! ([`names`]), which methods keep their names (`methods.rs`), the attributes built once per
//! method (`series.rs`), and the per-RPC and per-connection state kept in the context
//! (`state.rs`).
//!
//! ```
//! use opentelemetry_sdk::metrics::SdkMeterProvider;
//! use otel_stats::{MetricsHandler, OtelHandler, ServerStatsLayer};
//!
//! let provider = SdkMeterProvider::builder().build();
//! let metrics = MetricsHandler::builder().meter_provider(provider).a66(true).build();
//! let stats = ServerStatsLayer::new((OtelHandler::new(), metrics));
//! # let _ = stats;
//! ```

mod builder;
mod handler;
mod instruments;
pub mod names;
mod series;
mod state;

pub use builder::MetricsHandlerBuilder;
pub use handler::MetricsHandler;
