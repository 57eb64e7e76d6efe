//! Forgetting a person (DESIGN.md section 11): why a case is purged, what a purge answers, and
//! the port that does it.
//!
//! A purge erases a case's personal data — its person and the raw body of every delivery and
//! quarantine item of the case — and keeps everything else: the decision, statuses, tags,
//! revisions, the history's metadata and the body hashes, so duplicate detection still works.
//! It is a change like any other: one revision, `purged_at` set, one feed entry, published, so
//! subscribers that copied personal data learn to delete theirs. Purging a case with nothing
//! left to erase changes nothing.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{Case, Cursor, Error};

/// Why a case was purged: the `reason` label of `verdict.purges` and of the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PurgeReason {
    /// Someone asked to forget this case: `verdict purge --scan-ref`, `AdminService.PurgeCase`.
    Erasure,
    /// The case became final longer ago than `VERDICT_RETENTION`.
    Retention,
    /// iDenfy said it deleted or archived the verification (overall status DELETED, ARCHIVED
    /// or EXPIRED-DELETED): purged in the transaction that records that notice.
    LifecycleStatus,
}

impl PurgeReason {
    /// The label spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Erasure => "erasure",
            Self::Retention => "retention",
            Self::LifecycleStatus => "lifecycle_status",
        }
    }
}

impl fmt::Display for PurgeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What purging one case did.
#[derive(Debug, Clone)]
pub struct Purge {
    /// The case after the purge (without a person).
    pub case: Case,
    /// The purge's place in the feed, to publish; `None` when nothing was left to erase and the
    /// case was already marked purged, so nothing changed.
    pub position: Option<Cursor>,
}

/// One batch of a retention pass.
#[derive(Debug, Clone, Default)]
pub struct ExpiredBatch {
    /// The cases purged, each a change to publish.
    pub purged: Vec<Purge>,
    /// Quarantine items that name no stored case (or a purged one), whose bodies were erased
    /// for their age.
    pub quarantine_erased: u64,
    /// Whether the batch was full: more may be waiting.
    pub more: bool,
}

/// Storage of purges, one transaction each.
#[async_trait]
pub trait PurgeStore: Send + Sync + fmt::Debug + 'static {
    /// Purges one case: locks it, erases what is left of its personal data and, if anything was
    /// erased or the case was not marked yet, records the purge as a change (its feed entry
    /// carries `traceparent`, so the watchers' spans join the purge's trace). `None` when there
    /// is no such case.
    async fn purge(
        &self,
        scan_ref: &str,
        traceparent: Option<String>,
    ) -> Result<Option<Purge>, Error>;

    /// One batch of a retention pass, in one transaction: purges up to `limit` cases that
    /// became final before `cutoff` and are not purged yet, and erases the bodies of up to
    /// `limit` quarantine items older than `cutoff` that name no stored case (or a purged one,
    /// which a race can leave behind). `None` when another process is running a batch
    /// (replicas take turns: on PostgreSQL a batch holds an advisory lock), so the caller
    /// leaves the pass to it.
    async fn purge_expired(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
        traceparent: Option<String>,
    ) -> Result<Option<ExpiredBatch>, Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_spelled_as_labels() {
        let labels: Vec<&str> = [
            PurgeReason::Erasure,
            PurgeReason::Retention,
            PurgeReason::LifecycleStatus,
        ]
        .into_iter()
        .map(PurgeReason::as_str)
        .collect();
        assert_eq!(labels, ["erasure", "retention", "lifecycle_status"]);
    }
}
