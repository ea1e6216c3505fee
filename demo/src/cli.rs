//! The command-line options of the demo binaries.

use std::time::Duration;

use otel_stats::LogFormat;

/// What the server reports, to see and measure what each costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instrumentation {
    /// No stats layer at all: bare tonic.
    None,
    /// `LogHandler` only (`--stats-log` picks its format; text by default).
    Log,
    /// `OtelHandler` (plus `LogHandler` when `--stats-log` is given).
    Otel,
}

/// The options; each binary uses the ones that concern it.
#[derive(Debug, Clone)]
pub struct Options {
    /// Server: the address to listen on. Client: the server's address.
    pub addr: String,
    /// Print every stats event to stderr with `LogHandler`, in this format.
    pub stats_log: Option<LogFormat>,
    /// Server: which instrumentation to install.
    pub instrumentation: Instrumentation,
    /// Client: run the scenarios again and again, a fresh connection each round.
    pub repeat: bool,
    /// Client: the pause between rounds.
    pub interval: Duration,
    /// Client: ask the server's health service and exit 0 if it is serving (a health check).
    pub probe: bool,
    /// Server: RPCs of callers without trace context are traces of their own, linked to
    /// their connection (`OtelHandlerBuilder::rpc_roots`).
    pub rpc_roots: bool,
}

impl Options {
    fn defaults(addr: &str) -> Options {
        Options {
            addr: addr.to_owned(),
            stats_log: None,
            instrumentation: Instrumentation::Otel,
            repeat: false,
            interval: Duration::from_secs(5),
            probe: false,
            rpc_roots: false,
        }
    }
}

/// The usage text.
pub const USAGE: &str = "\
options:
  --addr ADDR                 server: listen address (default 127.0.0.1:50051)
                              client: server address (default http://127.0.0.1:50051)
  --stats-log json|text       print every stats event to stderr
  --instrumentation none|log|otel
                              server: what to install (default otel)
  --loop                      client: repeat the scenarios, a new connection per round
  --interval-ms N             client: pause between rounds (default 5000)
  --probe                     client: exit 0 when the server's health service says serving
  --rpc-roots                 server: a trace per RPC (linked to its connection) for callers
                              that send no trace context, instead of one per connection
  --help                      this text

OTLP export is on when OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set; the
other OTEL_* variables (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_*) apply.";

/// Parses `args` (without the program name). `Err` carries a message for the user; `--help`
/// gives `Err(USAGE)`.
pub fn parse(
    args: impl IntoIterator<Item = String>,
    default_addr: &str,
) -> Result<Options, String> {
    let mut options = Options::defaults(default_addr);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value\n\n{USAGE}"))
        };
        match arg.as_str() {
            "--addr" => options.addr = value("--addr")?,
            "--stats-log" => {
                options.stats_log = Some(match value("--stats-log")?.as_str() {
                    "json" => LogFormat::Json,
                    "text" => LogFormat::Text,
                    other => return Err(format!("--stats-log takes json or text, not {other:?}")),
                })
            }
            "--instrumentation" => {
                options.instrumentation = match value("--instrumentation")?.as_str() {
                    "none" => Instrumentation::None,
                    "log" => Instrumentation::Log,
                    "otel" => Instrumentation::Otel,
                    other => {
                        return Err(format!(
                            "--instrumentation takes none, log or otel, not {other:?}"
                        ));
                    }
                }
            }
            "--loop" => options.repeat = true,
            "--interval-ms" => {
                let ms = value("--interval-ms")?;
                let ms = ms
                    .parse()
                    .map_err(|_| format!("--interval-ms takes milliseconds, not {ms:?}"))?;
                options.interval = Duration::from_millis(ms);
            }
            "--probe" => options.probe = true,
            "--rpc-roots" => options.rpc_roots = true,
            "--help" | "-h" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown option {other:?}\n\n{USAGE}")),
        }
    }
    Ok(options)
}

/// The options of this process's command line; on bad input (or `--help`) the message is
/// printed and the exit code to return is given instead.
pub fn from_args(default_addr: &str) -> Result<Options, std::process::ExitCode> {
    parse(std::env::args().skip(1), default_addr).map_err(|message| {
        eprintln!("{message}");
        std::process::ExitCode::from(2)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_every_option() {
        let o = parse(
            args(&[
                "--addr",
                "0.0.0.0:1",
                "--stats-log",
                "json",
                "--instrumentation",
                "log",
                "--loop",
                "--interval-ms",
                "250",
                "--probe",
                "--rpc-roots",
            ]),
            "x",
        )
        .unwrap();
        assert_eq!(o.addr, "0.0.0.0:1");
        assert_eq!(o.stats_log, Some(LogFormat::Json));
        assert_eq!(o.instrumentation, Instrumentation::Log);
        assert!(o.repeat && o.probe && o.rpc_roots);
        assert_eq!(o.interval, Duration::from_millis(250));
    }

    #[test]
    fn bad_input_says_what_is_wrong() {
        assert!(
            parse(args(&["--stats-log", "xml"]), "x")
                .unwrap_err()
                .contains("json or text")
        );
        assert!(
            parse(args(&["--addr"]), "x")
                .unwrap_err()
                .contains("needs a value")
        );
        assert!(
            parse(args(&["--nope"]), "x")
                .unwrap_err()
                .contains("unknown option")
        );
        assert!(parse(args(&["--interval-ms", "soon"]), "x").is_err());
    }
}
