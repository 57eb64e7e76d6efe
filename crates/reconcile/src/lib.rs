//! Reconciliation with iDenfy (DESIGN.md section 13): iDenfy retries a webhook for about 100
//! seconds, so after a longer outage a case can stay open forever. A case still not final and
//! unchanged for `VERDICT_RECONCILE_AFTER` is looked up with iDenfy's status API and the answer
//! recorded as a RECONCILED delivery through the ingest use case.
//!
//! - [`IdenfyClient`]: `POST {url}/api/v2/status` with Basic auth and timeouts, over hyper and
//!   rustls (ring).
//! - [`Reconciler`]: one lookup, recorded; the entrance `verdict reconcile REF` uses.
//! - [`Scheduler`]: the loop every replica runs, claiming due cases in the database so only
//!   one replica asks about each, rate-limited, backing off on failures.
//! - [`BacklogGauges`]: the periodic read behind the backlog gauges.
//!
//! iDenfy forbids regular polling of the status API: every path here asks rarely, and failing
//! never makes it ask faster.

#![forbid(unsafe_code)]

mod backlog;
pub mod client;
mod lookup;
mod pace;
mod scheduler;

pub use backlog::{BacklogGauges, DEFAULT_BACKLOG_INTERVAL};
pub use client::{ApiSettings, IdenfyClient, LookupError, SetupError};
pub use lookup::{Error, Reconciler, result_of};
pub use scheduler::{Schedule, Scheduler};
