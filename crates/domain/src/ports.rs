//! The ports: what the application needs from storage and from the change bus. Adapters in
//! `verdict-store` and `verdict-bus` implement them; the edges hold them as `Arc<dyn …>`.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::{
    Case, CaseEvent, Cursor, Decision, Error, EventType, FeedFilter, Outcome, Payload,
    QuarantineReason,
};

/// A verified, parsed delivery ready to be recorded.
#[derive(Clone)]
pub struct NewDelivery {
    pub event: EventType,
    pub payload: Payload,
    /// The raw body exactly as received: kept so a delivery can be re-examined later.
    pub body: Bytes,
    /// When it first reached Verdict: the state machine judges it as of this time, so a delivery
    /// reprocessed from the quarantine keeps its original arrival.
    pub received_at: DateTime<Utc>,
    /// W3C traceparent of the request that brought it, so later work can join its trace.
    pub traceparent: Option<String>,
    /// The quarantine item this delivery is being reprocessed from: released in the same
    /// transaction that records it, so a crash can neither record it twice nor lose it.
    pub releases: Option<i64>,
}

impl fmt::Debug for NewDelivery {
    // Payload and body carry personal data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewDelivery")
            .field("event", &self.event)
            .field("scan_ref", &self.payload.scan_ref.as_str())
            .field("body_len", &self.body.len())
            .field("releases", &self.releases)
            .finish_non_exhaustive()
    }
}

/// What became of a delivery: the answer of [`CaseStore::record`], and of the ingest use case.
#[derive(Debug, Clone)]
pub enum Recorded {
    /// It changed the case; the change is at `position` in the feed, to be published.
    /// `purged` when it was a lifecycle notice that erased personal data the case still held
    /// (see [`crate::purge`]).
    Applied {
        case: Case,
        position: Cursor,
        purged: bool,
    },
    /// Seen before: kept in the history, nothing changed. `case` is `None` when the case does
    /// not exist, because the earlier copy waits in the quarantine; then nothing is written.
    Duplicate { case: Option<Case> },
    /// Superseded by what the case holds (see [`crate::machine`]): kept in the history.
    Stale { case: Case },
    /// Set aside in the quarantine (item `id`); no case was created or changed.
    Quarantined { id: i64, reason: QuarantineReason },
}

impl Recorded {
    /// The outcome as answered, logged and counted: `applied`, `duplicate`, `stale` or
    /// `quarantined`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Applied { .. } => Outcome::Applied.as_str(),
            Self::Duplicate { .. } => Outcome::Duplicate.as_str(),
            Self::Stale { .. } => Outcome::Stale.as_str(),
            Self::Quarantined { .. } => "quarantined",
        }
    }

    /// The case as it stands after the delivery, when there is one.
    pub fn case(&self) -> Option<&Case> {
        match self {
            Self::Applied { case, .. } | Self::Stale { case } => Some(case),
            Self::Duplicate { case } => case.as_ref(),
            Self::Quarantined { .. } => None,
        }
    }
}

/// A signed delivery that could not be used (see [`QuarantineReason`]).
#[derive(Clone)]
pub struct NewQuarantine {
    pub event_type: Option<String>,
    pub body: Bytes,
    pub reason: QuarantineReason,
    pub received_at: DateTime<Utc>,
    pub traceparent: Option<String>,
}

impl fmt::Debug for NewQuarantine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewQuarantine")
            .field("event_type", &self.event_type)
            .field("reason", &self.reason.kind())
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// A quarantined delivery.
#[derive(Clone)]
pub struct QuarantineItem {
    pub id: i64,
    pub event_type: Option<String>,
    /// The case its body names ([`crate::named_scan_ref`]), if any: the item is erased with it.
    pub scan_ref: Option<String>,
    /// Empty once erased by a purge (such items no longer wait: they cannot be reprocessed).
    pub body: Bytes,
    /// What was wrong, in words.
    pub reason: String,
    /// [`QuarantineReason::kind`]; `None` for an item written by a version that did not store it.
    pub reason_kind: Option<String>,
    pub received_at: DateTime<Utc>,
    pub traceparent: Option<String>,
}

impl fmt::Debug for QuarantineItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuarantineItem")
            .field("id", &self.id)
            .field("event_type", &self.event_type)
            .field("scan_ref", &self.scan_ref)
            .field("reason", &self.reason)
            .field("reason_kind", &self.reason_kind)
            .finish_non_exhaustive()
    }
}

/// Filters and page of `ListCases`. Cases come most recently changed first.
#[derive(Debug, Clone, Default)]
pub struct CaseQuery {
    pub client_id: Option<String>,
    pub decision: Option<Decision>,
    pub is_final: Option<bool>,
    /// Already clamped by the caller.
    pub limit: u32,
    /// Only cases whose last change is older than this feed position (the page token).
    pub before: Option<Cursor>,
    pub with_person: bool,
}

/// One page of cases.
#[derive(Debug, Clone)]
pub struct CasePage {
    pub cases: Vec<Case>,
    /// Where the next page starts, when there may be one.
    pub next: Option<Cursor>,
}

/// Which changes [`CaseStore::changes_after`] reads: a range of the feed and a filter, in one
/// value so that new filters never change the port's signature.
#[derive(Debug, Clone, Default)]
pub struct FeedQuery {
    /// Only changes after this position.
    pub after: Cursor,
    /// Only changes at or before this position; `None` reads up to the newest.
    pub until: Option<Cursor>,
    /// At most this many changes.
    pub limit: u32,
    /// Only changes whose snapshot matches.
    pub filter: FeedFilter,
    /// Attach each case's person (as it is now: it may have been purged since the change).
    pub with_person: bool,
}

impl FeedQuery {
    /// Up to `limit` changes after `after`, unfiltered, without persons.
    pub fn after(after: Cursor, limit: u32) -> Self {
        Self {
            after,
            limit,
            ..Self::default()
        }
    }
}

/// One applied change in the commit-ordered feed.
#[derive(Debug, Clone)]
pub struct FeedChange {
    pub position: Cursor,
    /// The case as of this change.
    pub case: Case,
    pub traceparent: Option<String>,
}

/// Which cases changed after a feed position: what a cache of cases reads to stay exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedCases {
    /// The feed's head when the read ran: every change at or below it had committed.
    pub head: Cursor,
    /// `(scan_ref, revision)` of the changes in `(after, head]`, in commit order: all of them
    /// when `complete`, else only the first ones.
    pub changes: Vec<(String, u64)>,
    pub complete: bool,
}

/// Storage of cases, deliveries and the change feed.
#[async_trait]
pub trait CaseStore: Send + Sync + fmt::Debug + 'static {
    /// Judges a delivery with [`crate::machine::apply`] and writes the result in one
    /// transaction: the delivery in the case history, and for an applied one the case and its
    /// feed entry; or, when the machine quarantines it, the quarantine item instead (no trace on
    /// any case). With [`NewDelivery::releases`] the quarantine item is released in the same
    /// transaction ([`Error::NotFound`] when it is unknown or already released), or, if it is
    /// quarantined again, given its new reason.
    async fn record(&self, delivery: NewDelivery) -> Result<Recorded, Error>;

    /// Keeps a signed delivery that could not be used, for later reprocessing.
    async fn quarantine(&self, item: NewQuarantine) -> Result<i64, Error>;

    /// One case by scanRef.
    async fn case(&self, scan_ref: &str, with_person: bool) -> Result<Option<Case>, Error>;

    /// The most recently changed case of a client.
    async fn latest_case_of_client(
        &self,
        client_id: &str,
        with_person: bool,
    ) -> Result<Option<Case>, Error>;

    /// The newest `limit` stored deliveries of a case, oldest first. The limit belongs in the
    /// query: a case with a runaway history must not be read whole to show its tail.
    async fn history(&self, scan_ref: &str, limit: u32) -> Result<Vec<CaseEvent>, Error>;

    /// A page of cases.
    async fn list_cases(&self, query: &CaseQuery) -> Result<CasePage, Error>;

    /// Current revisions of the given cases (absent ones are left out): one query for the
    /// periodic re-read that catches notifications Redis dropped.
    async fn revisions(&self, scan_refs: &[String]) -> Result<Vec<(String, u64)>, Error>;

    /// The applied changes in `(query.after, query.until]` that match `query.filter`, in commit
    /// order, at most `query.limit`. Fewer than `limit` means that no other change in the range
    /// matched when the read ran; positions are handed out in commit order, so a later read can
    /// only find changes above every position committed at that time.
    async fn changes_after(&self, query: &FeedQuery) -> Result<Vec<FeedChange>, Error>;

    /// The newest feed position (the start when the feed is empty).
    async fn feed_head(&self) -> Result<Cursor, Error>;

    /// The feed's head and which cases changed after `after` up to it, at most `limit` changes,
    /// read as one snapshot. A head below `after` means the database went back in time (a
    /// restore from an older copy).
    async fn changed_cases(&self, after: Cursor, limit: u32) -> Result<ChangedCases, Error>;

    /// Quarantined deliveries still waiting (neither released by a reprocess nor erased by a
    /// purge), oldest first: at most `limit` of those with an id above `after` (0 for the
    /// first page; the last id read for the next).
    async fn quarantined(&self, after: i64, limit: u32) -> Result<Vec<QuarantineItem>, Error>;

    /// Checks the database answers (readiness, health).
    async fn ping(&self) -> Result<(), Error>;
}

/// A hint that a case changed: watchers re-read the database, which stays the truth.
#[derive(Clone, PartialEq, Eq)]
pub struct Notification {
    pub scan_ref: String,
    pub revision: u64,
    pub position: Cursor,
    pub traceparent: Option<String>,
    /// The case as this process committed it at `revision`, without its person: set only on
    /// the notification of a commit made here ([`Notification::of_commit`]), so this process's
    /// BASIC watchers and `GetCase` cache can take it instead of reading back what was just
    /// written. It never leaves the process: the Redis message carries the fields above only.
    pub committed: Option<Arc<Case>>,
}

impl Notification {
    /// The notification of a change this process committed: `case` is the case after it, at
    /// feed `position`. The person is left out, so no personal data is held beyond the write.
    pub fn of_commit(case: &Case, position: Cursor, traceparent: Option<String>) -> Self {
        let mut committed = case.clone();
        committed.person = None;
        Self {
            scan_ref: case.scan_ref.clone(),
            revision: case.revision,
            position,
            traceparent,
            committed: Some(Arc::new(committed)),
        }
    }
}

impl fmt::Debug for Notification {
    // The committed case only as a flag: the hint is what a log line needs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notification")
            .field("scan_ref", &self.scan_ref)
            .field("revision", &self.revision)
            .field("position", &self.position)
            .field("traceparent", &self.traceparent)
            .field("committed", &self.committed.is_some())
            .finish()
    }
}

/// Tells every replica's watchers that a case changed. Best effort: a failure here never changes
/// the answer to the webhook, and the periodic re-read covers what is lost.
#[async_trait]
pub trait ChangeBus: Send + Sync + fmt::Debug + 'static {
    /// Publishes after commit.
    async fn publish(&self, notification: Notification) -> Result<(), Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"scanRef":"scan-1","data":{"docFirstName":"SECRET-NAME"}}"#;

    #[test]
    fn debug_output_of_deliveries_carries_no_personal_data() {
        let delivery = NewDelivery {
            event: EventType::ManualFinished,
            payload: Payload::parse(BODY).unwrap(),
            body: Bytes::from_static(BODY),
            received_at: DateTime::<Utc>::UNIX_EPOCH,
            traceparent: None,
            releases: None,
        };
        let shown = format!("{delivery:?}");
        assert!(!shown.contains("SECRET-NAME"), "{shown}");
        assert!(
            shown.contains("scan-1"),
            "the case id is what makes logs useful"
        );

        let quarantined = NewQuarantine {
            event_type: Some("IDENTIFICATION_NEW".into()),
            body: Bytes::from_static(BODY),
            reason: crate::event::UnknownEventType("IDENTIFICATION_NEW".into()).into(),
            received_at: DateTime::<Utc>::UNIX_EPOCH,
            traceparent: None,
        };
        assert!(!format!("{quarantined:?}").contains("SECRET-NAME"));

        let item = QuarantineItem {
            id: 7,
            event_type: None,
            scan_ref: Some("scan-1".into()),
            body: Bytes::from_static(BODY),
            reason: "body is not a JSON object".into(),
            reason_kind: Some("unparseable".into()),
            received_at: DateTime::<Utc>::UNIX_EPOCH,
            traceparent: None,
        };
        assert!(!format!("{item:?}").contains("SECRET-NAME"));
    }

    #[test]
    fn the_notification_of_a_commit_holds_the_case_without_its_person() {
        let mut case = crate::Case::new("scan-1", DateTime::<Utc>::UNIX_EPOCH);
        case.revision = 3;
        case.person = Some(crate::Person {
            first_name: Some("SECRET-NAME".into()),
            ..crate::Person::default()
        });
        let n = Notification::of_commit(&case, Cursor(9), None);

        assert_eq!(
            (n.scan_ref.as_str(), n.revision, n.position),
            ("scan-1", 3, Cursor(9))
        );
        let committed = n.committed.as_deref().expect("a commit carries its case");
        assert_eq!(committed.person, None);
        assert_eq!(
            committed,
            &crate::Case {
                person: None,
                ..case
            }
        );
        assert!(!format!("{n:?}").contains("SECRET-NAME"));
    }
}
