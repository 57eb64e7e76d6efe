//! A batch against the same deliveries written one transaction each: the same answers, the same
//! rows. Batches are made by hand here; which deliveries end up together under load is up to
//! timing, so the integration tests cannot choose them.

use bytes::Bytes;
use chrono::{Duration, Utc};
use serde_json::{Value, json};
use tracing::Span;
use verdict_domain::{
    CaseStore as _, Cursor, EventType, FeedQuery, NewDelivery, Payload, Recorded,
};

use super::record_in;
use crate::{SeaStore, StoreOptions};

const REAL: &[u8] = include_bytes!("../../../domain/tests/fixtures/go-idenfy-webhook.json");

/// The real payload for `scan_ref` with `final` and `status.overall` set.
fn delivery(
    scan_ref: &str,
    event: EventType,
    is_final: bool,
    overall: &str,
    at: i64,
) -> NewDelivery {
    let mut value: Value = serde_json::from_slice(REAL).unwrap();
    value["scanRef"] = json!(scan_ref);
    value["final"] = json!(is_final);
    value["status"]["overall"] = json!(overall);
    let body = serde_json::to_vec(&value).unwrap();
    NewDelivery {
        event,
        payload: Payload::parse(&body).unwrap(),
        body: Bytes::from(body),
        received_at: Utc::now() + Duration::milliseconds(at),
        traceparent: None,
        releases: None,
    }
}

/// A preliminary result and its copy, a case whose first delivery is quarantined before its
/// second applies, the final decision of the first case, and a case that never exists.
fn deliveries() -> Vec<NewDelivery> {
    let preliminary = delivery("case-x", EventType::AutoFinished, false, "REVIEWING", 0);
    let copy = NewDelivery {
        received_at: preliminary.received_at + Duration::milliseconds(1),
        ..preliminary.clone()
    };
    vec![
        preliminary,
        copy,
        // A manual result whose body says "not final": quarantined.
        delivery("case-y", EventType::ManualFinished, false, "APPROVED", 2),
        delivery("case-y", EventType::AutoFinished, false, "REVIEWING", 3),
        delivery("case-x", EventType::ManualFinished, true, "APPROVED", 4),
        delivery("case-z", EventType::ManualFinished, false, "DENIED", 5),
    ]
}

async fn store() -> SeaStore {
    let store = SeaStore::connect("sqlite::memory:", StoreOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store
}

async fn write(store: &SeaStore, batch: Vec<NewDelivery>) -> Vec<Recorded> {
    let txn = crate::begin_immediate(store.connection()).await.unwrap();
    let batch = batch.into_iter().map(|d| (d, Span::none())).collect();
    let recorded = record_in(&txn, batch).await.unwrap();
    txn.commit().await.unwrap();
    recorded
}

/// What an answer says: outcome, revision of its case, feed position.
fn summary(recorded: &Recorded) -> (&'static str, Option<u64>, Option<u64>) {
    let position = match recorded {
        Recorded::Applied { position, .. } => Some(position.0),
        _ => None,
    };
    (
        recorded.label(),
        recorded.case().map(|case| case.revision),
        position,
    )
}

/// Everything the deliveries left: the feed, each case and its history.
async fn rows(store: &SeaStore) -> Vec<String> {
    let mut rows = Vec::new();
    for change in store
        .changes_after(&FeedQuery::after(Cursor::START, 100))
        .await
        .unwrap()
    {
        let case = &change.case;
        rows.push(format!(
            "feed {} {} r{} {}",
            change.position.0,
            case.scan_ref,
            case.revision,
            case.decision.as_str()
        ));
    }
    for scan_ref in ["case-x", "case-y", "case-z"] {
        let case = store.case(scan_ref, true).await.unwrap();
        rows.push(format!(
            "case {scan_ref}: {:?}",
            case.map(|c| (c.revision, c.decision, c.is_final, c.person.is_some()))
        ));
        for event in store.history(scan_ref, 100).await.unwrap() {
            rows.push(format!(
                "history {scan_ref}: {} {} r{}",
                event.event_type,
                event.outcome.as_str(),
                event.revision
            ));
        }
    }
    rows
}

#[tokio::test]
async fn a_batch_answers_and_writes_as_one_transaction_per_delivery_would() {
    let deliveries = deliveries();

    let batched = store().await;
    let together = write(&batched, deliveries.clone()).await;
    let alone = store().await;
    let mut one_by_one = Vec::new();
    for delivery in deliveries {
        one_by_one.extend(write(&alone, vec![delivery]).await);
    }

    let answers: Vec<_> = together.iter().map(summary).collect();
    assert_eq!(
        answers,
        [
            ("applied", Some(1), Some(1)),
            ("duplicate", Some(1), None),
            ("quarantined", None, None),
            ("applied", Some(1), Some(2)),
            ("applied", Some(2), Some(3)),
            ("quarantined", None, None),
        ]
    );
    assert_eq!(answers, one_by_one.iter().map(summary).collect::<Vec<_>>());
    let written = rows(&batched).await;
    assert_eq!(written, rows(&alone).await);
    assert!(
        written.contains(&"case case-z: None".to_owned()),
        "{written:#?}"
    );
    assert!(
        written.contains(&"feed 3 case-x r2 APPROVED".to_owned()),
        "{written:#?}"
    );
}

/// More changes than one statement takes (the feed rows go in several): the same feed as
/// one transaction per delivery.
#[tokio::test]
async fn a_large_batch_writes_the_same_feed_as_one_transaction_per_delivery() {
    let deliveries: Vec<NewDelivery> = (0..20)
        .map(|i| {
            let scan_ref = format!("case-{}", i % 7);
            let preliminary = delivery(&scan_ref, EventType::AutoFinished, false, "REVIEWING", i);
            // A field of its own, so no delivery is a copy of another: each applies.
            let mut value: Value = serde_json::from_slice(&preliminary.body).unwrap();
            value["seq"] = json!(i);
            let body = serde_json::to_vec(&value).unwrap();
            NewDelivery {
                payload: Payload::parse(&body).unwrap(),
                body: Bytes::from(body),
                ..preliminary
            }
        })
        .collect();
    let feed = |store: SeaStore| async move {
        let changes = store
            .changes_after(&FeedQuery::after(Cursor::START, 100))
            .await
            .unwrap();
        changes
            .into_iter()
            .map(|c| (c.position.0, c.case.scan_ref, c.case.revision))
            .collect::<Vec<_>>()
    };

    let batched = store().await;
    let together = write(&batched, deliveries.clone()).await;
    let alone = store().await;
    for delivery in deliveries {
        write(&alone, vec![delivery]).await;
    }

    let positions: Vec<_> = together.iter().map(|r| summary(r).2).collect();
    assert_eq!(positions, (1..=20).map(Some).collect::<Vec<_>>());
    let written = feed(batched).await;
    assert_eq!(written.len(), 20);
    assert_eq!(written, feed(alone).await);
}

#[test]
fn the_anonymous_copies_lookup_takes_the_numbered_values_in_text_order() {
    let (sql, order) = &*super::EARLIER_COPIES_ANONYMOUS;
    assert!(!sql.contains('$'), "{sql}");
    assert_eq!(sql.matches('?').count(), order.len());
    // $1 $2 $3 $4 in the history, $2 $4 in the quarantine.
    assert_eq!(order, &[0, 1, 2, 3, 1, 3]);
    let numbered = ["$1", "$2", "$3", "$4"]
        .iter()
        .fold(super::EARLIER_COPIES.to_owned(), |sql, n| {
            sql.replace(n, "?")
        });
    assert_eq!(sql, &numbered);
}
