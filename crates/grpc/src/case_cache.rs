//! `GetCase` answers from memory that are exact on every replica.
//!
//! Reading a case costs a pooled connection, a query of twenty-odd columns, the model's mapping
//! and the conversion to the wire type: most of `GetCase`'s CPU on SQLite (perf, `verdict-bench
//! getcase`). The cache keeps converted BASIC cases and checks them against the feed before it
//! answers. It never keeps the FULL view: personal data is not held in memory beyond a call, so a
//! purge cannot leave a copy behind.
//!
//! Read-after-acknowledge: a `GetCase` that starts after any replica answered 200 for a change
//! returns that change or a newer one. Before answering, a call waits for a *check* that began
//! after the call did: one statement reading the feed's head and which cases changed since the
//! previous check ([`CaseStore::changed_cases`]). Feed positions are handed out in commit order,
//! so every change acknowledged before the call lies at or below that head and was seen by this
//! check or an earlier one; a cached case is answered only when no change seen since has a
//! higher revision. Checks run one at a time and every call that arrives while one runs shares
//! the next, so under load many calls cost one statement.
//!
//! The cases this process commits come in without a read ([`CommitListener`]): a case committed
//! at a feed position above the last check's head is kept, since every later change of the case
//! lies above that position too and the next check removes the entry. One committed at or below
//! the head is left out (a check may already have passed a newer change of it). Before the first
//! check, the first commit heard sets the head just below its own position.
//!
//! When the cache cannot follow the feed it forgets everything, and reads that began before
//! cannot put their result in: more changes since the last check than one check reads, a head
//! below the last one (the database was replaced by an older copy), too many changed cases
//! remembered for reads in flight, or a head set by a commit while the first check ran (that
//! check read the head only, not the changes after the commit).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use verdict_bus::CommitListener;
use verdict_domain::{Case, CaseStore, ChangedCases, Cursor, Error};
use verdict_proto::verdict::v1 as pb;

use crate::convert;

/// Cases kept; beyond, an arbitrary one makes room (a miss costs one read, as without a cache).
const MAX_ENTRIES: usize = 10_000;
/// Changes one check reads; more since the last check and the cache starts over. As many as
/// the cache holds cases: a burst of writes with no `GetCase` between them (a backfill, the
/// first minutes after a start) fills the cache through [`CommitListener`], and the first
/// check after it must be able to follow that burst or it would throw away what it filled.
/// With 1 000, the first check after 10 000 webhooks did exactly that.
const CHECK_LIMIT: u32 = 10_000;
/// Changed cases remembered for reads in flight; beyond, the cache starts over.
const MAX_CHANGED: usize = 50_000;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct CaseCache {
    store: Arc<dyn CaseStore>,
    /// One check at a time; calls queue here for the next one.
    checking: tokio::sync::Mutex<()>,
    /// Checks begun so far: a call needs one numbered above the count it saw on arrival.
    begun: AtomicU64,
    /// The number of the last check that completed.
    completed: AtomicU64,
    state: Mutex<State>,
}

/// Every entry is current as of the last check: a check removes the entries its changes make
/// stale, and a read's result is kept only if no change it may have missed was seen.
#[derive(Debug, Default)]
struct State {
    /// The head as of the last check; `None` before the first.
    head: Option<Cursor>,
    /// Bumped whenever the cache forgets everything: a read that began in an older epoch keeps
    /// its result to itself.
    epoch: u64,
    entries: HashMap<String, Entry>,
    /// The newest revision each case reached in the changes checked while reads were in
    /// flight: such a read may have seen the case before that change.
    changed: HashMap<String, u64>,
    /// Reads of the store in flight.
    reading: usize,
}

#[derive(Debug)]
struct Entry {
    revision: u64,
    case: pb::Case,
}

impl CaseCache {
    pub(crate) fn new(store: Arc<dyn CaseStore>) -> Self {
        Self {
            store,
            checking: tokio::sync::Mutex::new(()),
            begun: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            state: Mutex::default(),
        }
    }

    /// The BASIC view of a case, current as of a check that began after this call did.
    pub(crate) async fn basic_case(&self, scan_ref: &str) -> Result<Option<pb::Case>, Error> {
        let epoch = self.check().await?;
        let reading = {
            let mut state = self.lock();
            if let Some(entry) = state.entries.get(scan_ref) {
                return Ok(Some(entry.case.clone()));
            }
            state.reading += 1;
            Reading(self)
        };
        // A read that begins now sees every change the check saw.
        let Some(case) = self.store.case(scan_ref, false).await? else {
            return Ok(None);
        };
        let revision = case.revision;
        let case = convert::case_to_proto(&case, pb::CaseView::Basic);
        self.keep(scan_ref, epoch, revision, &case);
        drop(reading);
        Ok(Some(case))
    }

    /// Waits for a check that began after this call, running it unless another call already
    /// is; returns the epoch the cache is in afterwards.
    async fn check(&self) -> Result<u64, Error> {
        let arrived = self.begun.load(Ordering::SeqCst);
        let _turn = self.checking.lock().await;
        if self.completed.load(Ordering::SeqCst) <= arrived {
            let number = self.begun.fetch_add(1, Ordering::SeqCst) + 1;
            let head = self.lock().head;
            let answer = match head {
                Some(head) => self.store.changed_cases(head, CHECK_LIMIT).await?,
                None => ChangedCases {
                    head: self.store.feed_head().await?,
                    changes: Vec::new(),
                    complete: true,
                },
            };
            self.lock().follow(head, answer);
            self.completed.store(number, Ordering::SeqCst);
        }
        Ok(self.lock().epoch)
    }

    /// Keeps what a read found, unless the cache started over since the read's check or a
    /// change the read may have missed was seen meanwhile.
    fn keep(&self, scan_ref: &str, epoch: u64, revision: u64, case: &pb::Case) {
        let mut state = self.lock();
        let missed = state
            .changed
            .get(scan_ref)
            .is_some_and(|&changed| changed > revision);
        if state.epoch != epoch || missed {
            return;
        }
        state.insert(scan_ref, revision, || case.clone());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

impl CommitListener for CaseCache {
    /// See the module docs.
    fn committed(&self, case: &Arc<Case>, position: Cursor) {
        // Converted before the lock, which every `GetCase` takes.
        let converted = convert::case_to_proto(case, pb::CaseView::Basic);
        let mut state = self.lock();
        let head = *state
            .head
            .get_or_insert(Cursor(position.0.saturating_sub(1)));
        if position <= head {
            return;
        }
        state.insert(&case.scan_ref, case.revision, || converted);
    }
}

impl State {
    /// Puts `case` at `revision` in, making room if needed, unless a newer revision is in.
    fn insert(&mut self, scan_ref: &str, revision: u64, case: impl FnOnce() -> pb::Case) {
        match self.entries.get(scan_ref) {
            Some(entry) if entry.revision >= revision => return,
            Some(_) => {}
            None if self.entries.len() >= MAX_ENTRIES => {
                if let Some(evicted) = self.entries.keys().next().cloned() {
                    self.entries.remove(&evicted);
                }
            }
            None => {}
        }
        let case = case();
        self.entries
            .insert(scan_ref.to_owned(), Entry { revision, case });
    }

    /// Takes in what a check that started from head `after` read.
    fn follow(&mut self, after: Option<Cursor>, answer: ChangedCases) {
        let went_back = self.head.is_some_and(|head| answer.head < head);
        let too_many = self.changed.len() + answer.changes.len() > MAX_CHANGED;
        // Only a commit heard while the first check ran moves the head under a check.
        let head_moved = self.head != after;
        self.head = Some(answer.head);
        if went_back || !answer.complete || too_many || head_moved {
            self.entries.clear();
            self.changed.clear();
            self.epoch += 1;
            return;
        }
        for (scan_ref, revision) in answer.changes {
            if self
                .entries
                .get(&scan_ref)
                .is_some_and(|entry| entry.revision < revision)
            {
                self.entries.remove(&scan_ref);
            }
            if self.reading > 0 {
                let newest = self.changed.entry(scan_ref).or_default();
                *newest = (*newest).max(revision);
            }
        }
        if self.reading == 0 {
            // Every read from now on begins after this check: nothing to hold against it.
            self.changed.clear();
        }
    }
}

/// A read of the store in flight, counted until it is kept or given up (also when the call is
/// cancelled).
struct Reading<'a>(&'a CaseCache);

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        self.0.lock().reading -= 1;
    }
}

#[cfg(test)]
mod tests;
