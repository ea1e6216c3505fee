//! The TCP addresses tonic knows of a server connection, wherever it keeps them.

use std::any::Any;
use std::net::SocketAddr;

use http::Extensions;
use tonic::transport::server::TcpConnectInfo;
#[cfg(feature = "tls")]
use tonic::transport::server::TlsConnectInfo;

/// (remote, local), each when known.
pub(crate) type Addrs = (Option<SocketAddr>, Option<SocketAddr>);

/// Where connect info can be found by type: an IO's own, or a request's extensions.
trait Holder {
    fn find<T: Send + Sync + 'static>(&self) -> Option<&T>;
}

impl Holder for dyn Any {
    fn find<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.downcast_ref()
    }
}

impl Holder for Extensions {
    fn find<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.get()
    }
}

/// Read as tonic's `Request::remote_addr()` reads them: `TcpConnectInfo` (in the extensions
/// also under `Server::tls_config`), else, with the `tls` feature, the one inside
/// `TlsConnectInfo` (a TLS stream the application accepted itself).
fn addrs_in<H: Holder + ?Sized>(holder: &H) -> Addrs {
    if let Some(tcp) = holder.find::<TcpConnectInfo>() {
        return (tcp.remote_addr(), tcp.local_addr());
    }
    #[cfg(feature = "tls")]
    if let Some(tls) = holder.find::<TlsConnectInfo<TcpConnectInfo>>() {
        return (tls.get_ref().remote_addr(), tls.get_ref().local_addr());
    }
    (None, None)
}

/// The addresses in a server IO's connect info.
pub(super) fn of_connect_info<I: Any>(info: &I) -> Addrs {
    addrs_in(info as &dyn Any)
}

/// The addresses in a request's extensions, where tonic put the connect info.
pub(crate) fn of_extensions(extensions: &Extensions) -> Addrs {
    addrs_in(extensions)
}
