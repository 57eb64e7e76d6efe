//! The HTTP side of Verdict: iDenfy's signed webhooks in, probes for the orchestrator, metrics
//! on a separate admin router, and the server loop that serves them with read timeouts and a
//! connection cap.
//!
//! A webhook takes one path: the source filter and the in-flight bound answer first, the
//! extractor reads the raw body under the size limit and the body timeout and checks the content
//! type, the domain's signature check turns it into a verified delivery, and only then does the
//! ingest use case (`verdict-ingest`, shared with the CLI) parse and record (or quarantine) it.
//! Nothing is answered 2xx before the store committed, and the change bus is told afterwards, on
//! a best-effort basis.
//!
//! The crate knows the ports ([`CaseStore`], [`ChangeBus`]) only as trait objects; the root
//! package wires the concrete store and bus and serves [`router`].
//!
//! [`CaseStore`]: verdict_domain::CaseStore
//! [`ChangeBus`]: verdict_domain::ChangeBus

#![forbid(unsafe_code)]

mod access_log;
mod error;
mod extract;
mod health;
mod inflight;
mod layers;
mod response;
mod routes;
mod serve;
mod source;
mod state;
mod trace_context;
mod webhook;

pub use error::Error;
pub use routes::{HEALTHZ_PATH, METRICS_PATH, READYZ_PATH, WEBHOOK_PATH, admin_router, router};
pub use serve::{DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS, ServeOptions, serve};
pub use source::SourceFilter;
pub use state::{
    DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_INFLIGHT, DEFAULT_WRITE_TIMEOUT,
    IngressState,
};
