//! The gRPC face of Verdict: `verdict.v1.CaseService`, `verdict.v1.AdminService`,
//! `grpc.health.v1` and server reflection, served over the domain ports (`Arc<dyn CaseStore>`),
//! the use cases the operator's calls share with the command line, and the in-process change
//! hub, over
//! plaintext or (mutual) TLS, with scoped credentials, an audit trail of personal data served,
//! and bounds on streams.
//!
//! This crate is the only place where protobuf types meet domain types ([`convert`]), and the
//! only place where domain errors become `tonic::Status` (one function, one table). The binary
//! calls [`serve`] with an already-bound listener and the process-wide cancellation token.

#![forbid(unsafe_code)]

mod admin;
mod audit;
mod auth;
mod case_cache;
pub mod convert;
mod deliver;
mod error;
mod feed_tail;
mod health;
mod server;
mod service;
mod shared_read;
mod status;
mod stream;
mod telemetry;
mod tls;

pub use admin::AdminUseCases;
pub use audit::AUDIT_TARGET;
pub use auth::{Caller, Credentials, Scope};
pub use error::Error;
pub use server::{
    DEFAULT_FEED_WINDOW, DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_KEEPALIVE_INTERVAL,
    DEFAULT_KEEPALIVE_TIMEOUT, DEFAULT_MAX_CONCURRENT_STREAMS, DEFAULT_MAX_STREAMS,
    DEFAULT_STREAM_MAX_AGE, GrpcOptions, serve,
};
pub use tls::ServerTls;
