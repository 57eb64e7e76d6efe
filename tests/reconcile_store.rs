//! Reconciliation claims and the backlog in the store, on SQLite and PostgreSQL: which open
//! case is due, that of claimers racing for it exactly one gets it, and the numbers behind the
//! backlog gauges.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, DurationRound, Utc};
use verdict_domain::event::UnknownEventType;
use verdict_domain::{
    BacklogStore, CaseStore, Claim, DueQuery, EventType, NewDelivery, NewQuarantine, NextLookup,
    Payload, ReconcileQueue,
};
use verdict_store::{SeaStore, StoreOptions};
use verdict_testkit::payloads::{self, webhook};
use verdict_testkit::{Backend, TestDatabase, on_every_backend, within};

struct Fixture {
    store: Arc<SeaStore>,
    _db: TestDatabase,
}

async fn fixture(backend: Backend) -> Option<Fixture> {
    let db = TestDatabase::new(backend).await?;
    let store = within(
        "connecting",
        SeaStore::connect(db.url(), StoreOptions::default()),
    )
    .await
    .expect("connect");
    within("migrating", store.migrate()).await.expect("migrate");
    Some(Fixture {
        store: Arc::new(store),
        _db: db,
    })
}

/// Now, to the second, so both databases keep it exactly.
fn now() -> DateTime<Utc> {
    Utc::now().duration_trunc(Duration::seconds(1)).unwrap()
}

/// Records a webhook for a new case that arrived `minutes_ago`; `final_` makes it decided.
async fn case_changed(store: &SeaStore, minutes_ago: i64, final_: bool) -> String {
    let scan_ref = payloads::scan_ref();
    let body = match final_ {
        true => webhook(&scan_ref).overall("APPROVED").final_(true).build(),
        false => webhook(&scan_ref).build(),
    };
    let event = match final_ {
        true => EventType::ManualFinished,
        false => EventType::AutoFinished,
    };
    let delivery = NewDelivery {
        event,
        payload: Payload::parse(&body).unwrap(),
        body: body.into(),
        received_at: now() - Duration::minutes(minutes_ago),
        traceparent: None,
        releases: None,
    };
    within("record", store.record(delivery)).await.unwrap();
    scan_ref
}

/// Due: unchanged for an hour; a claim holds the case for an hour.
fn due(at: DateTime<Utc>) -> DueQuery {
    DueQuery {
        now: at,
        unchanged_since: at - Duration::hours(1),
        hold_until: at + Duration::hours(1),
    }
}

async fn claim(store: &SeaStore, query: DueQuery) -> Option<Claim> {
    within("claim", store.claim_due(query)).await.unwrap()
}

async fn open_cases_unchanged_long_enough_are_claimed_oldest_first(backend: Backend) {
    let Some(Fixture { store, _db }) = fixture(backend).await else {
        return;
    };
    let older = case_changed(&store, 180, false).await;
    let old = case_changed(&store, 90, false).await;
    case_changed(&store, 30, false).await; // changed too recently
    case_changed(&store, 600, true).await; // final: never looked up
    let at = now();

    let first = claim(&store, due(at)).await.expect("a due case");
    assert_eq!(
        (first.scan_ref.as_str(), first.attempts),
        (older.as_str(), 0)
    );
    let second = claim(&store, due(at)).await.expect("another due case");
    assert_eq!(second.scan_ref, old);
    assert_eq!(claim(&store, due(at)).await, None, "the others are held");

    // Once the hold ends the case is due again, the first-claimed first.
    let later = due(at + Duration::hours(2));
    assert_eq!(claim(&store, later).await.unwrap().scan_ref, older);
}

async fn a_settled_case_waits_until_its_next_lookup(backend: Backend) {
    let Some(Fixture { store, _db }) = fixture(backend).await else {
        return;
    };
    let scan_ref = case_changed(&store, 120, false).await;
    let at = now();
    claim(&store, due(at)).await.expect("due");
    let next = NextLookup {
        at: at + Duration::hours(4),
        attempts: 1,
        result: "unchanged",
    };
    within("settle", store.settle(&scan_ref, Some(next)))
        .await
        .unwrap();

    assert_eq!(claim(&store, due(at + Duration::hours(3))).await, None);
    let again = claim(&store, due(at + Duration::hours(4)))
        .await
        .expect("due at its next lookup");
    assert_eq!((again.scan_ref, again.attempts), (scan_ref.clone(), 1));

    // Forgotten (the case became final): claimable at once, counting from zero.
    within("forget", store.settle(&scan_ref, None))
        .await
        .unwrap();
    let fresh = claim(&store, due(at)).await.expect("claimable again");
    assert_eq!(fresh.attempts, 0);
}

async fn a_change_since_the_last_claim_starts_the_back_off_over(backend: Backend) {
    let Some(Fixture { store, _db }) = fixture(backend).await else {
        return;
    };
    let scan_ref = case_changed(&store, 180, false).await;
    let at = now();
    claim(&store, due(at)).await.expect("due");
    let next = NextLookup {
        at,
        attempts: 3,
        result: "unchanged",
    };
    store.settle(&scan_ref, Some(next)).await.unwrap();
    // A new preliminary result, still two hours old.
    let body = webhook(&scan_ref).overall("SUSPECTED").build();
    let delivery = NewDelivery {
        event: EventType::AutoFinished,
        payload: Payload::parse(&body).unwrap(),
        body: body.into(),
        received_at: at - Duration::hours(2),
        traceparent: None,
        releases: None,
    };
    store.record(delivery).await.unwrap();

    let again = claim(&store, due(at)).await.expect("due");
    assert_eq!((again.scan_ref, again.attempts), (scan_ref, 0));
}

/// Many claimers at once, as replicas would: every due case goes to exactly one of them.
async fn racing_claimers_each_get_different_cases(backend: Backend) {
    let Some(Fixture { store, _db }) = fixture(backend).await else {
        return;
    };
    let mut open = Vec::new();
    for minutes in 0..12 {
        open.push(case_changed(&store, 120 + minutes, false).await);
    }
    let at = now();
    let claimers: Vec<_> = (0..6)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(claim) = store.claim_due(due(at)).await.unwrap() {
                    mine.push(claim.scan_ref);
                }
                mine
            })
        })
        .collect();
    let mut claimed: BTreeMap<String, usize> = BTreeMap::new();
    for claimer in claimers {
        for scan_ref in within("a claimer", claimer).await.unwrap() {
            *claimed.entry(scan_ref).or_default() += 1;
        }
    }
    open.sort();
    assert_eq!(claimed.keys().cloned().collect::<Vec<_>>(), open);
    assert!(
        claimed.values().all(|n| *n == 1),
        "claimed twice: {claimed:?}"
    );
}

async fn the_backlog_is_the_oldest_open_case_and_the_waiting_quarantine(backend: Backend) {
    let Some(Fixture { store, _db }) = fixture(backend).await else {
        return;
    };
    let empty = store.backlog().await.unwrap();
    assert_eq!(
        (empty.oldest_pending_since, empty.quarantine_depth),
        (None, 0)
    );

    case_changed(&store, 600, true).await; // final: not waiting
    // `now()` is read again inside: a second may turn between that reading and this test's.
    let before = now();
    case_changed(&store, 90, false).await;
    let after = now();
    case_changed(&store, 30, false).await;
    for _ in 0..2 {
        store
            .quarantine(NewQuarantine {
                event_type: Some("IDENTIFICATION_NEW".into()),
                body: webhook(&payloads::scan_ref()).build().into(),
                reason: UnknownEventType("IDENTIFICATION_NEW".into()).into(),
                received_at: Utc::now(),
                traceparent: None,
            })
            .await
            .unwrap();
    }
    let backlog = within("backlog", store.backlog()).await.unwrap();
    let oldest = backlog.oldest_pending_since.expect("open cases");
    let ninety = Duration::minutes(90);
    assert!(
        (before - ninety..=after - ninety).contains(&oldest),
        "{oldest} is not when the 90-minute-old case changed ({before} to {after}, less 90 min)"
    );
    assert_eq!(backlog.quarantine_depth, 2);
}

on_every_backend!(
    open_cases_unchanged_long_enough_are_claimed_oldest_first,
    a_settled_case_waits_until_its_next_lookup,
    a_change_since_the_last_claim_starts_the_back_off_over,
    racing_claimers_each_get_different_cases,
    the_backlog_is_the_oldest_open_case_and_the_waiting_quarantine,
);
