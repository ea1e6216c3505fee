//! What the metrics tests share: a meter provider whose periodic reader exports into the SDK's
//! in-memory exporter when the test flushes it, and the exported instruments as plain data.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::time::Duration;

use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, Histogram, MetricData, Sum};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use otel_stats::metrics::names::{RPC_CLIENT_CALL_DURATION, RPC_SERVER_CALL_DURATION};
use otel_stats::{MetricsHandler, MetricsHandlerBuilder};

/// How long a test waits for measurements that must come. A liveness bound only.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The kind of an exported instrument.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    HistogramF64,
    HistogramU64,
    /// A monotonic sum of `u64`: a counter.
    Counter,
    /// A non-monotonic sum of `i64`: an up-down counter.
    UpDownCounter,
    Other,
}

/// One time series: its attributes (values as strings) and what it holds.
#[derive(Debug, Clone)]
pub struct Point {
    pub attrs: BTreeMap<String, String>,
    /// Histograms: the number of measurements; sums: 0.
    pub count: u64,
    /// Histograms: the sum of the measurements; sums: the value.
    pub sum: f64,
    pub bounds: Vec<f64>,
}

/// One exported instrument.
#[derive(Debug, Clone)]
pub struct Instrument {
    pub name: String,
    pub unit: String,
    pub kind: Kind,
    pub points: Vec<Point>,
}

impl Instrument {
    /// The one point whose attributes are exactly `attrs`.
    pub fn point(&self, attrs: &[(&str, &str)]) -> &Point {
        let wanted: BTreeMap<String, String> = attrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.points
            .iter()
            .find(|p| p.attrs == wanted)
            .unwrap_or_else(|| panic!("{}: no point {wanted:?} in {:#?}", self.name, self.points))
    }

    /// The sum over all points of `count` (histograms) or the value (sums).
    pub fn total_count(&self) -> u64 {
        self.points.iter().map(|p| p.count).sum()
    }

    pub fn total_sum(&self) -> f64 {
        self.points.iter().map(|p| p.sum).sum()
    }
}

/// Everything exported at one collection.
#[derive(Debug, Clone, Default)]
pub struct Collected(pub Vec<Instrument>);

impl Collected {
    pub fn get(&self, name: &str) -> Option<&Instrument> {
        self.0.iter().find(|i| i.name == name)
    }

    /// The instrument `name`; fails the test if it was not exported.
    pub fn instrument(&self, name: &str) -> &Instrument {
        self.get(name)
            .unwrap_or_else(|| panic!("no instrument {name}; exported: {:?}", self.names()))
    }

    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.0.iter().map(|i| i.name.as_str()).collect();
        names.sort_unstable();
        names
    }

    /// Histogram measurements of `name` (0 if not exported).
    pub fn count(&self, name: &str) -> u64 {
        self.get(name).map_or(0, Instrument::total_count)
    }

    /// The value of the sum `name` summed over its points (0 if not exported).
    pub fn value(&self, name: &str) -> f64 {
        self.get(name).map_or(0.0, Instrument::total_sum)
    }
}

/// The SDK pipeline of a test.
pub struct Metrics {
    pub exporter: InMemoryMetricExporter,
    pub provider: SdkMeterProvider,
}

impl Metrics {
    pub fn new() -> Metrics {
        let exporter = InMemoryMetricExporter::default();
        let reader = PeriodicReader::builder(exporter.clone())
            .with_interval(Duration::from_secs(3600))
            .build();
        let provider = SdkMeterProvider::builder().with_reader(reader).build();
        Metrics { exporter, provider }
    }

    pub fn builder(&self) -> MetricsHandlerBuilder {
        MetricsHandler::builder().meter_provider(self.provider.clone())
    }

    /// A default handler recording here.
    pub fn handler(&self) -> MetricsHandler {
        self.builder().build()
    }

    /// A handler with the A66 instruments too.
    pub fn a66_handler(&self) -> MetricsHandler {
        self.builder().a66(true).build()
    }

    /// Collects now: what the instruments hold (cumulative).
    pub async fn collect(&self) -> Collected {
        let exporter = self.exporter.clone();
        let provider = self.provider.clone();
        tokio::task::spawn_blocking(move || {
            exporter.reset();
            provider.force_flush().unwrap();
            let exported = exporter.get_finished_metrics().unwrap();
            convert(exported.last())
        })
        .await
        .unwrap()
    }

    /// Collects until `done` holds, or fails the test after [`PATIENCE`].
    pub async fn wait_for(&self, what: &str, done: impl Fn(&Collected) -> bool) -> Collected {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let collected = self.collect().await;
            if done(&collected) {
                return collected;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("timed out waiting for {what}; collected: {collected:#?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Metrics {
    /// Waits until both sides have recorded `n` RPC durations (`rpc.*.call.duration`).
    pub async fn wait_calls(&self, n: u64) -> Collected {
        self.wait_for(&format!("{n} calls on each side"), |c| {
            c.count(RPC_SERVER_CALL_DURATION) >= n && c.count(RPC_CLIENT_CALL_DURATION) >= n
        })
        .await
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.as_str().to_owned(),
        other => other.to_string(),
    }
}

fn attrs<'a>(kvs: impl Iterator<Item = &'a KeyValue>) -> BTreeMap<String, String> {
    kvs.map(|kv| (kv.key.as_str().to_owned(), text(&kv.value)))
        .collect()
}

fn histogram_points<T: Copy>(h: &Histogram<T>, to_f64: impl Fn(T) -> f64) -> Vec<Point> {
    h.data_points()
        .map(|p| Point {
            attrs: attrs(p.attributes()),
            count: p.count(),
            sum: to_f64(p.sum()),
            bounds: p.bounds().collect(),
        })
        .collect()
}

fn sum_points<T: Copy>(s: &Sum<T>, to_f64: impl Fn(T) -> f64) -> Vec<Point> {
    s.data_points()
        .map(|p| Point {
            attrs: attrs(p.attributes()),
            count: 0,
            sum: to_f64(p.value()),
            bounds: Vec::new(),
        })
        .collect()
}

fn convert(exported: Option<&opentelemetry_sdk::metrics::data::ResourceMetrics>) -> Collected {
    let Some(resource) = exported else {
        return Collected::default();
    };
    let mut out = Vec::new();
    for scope in resource.scope_metrics() {
        assert_eq!(
            scope.scope().name(),
            "otel-stats",
            "the instrumentation scope"
        );
        for metric in scope.metrics() {
            let (kind, points) = match metric.data() {
                AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                    (Kind::HistogramF64, histogram_points(h, |v| v))
                }
                AggregatedMetrics::U64(MetricData::Histogram(h)) => {
                    (Kind::HistogramU64, histogram_points(h, |v| v as f64))
                }
                AggregatedMetrics::U64(MetricData::Sum(s)) if s.is_monotonic() => {
                    (Kind::Counter, sum_points(s, |v| v as f64))
                }
                AggregatedMetrics::I64(MetricData::Sum(s)) if !s.is_monotonic() => {
                    (Kind::UpDownCounter, sum_points(s, |v| v as f64))
                }
                _ => (Kind::Other, Vec::new()),
            };
            out.push(Instrument {
                name: metric.name().to_owned(),
                unit: metric.unit().to_owned(),
                kind,
                points,
            });
        }
    }
    Collected(out)
}

/// The semantic conventions' advisory buckets of `rpc.*.call.duration`.
pub const SEMCONV_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// gRFC A66's latency buckets.
pub const A66_LATENCY_BUCKETS: [f64; 41] = [
    0.0, 0.00001, 0.00005, 0.0001, 0.0003, 0.0006, 0.0008, 0.001, 0.002, 0.003, 0.004, 0.005,
    0.006, 0.008, 0.01, 0.013, 0.016, 0.02, 0.025, 0.03, 0.04, 0.05, 0.065, 0.08, 0.1, 0.13, 0.16,
    0.2, 0.25, 0.3, 0.4, 0.5, 0.65, 0.8, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0,
];

/// gRFC A66's size buckets: 0, 1 KiB, 2 KiB, then 4 KiB and every fourth power up to 4 GiB.
pub fn a66_size_buckets() -> Vec<f64> {
    let mut buckets = vec![0.0, 1024.0, 2048.0];
    buckets.extend((0..=10).map(|k| 4096.0 * 4f64.powi(k)));
    buckets
}
