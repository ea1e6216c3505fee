//! The client side: a tower layer around a `tonic::transport::Channel` (or any `GrpcService`).

mod layer;
mod service;
mod tcp;

pub use layer::ClientStatsLayer;
pub use service::ClientStatsService;
pub use tcp::tcp_connector;
