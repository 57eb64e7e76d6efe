//! The cache against an in-memory store whose reads can be held after they took their
//! snapshot: the interleavings that matter (a read overtaken by a commit, calls arriving during
//! a check) cannot be forced on a real database. The real stores' `changed_cases` is tested in
//! `verdict-store`, and read-after-acknowledge across replicas end to end in `tests/`.

use std::collections::VecDeque;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use tokio::sync::{Notify, Semaphore};
use verdict_domain::{
    Case, CaseEvent, CasePage, CaseQuery, FeedChange, FeedQuery, NewDelivery, NewQuarantine,
    QuarantineItem, Recorded,
};

use super::*;

/// The cases as they are now, and the feed: `(scan_ref, revision)` in commit order.
type Committed = (HashMap<String, Case>, Vec<(String, u64)>);

/// Cases and a commit-ordered feed of `(scan_ref, revision)`; counts reads and checks, and can
/// hold reads (each takes its snapshot, then waits at its own gate).
#[derive(Debug, Default)]
struct FeedStore {
    state: Mutex<Committed>,
    reads: AtomicUsize,
    checks: AtomicUsize,
    /// Gates for the next reads, one each in order: a read takes its snapshot, says so, then
    /// waits for a permit at its gate.
    gates: Mutex<VecDeque<Arc<Semaphore>>>,
    holding: Notify,
    /// When set, every check waits for a permit.
    hold_checks: Mutex<Option<Arc<Semaphore>>>,
}

impl FeedStore {
    /// Commits a new revision of `scan_ref` (the first is 1) and returns it.
    fn commit(&self, scan_ref: &str) -> u64 {
        let mut state = self.state.lock().unwrap();
        let revision = state.0.get(scan_ref).map_or(1, |case| case.revision + 1);
        state
            .0
            .insert(scan_ref.to_owned(), case(scan_ref, revision));
        state.1.push((scan_ref.to_owned(), revision));
        revision
    }

    /// Replaces everything by the first `keep` commits' outcome, as a restore does.
    fn restore(&self, keep: usize) {
        let mut state = self.state.lock().unwrap();
        state.1.truncate(keep);
        let feed = state.1.clone();
        state.0.clear();
        for (scan_ref, revision) in feed {
            state.0.insert(scan_ref.clone(), case(&scan_ref, revision));
        }
    }

    /// Counts a check and holds it if checks are held.
    async fn check(&self) {
        self.checks.fetch_add(1, Ordering::SeqCst);
        let hold = self.hold_checks.lock().unwrap().clone();
        if let Some(permits) = hold {
            permits.acquire().await.unwrap().forget();
        }
    }

    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    fn checks(&self) -> usize {
        self.checks.load(Ordering::SeqCst)
    }
}

fn case(scan_ref: &str, revision: u64) -> Case {
    Case {
        client_id: "client-1".into(),
        revision,
        ..Case::new(scan_ref, Utc::now())
    }
}

#[async_trait]
impl CaseStore for FeedStore {
    async fn case(&self, scan_ref: &str, with_person: bool) -> Result<Option<Case>, Error> {
        assert!(!with_person, "the cache reads BASIC cases only");
        self.reads.fetch_add(1, Ordering::SeqCst);
        let snapshot = self.state.lock().unwrap().0.get(scan_ref).cloned();
        let gate = self.gates.lock().unwrap().pop_front();
        if let Some(gate) = gate {
            self.holding.notify_one();
            gate.acquire().await.unwrap().forget();
        }
        Ok(snapshot)
    }
    async fn changed_cases(&self, after: Cursor, limit: u32) -> Result<ChangedCases, Error> {
        self.check().await;
        let state = self.state.lock().unwrap();
        let head = state.1.len() as u64;
        let mut changes: Vec<(String, u64)> =
            state.1.iter().skip(after.0 as usize).cloned().collect();
        let complete = changes.len() <= limit as usize;
        changes.truncate(limit as usize);
        Ok(ChangedCases {
            head: Cursor(head),
            changes,
            complete,
        })
    }
    async fn feed_head(&self) -> Result<Cursor, Error> {
        self.check().await;
        Ok(Cursor(self.state.lock().unwrap().1.len() as u64))
    }
    async fn record(&self, _: NewDelivery) -> Result<Recorded, Error> {
        unimplemented!("not used by the cache")
    }
    async fn quarantine(&self, _: NewQuarantine) -> Result<i64, Error> {
        unimplemented!("not used by the cache")
    }
    async fn latest_case_of_client(&self, _: &str, _: bool) -> Result<Option<Case>, Error> {
        unimplemented!("not used by the cache")
    }
    async fn history(&self, _: &str, _: u32) -> Result<Vec<CaseEvent>, Error> {
        unimplemented!("not used by the cache")
    }
    async fn list_cases(&self, _: &CaseQuery) -> Result<CasePage, Error> {
        unimplemented!("not used by the cache")
    }
    async fn revisions(&self, _: &[String]) -> Result<Vec<(String, u64)>, Error> {
        unimplemented!("not used by the cache")
    }
    async fn changes_after(&self, _: &FeedQuery) -> Result<Vec<FeedChange>, Error> {
        unimplemented!("not used by the cache")
    }
    async fn quarantined(&self, _: i64, _: u32) -> Result<Vec<QuarantineItem>, Error> {
        unimplemented!("not used by the cache")
    }
    async fn ping(&self) -> Result<(), Error> {
        unimplemented!("not used by the cache")
    }
}

async fn within<F: std::future::Future>(fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("finishes in time")
}

async fn revision(cache: &CaseCache, scan_ref: &str) -> Option<u64> {
    within(cache.basic_case(scan_ref))
        .await
        .unwrap()
        .map(|case| case.revision)
}

/// Commits a new revision of `scan_ref` as this process does: in the store, then told to the
/// cache with its feed position.
fn commit_here(store: &FeedStore, cache: &CaseCache, scan_ref: &str) -> u64 {
    let revision = store.commit(scan_ref);
    let position = store.state.lock().unwrap().1.len() as u64;
    cache.committed(&Arc::new(case(scan_ref, revision)), Cursor(position));
    revision
}

fn setup() -> (Arc<FeedStore>, Arc<CaseCache>) {
    let store = Arc::new(FeedStore::default());
    let cache = Arc::new(CaseCache::new(store.clone()));
    (store, cache)
}

#[tokio::test]
async fn a_cached_case_is_answered_until_a_change_to_it_commits() {
    let (store, cache) = setup();
    store.commit("a");
    store.commit("b");
    assert_eq!(revision(&cache, "a").await, Some(1));
    assert_eq!(revision(&cache, "a").await, Some(1));
    assert_eq!(store.reads(), 1, "the second call was answered from memory");

    // Another replica commits and answers 200; a call that starts afterwards sees it.
    store.commit("a");
    assert_eq!(revision(&cache, "a").await, Some(2));
    assert_eq!(store.reads(), 2);

    // A change of another case leaves this one cached.
    store.commit("b");
    assert_eq!(revision(&cache, "a").await, Some(2));
    assert_eq!(store.reads(), 2);
    assert_eq!(revision(&cache, "b").await, Some(2));
}

#[tokio::test]
async fn unknown_cases_are_read_every_time_and_not_kept() {
    let (store, cache) = setup();
    assert_eq!(revision(&cache, "nobody").await, None);
    store.commit("nobody");
    assert_eq!(revision(&cache, "nobody").await, Some(1));
    assert_eq!(store.reads(), 2);
    assert_eq!(cache.len(), 1);
}

/// On the current-thread runtime: the spawned calls all run (and arrive) before the first check
/// is let go.
#[tokio::test]
async fn calls_arriving_during_a_check_share_the_next_one() {
    let (store, cache) = setup();
    store.commit("a");
    assert_eq!(revision(&cache, "a").await, Some(1));
    let checks = store.checks();

    let permits = Arc::new(Semaphore::new(0));
    *store.hold_checks.lock().unwrap() = Some(permits.clone());
    let first = tokio::spawn({
        let cache = cache.clone();
        async move { revision(&cache, "a").await }
    });
    within(async {
        while store.checks() == checks {
            tokio::task::yield_now().await;
        }
    })
    .await;
    // These arrive while the first check runs: it may predate them, so they need another.
    let later: Vec<_> = (0..50)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { revision(&cache, "a").await })
        })
        .collect();
    permits.add_permits(1000);
    assert_eq!(within(first).await.unwrap(), Some(1));
    for call in later {
        assert_eq!(within(call).await.unwrap(), Some(1));
    }
    assert_eq!(store.checks() - checks, 2, "51 calls, two checks");
    assert_eq!(store.reads(), 1);
}

#[tokio::test]
async fn a_read_overtaken_by_a_commit_answers_its_call_but_is_not_kept() {
    let (store, cache) = setup();
    store.commit("a");
    let (slow_gate, fresh_gate) = (Arc::new(Semaphore::new(0)), Arc::new(Semaphore::new(0)));
    store
        .gates
        .lock()
        .unwrap()
        .extend([slow_gate.clone(), fresh_gate.clone()]);

    // The slow read takes revision 1, then waits while revision 2 commits and another call
    // checks (seeing the change), reads revision 2 and keeps it. Only then does the slow read
    // end: what it found must not replace what is kept.
    let slow = tokio::spawn({
        let cache = cache.clone();
        async move { revision(&cache, "a").await }
    });
    within(store.holding.notified()).await;
    store.commit("a");
    let fresh = tokio::spawn({
        let cache = cache.clone();
        async move { revision(&cache, "a").await }
    });
    within(store.holding.notified()).await;
    fresh_gate.add_permits(1);
    assert_eq!(within(fresh).await.unwrap(), Some(2));
    slow_gate.add_permits(1);
    assert_eq!(
        within(slow).await.unwrap(),
        Some(1),
        "the call began before the commit"
    );

    let reads = store.reads();
    assert_eq!(revision(&cache, "a").await, Some(2));
    assert_eq!(
        store.reads(),
        reads,
        "revision 2 was kept, revision 1 was not"
    );
}

#[tokio::test]
async fn a_database_restored_from_an_older_copy_empties_the_cache() {
    let (store, cache) = setup();
    store.commit("a");
    store.commit("a");
    assert_eq!(revision(&cache, "a").await, Some(2));
    store.restore(1);
    assert_eq!(revision(&cache, "a").await, Some(1));
}

#[tokio::test]
async fn more_changes_than_one_check_reads_empty_the_cache() {
    let (store, cache) = setup();
    store.commit("a");
    assert_eq!(revision(&cache, "a").await, Some(1));
    store.commit("a");
    for n in 0..CHECK_LIMIT {
        store.commit(&format!("other-{n}"));
    }
    assert_eq!(revision(&cache, "a").await, Some(2));
    assert_eq!(cache.len(), 1, "only what was read since");
}

#[tokio::test]
async fn the_cache_holds_a_bounded_number_of_cases() {
    let (store, cache) = setup();
    for n in 0..MAX_ENTRIES + 10 {
        let scan_ref = format!("case-{n}");
        store.commit(&scan_ref);
        assert_eq!(revision(&cache, &scan_ref).await, Some(1));
    }
    assert_eq!(cache.len(), MAX_ENTRIES);
}

#[tokio::test]
async fn cases_committed_here_are_answered_without_a_read() {
    let (store, cache) = setup();
    commit_here(&store, &cache, "a");
    commit_here(&store, &cache, "b");
    assert_eq!(revision(&cache, "a").await, Some(1));
    assert_eq!(revision(&cache, "b").await, Some(1));
    assert_eq!(store.reads(), 0, "both came in with their commits");

    commit_here(&store, &cache, "a");
    assert_eq!(revision(&cache, "a").await, Some(2));
    // Another replica commits: the check removes what this one wrote.
    store.commit("a");
    assert_eq!(revision(&cache, "a").await, Some(3));
    assert_eq!(store.reads(), 1);
}

#[tokio::test]
async fn a_commit_heard_after_a_check_passed_it_is_not_kept() {
    let (store, cache) = setup();
    store.commit("a");
    store.commit("a");
    assert_eq!(revision(&cache, "x").await, None, "the head is now 2");

    // Revision 1's notification comes late: a check already passed revision 2.
    cache.committed(&Arc::new(case("a", 1)), Cursor(1));
    assert_eq!(revision(&cache, "a").await, Some(2));
    assert_eq!(store.reads(), 2);
}

#[tokio::test]
async fn a_commit_heard_while_the_first_check_runs_empties_the_cache() {
    let (store, cache) = setup();
    let permits = Arc::new(Semaphore::new(0));
    *store.hold_checks.lock().unwrap() = Some(permits.clone());
    let first = tokio::spawn({
        let cache = cache.clone();
        async move { revision(&cache, "x").await }
    });
    within(async {
        while store.checks() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    // The first check reads only the head. Meanwhile this process commits revision 1, then
    // another replica revision 2, both below the head that check will find.
    commit_here(&store, &cache, "a");
    store.commit("a");
    permits.add_permits(1000);
    assert_eq!(within(first).await.unwrap(), None);
    assert_eq!(revision(&cache, "a").await, Some(2), "not revision 1");
}

#[tokio::test]
async fn a_burst_of_commits_before_the_first_check_stays_cached() {
    let (store, cache) = setup();
    let burst = 2 * 1000;
    for n in 0..burst {
        commit_here(&store, &cache, &format!("case-{n}"));
    }
    for n in 0..burst {
        assert_eq!(revision(&cache, &format!("case-{n}")).await, Some(1));
    }
    assert_eq!(store.reads(), 0, "the first check followed the whole burst");
}
