//! The command-line options of the demo binaries.

use std::path::{Path, PathBuf};
use std::time::Duration;

use otel_stats::LogFormat;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

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
    /// Client: send this one message on `UnaryEcho`, print the reply, exit.
    pub unary: Option<String>,
    /// TLS files (PEM).
    pub tls: TlsFiles,
    /// Server: RPCs of callers without trace context are traces of their own, linked to
    /// their connection (`OtelHandlerBuilder::rpc_roots`).
    pub rpc_roots: bool,
}

/// The PEM files of `--tls-*`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsFiles {
    /// This side's certificate: the server's, or the client's for mTLS.
    pub cert: Option<PathBuf>,
    /// The private key of `cert`.
    pub key: Option<PathBuf>,
    /// Server: require client certificates signed by this CA.
    pub client_ca: Option<PathBuf>,
    /// Client: trust servers whose certificate this CA signed.
    pub ca: Option<PathBuf>,
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
            unary: None,
            tls: TlsFiles::default(),
            rpc_roots: false,
        }
    }

    /// The server's TLS config: none without `--tls-cert`; client certificates required with
    /// `--tls-client-ca`.
    pub fn server_tls(&self) -> Result<Option<ServerTlsConfig>, String> {
        if self.tls.ca.is_some() {
            return Err("--tls-ca is for the client; the server takes --tls-client-ca".into());
        }
        let Some(identity) = self.identity()? else {
            if self.tls.client_ca.is_some() {
                return Err("--tls-client-ca needs --tls-cert and --tls-key".into());
            }
            return Ok(None);
        };
        let tls = ServerTlsConfig::new().identity(identity);
        Ok(Some(match &self.tls.client_ca {
            Some(ca) => tls.client_ca_root(Certificate::from_pem(read(ca)?)),
            None => tls,
        }))
    }

    /// The client's TLS config for `https` addresses: `--tls-ca` is required (the demo
    /// trusts no system roots), `--tls-cert`/`--tls-key` present a client certificate.
    pub fn client_tls(&self) -> Result<Option<ClientTlsConfig>, String> {
        if self.tls.client_ca.is_some() {
            return Err("--tls-client-ca is for the server; the client takes --tls-ca".into());
        }
        let https = self.addr.starts_with("https://");
        let identity = self.identity()?;
        let Some(ca) = &self.tls.ca else {
            if https || identity.is_some() {
                return Err("an https:// address needs --tls-ca FILE".into());
            }
            return Ok(None);
        };
        if !https {
            return Err(format!(
                "--tls-ca needs an https:// address, not {:?}",
                self.addr
            ));
        }
        let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?));
        Ok(Some(match identity {
            Some(identity) => tls.identity(identity),
            None => tls,
        }))
    }

    /// `--tls-cert` with `--tls-key`, read; neither is fine, one alone is an error.
    fn identity(&self) -> Result<Option<Identity>, String> {
        match (&self.tls.cert, &self.tls.key) {
            (Some(cert), Some(key)) => Ok(Some(Identity::from_pem(read(cert)?, read(key)?))),
            (None, None) => Ok(None),
            _ => Err("--tls-cert and --tls-key go together".into()),
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
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
  --unary TEXT                client: one UnaryEcho of TEXT, print the reply (the server
                              answers `whoami` with the caller's address and certificates)
  --tls-cert FILE --tls-key FILE
                              server: serve TLS with this certificate and key (PEM)
                              client: present this client certificate (mTLS)
  --tls-client-ca FILE        server: require client certificates signed by this CA
  --tls-ca FILE               client: trust this CA (needed for an https:// address)
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
            "--unary" => options.unary = Some(value("--unary")?),
            "--tls-cert" => options.tls.cert = Some(value("--tls-cert")?.into()),
            "--tls-key" => options.tls.key = Some(value("--tls-key")?.into()),
            "--tls-client-ca" => options.tls.client_ca = Some(value("--tls-client-ca")?.into()),
            "--tls-ca" => options.tls.ca = Some(value("--tls-ca")?.into()),
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
                "--unary",
                "whoami",
                "--tls-cert",
                "c.pem",
                "--tls-key",
                "k.pem",
                "--tls-client-ca",
                "cca.pem",
                "--tls-ca",
                "ca.pem",
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
        assert_eq!(o.unary.as_deref(), Some("whoami"));
        assert_eq!(
            o.tls,
            TlsFiles {
                cert: Some("c.pem".into()),
                key: Some("k.pem".into()),
                client_ca: Some("cca.pem".into()),
                ca: Some("ca.pem".into()),
            }
        );
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

    #[test]
    fn tls_options_that_do_not_go_together_are_refused_before_any_file_is_read() {
        let error = |list: &[&str], side: fn(&Options) -> Result<bool, String>| {
            side(&parse(args(list), "x").unwrap()).unwrap_err()
        };
        let server = |o: &Options| o.server_tls().map(|t| t.is_some());
        let client = |o: &Options| o.client_tls().map(|t| t.is_some());
        assert!(error(&["--tls-cert", "c.pem"], server).contains("go together"));
        assert!(error(&["--tls-client-ca", "ca.pem"], server).contains("needs --tls-cert"));
        assert!(error(&["--tls-ca", "ca.pem"], server).contains("for the client"));
        assert!(error(&["--addr", "https://h:1"], client).contains("needs --tls-ca"));
        assert!(
            error(&["--addr", "http://h:1", "--tls-ca", "ca.pem"], client)
                .contains("needs an https://")
        );
        assert!(error(&["--tls-client-ca", "ca.pem"], client).contains("for the server"));
        assert_eq!(server(&parse(args(&[]), "x").unwrap()), Ok(false));
        assert_eq!(
            client(&parse(args(&["--addr", "http://h:1"]), "x").unwrap()),
            Ok(false)
        );
    }

    #[test]
    fn a_missing_tls_file_is_named() {
        let o = parse(
            args(&["--tls-cert", "/nonexistent/c.pem", "--tls-key", "k.pem"]),
            "x",
        )
        .unwrap();
        assert!(o.server_tls().unwrap_err().contains("/nonexistent/c.pem"));
    }
}
