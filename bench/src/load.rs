//! Closed-loop tonic clients and the server-process probes (/proc).

use std::time::{Duration, Instant};

use bytes::Bytes;
use demo::proto::EchoRequest;
use demo::proto::echo_client::EchoClient;
use http_body::Body;
use tonic::codegen::StdError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Unary, "hello", one caller.
    UnaryC1,
    /// Unary, "hello", 64 callers on one channel.
    UnaryC64,
    /// One bidi stream of N small messages, each echoed.
    Stream,
    /// Unary, 64 KiB messages, 8 callers.
    Unary64K,
}

pub const WORKLOADS: [Workload; 4] = [
    Workload::UnaryC1,
    Workload::UnaryC64,
    Workload::Stream,
    Workload::Unary64K,
];

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::UnaryC1 => "unary-small-c1",
            Workload::UnaryC64 => "unary-small-c64",
            Workload::Stream => "bidi-stream-small",
            Workload::Unary64K => "unary-64KiB-c8",
        }
    }
}

/// What the server process used: CPU (utime+stime) in µs and peak RSS in KiB.
pub fn cpu_us(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after "(comm)": state is field 3; utime 14, stime 15.
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
    ticks * 1_000_000 / clk_tck()
}

fn clk_tck() -> u64 {
    // CLK_TCK is 100 on every Linux target Rust supports but alpha/ia64.
    100
}

pub fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

#[derive(Debug, Default)]
pub struct Sample {
    /// RPCs (or stream messages) completed in the measured window.
    pub count: u64,
    pub secs: f64,
    pub latencies_us: Vec<u32>,
    pub errors: u64,
    pub server_cpu_us: u64,
    pub server_peak_rss_kib: u64,
}

/// Runs `workload` over `svc` against the server process `pid`.
pub async fn drive<T>(
    svc: T,
    workload: Workload,
    pid: u32,
    warmup: Duration,
    window: Duration,
    stream_messages: u64,
    dispatch: Option<tracing::Dispatch>,
) -> Sample
where
    T: tonic::client::GrpcService<tonic::body::Body> + Clone + Send + 'static,
    T::Future: Send,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    let client = EchoClient::new(svc)
        .max_decoding_message_size(1 << 20)
        .max_encoding_message_size(1 << 20);
    match workload {
        Workload::UnaryC1 => unary(client, 1, "hello".into(), pid, warmup, window, dispatch).await,
        Workload::UnaryC64 => {
            unary(client, 64, "hello".into(), pid, warmup, window, dispatch).await
        }
        Workload::Unary64K => {
            unary(
                client,
                8,
                "x".repeat(64 * 1024),
                pid,
                warmup,
                window,
                dispatch,
            )
            .await
        }
        Workload::Stream => stream(client, pid, stream_messages).await,
    }
}

async fn unary<T>(
    client: EchoClient<T>,
    concurrency: usize,
    message: String,
    pid: u32,
    warmup: Duration,
    window: Duration,
    dispatch: Option<tracing::Dispatch>,
) -> Sample
where
    T: tonic::client::GrpcService<tonic::body::Body> + Clone + Send + 'static,
    T::Future: Send,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    use tracing::instrument::WithSubscriber;
    let start = Instant::now();
    let from = start + warmup;
    let until = from + window;
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let mut client = client.clone();
        let message = message.clone();
        let task = async move {
            let mut lat = Vec::with_capacity(1 << 16);
            let mut errors = 0u64;
            // Bounded: each iteration is one RPC and the loop stops at `until`.
            loop {
                let t0 = Instant::now();
                if t0 >= until {
                    break;
                }
                let ok = client
                    .unary_echo(EchoRequest {
                        message: message.clone(),
                    })
                    .await
                    .is_ok();
                let t1 = Instant::now();
                if !ok {
                    errors += 1;
                } else if t0 >= from && t1 <= until {
                    lat.push((t1 - t0).as_micros().min(u32::MAX as u128) as u32);
                }
            }
            (lat, errors)
        };
        // The peers' client spans need their `tracing` subscriber wherever the calls run.
        tasks.push(match &dispatch {
            Some(d) => tokio::spawn(task.with_subscriber(d.clone())),
            None => tokio::spawn(task),
        });
    }
    tokio::time::sleep_until(from.into()).await;
    let cpu0 = cpu_us(pid);
    tokio::time::sleep_until(until.into()).await;
    let cpu1 = cpu_us(pid);
    let rss = peak_rss_kib(pid);
    let mut sample = Sample {
        secs: window.as_secs_f64(),
        server_cpu_us: cpu1.saturating_sub(cpu0),
        server_peak_rss_kib: rss,
        ..Default::default()
    };
    for t in tasks {
        let (lat, errors) = t.await.expect("client task");
        sample.latencies_us.extend(lat);
        sample.errors += errors;
    }
    sample.count = sample.latencies_us.len() as u64;
    sample
}

async fn stream<T>(mut client: EchoClient<T>, pid: u32, n: u64) -> Sample
where
    T: tonic::client::GrpcService<tonic::body::Body> + Clone + Send + 'static,
    T::Future: Send,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    let cpu0 = cpu_us(pid);
    let t0 = Instant::now();
    let requests = tokio_stream::iter((0..n).map(|_| EchoRequest {
        message: "hello".into(),
    }));
    let run = async {
        let mut count = 0u64;
        let mut responses = client
            .bidirectional_streaming_echo(requests)
            .await?
            .into_inner();
        while responses.message().await?.is_some() {
            count += 1;
        }
        Ok::<u64, tonic::Status>(count)
    };
    let (count, errors) = match tokio::time::timeout(Duration::from_secs(300), run).await {
        Ok(Ok(c)) => (c, 0),
        Ok(Err(_)) | Err(_) => (0, 1),
    };
    let secs = t0.elapsed().as_secs_f64();
    let cpu1 = cpu_us(pid);
    Sample {
        count,
        secs,
        latencies_us: Vec::new(),
        errors,
        server_cpu_us: cpu1.saturating_sub(cpu0),
        server_peak_rss_kib: peak_rss_kib(pid),
    }
}
