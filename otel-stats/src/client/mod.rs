//! The client side: a tower layer around a `tonic::transport::Channel` (or any `GrpcService`).

mod layer;
mod service;

pub use layer::ClientStatsLayer;
pub use service::ClientStatsService;
