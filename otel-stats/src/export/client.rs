//! The HTTP side of export: one connector (TCP with `TCP_NODELAY`, then rustls for `https`,
//! offering h2 and HTTP/1.1 by ALPN) that every exporter of this crate connects through, and
//! the `opentelemetry_http::HttpClient` the standard OTLP/HTTP exporter sends with, on
//! hyper-util's pooled client: no reqwest, no second TLS stack.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry_http::{HttpClient, HttpError};
use tokio::runtime::Handle;

use super::config::{SignalConfig, TlsSettings};
use super::error::ConfigError;
use super::tls;

/// TCP, then TLS when the URL is `https`: a hyper-util `Connect` for HTTP/1.1 and, negotiated
/// by ALPN (or with `http2_only` on plain TCP), h2.
pub(crate) type HttpsConnector = hyper_rustls::HttpsConnector<HttpConnector>;

/// The largest collector response read; an OTLP response is a few bytes (the same bound as
/// the SDK's own clients).
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// The connector for `signal`'s collector.
pub(crate) fn https_connector(signal: &SignalConfig) -> Result<HttpsConnector, ConfigError> {
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(client_tls(signal)?)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(tcp))
}

/// The TLS configuration of `signal`'s connector. An `http` endpoint never uses it, so
/// unless TLS files were given (which are still checked, so that a wrong path fails at
/// start) it gets one without trust roots: the system's roots are every certificate in the
/// system store, read from disk and kept for the life of the process (about a megabyte of
/// resident memory here) for a connection that will not use them.
fn client_tls(signal: &SignalConfig) -> Result<rustls::ClientConfig, ConfigError> {
    if signal.is_https() || signal.tls != TlsSettings::default() {
        tls::rustls_config(&signal.tls)
    } else {
        tls::plaintext_config()
    }
}

/// The Tokio runtime of the caller, which the export clients do their IO on: the SDK's batch
/// processor and periodic reader call exporters from threads of their own.
pub(crate) fn runtime() -> Result<Handle, ConfigError> {
    Handle::try_current().map_err(|_| {
        ConfigError::new(
            "runtime",
            "none",
            "OTLP export needs a Tokio runtime: call init_otlp inside one",
        )
    })
}

/// The client of the standard OTLP/HTTP exporter: each request runs as a task on the runtime
/// it was built in, bounded by the signal's timeout (connecting, sending and reading the
/// response alike), and carries the signal's headers (set here, as they are, because the
/// exporter's own header option would percent-decode the decoded values a second time).
#[derive(Debug, Clone)]
pub(crate) struct OtlpHttpClient {
    client: Client<HttpsConnector, Full<Bytes>>,
    runtime: Handle,
    timeout: Duration,
    headers: HeaderMap,
}

impl OtlpHttpClient {
    pub(crate) fn new(signal: &SignalConfig) -> Result<OtlpHttpClient, ConfigError> {
        let runtime = runtime()?;
        let client = Client::builder(TokioExecutor::new()).build(https_connector(signal)?);
        Ok(OtlpHttpClient {
            client,
            runtime,
            timeout: signal.timeout,
            headers: signal.headers.clone(),
        })
    }
}

async fn send(
    client: Client<HttpsConnector, Full<Bytes>>,
    request: Request<Bytes>,
) -> Result<Response<Bytes>, HttpError> {
    let response = client.request(request.map(Full::new)).await?;
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, MAX_RESPONSE_BYTES)
        .collect()
        .await?
        .to_bytes();
    Ok(Response::from_parts(parts, body))
}

impl HttpClient for OtlpHttpClient {
    // What `#[async_trait]` would write, without the macro dependency.
    fn send_bytes<'life0, 'async_trait>(
        &'life0 self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let mut request = request;
        for (name, value) in &self.headers {
            request.headers_mut().insert(name, value.clone());
        }
        let client = self.client.clone();
        let timeout = self.timeout;
        let task = self
            .runtime
            .spawn(async move { tokio::time::timeout(timeout, send(client, request)).await });
        Box::pin(async move {
            match task.await {
                Ok(Ok(result)) => result,
                Ok(Err(_elapsed)) => {
                    Err(format!("no response from the collector within {timeout:?}").into())
                }
                Err(e) => Err(Box::new(e) as HttpError),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::Protocol;

    fn signal(endpoint: &str) -> SignalConfig {
        SignalConfig::new(Protocol::Grpc, endpoint.parse().unwrap())
    }

    #[test]
    fn a_tls_file_is_checked_even_for_an_http_endpoint() {
        assert!(client_tls(&signal("http://localhost:4317")).is_ok());
        assert!(client_tls(&signal("https://localhost:4317")).is_ok());
        let missing = TlsSettings::new().with_ca_certificate("/nonexistent/ca.pem");
        let error = client_tls(&signal("http://localhost:4317").with_tls(missing))
            .unwrap_err()
            .to_string();
        assert!(error.contains("/nonexistent/ca.pem"), "{error}");
    }
}
