//! The use case against in-memory ports: what is asked of the store, published and answered.
//! The real store is exercised end to end in the root package's tests.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use verdict_domain::{Case, Cursor, Error as DomainError, ErrorKind, ExpiredBatch};

use super::*;

/// Answers purges from a script and records what it was asked.
#[derive(Debug, Default)]
struct Scripted {
    /// `purge` answers: the case, and whether the purge changed it.
    cases: Mutex<Vec<(Case, bool)>>,
    /// `purge_expired` answers, in order; `None` when the batch lock is taken.
    batches: Mutex<VecDeque<Option<ExpiredBatch>>>,
    /// The cutoffs `purge_expired` was asked for.
    cutoffs: Mutex<Vec<DateTime<Utc>>>,
}

#[async_trait]
impl PurgeStore for Scripted {
    async fn purge(&self, scan_ref: &str, _: Option<String>) -> Result<Option<Purge>, DomainError> {
        let cases = self.cases.lock().unwrap();
        Ok(cases
            .iter()
            .find(|(case, _)| case.scan_ref == scan_ref)
            .map(|(case, changed)| Purge {
                case: case.clone(),
                position: changed.then_some(Cursor(case.revision)),
            }))
    }

    async fn purge_expired(
        &self,
        cutoff: DateTime<Utc>,
        _: u32,
        _: Option<String>,
    ) -> Result<Option<ExpiredBatch>, DomainError> {
        self.cutoffs.lock().unwrap().push(cutoff);
        Ok(self
            .batches
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| Some(ExpiredBatch::default())))
    }
}

/// Keeps what is published.
#[derive(Debug, Default)]
struct Bus(Mutex<Vec<Notification>>);

#[async_trait]
impl ChangeBus for Bus {
    async fn publish(&self, notification: Notification) -> Result<(), DomainError> {
        self.0.lock().unwrap().push(notification);
        Ok(())
    }
}

fn purged(scan_ref: &str, revision: u64) -> Case {
    Case {
        revision,
        purged_at: Some(Utc::now()),
        ..Case::new(scan_ref, Utc::now())
    }
}

fn batch(scan_refs: &[&str], more: bool) -> Option<ExpiredBatch> {
    Some(ExpiredBatch {
        purged: scan_refs
            .iter()
            .map(|scan_ref| Purge {
                case: purged(scan_ref, 3),
                position: Some(Cursor(9)),
            })
            .collect(),
        quarantine_erased: 1,
        more,
    })
}

fn published(bus: &Bus) -> Vec<(String, u64)> {
    let published = bus.0.lock().unwrap();
    published
        .iter()
        .map(|n| (n.scan_ref.clone(), n.revision))
        .collect()
}

#[tokio::test]
async fn an_erasure_is_published_once_and_a_second_one_not_at_all() {
    let store = Arc::new(Scripted::default());
    store.cases.lock().unwrap().extend([
        (purged("fresh", 4), true),
        (purged("done-before", 5), false),
    ]);
    let bus = Arc::new(Bus::default());
    let lifecycle = Lifecycle::new(store.clone(), bus.clone());

    let purge = lifecycle.purge_case("fresh").await.unwrap();
    assert_eq!((purge.case.revision, purge.position), (4, Some(Cursor(4))));
    let again = lifecycle.purge_case("done-before").await.unwrap();
    assert_eq!(again.position, None);
    lifecycle.flush().await;
    assert_eq!(published(&bus), [("fresh".to_owned(), 4)]);
}

#[tokio::test]
async fn an_unknown_case_is_not_found_naming_it_and_a_malformed_key_is_refused() {
    let lifecycle = Lifecycle::new(Arc::new(Scripted::default()), Arc::new(Bus::default()));
    let err = lifecycle.purge_case("nope").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.to_string(), r#"no case with scan_ref "nope""#);
    for (key, message) in [
        ("", "scan_ref must not be empty"),
        ("a\0b", "scan_ref contains a NUL byte"),
    ] {
        let err = lifecycle.purge_case(key).await.unwrap_err();
        assert_eq!(
            (err.kind(), err.to_string().as_str()),
            (ErrorKind::InvalidArgument, message)
        );
    }
}

#[tokio::test]
async fn a_retention_pass_takes_batches_until_none_is_full_and_publishes_each_purge() {
    let store = Arc::new(Scripted::default());
    let mut last = batch(&["c"], false);
    if let Some(batch) = &mut last {
        batch.purged.push(Purge {
            case: purged("unchanged", 2),
            position: None,
        });
    }
    store
        .batches
        .lock()
        .unwrap()
        .extend([batch(&["a", "b"], true), last]);
    let bus = Arc::new(Bus::default());
    let lifecycle = Lifecycle::new(store.clone(), bus.clone());

    let before = Utc::now();
    let mut seen = Vec::new();
    let summary = lifecycle
        .retention_pass(Duration::from_secs(3600), |case| {
            seen.push(case.scan_ref.clone())
        })
        .await
        .unwrap();
    lifecycle.flush().await;

    assert_eq!(
        summary,
        RetentionSummary {
            purged: 3,
            quarantine_erased: 2,
            busy: false
        }
    );
    assert_eq!(seen, ["a", "b", "c"]);
    assert_eq!(published(&bus).len(), 3);
    let cutoffs = store.cutoffs.lock().unwrap().clone();
    assert_eq!(cutoffs.len(), 2, "two batches");
    let hour = chrono::Duration::hours(1);
    assert!(cutoffs[0] >= before - hour && cutoffs[0] <= Utc::now() - hour);
    assert_eq!(cutoffs[0], cutoffs[1], "one cutoff for the whole pass");
}

#[tokio::test]
async fn a_retention_pass_leaves_the_rest_to_the_process_holding_the_batch_lock() {
    let store = Arc::new(Scripted::default());
    store
        .batches
        .lock()
        .unwrap()
        .extend([batch(&["a"], true), None, batch(&["never"], false)]);
    let lifecycle = Lifecycle::new(store.clone(), Arc::new(Bus::default()));
    let summary = lifecycle
        .retention_pass(Duration::from_secs(1), |_| {})
        .await
        .unwrap();
    assert_eq!((summary.purged, summary.busy), (1, true));
    assert_eq!(store.cutoffs.lock().unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_job_runs_a_pass_at_once_and_then_every_interval_until_shutdown() {
    let store = Arc::new(Scripted::default());
    let lifecycle = Lifecycle::new(store.clone(), Arc::new(Bus::default()));
    let shutdown = CancellationToken::new();
    let job = tokio::spawn(lifecycle.run_retention(
        Duration::from_secs(86_400),
        Duration::from_secs(600),
        shutdown.clone(),
    ));
    let passes = || store.cutoffs.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(passes(), 1, "a pass at start");
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(passes(), 2, "and one per interval");
    shutdown.cancel();
    job.await.unwrap();
}
