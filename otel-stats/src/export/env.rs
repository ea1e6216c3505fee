//! [`OtlpConfig::from_env`]: the `OTEL_*` variables resolved the way the OpenTelemetry SDK
//! specification resolves them, through a lookup function so that the rules are tested
//! without touching the process environment.
//!
//! Anything this crate cannot honour (a protocol, a compression, an exporter or propagator
//! it does not have, a malformed header or number, a certificate file that cannot be read) is
//! an error naming the variable, never a setting silently dropped.

use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry_sdk::trace::{
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE_DEFAULT,
    OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_QUEUE_SIZE_DEFAULT, OTEL_BSP_SCHEDULE_DELAY,
    OTEL_BSP_SCHEDULE_DELAY_DEFAULT,
};

use super::config::{
    Compression, DEFAULT_GRPC_ENDPOINT, DEFAULT_HTTP_ENDPOINT, DEFAULT_TIMEOUT, OtlpConfig,
    Propagator, Protocol, Signal, SignalConfig, SpanExporterKind, TlsSettings, parse_endpoint,
    signal_endpoint,
};
use super::error::ConfigError;
use super::tls;

impl OtlpConfig {
    /// The configuration the process environment asks for; see
    /// [`from_lookup`](Self::from_lookup) for the variables and rules.
    ///
    /// ```no_run
    /// let config = otel_stats::export::OtlpConfig::from_env()?;
    /// # let _ = config;
    /// # Ok::<(), otel_stats::export::ConfigError>(())
    /// ```
    pub fn from_env() -> Result<OtlpConfig, ConfigError> {
        OtlpConfig::from_lookup(|name| std::env::var(name).ok())
    }

    /// The configuration the variables that `lookup` returns ask for. An empty value counts
    /// as unset; a signal's own variable (`OTEL_EXPORTER_OTLP_TRACES_*`) wins over the
    /// generic one (`OTEL_EXPORTER_OTLP_*`).
    ///
    /// | variable | values | default |
    /// | --- | --- | --- |
    /// | `OTEL_SDK_DISABLED` | `true`, `false` | `false` |
    /// | `OTEL_TRACES_EXPORTER`, `OTEL_METRICS_EXPORTER` | `otlp`, `none` | `otlp` |
    /// | `OTEL_PROPAGATORS` | `tracecontext`, `baggage` (a list), `none` | `tracecontext,baggage` |
    /// | `OTEL_EXPORTER_OTLP_PROTOCOL` | `grpc`, `http/protobuf` | `grpc` |
    /// | `OTEL_EXPORTER_OTLP_ENDPOINT` | `http://` or `https://` URL; OTLP/HTTP appends `/v1/traces`, `/v1/metrics` | `http://localhost:4317`, or `:4318` for HTTP |
    /// | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `..._METRICS_ENDPOINT` | a URL, used as it is | the generic one |
    /// | `OTEL_EXPORTER_OTLP_HEADERS` | `key=value,...`, values percent-decoded | none |
    /// | `OTEL_EXPORTER_OTLP_TIMEOUT` | milliseconds per export request | `10000` |
    /// | `OTEL_EXPORTER_OTLP_COMPRESSION` | `gzip`, `none` | `none` |
    /// | `OTEL_EXPORTER_OTLP_CERTIFICATE` | PEM file of the CA(s) to trust | webpki and system roots |
    /// | `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`, `..._CLIENT_KEY` | PEM files, for mTLS | none |
    ///
    /// Every `OTEL_EXPORTER_OTLP_*` variable has its `_TRACES_` and `_METRICS_` variant.
    /// With `OTEL_SDK_DISABLED=true` nothing else is read.
    ///
    /// ```
    /// use otel_stats::export::{Compression, OtlpConfig, Protocol};
    ///
    /// let env = |name: &str| match name {
    ///     "OTEL_EXPORTER_OTLP_PROTOCOL" => Some("http/protobuf".to_owned()),
    ///     "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("https://collector:4318".to_owned()),
    ///     "OTEL_EXPORTER_OTLP_COMPRESSION" => Some("gzip".to_owned()),
    ///     "OTEL_METRICS_EXPORTER" => Some("none".to_owned()),
    ///     _ => None,
    /// };
    /// let config = OtlpConfig::from_lookup(env)?;
    /// let traces = config.traces.unwrap();
    /// assert_eq!(traces.protocol, Protocol::HttpProtobuf);
    /// assert_eq!(traces.endpoint, "https://collector:4318/v1/traces");
    /// assert_eq!(traces.compression, Some(Compression::Gzip));
    /// assert!(config.metrics.is_none());
    /// # Ok::<(), otel_stats::export::ConfigError>(())
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<OtlpConfig, ConfigError> {
        let env = Env(&lookup);
        if env.bool("OTEL_SDK_DISABLED")? {
            return Ok(OtlpConfig::disabled());
        }
        let traces = match env.exporter("OTEL_TRACES_EXPORTER")? {
            true => Some(env.signal(Signal::Traces)?),
            false => None,
        };
        let metrics = match env.exporter("OTEL_METRICS_EXPORTER")? {
            true => Some(env.signal(Signal::Metrics)?),
            false => None,
        };
        Ok(OtlpConfig {
            sdk_disabled: false,
            traces,
            metrics,
            propagators: env.propagators()?,
            span_exporter: SpanExporterKind::default(),
        })
    }
}

/// The variables, through the lookup; empty values read as unset.
struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    /// The signal's own variable, else the generic one: `(name, value)`.
    fn either(&self, signal: Signal, suffix: &str) -> Option<(String, String)> {
        let own = format!("OTEL_EXPORTER_OTLP_{}_{suffix}", signal.var_infix());
        let generic = format!("OTEL_EXPORTER_OTLP_{suffix}");
        [own, generic]
            .into_iter()
            .find_map(|name| self.get(&name).map(|value| (name, value)))
    }

    fn bool(&self, name: &str) -> Result<bool, ConfigError> {
        let Some(value) = self.get(name) else {
            return Ok(false);
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(ConfigError::new(name, value, "expected true or false")),
        }
    }

    /// Whether `OTEL_{TRACES,METRICS}_EXPORTER` asks for OTLP.
    fn exporter(&self, name: &str) -> Result<bool, ConfigError> {
        let Some(value) = self.get(name) else {
            return Ok(true);
        };
        let names = list(&value);
        for exporter in &names {
            match *exporter {
                "otlp" | "none" => {}
                "console" | "logging" | "prometheus" | "zipkin" | "jaeger" => {
                    return Err(ConfigError::new(
                        name,
                        &value,
                        format!("the {exporter} exporter is not supported: use otlp or none"),
                    ));
                }
                other => {
                    return Err(ConfigError::new(
                        name,
                        &value,
                        format!("unknown exporter {other:?}: use otlp or none"),
                    ));
                }
            }
        }
        let otlp = names.contains(&"otlp");
        if otlp && names.contains(&"none") {
            return Err(ConfigError::new(
                name,
                value,
                "none cannot be combined with otlp",
            ));
        }
        Ok(otlp)
    }

    fn propagators(&self) -> Result<Vec<Propagator>, ConfigError> {
        const NAME: &str = "OTEL_PROPAGATORS";
        let Some(value) = self.get(NAME) else {
            return Ok(vec![Propagator::TraceContext, Propagator::Baggage]);
        };
        let names = list(&value);
        if names.contains(&"none") {
            if names.len() > 1 {
                return Err(ConfigError::new(
                    NAME,
                    value,
                    "none cannot be combined with other propagators",
                ));
            }
            return Ok(Vec::new());
        }
        let mut propagators = Vec::new();
        for name in names {
            let propagator = match name {
                "tracecontext" => Propagator::TraceContext,
                "baggage" => Propagator::Baggage,
                "b3" | "b3multi" | "jaeger" | "xray" | "ottrace" => {
                    return Err(ConfigError::new(
                        NAME,
                        &value,
                        format!(
                            "the {name} propagator is not supported: use tracecontext, baggage or none"
                        ),
                    ));
                }
                other => {
                    return Err(ConfigError::new(
                        NAME,
                        &value,
                        format!("unknown propagator {other:?}: use tracecontext, baggage or none"),
                    ));
                }
            };
            if !propagators.contains(&propagator) {
                propagators.push(propagator);
            }
        }
        Ok(propagators)
    }

    fn signal(&self, signal: Signal) -> Result<SignalConfig, ConfigError> {
        let protocol = self.protocol(signal)?;
        let own_endpoint = format!("OTEL_EXPORTER_OTLP_{}_ENDPOINT", signal.var_infix());
        let endpoint = if let Some(value) = self.get(&own_endpoint) {
            parse_endpoint(&own_endpoint, &value)?
        } else {
            let (name, value) = match self.get("OTEL_EXPORTER_OTLP_ENDPOINT") {
                Some(value) => ("OTEL_EXPORTER_OTLP_ENDPOINT", value),
                None => (
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    match protocol {
                        Protocol::Grpc => DEFAULT_GRPC_ENDPOINT.to_owned(),
                        Protocol::HttpProtobuf => DEFAULT_HTTP_ENDPOINT.to_owned(),
                    },
                ),
            };
            signal_endpoint(protocol, &parse_endpoint(name, &value)?, signal)
        };
        let config = SignalConfig {
            protocol,
            endpoint,
            headers: self.headers(signal)?,
            timeout: self.timeout(signal)?,
            compression: self.compression(signal)?,
            tls: self.tls(signal)?,
        };
        Ok(config)
    }

    fn protocol(&self, signal: Signal) -> Result<Protocol, ConfigError> {
        let Some((name, value)) = self.either(signal, "PROTOCOL") else {
            return Ok(Protocol::Grpc);
        };
        match value.trim() {
            "grpc" => Ok(Protocol::Grpc),
            "http/protobuf" => Ok(Protocol::HttpProtobuf),
            "http/json" => Err(ConfigError::new(
                name,
                value,
                "http/json is not supported: use http/protobuf or grpc",
            )),
            _ => Err(ConfigError::new(
                name,
                value,
                "unknown protocol: use grpc or http/protobuf",
            )),
        }
    }

    fn headers(&self, signal: Signal) -> Result<HeaderMap, ConfigError> {
        let mut headers = HeaderMap::new();
        let Some((name, value)) = self.either(signal, "HEADERS") else {
            return Ok(headers);
        };
        for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad = |reason: &str| ConfigError::new(&name, &value, format!("{pair:?}: {reason}"));
            let (key, raw) = pair
                .split_once('=')
                .ok_or_else(|| bad("expected key=value"))?;
            let decoded = percent_encoding::percent_decode_str(raw.trim())
                .decode_utf8()
                .map_err(|_| bad("the percent-decoded value is not UTF-8"))?;
            let key = HeaderName::from_bytes(key.trim().as_bytes())
                .map_err(|_| bad("not a valid header name"))?;
            let decoded =
                HeaderValue::from_str(&decoded).map_err(|_| bad("not a valid header value"))?;
            headers.append(key, decoded);
        }
        Ok(headers)
    }

    fn timeout(&self, signal: Signal) -> Result<Duration, ConfigError> {
        let Some((name, value)) = self.either(signal, "TIMEOUT") else {
            return Ok(DEFAULT_TIMEOUT);
        };
        match value.trim().parse::<u64>() {
            Ok(0) => Err(ConfigError::new(
                name,
                value,
                "a timeout of 0 would fail every export: give milliseconds, more than 0",
            )),
            Ok(ms) => Ok(Duration::from_millis(ms)),
            Err(_) => Err(ConfigError::new(
                name,
                value,
                "expected a whole number of milliseconds",
            )),
        }
    }

    fn compression(&self, signal: Signal) -> Result<Option<Compression>, ConfigError> {
        let Some((name, value)) = self.either(signal, "COMPRESSION") else {
            return Ok(None);
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "gzip" => Ok(Some(Compression::Gzip)),
            "none" => Ok(None),
            "zstd" => Err(ConfigError::new(
                name,
                value,
                "zstd is not supported by this build: use gzip or none",
            )),
            _ => Err(ConfigError::new(
                name,
                value,
                "unknown compression: use gzip or none",
            )),
        }
    }

    fn tls(&self, signal: Signal) -> Result<TlsSettings, ConfigError> {
        let file = |suffix| self.either(signal, suffix);
        let ca = file("CERTIFICATE");
        let cert = file("CLIENT_CERTIFICATE");
        let key = file("CLIENT_KEY");
        if let Some((name, path)) = &ca {
            tls::check_ca(name, path.as_ref())?;
        }
        match (&cert, &key) {
            (Some((cert_name, cert_path)), Some((key_name, key_path))) => {
                tls::check_identity(
                    (cert_name, cert_path.as_ref()),
                    (key_name, key_path.as_ref()),
                )?;
            }
            (Some((name, value)), None) => {
                return Err(ConfigError::new(
                    name,
                    value,
                    "a client certificate needs its key (OTEL_EXPORTER_OTLP_CLIENT_KEY)",
                ));
            }
            (None, Some((name, value))) => {
                return Err(ConfigError::new(
                    name,
                    value,
                    "a client key needs its certificate (OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE)",
                ));
            }
            (None, None) => {}
        }
        let path = |v: Option<(String, String)>| v.map(|(_, p)| PathBuf::from(p));
        Ok(TlsSettings {
            ca_certificate: path(ca),
            client_certificate: path(cert),
            client_key: path(key),
        })
    }
}

/// The batch limits the SDK's batch span processor reads from `OTEL_BSP_*`, with its names
/// and defaults; a value that is not a number is ignored, as the SDK ignores it.
pub(crate) struct BspLimits {
    pub(crate) max_queue_size: usize,
    pub(crate) max_export_batch_size: usize,
    pub(crate) scheduled_delay: Duration,
}

impl BspLimits {
    pub(crate) fn from_env() -> BspLimits {
        let number = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(default)
        };
        BspLimits {
            max_queue_size: number(
                OTEL_BSP_MAX_QUEUE_SIZE,
                OTEL_BSP_MAX_QUEUE_SIZE_DEFAULT as u64,
            ) as usize,
            max_export_batch_size: number(
                OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
                OTEL_BSP_MAX_EXPORT_BATCH_SIZE_DEFAULT as u64,
            ) as usize,
            scheduled_delay: Duration::from_millis(number(
                OTEL_BSP_SCHEDULE_DELAY,
                OTEL_BSP_SCHEDULE_DELAY_DEFAULT.as_millis() as u64,
            )),
        }
    }
}

/// The names of a comma-separated list, trimmed, empty ones skipped.
fn list(value: &str) -> Vec<&str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<OtlpConfig, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        OtlpConfig::from_lookup(move |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    fn error(vars: &[(&str, &str)]) -> ConfigError {
        config(vars).expect_err("the configuration is rejected")
    }

    fn traces(vars: &[(&str, &str)]) -> SignalConfig {
        config(vars).unwrap().traces.expect("traces are exported")
    }

    fn metrics(vars: &[(&str, &str)]) -> SignalConfig {
        config(vars).unwrap().metrics.expect("metrics are exported")
    }

    #[test]
    fn nothing_set_is_grpc_to_localhost_with_both_propagators() {
        let config = config(&[]).unwrap();
        assert!(!config.sdk_disabled);
        for signal in [config.traces.unwrap(), config.metrics.unwrap()] {
            assert_eq!(signal.protocol, Protocol::Grpc);
            assert_eq!(signal.endpoint, "http://localhost:4317/");
            assert_eq!(signal.timeout, Duration::from_secs(10));
            assert_eq!(signal.compression, None);
            assert!(signal.headers.is_empty());
            assert_eq!(signal.tls, TlsSettings::default());
        }
        assert_eq!(
            config.propagators,
            [Propagator::TraceContext, Propagator::Baggage]
        );
    }

    #[test]
    fn http_protobuf_defaults_to_port_4318_with_the_signal_path() {
        let vars = [("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")];
        assert_eq!(traces(&vars).endpoint, "http://localhost:4318/v1/traces");
        assert_eq!(metrics(&vars).endpoint, "http://localhost:4318/v1/metrics");
    }

    #[test]
    fn the_signal_protocol_wins_over_the_generic_one() {
        let vars = [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf"),
        ];
        assert_eq!(traces(&vars).protocol, Protocol::Grpc);
        assert_eq!(metrics(&vars).protocol, Protocol::HttpProtobuf);
    }

    #[test]
    fn http_json_and_unknown_protocols_are_errors() {
        let e = error(&[("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")]);
        assert_eq!(e.setting(), "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL");
        assert!(e.reason().contains("not supported"), "{e}");
        let e = error(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpcs")]);
        assert_eq!(e.value(), "grpcs");
    }

    #[test]
    fn the_generic_endpoint_gets_the_signal_path_for_http_only() {
        let http = [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "https://collector:4318/base/",
            ),
        ];
        assert_eq!(
            traces(&http).endpoint,
            "https://collector:4318/base/v1/traces"
        );
        assert_eq!(
            metrics(&http).endpoint,
            "https://collector:4318/base/v1/metrics"
        );
        let grpc = [("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4317")];
        assert_eq!(traces(&grpc).endpoint, "https://collector:4317/");
    }

    #[test]
    fn the_signal_endpoint_is_used_as_it_is() {
        let vars = [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://traces:9999/custom",
            ),
        ];
        assert_eq!(traces(&vars).endpoint, "http://traces:9999/custom");
        assert_eq!(metrics(&vars).endpoint, "http://generic:4318/v1/metrics");
    }

    #[test]
    fn endpoints_without_scheme_or_host_are_errors() {
        let e = error(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")]);
        assert_eq!(e.setting(), "OTEL_EXPORTER_OTLP_ENDPOINT");
        let e = error(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://collector")]);
        assert!(e.reason().contains("http or https"), "{e}");
        error(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http:// bad")]);
    }

    #[test]
    fn headers_are_percent_decoded_and_the_signal_list_replaces_the_generic_one() {
        let vars = [
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                " api-key = secret%20value , x-tenant=acme,",
            ),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "x-only=metrics"),
        ];
        let headers = traces(&vars).headers;
        assert_eq!(headers["api-key"], "secret value");
        assert_eq!(headers["x-tenant"], "acme");
        let headers = metrics(&vars).headers;
        assert_eq!(headers.len(), 1);
        assert_eq!(headers["x-only"], "metrics");
    }

    #[test]
    fn malformed_headers_are_errors() {
        for bad in ["no-equals-sign", "bad key=v", "k=%ff%fe", "k=line%0Abreak"] {
            let e = error(&[("OTEL_EXPORTER_OTLP_HEADERS", bad)]);
            assert_eq!(e.setting(), "OTEL_EXPORTER_OTLP_HEADERS", "{bad}");
            assert_eq!(e.value(), bad);
        }
    }

    #[test]
    fn timeouts_are_milliseconds_and_must_be_positive() {
        let vars = [
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "300"),
        ];
        assert_eq!(traces(&vars).timeout, Duration::from_millis(300));
        assert_eq!(metrics(&vars).timeout, Duration::from_millis(2500));
        for bad in ["0", "1.5", "10s", "-1"] {
            let e = error(&[("OTEL_EXPORTER_OTLP_TIMEOUT", bad)]);
            assert_eq!(e.setting(), "OTEL_EXPORTER_OTLP_TIMEOUT");
        }
    }

    #[test]
    fn compression_is_gzip_or_none() {
        let vars = [
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "none"),
        ];
        assert_eq!(traces(&vars).compression, Some(Compression::Gzip));
        assert_eq!(metrics(&vars).compression, None);
        let e = error(&[("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd")]);
        assert!(e.reason().contains("not supported"), "{e}");
        error(&[("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "brotli")]);
    }

    #[test]
    fn sdk_disabled_reads_nothing_else() {
        let config = config(&[
            ("OTEL_SDK_DISABLED", "TRUE"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ])
        .unwrap();
        assert!(config.sdk_disabled);
        assert!(config.traces.is_none() && config.metrics.is_none());
        assert!(
            !self::config(&[("OTEL_SDK_DISABLED", "false")])
                .unwrap()
                .sdk_disabled
        );
        let e = error(&[("OTEL_SDK_DISABLED", "yes")]);
        assert_eq!(e.setting(), "OTEL_SDK_DISABLED");
    }

    #[test]
    fn exporters_are_otlp_or_none() {
        let config = config(&[
            ("OTEL_TRACES_EXPORTER", "none"),
            ("OTEL_METRICS_EXPORTER", "otlp"),
        ])
        .unwrap();
        assert!(config.traces.is_none());
        assert!(config.metrics.is_some());
        let e = error(&[("OTEL_METRICS_EXPORTER", "prometheus")]);
        assert!(e.reason().contains("not supported"), "{e}");
        let e = error(&[("OTEL_TRACES_EXPORTER", "otlpp")]);
        assert_eq!(e.setting(), "OTEL_TRACES_EXPORTER");
        error(&[("OTEL_TRACES_EXPORTER", "otlp,none")]);
    }

    #[test]
    fn an_unused_signal_is_not_validated() {
        let config = config(&[
            ("OTEL_METRICS_EXPORTER", "none"),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/json"),
        ])
        .unwrap();
        assert!(config.metrics.is_none());
    }

    #[test]
    fn propagators_are_named_or_none_and_unknown_names_are_errors() {
        let config = |v| self::config(&[("OTEL_PROPAGATORS", v)]);
        assert_eq!(
            config("baggage, tracecontext").unwrap().propagators,
            [Propagator::Baggage, Propagator::TraceContext]
        );
        assert_eq!(
            config("tracecontext").unwrap().propagators,
            [Propagator::TraceContext]
        );
        assert!(config("none").unwrap().propagators.is_empty());
        let e = config("tracecontext,b3").unwrap_err();
        assert!(e.reason().contains("b3"), "{e}");
        let e = config("tracecontxt").unwrap_err();
        assert_eq!(e.setting(), "OTEL_PROPAGATORS");
        config("none,baggage").unwrap_err();
    }

    #[test]
    fn certificate_files_must_exist() {
        let e = error(&[("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem")]);
        assert_eq!(e.setting(), "OTEL_EXPORTER_OTLP_CERTIFICATE");
        assert_eq!(e.value(), "/nonexistent/ca.pem");
        let e = error(&[(
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
            "/x/cert.pem",
        )]);
        assert!(e.reason().contains("key"), "{e}");
        error(&[("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/x/key.pem")]);
    }

    #[test]
    fn a_file_that_is_not_pem_is_an_error() {
        let dir = std::env::temp_dir().join(format!("otel-stats-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("not-a-certificate.pem");
        std::fs::write(&path, "hello").unwrap();
        let e = error(&[("OTEL_EXPORTER_OTLP_CERTIFICATE", path.to_str().unwrap())]);
        assert!(e.reason().contains("no certificate"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
