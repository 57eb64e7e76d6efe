use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use verdict_domain::{
    Case, CaseEvent, CasePage, CaseQuery, ChangedCases, Cursor, Error, FeedChange, FeedQuery,
    NewDelivery, NewQuarantine, Notification, QuarantineItem, Recorded,
};

use super::*;
use crate::Signal;

const WAIT: Duration = Duration::from_secs(5);

/// Just what the resync reads: current revisions and the feed head.
#[derive(Debug, Default)]
struct FakeStore {
    revisions: Mutex<HashMap<String, u64>>,
    head: Mutex<u64>,
    revision_queries: AtomicUsize,
}

impl FakeStore {
    fn commit(&self, scan_ref: &str, revision: u64, position: u64) {
        self.revisions
            .lock()
            .unwrap()
            .insert(scan_ref.to_owned(), revision);
        *self.head.lock().unwrap() = position;
    }
}

#[async_trait]
impl CaseStore for FakeStore {
    async fn revisions(&self, scan_refs: &[String]) -> Result<Vec<(String, u64)>, Error> {
        self.revision_queries.fetch_add(1, Ordering::SeqCst);
        let revisions = self.revisions.lock().unwrap();
        Ok(scan_refs
            .iter()
            .filter_map(|r| revisions.get(r).map(|rev| (r.clone(), *rev)))
            .collect())
    }

    async fn feed_head(&self) -> Result<Cursor, Error> {
        Ok(Cursor(*self.head.lock().unwrap()))
    }

    async fn changed_cases(&self, _: Cursor, _: u32) -> Result<ChangedCases, Error> {
        unreachable!("the resync reads revisions, not the feed")
    }

    async fn record(&self, _: NewDelivery) -> Result<Recorded, Error> {
        unreachable!("the resync never writes")
    }
    async fn quarantine(&self, _: NewQuarantine) -> Result<i64, Error> {
        unreachable!("the resync never writes")
    }
    async fn case(&self, _: &str, _: bool) -> Result<Option<Case>, Error> {
        unreachable!("the resync reads revisions only")
    }
    async fn latest_case_of_client(&self, _: &str, _: bool) -> Result<Option<Case>, Error> {
        unreachable!("the resync reads revisions only")
    }
    async fn history(&self, _: &str, _: u32) -> Result<Vec<CaseEvent>, Error> {
        unreachable!("the resync reads revisions only")
    }
    async fn list_cases(&self, _: &CaseQuery) -> Result<CasePage, Error> {
        unreachable!("the resync reads revisions only")
    }
    async fn changes_after(&self, _: &FeedQuery) -> Result<Vec<FeedChange>, Error> {
        unreachable!("the resync reads the head only")
    }
    async fn quarantined(&self, _: i64, _: u32) -> Result<Vec<QuarantineItem>, Error> {
        unreachable!("the resync never touches quarantine")
    }
    async fn ping(&self) -> Result<(), Error> {
        Ok(())
    }
}

fn resync(store: &Arc<FakeStore>, hub: &Arc<Hub>) -> Resync {
    let store: Arc<dyn CaseStore> = store.clone();
    Resync::new(
        store,
        Arc::clone(hub),
        Duration::from_secs(60),
        Duration::from_secs(1),
        None,
    )
}

#[tokio::test]
async fn a_missed_change_wakes_its_watchers_with_the_database_revision() {
    let (store, hub) = (Arc::new(FakeStore::default()), Hub::new());
    let mut watch = hub.watch_case("scan-1");
    hub.notify(&Notification {
        scan_ref: "scan-1".to_owned(),
        revision: 1,
        position: Cursor(1),
        traceparent: Some("00-aa-bb-01".to_owned()),
        committed: None,
    });
    tokio::time::timeout(WAIT, watch.changed()).await.unwrap();
    // Revision 3 committed, its notification lost.
    store.commit("scan-1", 3, 4);

    assert_eq!(
        resync(&store, &hub).run_once().await.unwrap(),
        2,
        "the case and the feed"
    );
    let signal = tokio::time::timeout(WAIT, watch.changed()).await.unwrap();
    assert_eq!(
        signal,
        Signal {
            revision: 3,
            traceparent: None,
            committed: None,
        }
    );
    assert_eq!(hub.feed_position(), 4);
}

#[tokio::test]
async fn nothing_is_caught_when_the_hub_is_up_to_date() {
    let (store, hub) = (Arc::new(FakeStore::default()), Hub::new());
    let _watch = hub.watch_case("scan-1");
    let _absent = hub.watch_case("not-yet-created");
    store.commit("scan-1", 2, 2);
    let resync = resync(&store, &hub);
    assert_eq!(
        resync.run_once().await.unwrap(),
        2,
        "first pass: the hub knew nothing yet"
    );
    assert_eq!(resync.run_once().await.unwrap(), 0);
}

#[tokio::test]
async fn a_feed_behind_the_head_wakes_feed_watchers() {
    let (store, hub) = (Arc::new(FakeStore::default()), Hub::new());
    let mut feed = hub.watch_feed();
    store.commit("unwatched", 1, 7);
    assert_eq!(resync(&store, &hub).run_once().await.unwrap(), 1);
    assert_eq!(tokio::time::timeout(WAIT, feed.changed()).await.unwrap(), 7);
}

#[tokio::test]
async fn all_watched_cases_are_read_in_one_query_per_batch() {
    let (store, hub) = (Arc::new(FakeStore::default()), Hub::new());
    let watches: Vec<_> = (0..BATCH + 1)
        .map(|i| hub.watch_case(&format!("scan-{i}")))
        .collect();
    resync(&store, &hub).run_once().await.unwrap();
    assert_eq!(store.revision_queries.load(Ordering::SeqCst), 2);
    drop(watches);

    store.revision_queries.store(0, Ordering::SeqCst);
    resync(&store, &hub).run_once().await.unwrap();
    assert_eq!(
        store.revision_queries.load(Ordering::SeqCst),
        0,
        "no query without watchers"
    );
}

#[tokio::test(start_paused = true)]
async fn run_passes_faster_while_the_link_is_down_and_stops_on_shutdown() {
    let (store, hub) = (Arc::new(FakeStore::default()), Hub::new());
    let mut watch = hub.watch_case("scan-1");
    let (link_tx, link) = watch::channel(true);
    let dyn_store: Arc<dyn CaseStore> = store.clone();
    let resync = Resync::new(
        dyn_store,
        Arc::clone(&hub),
        Duration::from_secs(60),
        Duration::from_secs(1),
        Some(link),
    );
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(resync.run(shutdown.clone()));

    // Link down: a lost change is caught within the degraded interval, long before 60 s.
    link_tx.send_replace(false);
    store.commit("scan-1", 5, 5);
    let started = Instant::now();
    let signal = tokio::time::timeout(Duration::from_secs(5), watch.changed())
        .await
        .unwrap();
    assert_eq!(signal.revision, 5);
    assert!(
        started.elapsed() <= Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );

    shutdown.cancel();
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
}
