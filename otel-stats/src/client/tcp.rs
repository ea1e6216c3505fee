use hyper_util::client::legacy::connect::HttpConnector;
use tonic::transport::Endpoint;

/// The TCP connector tonic's own `Endpoint::connect` would use for `endpoint`: hyper-util's
/// `HttpConnector` with the endpoint's `tcp_nodelay`, `tcp_keepalive` (with its interval and
/// retries) and `connect_timeout`, and hyper-util's defaults otherwise (happy eyeballs after
/// 300 ms), as tonic leaves them.
///
/// [`ClientStatsLayer::connect`](crate::ClientStatsLayer::connect) connects with it. TLS is
/// not its business: `Endpoint::connect_with_connector` puts the endpoint's `tls_config` on
/// top of any connector.
///
/// The endpoint's `local_address` is the one setting it cannot copy: tonic 0.14's `Endpoint`
/// has no getter for it. Set it on the connector again and connect with
/// [`ClientStatsLayer::connect_with`](crate::ClientStatsLayer::connect_with).
///
/// # Examples
///
/// ```no_run
/// use std::net::{IpAddr, Ipv4Addr};
/// use otel_stats::{ClientStatsLayer, LogHandler, tcp_connector};
/// use tonic::transport::Endpoint;
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
///
/// let source = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)));
/// let endpoint = Endpoint::from_static("http://10.0.0.1:50051")
///     .tcp_nodelay(true)
///     .local_address(source);
/// let mut tcp = tcp_connector(&endpoint);
/// tcp.set_local_address(source);
/// let stats = ClientStatsLayer::new(LogHandler::text(std::io::stderr()));
/// let channel = stats.connect_with(endpoint, tcp).await?;
/// # let _ = channel;
/// # Ok(()) }
/// ```
pub fn tcp_connector(endpoint: &Endpoint) -> HttpConnector {
    let mut http = HttpConnector::new();
    // tonic's scheme check: `https` is for the TLS layer above, not a reason to refuse.
    http.enforce_http(false);
    http.set_nodelay(endpoint.get_tcp_nodelay());
    http.set_keepalive(endpoint.get_tcp_keepalive());
    http.set_keepalive_interval(endpoint.get_tcp_keepalive_interval());
    http.set_keepalive_retries(endpoint.get_tcp_keepalive_retries());
    http.set_connect_timeout(endpoint.get_connect_timeout());
    http
}
