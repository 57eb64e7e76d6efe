//! The ports of reconciliation (DESIGN.md section 13): which open cases are due for a lookup at
//! iDenfy, claimed in the database so that only one replica asks about each, and the backlog
//! the operator's gauges show.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::Error;

/// Which case [`ReconcileQueue::claim_due`] may claim, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueQuery {
    /// Now, as the claimer's clock says.
    pub now: DateTime<Utc>,
    /// Only cases whose last change is at or before this (now less `VERDICT_RECONCILE_AFTER`).
    pub unchanged_since: DateTime<Utc>,
    /// Nobody else claims the case before this: the claim's lease.
    pub hold_until: DateTime<Utc>,
}

/// A case claimed for one lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub scan_ref: String,
    /// Lookups of the case since its last change that told nothing new: how far to back off.
    pub attempts: u32,
}

/// When to look a claimed case up again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextLookup {
    /// Not before this.
    pub at: DateTime<Utc>,
    /// The claim's new [`Claim::attempts`].
    pub attempts: u32,
    /// How the lookup ended (`verdict.reconcile`'s `result` label), kept for operators.
    pub result: &'static str,
}

/// Reconciliation claims. Every method is one short statement or two, safe to run from many
/// replicas at once.
#[async_trait]
pub trait ReconcileQueue: Send + Sync + fmt::Debug + 'static {
    /// Claims the case that has gone longest without a change among those not final, unchanged
    /// since `query.unchanged_since` and not held by a claim (never claimed, or due again):
    /// atomically, so of replicas claiming at once exactly one gets each case. `None` when no
    /// case is due.
    async fn claim_due(&self, query: DueQuery) -> Result<Option<Claim>, Error>;

    /// Records when to look `scan_ref` up again, or forgets its claim (`None`: the case became
    /// final, and a final case is never looked up).
    async fn settle(&self, scan_ref: &str, next: Option<NextLookup>) -> Result<(), Error>;
}

/// What is waiting: the numbers behind `verdict_oldest_pending_case_seconds` and
/// `verdict_quarantine_depth`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// The last change of the case that has waited longest for a final result, if any case is
    /// not final.
    pub oldest_pending_since: Option<DateTime<Utc>>,
    /// Quarantined deliveries not yet released.
    pub quarantine_depth: u64,
}

/// Reads the [`Backlog`]: one indexed query per number, cheap enough to run every few seconds.
#[async_trait]
pub trait BacklogStore: Send + Sync + fmt::Debug + 'static {
    /// The backlog as it is now.
    async fn backlog(&self) -> Result<Backlog, Error>;
}
