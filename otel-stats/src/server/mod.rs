//! The server side: a tower layer for `tonic::transport::Server::builder().layer(..)`.

mod layer;
mod service;

pub use layer::ServerStatsLayer;
pub use service::ServerStatsService;
