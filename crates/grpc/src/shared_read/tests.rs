use std::{
    io,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use async_trait::async_trait;
use chrono::Utc;
use verdict_domain::{
    CaseEvent, CasePage, CaseQuery, Cursor, Decision, FeedChange, FeedQuery, NewDelivery,
    NewQuarantine, QuarantineItem, Recorded,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_woken_together_share_one_read() {
    let store = Arc::new(CountingStore::default());
    let reads = SharedReads::new(store.clone());
    let readers: Vec<_> = (0..100).map(|_| reads.reader("scan-1", false)).collect();
    assert_eq!(reads.slot_count(), 1, "one slot per case and view");

    let woken = Instant::now();
    let results = within(futures::future::join_all(
        readers.iter().map(|reader| reader.read(woken)),
    ))
    .await;
    assert!(results.iter().all(|r| r.as_ref().unwrap().is_some()));
    assert_eq!(
        store.reads.load(Ordering::SeqCst),
        1,
        "100 watchers, one read"
    );
}

#[tokio::test]
async fn a_read_that_started_before_the_wake_is_not_reused() {
    let store = Arc::new(CountingStore::default());
    let reads = SharedReads::new(store.clone());
    let reader = reads.reader("scan-1", false);
    store.revision.store(1, Ordering::SeqCst);
    assert_eq!(
        within(reader.read(Instant::now()))
            .await
            .unwrap()
            .unwrap()
            .revision,
        1
    );

    // A change commits, then wakes the watcher: the cached revision 1 is too old.
    store.revision.store(2, Ordering::SeqCst);
    let woken = Instant::now();
    assert_eq!(
        within(reader.read(woken)).await.unwrap().unwrap().revision,
        2
    );
    assert_eq!(store.reads.load(Ordering::SeqCst), 2);
    // Another watcher woken by the same change reuses that read.
    let other = reads.reader("scan-1", false);
    assert_eq!(
        within(other.read(woken)).await.unwrap().unwrap().revision,
        2
    );
    assert_eq!(store.reads.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn views_do_not_share_and_failures_are_not_cached() {
    let store = Arc::new(CountingStore::default());
    let reads = SharedReads::new(store.clone());
    let basic = reads.reader("scan-1", false);
    let full = reads.reader("scan-1", true);
    assert_eq!(reads.slot_count(), 2);

    store.down.store(true, Ordering::SeqCst);
    let woken = Instant::now();
    assert!(within(basic.read(woken)).await.is_err());
    store.down.store(false, Ordering::SeqCst);
    assert!(
        within(basic.read(woken)).await.unwrap().is_some(),
        "the failure was not cached"
    );
    within(full.read(woken)).await.unwrap();
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
