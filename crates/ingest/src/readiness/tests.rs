//! The ping loop against a store whose ping can answer, fail or hang, on tokio's paused clock
//! (the ticks and the ping deadline advance without real waiting).

use std::io;
use std::sync::Mutex;

use async_trait::async_trait;
use verdict_domain::{
    Case, CaseEvent, CasePage, CaseQuery, ChangedCases, Cursor, Error, FeedChange, FeedQuery,
    NewDelivery, NewQuarantine, QuarantineItem, Recorded,
};

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ping {
    Answer,
    Fail,
    Hang,
}

#[derive(Debug)]
struct PingStore(Mutex<Ping>);

impl PingStore {
    fn new(ping: Ping) -> Arc<Self> {
        Arc::new(Self(Mutex::new(ping)))
    }

    fn set(&self, ping: Ping) {
        *self.0.lock().unwrap() = ping;
    }
}

#[async_trait]
impl CaseStore for PingStore {
    async fn ping(&self) -> Result<(), Error> {
        let ping = *self.0.lock().unwrap();
        match ping {
            Ping::Answer => Ok(()),
            Ping::Fail => Err(Error::Unavailable(Box::new(io::Error::other(
                "connection refused",
            )))),
            Ping::Hang => std::future::pending().await,
        }
    }
    async fn record(&self, _: NewDelivery) -> Result<Recorded, Error> {
        unreachable!("readiness only pings")
    }
    async fn quarantine(&self, _: NewQuarantine) -> Result<i64, Error> {
        unreachable!("readiness only pings")
    }
    async fn case(&self, _: &str, _: bool) -> Result<Option<Case>, Error> {
        unreachable!("readiness only pings")
    }
    async fn latest_case_of_client(&self, _: &str, _: bool) -> Result<Option<Case>, Error> {
        unreachable!("readiness only pings")
    }
    async fn history(&self, _: &str, _: u32) -> Result<Vec<CaseEvent>, Error> {
        unreachable!("readiness only pings")
    }
    async fn list_cases(&self, _: &CaseQuery) -> Result<CasePage, Error> {
        unreachable!("readiness only pings")
    }
    async fn revisions(&self, _: &[String]) -> Result<Vec<(String, u64)>, Error> {
        unreachable!("readiness only pings")
    }
    async fn changes_after(&self, _: &FeedQuery) -> Result<Vec<FeedChange>, Error> {
        unreachable!("readiness only pings")
    }
    async fn feed_head(&self) -> Result<Cursor, Error> {
        unreachable!("readiness only pings")
    }
    async fn changed_cases(&self, _: Cursor, _: u32) -> Result<ChangedCases, Error> {
        unreachable!("readiness only pings")
    }
    async fn quarantined(&self, _: i64, _: u32) -> Result<Vec<QuarantineItem>, Error> {
        unreachable!("readiness only pings")
    }
}

const EVERY: Duration = Duration::from_secs(5);

/// The next status the loop publishes (an hour of paused time at most).
async fn next(readiness: &mut Readiness) -> Option<Status> {
    timeout(Duration::from_secs(3600), readiness.changed())
        .await
        .expect("the status changes")
}

fn is_unready(status: &Status, because: &str) -> bool {
    matches!(status, Status::Unready(reason) if reason.contains(because))
}

#[tokio::test(start_paused = true)]
async fn unready_until_the_database_first_answers() {
    let store = PingStore::new(Ping::Hang);
    let mut readiness = Readiness::spawn(store.clone(), EVERY, CancellationToken::new());
    assert!(is_unready(&readiness.status(), "has not answered yet"));
    let status = next(&mut readiness).await.unwrap();
    assert!(
        is_unready(&status, "did not answer within 5s"),
        "{status:?}"
    );
    store.set(Ping::Answer);
    assert_eq!(next(&mut readiness).await, Some(Status::Ready));
    assert_eq!(readiness.status(), Status::Ready);
}

#[tokio::test(start_paused = true)]
async fn every_reader_sees_an_outage_and_the_recovery() {
    let store = PingStore::new(Ping::Answer);
    let mut readiness = Readiness::spawn(store.clone(), EVERY, CancellationToken::new());
    let other = readiness.clone();
    assert_eq!(next(&mut readiness).await, Some(Status::Ready));

    store.set(Ping::Fail);
    let status = next(&mut readiness).await.unwrap();
    assert!(is_unready(&status, "unavailable"), "{status:?}");
    assert_eq!(other.status(), status, "one signal for every probe");

    store.set(Ping::Answer);
    assert_eq!(next(&mut readiness).await, Some(Status::Ready));
    assert_eq!(other.status(), Status::Ready);
}

#[tokio::test(start_paused = true)]
async fn the_loop_stops_at_shutdown() {
    let shutdown = CancellationToken::new();
    let mut readiness = Readiness::spawn(PingStore::new(Ping::Answer), EVERY, shutdown.clone());
    assert_eq!(next(&mut readiness).await, Some(Status::Ready));
    shutdown.cancel();
    assert_eq!(next(&mut readiness).await, None);
}
