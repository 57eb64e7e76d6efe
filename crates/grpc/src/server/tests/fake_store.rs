//! An in-memory `CaseStore` with the contract the service relies on (commit-ordered feed,
//! person only on request) and a switch to make the database "down".

use std::{
    collections::HashMap,
    io,
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use verdict_domain::{
    Case, CaseEvent, CasePage, CaseQuery, CaseStore, ChangedCases, Cursor, Error, ExpiredBatch,
    FeedChange, FeedQuery, NewDelivery, NewQuarantine, Notification, Purge, PurgeStore,
    QuarantineItem, Recorded,
};

#[derive(Debug, Default)]
pub(super) struct FakeStore {
    inner: Mutex<Inner>,
    down: AtomicBool,
    /// `changes_after` calls, to prove streams share the feed's reads.
    feed_reads: AtomicUsize,
    /// Those of them bounded above: streams reading what the shared window no longer holds.
    catch_up_reads: AtomicUsize,
}

#[derive(Debug, Default)]
struct Inner {
    cases: HashMap<String, (Case, Cursor)>,
    feed: Vec<FeedChange>,
    history: HashMap<String, Vec<CaseEvent>>,
}

impl FakeStore {
    /// Commits a new state of a case and returns the notification a real writer would publish.
    pub(super) fn put(&self, case: Case) -> Notification {
        let mut inner = self.inner.lock().unwrap();
        let position = Cursor(inner.feed.len() as u64 + 1);
        inner.feed.push(FeedChange {
            position,
            case: case.clone(),
            traceparent: None,
        });
        let notification = Notification {
            scan_ref: case.scan_ref.clone(),
            revision: case.revision,
            position,
            traceparent: None,
            committed: None,
        };
        inner.cases.insert(case.scan_ref.clone(), (case, position));
        notification
    }

    pub(super) fn add_history(&self, scan_ref: &str, event: CaseEvent) {
        let mut inner = self.inner.lock().unwrap();
        inner
            .history
            .entry(scan_ref.to_owned())
            .or_default()
            .push(event);
    }

    /// Replaces the feed with its first `keep` changes, as a restore from an older backup does.
    pub(super) fn rewind(&self, keep: usize) {
        let mut inner = self.inner.lock().unwrap();
        inner.feed.truncate(keep);
    }

    /// How many times the feed was read.
    pub(super) fn feed_reads(&self) -> usize {
        self.feed_reads.load(Ordering::SeqCst)
    }

    /// How many of those reads were a stream catching up behind the shared window.
    pub(super) fn catch_up_reads(&self) -> usize {
        self.catch_up_reads.load(Ordering::SeqCst)
    }

    pub(super) fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), Error> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::Unavailable(Box::new(io::Error::other(
                "connection refused",
            ))));
        }
        Ok(())
    }
}

fn view(mut case: Case, with_person: bool) -> Case {
    if !with_person {
        case.person = None;
    }
    case
}

fn unsupported() -> Error {
    Error::Internal("not supported by the fake store".into())
}

#[async_trait]
impl CaseStore for FakeStore {
    async fn record(&self, _: NewDelivery) -> Result<Recorded, Error> {
        Err(unsupported())
    }

    async fn quarantine(&self, _: NewQuarantine) -> Result<i64, Error> {
        Err(unsupported())
    }

    async fn case(&self, scan_ref: &str, with_person: bool) -> Result<Option<Case>, Error> {
        self.check()?;
        let inner = self.inner.lock().unwrap();
        Ok(inner
            .cases
            .get(scan_ref)
            .map(|(case, _)| view(case.clone(), with_person)))
    }

    async fn latest_case_of_client(
        &self,
        client_id: &str,
        with_person: bool,
    ) -> Result<Option<Case>, Error> {
        self.check()?;
        let inner = self.inner.lock().unwrap();
        Ok(inner
            .cases
            .values()
            .filter(|(case, _)| case.client_id == client_id)
            .max_by_key(|(_, position)| *position)
            .map(|(case, _)| view(case.clone(), with_person)))
    }

    async fn history(&self, scan_ref: &str, limit: u32) -> Result<Vec<CaseEvent>, Error> {
        self.check()?;
        let inner = self.inner.lock().unwrap();
        let history = inner.history.get(scan_ref).cloned().unwrap_or_default();
        let skip = history.len().saturating_sub(limit as usize);
        Ok(history.into_iter().skip(skip).collect())
    }

    async fn list_cases(&self, query: &CaseQuery) -> Result<CasePage, Error> {
        self.check()?;
        let inner = self.inner.lock().unwrap();
        let mut rows: Vec<_> = inner
            .cases
            .values()
            .filter(|(case, position)| {
                query
                    .client_id
                    .as_ref()
                    .is_none_or(|c| *c == case.client_id)
                    && query.decision.is_none_or(|d| d == case.decision)
                    && query.is_final.is_none_or(|f| f == case.is_final)
                    && query.before.is_none_or(|b| *position < b)
            })
            .cloned()
            .collect();
        rows.sort_by_key(|(_, position)| std::cmp::Reverse(*position));
        rows.truncate(query.limit as usize);
        let next = (rows.len() == query.limit as usize)
            .then(|| rows.last().map(|(_, position)| *position))
            .flatten();
        Ok(CasePage {
            cases: rows
                .into_iter()
                .map(|(case, _)| view(case, query.with_person))
                .collect(),
            next,
        })
    }

    async fn revisions(&self, scan_refs: &[String]) -> Result<Vec<(String, u64)>, Error> {
        self.check()?;
        let inner = self.inner.lock().unwrap();
        Ok(scan_refs
            .iter()
            .filter_map(|s| inner.cases.get(s).map(|(c, _)| (s.clone(), c.revision)))
            .collect())
    }

    async fn changes_after(&self, query: &FeedQuery) -> Result<Vec<FeedChange>, Error> {
        self.check()?;
        self.feed_reads.fetch_add(1, Ordering::SeqCst);
        if query.until.is_some() {
            self.catch_up_reads.fetch_add(1, Ordering::SeqCst);
        }
        let inner = self.inner.lock().unwrap();
        Ok(inner
            .feed
            .iter()
            .filter(|c| {
                c.position > query.after
                    && query.until.is_none_or(|until| c.position <= until)
                    && query.filter.matches(&c.case)
            })
            .take(query.limit as usize)
            .cloned()
            .map(|mut c| {
                c.case = view(c.case, query.with_person);
                c
            })
            .collect())
    }

    async fn feed_head(&self) -> Result<Cursor, Error> {
        self.check()?;
        let inner = self.inner.lock().unwrap();
        Ok(inner.feed.last().map_or(Cursor::START, |c| c.position))
    }

    async fn changed_cases(&self, after: Cursor, limit: u32) -> Result<ChangedCases, Error> {
        self.check()?;
        let inner = self.inner.lock().unwrap();
        let head = inner.feed.last().map_or(Cursor::START, |c| c.position);
        let mut changes: Vec<(String, u64)> = inner
            .feed
            .iter()
            .filter(|change| change.position > after)
            .map(|change| (change.case.scan_ref.clone(), change.case.revision))
            .collect();
        let complete = changes.len() <= limit as usize;
        changes.truncate(limit as usize);
        Ok(ChangedCases {
            head,
            changes,
            complete,
        })
    }

    async fn quarantined(&self, _: i64, _: u32) -> Result<Vec<QuarantineItem>, Error> {
        Err(unsupported())
    }

    async fn ping(&self) -> Result<(), Error> {
        self.check()
    }
}

#[async_trait]
impl PurgeStore for FakeStore {
    /// Marks the case purged as a new revision, once.
    async fn purge(&self, scan_ref: &str, _: Option<String>) -> Result<Option<Purge>, Error> {
        self.check()?;
        let Some((case, _)) = self.inner.lock().unwrap().cases.get(scan_ref).cloned() else {
            return Ok(None);
        };
        if case.is_purged() {
            return Ok(Some(Purge {
                case,
                position: None,
            }));
        }
        let case = Case {
            revision: case.revision + 1,
            purged_at: Some(Utc::now()),
            person: None,
            ..case
        };
        let position = self.put(case.clone()).position;
        Ok(Some(Purge {
            case,
            position: Some(position),
        }))
    }

    async fn purge_expired(
        &self,
        _: DateTime<Utc>,
        _: u32,
        _: Option<String>,
    ) -> Result<Option<ExpiredBatch>, Error> {
        Err(unsupported())
    }
}
