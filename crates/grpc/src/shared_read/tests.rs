use std::{
    io,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use async_trait::async_trait;
use chrono::Utc;
use verdict_bus::Hub;
use verdict_domain::{
    CaseEvent, CasePage, CaseQuery, ChangedCases, Cursor, Decision, FeedChange, FeedQuery,
    NewDelivery, NewQuarantine, Notification, QuarantineItem, Recorded,
};

use super::*;

/// Answers `case` slowly (so concurrent readers overlap) and counts the reads; nothing else is
/// used by the shared reads.
#[derive(Debug, Default)]
struct CountingStore {
    reads: AtomicUsize,
    revision: std::sync::atomic::AtomicU64,
    down: std::sync::atomic::AtomicBool,
}

fn case(revision: u64) -> Case {
    let at = Utc::now();
    Case {
        scan_ref: "scan-1".into(),
        client_id: "client-1".into(),
        external_ref: None,
        decision: Decision::Pending,
        is_final: false,
        overall_status: None,
        last_event_type: "IDENTIFICATION_AUTO_FINISHED".into(),
        revision,
        auto_document: None,
        auto_face: None,
        manual_document: None,
        manual_face: None,
        fraud_tags: vec![],
        mismatch_tags: vec![],
        suspicion_reasons: vec![],
        created_at: at,
        updated_at: at,
        finalized_at: None,
        purged_at: None,
        person: None,
    }
}

#[async_trait]
impl CaseStore for CountingStore {
    async fn case(&self, _: &str, _: bool) -> Result<Option<Case>, Error> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::Unavailable(Box::new(io::Error::other("down"))));
        }
        Ok(Some(case(self.revision.load(Ordering::SeqCst))))
    }
    async fn record(&self, _: NewDelivery) -> Result<Recorded, Error> {
        unimplemented!("not used by shared reads")
    }
    async fn quarantine(&self, _: NewQuarantine) -> Result<i64, Error> {
        unimplemented!("not used by shared reads")
    }
    async fn latest_case_of_client(&self, _: &str, _: bool) -> Result<Option<Case>, Error> {
        unimplemented!("not used by shared reads")
    }
    async fn history(&self, _: &str, _: u32) -> Result<Vec<CaseEvent>, Error> {
        unimplemented!("not used by shared reads")
    }
    async fn list_cases(&self, _: &CaseQuery) -> Result<CasePage, Error> {
        unimplemented!("not used by shared reads")
    }
    async fn revisions(&self, _: &[String]) -> Result<Vec<(String, u64)>, Error> {
        unimplemented!("not used by shared reads")
    }
    async fn changes_after(&self, _: &FeedQuery) -> Result<Vec<FeedChange>, Error> {
        unimplemented!("not used by shared reads")
    }
    async fn feed_head(&self) -> Result<Cursor, Error> {
        unimplemented!("not used by shared reads")
    }
    async fn changed_cases(&self, _: Cursor, _: u32) -> Result<ChangedCases, Error> {
        unimplemented!("not used by shared reads")
    }
    async fn quarantined(&self, _: i64, _: u32) -> Result<Vec<QuarantineItem>, Error> {
        unimplemented!("not used by shared reads")
    }
    async fn ping(&self) -> Result<(), Error> {
        unimplemented!("not used by shared reads")
    }
}

async fn within<F: std::future::Future>(fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("finishes in time")
}

/// A change of `scan-1` at `revision`, as the bus hands it to the hub.
fn notify(hub: &Hub, revision: u64) {
    hub.notify(&Notification {
        scan_ref: "scan-1".into(),
        revision,
        position: Cursor(revision),
        traceparent: None,
        committed: None,
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_opened_or_woken_together_share_one_read() {
    let (store, hub) = (Arc::new(CountingStore::default()), Hub::new());
    let reads = SharedReads::new(store.clone());
    let mut watchers: Vec<_> = (0..100)
        .map(|_| (hub.watch_case("scan-1"), reads.reader("scan-1", false)))
        .collect();
    assert_eq!(reads.slot_count(), 1, "one slot per case and view");

    let results = within(futures::future::join_all(
        watchers.iter().map(|(watch, reader)| reader.read(watch)),
    ))
    .await;
    assert!(results.iter().all(|r| r.as_ref().unwrap().is_some()));
    assert_eq!(
        store.reads.load(Ordering::SeqCst),
        1,
        "100 opened, one read"
    );

    store.revision.store(1, Ordering::SeqCst);
    notify(&hub, 1);
    for (watch, _) in &mut watchers {
        within(watch.changed()).await;
    }
    let results = within(futures::future::join_all(
        watchers.iter().map(|(watch, reader)| reader.read(watch)),
    ))
    .await;
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().unwrap().as_ref().unwrap().revision == 1)
    );
    assert_eq!(store.reads.load(Ordering::SeqCst), 2, "100 woken, one read");
}

#[tokio::test]
async fn a_read_that_started_before_the_notification_is_not_reused() {
    let (store, hub) = (Arc::new(CountingStore::default()), Hub::new());
    let reads = SharedReads::new(store.clone());
    let (mut watch, reader) = (hub.watch_case("scan-1"), reads.reader("scan-1", false));
    let mut other_watch = hub.watch_case("scan-1");
    let other = reads.reader("scan-1", false);
    store.revision.store(1, Ordering::SeqCst);
    let first = within(reader.read(&watch)).await.unwrap().unwrap();
    assert_eq!(first.revision, 1);

    // A change commits, then wakes the watchers: the cached revision 1 is too old.
    store.revision.store(2, Ordering::SeqCst);
    notify(&hub, 2);
    within(watch.changed()).await;
    let read = within(reader.read(&watch)).await.unwrap().unwrap();
    assert_eq!(read.revision, 2);
    assert_eq!(store.reads.load(Ordering::SeqCst), 2);
    // Another watcher woken by the same change reuses that read.
    within(other_watch.changed()).await;
    let read = within(other.read(&other_watch)).await.unwrap().unwrap();
    assert_eq!(read.revision, 2);
    assert_eq!(store.reads.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_watcher_that_subscribes_after_a_notification_does_not_reuse_an_older_read() {
    let (store, hub) = (Arc::new(CountingStore::default()), Hub::new());
    let reads = SharedReads::new(store.clone());
    let (watch, reader) = (hub.watch_case("scan-1"), reads.reader("scan-1", false));
    store.revision.store(1, Ordering::SeqCst);
    within(reader.read(&watch)).await.unwrap();

    // Revision 2 commits and is notified before anyone else subscribes: the newcomer has not
    // been told of it, but the slot's read predates it.
    store.revision.store(2, Ordering::SeqCst);
    notify(&hub, 2);
    let late = hub.watch_case("scan-1");
    let late_reader = reads.reader("scan-1", false);
    let read = within(late_reader.read(&late)).await.unwrap().unwrap();
    assert_eq!(read.revision, 2);
    assert_eq!(store.reads.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_case_watched_again_never_reuses_a_read_from_its_earlier_watchers() {
    let (store, hub) = (Arc::new(CountingStore::default()), Hub::new());
    let reads = SharedReads::new(store.clone());
    // The old stream's reader outlives its hub subscription for a moment (drop order).
    let old_reader = reads.reader("scan-1", false);
    let old_watch = hub.watch_case("scan-1");
    store.revision.store(1, Ordering::SeqCst);
    within(old_reader.read(&old_watch)).await.unwrap();
    drop(old_watch);

    // The hub entry is gone; a new watcher re-creates it while the old slot still lives.
    store.revision.store(2, Ordering::SeqCst);
    let watch = hub.watch_case("scan-1");
    let reader = reads.reader("scan-1", false);
    let read = within(reader.read(&watch)).await.unwrap().unwrap();
    assert_eq!(read.revision, 2, "generations grow across entries");
    drop(old_reader);
}

#[tokio::test]
async fn a_case_committed_here_reaches_basic_watchers_without_a_read() {
    let (store, hub) = (Arc::new(CountingStore::default()), Hub::new());
    let reads = SharedReads::new(store.clone());
    let mut watch = hub.watch_case("scan-1");
    let (basic, full) = (reads.reader("scan-1", false), reads.reader("scan-1", true));
    let committed = case(1);
    hub.notify(&Notification::of_commit(&committed, Cursor(1), None));
    within(watch.changed()).await;

    let read = within(basic.read(&watch)).await.unwrap();
    assert_eq!(read.as_deref(), Some(&committed));
    assert_eq!(store.reads.load(Ordering::SeqCst), 0, "no read for BASIC");
    within(full.read(&watch)).await.unwrap();
    assert_eq!(
        store.reads.load(Ordering::SeqCst),
        1,
        "FULL needs the person, which the hub never holds"
    );

    // A revision learnt from another replica carries no case: BASIC reads again.
    store.revision.store(2, Ordering::SeqCst);
    notify(&hub, 2);
    within(watch.changed()).await;
    let read = within(basic.read(&watch)).await.unwrap().unwrap();
    assert_eq!(read.revision, 2);
    assert_eq!(store.reads.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn views_do_not_share_and_failures_are_not_cached() {
    let (store, hub) = (Arc::new(CountingStore::default()), Hub::new());
    let reads = SharedReads::new(store.clone());
    let watch = hub.watch_case("scan-1");
    let basic = reads.reader("scan-1", false);
    let full = reads.reader("scan-1", true);
    assert_eq!(reads.slot_count(), 2);

    store.down.store(true, Ordering::SeqCst);
    assert!(within(basic.read(&watch)).await.is_err());
    store.down.store(false, Ordering::SeqCst);
    assert!(
        within(basic.read(&watch)).await.unwrap().is_some(),
        "the failure was not cached"
    );
    within(full.read(&watch)).await.unwrap();
    assert_eq!(store.reads.load(Ordering::SeqCst), 3);
}

#[test]
fn the_slot_goes_when_its_last_reader_does() {
    let reads = SharedReads::new(Arc::new(CountingStore::default()));
    let first = reads.reader("scan-1", false);
    let second = reads.reader("scan-1", false);
    drop(first);
    assert_eq!(reads.slot_count(), 1, "still watched");
    drop(second);
    assert_eq!(reads.slot_count(), 0);
}
