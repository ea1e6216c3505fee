//! What can go wrong before the first export: a setting that is invalid or not supported
//! ([`ConfigError`], naming the variable and its value), or an exporter that cannot be built.

use std::error::Error;
use std::fmt;

/// A setting that cannot be honoured: invalid, contradictory, not supported by this crate, or
/// naming a file that cannot be read.
///
/// Reported when the configuration is resolved or the pipeline is built, so that a typo in a
/// variable stops the program at start instead of losing every span later.
///
/// ```
/// use otel_stats::export::OtlpConfig;
///
/// let env = |name: &str| (name == "OTEL_EXPORTER_OTLP_PROTOCOL").then(|| "http/json".to_owned());
/// let error = OtlpConfig::from_lookup(env).unwrap_err();
/// assert_eq!(error.setting(), "OTEL_EXPORTER_OTLP_PROTOCOL");
/// assert_eq!(error.value(), "http/json");
/// assert!(error.to_string().contains("not supported"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    setting: String,
    value: String,
    reason: String,
}

impl ConfigError {
    pub(crate) fn new(
        setting: impl Into<String>,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            setting: setting.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }

    /// The variable (`OTEL_EXPORTER_OTLP_PROTOCOL`) or, for a setting made in code, the
    /// field (`traces.tls.ca_certificate`).
    pub fn setting(&self) -> &str {
        &self.setting
    }

    /// The value that was rejected, as given.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Why it was rejected.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={:?}: {}", self.setting, self.value, self.reason)
    }
}

impl Error for ConfigError {}

/// Why [`init_otlp`](crate::init_otlp) could not install the pipeline.
#[derive(Debug)]
#[non_exhaustive]
pub enum OtlpError {
    /// A setting is invalid or not supported.
    Config(ConfigError),
    /// The exporter rejected its configuration or could not start.
    Exporter(opentelemetry_otlp::ExporterBuildError),
}

impl fmt::Display for OtlpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OtlpError::Config(e) => write!(f, "invalid OTLP export configuration: {e}"),
            OtlpError::Exporter(e) => write!(f, "cannot build the OTLP exporter: {e}"),
        }
    }
}

impl Error for OtlpError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            OtlpError::Config(e) => Some(e),
            OtlpError::Exporter(e) => Some(e),
        }
    }
}

impl From<ConfigError> for OtlpError {
    fn from(e: ConfigError) -> OtlpError {
        OtlpError::Config(e)
    }
}

impl From<opentelemetry_otlp::ExporterBuildError> for OtlpError {
    fn from(e: opentelemetry_otlp::ExporterBuildError) -> OtlpError {
        OtlpError::Exporter(e)
    }
}
