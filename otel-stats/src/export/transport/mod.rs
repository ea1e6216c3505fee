//! One export request on the wire: OTLP/gRPC (`grpc.rs`) or OTLP/HTTP with protobuf bodies
//! (`http.rs`), over a hyper client that keeps its connection across requests. Bodies are
//! made once per batch and sent as they are on every attempt.

mod grpc;
mod http;
mod proto;

use std::fmt;
use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use flate2::write::GzEncoder;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::Connect;
use hyper_util::rt::TokioExecutor;

use super::config::{Compression, Protocol, SignalConfig};
use super::error::ConfigError;
use super::retry::Verdict;

pub(crate) use proto::PartialSuccess;

/// The most of a response body read: a collector answers with a few bytes, and a larger
/// answer is not worth the memory.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// A request the collector took, perhaps only in part.
#[derive(Debug)]
pub(crate) struct Accepted {
    pub(crate) partial: Option<PartialSuccess>,
}

/// A request the collector did not take, and whether another attempt may help.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) verdict: Verdict,
    pub(crate) error: String,
}

impl Failure {
    fn new(verdict: Verdict, error: impl fmt::Display) -> Failure {
        Failure {
            verdict,
            error: error.to_string(),
        }
    }
}

/// The wire an exporter speaks, and its client.
#[derive(Debug)]
pub(crate) struct Transport<C> {
    client: Client<C, Full<Bytes>>,
    protocol: Protocol,
    gzip: bool,
    uri: ::http::Uri,
    /// Every header of a request but `grpc-timeout`, made once.
    headers: ::http::HeaderMap,
}

impl<C> Transport<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    pub(crate) fn new(config: &SignalConfig, connector: C) -> Result<Transport<C>, ConfigError> {
        let gzip = match config.compression {
            None => false,
            Some(Compression::Gzip) => true,
            Some(Compression::Zstd) => {
                return Err(ConfigError::new(
                    "compression",
                    "zstd",
                    "the direct span exporter compresses with gzip only",
                ));
            }
        };
        if config.endpoint.scheme().is_none() || config.endpoint.authority().is_none() {
            return Err(ConfigError::new(
                "endpoint",
                config.endpoint.to_string(),
                "an OTLP endpoint needs a scheme and a host",
            ));
        }
        let mut builder = Client::builder(TokioExecutor::new());
        let (uri, mut headers) = match config.protocol {
            Protocol::Grpc => {
                builder.http2_only(true);
                grpc::request_parts(&config.endpoint, gzip)?
            }
            Protocol::HttpProtobuf => http::request_parts(&config.endpoint, gzip),
        };
        for (name, value) in &config.headers {
            headers.append(name, value.clone());
        }
        headers
            .entry(::http::header::USER_AGENT)
            .or_insert(::http::HeaderValue::from_static(concat!(
                "otel-stats/",
                env!("CARGO_PKG_VERSION")
            )));
        Ok(Transport {
            client: builder.build(connector),
            protocol: config.protocol,
            gzip,
            uri,
            headers,
        })
    }

    /// The body of one request: what `encode` writes, compressed if configured, behind the
    /// gRPC message prefix when speaking gRPC. `scratch` holds the uncompressed message
    /// when compressing; it is reused across batches.
    pub(crate) fn body(
        &self,
        size_hint: usize,
        scratch: &mut Vec<u8>,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> Bytes {
        let prefix = match self.protocol {
            Protocol::Grpc => grpc::PREFIX_LEN,
            _ => 0,
        };
        let mut body = Vec::with_capacity(prefix + size_hint);
        body.resize(prefix, 0);
        if self.gzip {
            scratch.clear();
            encode(scratch);
            body = gzip(body, scratch);
        } else {
            encode(&mut body);
        }
        if prefix > 0 {
            grpc::write_prefix(&mut body, self.gzip);
        }
        Bytes::from(body)
    }

    /// One attempt, bounded by `timeout`.
    pub(crate) async fn send(&self, body: Bytes, timeout: Duration) -> Result<Accepted, Failure> {
        let mut request = ::http::Request::post(self.uri.clone())
            .body(Full::new(body))
            .map_err(|e| Failure::new(Verdict::Fail, e))?;
        *request.headers_mut() = self.headers.clone();
        if self.protocol == Protocol::Grpc {
            grpc::set_timeout(request.headers_mut(), timeout);
        }
        let attempt = async {
            let response = self.client.request(request).await.map_err(|e| {
                // Refused, reset, closed: the collector may be back on the next attempt.
                Failure::new(Verdict::Retry, error_chain(&e))
            })?;
            match self.protocol {
                Protocol::Grpc => grpc::read_response(response).await,
                _ => http::read_response(response).await,
            }
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Failure::new(
                Verdict::Retry,
                format_args!("no answer within {timeout:?}"),
            )),
        }
    }
}

/// `message` compressed with gzip after what `out` already holds. The fastest level: the
/// point of compressing telemetry is the network, and the CPU it takes is the service's.
fn gzip(out: Vec<u8>, message: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(out, flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(message);
    encoder.finish().unwrap_or_default()
}

/// A response body and its trailers, read up to [`MAX_RESPONSE_BYTES`].
async fn read_body(body: Incoming) -> Result<(Bytes, Option<::http::HeaderMap>), Failure> {
    let collected = Limited::new(body, MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| Failure::new(Verdict::Retry, format_args!("reading the response: {e}")))?;
    let trailers = collected.trailers().cloned();
    Ok((collected.to_bytes(), trailers))
}

/// An error and its sources, as one line: hyper's top-level errors say little alone.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
