//! The load benchmark of issue 6: bare tonic, otel-stats (no-op, sampled, sampled without
//! message events, unsampled), the naive one-span floor and the Rust peers, interleaved in one
//! run. Each set-up's server is this binary re-executed with `--serve SETUP` (so its CPU time
//! and peak RSS are its own); the closed-loop clients and the OTLP receiver run here.
//!
//! ```sh
//! cargo run --release --manifest-path bench/Cargo.toml --bin bench            # ~8-10 min
//! cargo run --release --manifest-path bench/Cargo.toml --bin bench -- --quick # ~1-2 min
//! cargo run --release --manifest-path bench/Cargo.toml --bin bench -- --h2load # h2load as client
//! ```

mod load;
mod naive;
mod setups;
mod telemetry;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

use opentelemetry::trace::{SpanKind, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use otel_stats::{ClientStatsLayer, NoopHandler};
use serde_json::{Value, json};
use tonic::transport::Endpoint;
use tower_layer::Layer;

use load::{Sample, WORKLOADS, Workload};
use setups::{ALL, Setup};
use telemetry::{Arrivals, Telemetry};

struct Config {
    rounds: usize,
    warmup: Duration,
    window: Duration,
    stream_messages: u64,
    setups: Vec<Setup>,
    workloads: Vec<Workload>,
    out: PathBuf,
    quick: bool,
    h2load: bool,
    h2load_requests: u64,
    /// Pin the server to the last CPU and everything else (clients, h2load, the OTLP
    /// receiver) to the others, so the server never competes with its load for a core.
    pin: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: bench [--quick] [--rounds N] [--secs S] [--stream-messages N] \
         [--setups a,b] [--workloads a,b] [--out FILE] [--h2load [--h2load-requests N]] [--pin]\n\
         set-ups: {}\nworkloads: {}",
        ALL.map(Setup::name).join(","),
        WORKLOADS.map(Workload::name).join(",")
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve") {
        return child(&args[2..]);
    }
    let mut cfg = Config {
        rounds: 3,
        warmup: Duration::from_millis(500),
        window: Duration::from_secs(3),
        stream_messages: 1_000_000,
        setups: ALL.to_vec(),
        workloads: WORKLOADS.to_vec(),
        out: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results/latest.json"),
        quick: false,
        h2load: false,
        h2load_requests: 200_000,
        pin: false,
    };
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().unwrap_or_else(|| usage());
        match a.as_str() {
            "--quick" => {
                cfg.quick = true;
                cfg.rounds = 1;
                cfg.warmup = Duration::from_millis(300);
                cfg.window = Duration::from_secs(1);
                cfg.stream_messages = 100_000;
                cfg.h2load_requests = 50_000;
            }
            "--rounds" => cfg.rounds = val().parse().unwrap_or_else(|_| usage()),
            "--secs" => {
                cfg.window = Duration::from_secs_f64(val().parse().unwrap_or_else(|_| usage()))
            }
            "--stream-messages" => cfg.stream_messages = val().parse().unwrap_or_else(|_| usage()),
            "--setups" => {
                cfg.setups = val()
                    .split(',')
                    .map(|s| Setup::parse(s).unwrap_or_else(|| usage()))
                    .collect()
            }
            "--workloads" => {
                cfg.workloads = val()
                    .split(',')
                    .map(|s| {
                        WORKLOADS
                            .into_iter()
                            .find(|w| w.name() == s)
                            .unwrap_or_else(|| usage())
                    })
                    .collect()
            }
            "--out" => cfg.out = PathBuf::from(val()),
            "--h2load" => cfg.h2load = true,
            "--pin" => cfg.pin = true,
            "--h2load-requests" => cfg.h2load_requests = val().parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    if cfg.pin {
        pin_cpus();
    }
    if !cfg.setups.contains(&Setup::Bare) {
        cfg.setups.insert(0, Setup::Bare);
    }
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let receiver_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("otlp-receiver")
        .enable_all()
        .build()
        .unwrap();
    let (otlp, arrivals) = telemetry::start_receiver(&receiver_rt);
    let started = Instant::now();
    let report = if cfg.h2load {
        h2load_main(&cfg, &otlp, &arrivals)
    } else {
        load_main(&cfg, &otlp, &arrivals)
    };
    let mut report = report;
    report["total_secs"] = json!(started.elapsed().as_secs_f64());
    if let Some(dir) = cfg.out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&cfg.out, serde_json::to_string_pretty(&report).unwrap())
        .expect("write results");
    eprintln!(
        "wrote {} ({:.0} s)",
        cfg.out.display(),
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------
// The server process.

fn child(args: &[String]) {
    let setup = args
        .first()
        .and_then(|s| Setup::parse(s))
        .unwrap_or_else(|| usage());
    let mut otlp = String::new();
    let mut service = String::from("bench-server");
    let mut queue = telemetry::QUEUE;
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--otlp" => otlp = it.next().cloned().unwrap_or_default(),
            "--service" => service = it.next().cloned().unwrap_or_default(),
            "--queue" => queue = it.next().and_then(|q| q.parse().ok()).unwrap_or(queue),
            _ => usage(),
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let created = rt.block_on(async move {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let tel = setup.telemetry(&otlp, &service, queue);
        if let Some(d) = tel
            .as_ref()
            .and_then(|t| setups::tracing_dispatch(setup, &t.provider))
        {
            tracing::dispatcher::set_global_default(d).expect("subscriber");
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        println!("PORT {port}");
        std::io::stdout().flush().unwrap();
        // The parent closes our stdin to stop us.
        let shutdown = async {
            let _ = tokio::task::spawn_blocking(|| {
                let mut sink = Vec::new();
                let _ = std::io::stdin().read_to_end(&mut sink);
            })
            .await;
        };
        let provider = tel.as_ref().map(|t| t.provider.clone());
        setups::serve(setup, listener, provider, shutdown)
            .await
            .expect("serve");
        tokio::task::spawn_blocking(move || tel.map_or(0, |t| t.shutdown()))
            .await
            .unwrap()
    });
    println!("CREATED {created}");
    std::io::stdout().flush().unwrap();
}

/// The CPU list servers run on with `--pin` (`taskset -c` syntax).
static SERVER_CPUS: OnceLock<String> = OnceLock::new();

/// `--pin`: this process (clients, the OTLP receiver) and what it runs (h2load) on every CPU
/// but the last one; the servers, started later, on the last one.
fn pin_cpus() {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    if n < 2 {
        eprintln!("--pin needs two CPUs; running unpinned");
        return;
    }
    let others = format!("0-{}", n - 2);
    let ok = Command::new("taskset")
        .args(["-a", "-p", "-c", &others, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        let _ = SERVER_CPUS.set((n - 1).to_string());
        eprintln!("pinned: servers on CPU {}, load on CPUs {others}", n - 1);
    } else {
        eprintln!("taskset failed; running unpinned");
    }
}

struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    port: u16,
}

impl Server {
    fn start(setup: Setup, otlp: &str, service: &str, queue: usize) -> Server {
        let exe = std::env::current_exe().unwrap();
        let mut command = match SERVER_CPUS.get() {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.args(["-c", cpus]).arg(exe);
                // One worker on the one CPU: two workers sharing it made rounds differ by
                // several microseconds per RPC.
                c.env("TOKIO_WORKER_THREADS", "1");
                c
            }
            None => Command::new(exe),
        };
        let mut child = command
            .args([
                "--serve",
                setup.name(),
                "--otlp",
                otlp,
                "--service",
                service,
            ])
            .args(["--queue", &queue.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn server");
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let port = match lines.recv_timeout(Duration::from_secs(30)) {
            Ok(l) => l
                .strip_prefix("PORT ")
                .and_then(|p| p.parse().ok())
                .expect("PORT line"),
            Err(_) => panic!("server {} did not start", setup.name()),
        };
        Server { child, lines, port }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server (in-flight RPCs finish, spans are flushed); returns the spans it made.
    fn stop(mut self) -> u64 {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut created = 0;
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(l) => {
                    if let Some(n) = l.strip_prefix("CREATED ") {
                        created = n.parse().unwrap_or(0);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        // Its stdout closed; give the process a moment to be reaped before deciding it hangs.
        let reap_by = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < reap_by {
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.child.try_wait().ok().flatten().is_none() {
            eprintln!(
                "server {} did not stop in time; killing it",
                self.child.id()
            );
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        created
    }
}

// ---------------------------------------------------------------------------------------
// The tonic-client load run.

struct Run {
    round: usize,
    workload: Workload,
    setup: Setup,
    sample: Sample,
    p50: Option<u32>,
    p99: Option<u32>,
    server_spans: u64,
    client_spans: u64,
    arrived: u64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.sample.count as f64 / self.sample.secs
    }
    fn cpu_per_op(&self) -> f64 {
        self.sample.server_cpu_us as f64 / self.sample.count.max(1) as f64
    }
    fn to_json(&self) -> Value {
        json!({
            "round": self.round,
            "workload": self.workload.name(),
            "setup": self.setup.name(),
            "exporter": self.setup.exporter_name(),
            "count": self.sample.count,
            "secs": self.sample.secs,
            "per_sec": self.rate(),
            "p50_us": self.p50,
            "p99_us": self.p99,
            "errors": self.sample.errors,
            "server_cpu_us": self.sample.server_cpu_us,
            "server_cpu_us_per_op": self.cpu_per_op(),
            "server_peak_rss_kib": self.sample.server_peak_rss_kib,
            "spans_created_server": self.server_spans,
            "spans_created_client": self.client_spans,
            "spans_arrived": self.arrived,
        })
    }
}

fn percentile(sorted: &[u32], p: usize) -> Option<u32> {
    (!sorted.is_empty()).then(|| sorted[(sorted.len() * p / 100).min(sorted.len() - 1)])
}

fn run_one(
    cfg: &Config,
    round: usize,
    workload: Workload,
    setup: Setup,
    otlp: &str,
    arrivals: &Arrivals,
    id: usize,
) -> Run {
    let srv_name = format!("srv-{id}");
    let cli_name = format!("cli-{id}");
    let queue = if workload == Workload::Stream {
        telemetry::DEFAULT_QUEUE
    } else {
        telemetry::QUEUE
    };
    let server = Server::start(setup, otlp, &srv_name, queue);
    let pid = server.pid();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tel: Option<Telemetry> = rt.block_on(async { setup.telemetry(otlp, &cli_name, queue) });
    let dispatch = tel
        .as_ref()
        .and_then(|t| setups::tracing_dispatch(setup, &t.provider));
    let endpoint = Endpoint::from_shared(format!("http://127.0.0.1:{}", server.port))
        .unwrap()
        .tcp_nodelay(true);
    let (warmup, window, n) = (cfg.warmup, cfg.window, cfg.stream_messages);
    let provider = tel.as_ref().map(|t| t.provider.clone());
    let dispatch2 = dispatch.clone();
    let fut = async move {
        let channel = endpoint.connect().await.expect("connect");
        macro_rules! go {
            ($svc:expr) => {
                load::drive($svc, workload, pid, warmup, window, n, dispatch2.clone()).await
            };
        }
        match setup {
            Setup::Bare => go!(channel),
            Setup::Noop => go!(ClientStatsLayer::new(NoopHandler).layer(channel)),
            Setup::OtelAll | Setup::OtelAllOnEnd | Setup::OtelNoMsg | Setup::OtelUnsampled => {
                let h = setups::otel_handler(setup, provider.as_ref().unwrap());
                go!(ClientStatsLayer::new(h).layer(channel))
            }
            Setup::MetricsUnsampled => {
                let h = setups::metrics_and_unsampled(provider.as_ref().unwrap());
                go!(ClientStatsLayer::new(h).layer(channel))
            }
            Setup::Naive => {
                let tracer = provider.as_ref().unwrap().tracer("naive");
                go!(naive::NaiveLayer::new(tracer, SpanKind::Client).layer(channel))
            }
            Setup::TonicTracingOtel => {
                go!(tonic_tracing_opentelemetry::middleware::client::OtelGrpcLayer.layer(channel))
            }
            Setup::TowerHttp => {
                go!(tower_http::trace::TraceLayer::new_for_grpc().layer(channel))
            }
            Setup::TowerOtel => {
                go!(tower_otel::trace::GrpcLayer::client(tracing::Level::INFO).layer(channel))
            }
        }
    };
    // The peers' client spans need their subscriber on every thread that polls the calls.
    let mut sample = match &dispatch {
        Some(d) => {
            let d2 = d.clone();
            tracing::dispatcher::with_default(d, || {
                rt.block_on(async move {
                    use tracing::instrument::WithSubscriber;
                    tokio::spawn(fut.with_subscriber(d2)).await.unwrap()
                })
            })
        }
        None => rt.block_on(fut),
    };
    let client_spans = tel.as_ref().map_or(0, |t| t.shutdown());
    drop(rt);
    let server_spans = server.stop();
    let arrived = arrivals.get(&srv_name) + arrivals.get(&cli_name);
    sample.latencies_us.sort_unstable();
    let run = Run {
        round,
        workload,
        setup,
        p50: percentile(&sample.latencies_us, 50),
        p99: percentile(&sample.latencies_us, 99),
        sample,
        server_spans,
        client_spans,
        arrived,
    };
    eprintln!(
        "round {} {:<18} {:<34} {:>9.0}/s p50 {:>6} p99 {:>6} µs  cpu {:>6.1} µs/op  rss {:>6} KiB  spans {}+{}/{} err {}",
        round + 1,
        workload.name(),
        setup.name(),
        run.rate(),
        run.p50.map_or("-".into(), |v| v.to_string()),
        run.p99.map_or("-".into(), |v| v.to_string()),
        run.cpu_per_op(),
        run.sample.server_peak_rss_kib,
        run.server_spans,
        run.client_spans,
        run.arrived,
        run.sample.errors,
    );
    run
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn load_main(cfg: &Config, otlp: &str, arrivals: &Arrivals) -> Value {
    let mut runs: Vec<Run> = Vec::new();
    let mut id = 0;
    for round in 0..cfg.rounds {
        for &workload in &cfg.workloads {
            // Rotate the order each round so no set-up always runs first or last.
            let k = cfg.setups.len();
            for i in 0..k {
                let setup = cfg.setups[(i + round) % k];
                id += 1;
                runs.push(run_one(cfg, round, workload, setup, otlp, arrivals, id));
            }
        }
    }
    let mut summary = Vec::new();
    let mut md = String::new();
    for &workload in &cfg.workloads {
        let unit = if workload == Workload::Stream {
            "msg/s"
        } else {
            "req/s"
        };
        md += &format!(
            "\n#### {}{}\n\n| set-up | {unit} | ratio to bare | p50 µs | p99 µs | server CPU µs/{} | Δ CPU vs bare µs | server peak RSS MiB | Δ RSS vs bare MiB | spans created / arrived / dropped | |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|\n",
            workload.name(),
            if workload == Workload::Stream {
                format!(" ({} messages)", cfg.stream_messages)
            } else {
                String::new()
            },
            if workload == Workload::Stream {
                "msg"
            } else {
                "RPC"
            },
        );
        let of = |s: Setup| -> Vec<&Run> {
            runs.iter()
                .filter(|r| r.workload == workload && r.setup == s)
                .collect()
        };
        let bare = of(Setup::Bare);
        let bare_cpu = median(bare.iter().map(|r| r.cpu_per_op()).collect());
        let bare_rss = median(
            bare.iter()
                .map(|r| r.sample.server_peak_rss_kib as f64)
                .collect(),
        );
        for &setup in &cfg.setups {
            let rs = of(setup);
            let rate = median(rs.iter().map(|r| r.rate()).collect());
            // The ratio in each round to that round's bare tonic, then the median.
            let ratio = median(
                rs.iter()
                    .filter_map(|r| {
                        bare.iter()
                            .find(|b| b.round == r.round)
                            .map(|b| r.rate() / b.rate())
                    })
                    .collect(),
            );
            let p50 = median(rs.iter().filter_map(|r| r.p50.map(f64::from)).collect());
            let p99 = median(rs.iter().filter_map(|r| r.p99.map(f64::from)).collect());
            let cpu = median(rs.iter().map(|r| r.cpu_per_op()).collect());
            let rss = median(
                rs.iter()
                    .map(|r| r.sample.server_peak_rss_kib as f64)
                    .collect(),
            );
            let created: u64 = rs.iter().map(|r| r.server_spans + r.client_spans).sum();
            let arrived: u64 = rs.iter().map(|r| r.arrived).sum();
            let dropped = created.saturating_sub(arrived);
            let errors: u64 = rs.iter().map(|r| r.sample.errors).sum();
            let comparable = dropped == 0 && errors == 0;
            let note = match (dropped, errors) {
                (0, 0) => String::new(),
                (d, 0) => format!("NOT COMPARABLE: {d} spans dropped"),
                (0, e) => format!("NOT COMPARABLE: {e} errors"),
                (d, e) => format!("NOT COMPARABLE: {d} spans dropped, {e} errors"),
            };
            let fmt = |v: f64| {
                if v.is_nan() {
                    "-".to_string()
                } else {
                    format!("{v:.0}")
                }
            };
            md += &format!(
                "| {} | {:.0} | {:.2} | {} | {} | {:.2} | {:+.2} | {:.1} | {:+.1} | {} / {} / {} | {} |\n",
                setup.name(),
                rate,
                ratio,
                fmt(p50),
                fmt(p99),
                cpu,
                cpu - bare_cpu,
                rss / 1024.0,
                (rss - bare_rss) / 1024.0,
                created,
                arrived,
                dropped,
                note
            );
            summary.push(json!({
                "workload": workload.name(),
                "setup": setup.name(),
                "exporter": setup.exporter_name(),
                "per_sec_median": rate,
                "ratio_to_bare_median": ratio,
                "p50_us_median": p50,
                "p99_us_median": p99,
                "server_cpu_us_per_op_median": cpu,
                "server_cpu_us_per_op_delta_vs_bare": cpu - bare_cpu,
                "server_peak_rss_kib_median": rss,
                "server_peak_rss_kib_delta_vs_bare": rss - bare_rss,
                "spans_created": created,
                "spans_arrived": arrived,
                "spans_dropped": dropped,
                "errors": errors,
                "comparable": comparable,
            }));
        }
    }
    println!("{md}");
    json!({
        "kind": "tonic-clients",
        "date_unix": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
        "machine": machine(),
        "config": {
            "rounds": cfg.rounds,
            "warmup_secs": cfg.warmup.as_secs_f64(),
            "window_secs": cfg.window.as_secs_f64(),
            "stream_messages": cfg.stream_messages,
            "quick": cfg.quick,
            "batch_queue_unary": telemetry::QUEUE,
            "batch_queue_stream": telemetry::DEFAULT_QUEUE,
        },
        "summary": summary,
        "table_markdown": md,
        "runs": runs.iter().map(Run::to_json).collect::<Vec<_>>(),
    })
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_default();
    // The machine's CPUs, not this process's share of them (`--pin` narrows that).
    let nproc = std::fs::read_to_string("/proc/cpuinfo")
        .map(|s| s.lines().filter(|l| l.starts_with("processor")).count())
        .unwrap_or(0);
    json!({
        "nproc": nproc,
        "cpu_model": cpu,
        "server_pinned_to_cpu": SERVER_CPUS.get(),
    })
}

// ---------------------------------------------------------------------------------------
// h2load as the client: server-side instrumentation only, as in the issue's peer figures.

fn h2load_main(cfg: &Config, otlp: &str, arrivals: &Arrivals) -> Value {
    let body = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/echo-hello.bin");
    let _ = std::fs::create_dir_all(body.parent().unwrap());
    std::fs::write(
        &body,
        [0u8, 0, 0, 0, 7, 0x0a, 5, b'h', b'e', b'l', b'l', b'o'],
    )
    .unwrap();
    let mut runs = Vec::new();
    let mut id = 100_000;
    for round in 0..cfg.rounds {
        let k = cfg.setups.len();
        for i in 0..k {
            let setup = cfg.setups[(i + round) % k];
            id += 1;
            let srv = format!("srv-{id}");
            let server = Server::start(setup, otlp, &srv, telemetry::QUEUE);
            let pid = server.pid();
            let url = format!(
                "http://127.0.0.1:{}/grpc.examples.echo.Echo/UnaryEcho",
                server.port
            );
            // Warm-up, then the measured run.
            let h2 = |n: u64| {
                Command::new("h2load")
                    .args(["-n", &n.to_string(), "-c", "16", "-m", "4", "-d"])
                    .arg(&body)
                    .args([
                        "-H",
                        "content-type: application/grpc",
                        "-H",
                        "te: trailers",
                        &url,
                    ])
                    .output()
                    .expect("h2load")
            };
            let _ = h2(cfg.h2load_requests / 10);
            let cpu0 = load::cpu_us(pid);
            let out = h2(cfg.h2load_requests);
            let cpu1 = load::cpu_us(pid);
            let rss = load::peak_rss_kib(pid);
            let created = server.stop();
            let arrived = arrivals.get(&srv);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            let rps = text
                .lines()
                .find(|l| l.starts_with("finished in"))
                .and_then(|l| l.split(", ").nth(1))
                .and_then(|s| s.split_whitespace().next())
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(f64::NAN);
            let succeeded = text
                .lines()
                .find(|l| l.starts_with("requests:"))
                .map(str::to_string)
                .unwrap_or_default();
            let mean_req = text
                .lines()
                .find(|l| l.starts_with("time for request:"))
                .and_then(|l| l.split_whitespace().nth(5))
                .map(str::to_string)
                .unwrap_or_default();
            let cpu_per = (cpu1 - cpu0) as f64 / cfg.h2load_requests as f64;
            eprintln!(
                "h2load round {} {:<34} {:>9.0} req/s  cpu {:>5.1} µs/req  mean {}  spans {}/{}  [{}]",
                round + 1,
                setup.name(),
                rps,
                cpu_per,
                mean_req,
                created,
                arrived,
                succeeded
            );
            runs.push(json!({
                "round": round, "setup": setup.name(), "exporter": setup.exporter_name(), "req_per_sec": rps,
                "server_cpu_us_per_req": cpu_per, "mean_request_time": mean_req,
                "server_peak_rss_kib": rss, "spans_created": created, "spans_arrived": arrived,
                "requests_line": succeeded,
            }));
        }
    }
    let mut md = String::from(
        "| set-up | span exporter | req/s | ratio to bare | server CPU µs/req | Δ CPU vs bare µs | spans created / arrived |\n|---|---|---:|---:|---:|---:|---|\n",
    );
    let get = |s: Setup, k: &str| -> Vec<f64> {
        runs.iter()
            .filter(|r| r["setup"] == s.name())
            .map(|r| r[k].as_f64().unwrap_or(f64::NAN))
            .collect()
    };
    let bare_rps: Vec<f64> = get(Setup::Bare, "req_per_sec");
    let bare_cpu = median(get(Setup::Bare, "server_cpu_us_per_req"));
    let mut summary = Vec::new();
    for &setup in &cfg.setups {
        let rps = get(setup, "req_per_sec");
        let ratio = median(rps.iter().zip(&bare_rps).map(|(a, b)| a / b).collect());
        let cpu = median(get(setup, "server_cpu_us_per_req"));
        let created: f64 = get(setup, "spans_created").iter().sum();
        let arrived: f64 = get(setup, "spans_arrived").iter().sum();
        md += &format!(
            "| {} | {} | {:.0} | {:.2} | {:.1} | {:+.1} | {} / {}{} |\n",
            setup.name(),
            setup.exporter_name(),
            median(rps.clone()),
            ratio,
            cpu,
            cpu - bare_cpu,
            created,
            arrived,
            if created > arrived {
                " NOT COMPARABLE (dropped)"
            } else {
                ""
            }
        );
        summary.push(
            json!({"setup": setup.name(), "exporter": setup.exporter_name(), "req_per_sec_median": median(rps),
            "ratio_to_bare_median": ratio, "server_cpu_us_per_req_median": cpu,
            "spans_created": created, "spans_arrived": arrived}),
        );
    }
    println!("{md}");
    json!({
        "kind": "h2load",
        "date_unix": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
        "machine": machine(),
        "config": {"rounds": cfg.rounds, "requests": cfg.h2load_requests, "connections": 16, "streams_per_connection": 4},
        "summary": summary,
        "table_markdown": md,
        "runs": runs,
    })
}
