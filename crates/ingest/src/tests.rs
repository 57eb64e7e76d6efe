//! The use case against in-memory ports: what is written, published and answered for each kind
//! of delivery. The real store is exercised end to end in the root package's tests.

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::TimeZone;
use verdict_domain::{
    Case, CaseEvent, CasePage, CaseQuery, ChangedCases, Cursor, Decision, Error as DomainError,
    FeedChange, FeedQuery, SignatureVerifier, UnverifiedWebhook,
};

use super::*;

/// Records every delivery as applied (revision 1) and every quarantine as item 7.
#[derive(Debug, Default)]
struct Recording {
    deliveries: Mutex<Vec<NewDelivery>>,
    quarantined: Mutex<Vec<NewQuarantine>>,
    /// What `quarantined` offers, in id order.
    waiting: Mutex<Vec<QuarantineItem>>,
    /// Items a concurrent reprocess released: recording them fails `NotFound`.
    released_elsewhere: Vec<i64>,
    hang: bool,
}

#[async_trait]
impl CaseStore for Recording {
    async fn record(&self, delivery: NewDelivery) -> Result<Recorded, DomainError> {
        if self.hang {
            std::future::pending::<()>().await;
        }
        if let Some(id) = delivery
            .releases
            .filter(|id| self.released_elsewhere.contains(id))
        {
            return Err(DomainError::NotFound(format!(
                "quarantine item {id} is released"
            )));
        }
        let case = case(delivery.payload.scan_ref.as_str());
        self.deliveries.lock().unwrap().push(delivery);
        Ok(Recorded::Applied {
            case,
            position: Cursor(3),
            purged: false,
        })
    }
    async fn quarantine(&self, item: NewQuarantine) -> Result<i64, DomainError> {
        self.quarantined.lock().unwrap().push(item);
        Ok(7)
    }
    async fn case(&self, _: &str, _: bool) -> Result<Option<Case>, DomainError> {
        unreachable!("ingest never reads")
    }
    async fn latest_case_of_client(&self, _: &str, _: bool) -> Result<Option<Case>, DomainError> {
        unreachable!("ingest never reads")
    }
    async fn history(&self, _: &str, _: u32) -> Result<Vec<CaseEvent>, DomainError> {
        unreachable!("ingest never reads")
    }
    async fn list_cases(&self, _: &CaseQuery) -> Result<CasePage, DomainError> {
        unreachable!("ingest never reads")
    }
    async fn revisions(&self, _: &[String]) -> Result<Vec<(String, u64)>, DomainError> {
        unreachable!("ingest never reads")
    }
    async fn changes_after(&self, _: &FeedQuery) -> Result<Vec<FeedChange>, DomainError> {
        unreachable!("ingest never reads")
    }
    async fn feed_head(&self) -> Result<Cursor, DomainError> {
        unreachable!("ingest never reads")
    }
    async fn changed_cases(&self, _: Cursor, _: u32) -> Result<ChangedCases, DomainError> {
        unreachable!("ingest never reads")
    }
    async fn quarantined(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<QuarantineItem>, DomainError> {
        let waiting = self.waiting.lock().unwrap();
        Ok(waiting
            .iter()
            .filter(|item| item.id > after)
            .take(limit as usize)
            .cloned()
            .collect())
    }
    async fn ping(&self) -> Result<(), DomainError> {
        unreachable!("ingest never reads")
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

fn case(scan_ref: &str) -> Case {
    let at = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
    Case {
        decision: Decision::Approved,
        is_final: true,
        overall_status: Some("APPROVED".into()),
        last_event_type: "IDENTIFICATION_MANUAL_FINISHED".into(),
        revision: 1,
        finalized_at: Some(at),
        ..Case::new(scan_ref, at)
    }
}

fn arrival(body: &'static [u8], event_type: Option<&str>) -> Arrival {
    Arrival {
        webhook: SignatureVerifier::allow_unsigned()
            .verify(UnverifiedWebhook {
                body: body.into(),
                signature: None,
                event_type: event_type.map(str::to_owned),
            })
            .unwrap(),
        received_at: Utc.timestamp_opt(1_700_000_100, 0).unwrap(),
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
    }
}

const BODY: &[u8] = br#"{"scanRef":"scan-1","final":true,"status":{"overall":"APPROVED"}}"#;
const MANUAL: Option<&str> = Some("IDENTIFICATION_MANUAL_FINISHED");

fn ingest(store: &Arc<Recording>, bus: &Arc<Bus>) -> Ingest {
    Ingest::new(store.clone(), bus.clone())
}

#[tokio::test]
async fn an_applied_delivery_is_recorded_as_it_arrived_and_published() {
    let (store, bus) = (Arc::new(Recording::default()), Arc::new(Bus::default()));
    let ingest = ingest(&store, &bus);
    let arrival = arrival(BODY, MANUAL);
    let recorded = ingest.ingest(arrival.clone()).await.unwrap();
    assert!(matches!(recorded, Recorded::Applied { .. }));
    ingest.flush().await;

    let delivery = store.deliveries.lock().unwrap()[0].clone();
    assert_eq!(delivery.received_at, arrival.received_at);
    assert_eq!(delivery.traceparent, arrival.traceparent);
    assert_eq!(delivery.releases, None);
    assert_eq!(&delivery.body[..], BODY);
    let Recorded::Applied { case, .. } = &recorded else {
        unreachable!()
    };
    // The committed case travels with the hint, so local watchers need not read it back.
    assert_eq!(
        *bus.0.lock().unwrap(),
        [Notification::of_commit(
            case,
            Cursor(3),
            arrival.traceparent
        )]
    );
}

#[tokio::test]
async fn an_unusable_delivery_is_quarantined_with_its_header_and_not_published() {
    let (store, bus) = (Arc::new(Recording::default()), Arc::new(Bus::default()));
    let ingest = ingest(&store, &bus);
    let recorded = ingest
        .ingest(arrival(BODY, Some("IDENTIFICATION_TELEPORTED")))
        .await
        .unwrap();
    let Recorded::Quarantined { id, reason } = recorded else {
        panic!("{recorded:?}")
    };
    assert_eq!((id, reason.kind()), (7, "unknown_event_type"));
    ingest.flush().await;
    let item = store.quarantined.lock().unwrap()[0].clone();
    assert_eq!(
        item.event_type.as_deref(),
        Some("IDENTIFICATION_TELEPORTED")
    );
    assert!(store.deliveries.lock().unwrap().is_empty());
    assert!(bus.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_reprocess_keeps_the_original_arrival_and_names_the_item_to_release() {
    let (store, bus) = (Arc::new(Recording::default()), Arc::new(Bus::default()));
    let ingest = ingest(&store, &bus);
    let original = Utc.timestamp_opt(1_600_000_000, 0).unwrap();
    let item = QuarantineItem {
        id: 42,
        event_type: MANUAL.map(str::to_owned),
        scan_ref: Some("scan-1".into()),
        body: BODY.into(),
        reason: "unknown event type".into(),
        reason_kind: Some("unknown_event_type".into()),
        received_at: original,
        traceparent: None,
    };
    ingest.reprocess(item).await.unwrap();
    ingest.flush().await;
    let delivery = store.deliveries.lock().unwrap()[0].clone();
    assert_eq!(
        (delivery.received_at, delivery.releases),
        (original, Some(42))
    );
    assert_eq!(bus.0.lock().unwrap().len(), 1, "a reprocess publishes too");
}

#[tokio::test]
async fn a_reprocess_still_unusable_writes_nothing() {
    let (store, bus) = (Arc::new(Recording::default()), Arc::new(Bus::default()));
    let ingest = ingest(&store, &bus);
    let item = QuarantineItem {
        id: 42,
        event_type: Some("IDENTIFICATION_TELEPORTED".into()),
        scan_ref: Some("scan-1".into()),
        body: BODY.into(),
        reason: "unknown event type".into(),
        reason_kind: None,
        received_at: Utc::now(),
        traceparent: None,
    };
    let recorded = ingest.reprocess(item).await.unwrap();
    assert!(matches!(recorded, Recorded::Quarantined { id: 42, .. }));
    assert!(store.quarantined.lock().unwrap().is_empty());
    assert!(store.deliveries.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_store_past_the_deadline_fails_the_delivery_as_unavailable() {
    let store = Arc::new(Recording {
        hang: true,
        ..Recording::default()
    });
    let bus = Arc::new(Bus::default());
    let ingest = ingest(&store, &bus).with_write_timeout(Duration::from_secs(2));
    let err = ingest.ingest(arrival(BODY, MANUAL)).await.unwrap_err();
    assert!(matches!(err, Error::WriteTimeout(d) if d == Duration::from_secs(2)));
    assert_eq!(err.kind(), verdict_domain::ErrorKind::Unavailable);
    assert!(bus.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_reprocess_pass_pages_through_the_waiting_items_and_tells_what_became_of_each() {
    let waiting: Vec<QuarantineItem> = (1..=150)
        .map(|id| QuarantineItem {
            id,
            event_type: match id {
                5 => Some("IDENTIFICATION_TELEPORTED".into()),
                _ => MANUAL.map(str::to_owned),
            },
            scan_ref: Some("scan-1".into()),
            body: BODY.into(),
            reason: "unknown event type".into(),
            reason_kind: Some("unknown_event_type".into()),
            received_at: Utc.timestamp_opt(1_600_000_000 + id, 0).unwrap(),
            traceparent: None,
        })
        .collect();
    let store = Arc::new(Recording {
        waiting: Mutex::new(waiting),
        released_elsewhere: vec![7],
        ..Recording::default()
    });
    let bus = Arc::new(Bus::default());
    let ingest = ingest(&store, &bus);

    let mut seen = Vec::new();
    let summary = ingest
        .reprocess_waiting(120, |done| seen.push(done.clone()))
        .await
        .unwrap();
    ingest.flush().await;

    assert_eq!(
        summary,
        ReprocessSummary {
            recorded: 118,
            waiting: 1,
            skipped: 1
        }
    );
    let ids: Vec<i64> = seen.iter().map(Reprocessed::id).collect();
    assert_eq!(
        ids,
        (1..=120).collect::<Vec<_>>(),
        "oldest first, across pages"
    );
    assert!(matches!(
        &seen[4],
        Reprocessed::Ingested {
            recorded: Recorded::Quarantined { id: 5, .. },
            ..
        }
    ));
    assert!(matches!(&seen[6], Reprocessed::Skipped { id: 7, why } if why.contains("released")));
    assert_eq!(store.deliveries.lock().unwrap().len(), 118);
    assert_eq!(
        bus.0.lock().unwrap().len(),
        118,
        "every recorded change is published"
    );
}

#[tokio::test]
async fn a_reprocess_pass_stops_at_a_failure_of_the_store() {
    let store = Arc::new(Recording {
        waiting: Mutex::new(vec![QuarantineItem {
            id: 1,
            event_type: MANUAL.map(str::to_owned),
            scan_ref: None,
            body: BODY.into(),
            reason: "unknown event type".into(),
            reason_kind: None,
            received_at: Utc::now(),
            traceparent: None,
        }]),
        hang: true,
        ..Recording::default()
    });
    let ingest =
        ingest(&store, &Arc::new(Bus::default())).with_write_timeout(Duration::from_millis(1));
    let err = ingest.reprocess_waiting(10, |_| {}).await.unwrap_err();
    assert!(matches!(err, Error::WriteTimeout(_)), "{err:?}");
}

#[tokio::test]
async fn a_status_answer_is_recorded_as_reconciled_and_published() {
    let (store, bus) = (Arc::new(Recording::default()), Arc::new(Bus::default()));
    let ingest = ingest(&store, &bus);
    let raw = br#"{"scanRef":"scan-1","status":"APPROVED","clientId":"c"}"#;
    let answer = StatusAnswer::parse(
        bytes::Bytes::from_static(raw),
        &verdict_domain::ScanRef::new("scan-1").unwrap(),
    )
    .unwrap();
    let at = Utc.timestamp_opt(1_700_000_200, 0).unwrap();
    let traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned());
    let recorded = ingest
        .reconcile(answer, at, traceparent.clone())
        .await
        .unwrap();
    assert!(matches!(recorded, Recorded::Applied { .. }));
    ingest.flush().await;

    let delivery = store.deliveries.lock().unwrap()[0].clone();
    assert_eq!(delivery.event, EventType::Reconciled);
    assert_eq!(&delivery.body[..], raw, "the raw answer is the stored body");
    assert_eq!(delivery.payload.status.overall.as_deref(), Some("APPROVED"));
    assert_eq!((delivery.received_at, delivery.releases), (at, None));
    assert_eq!(delivery.traceparent, traceparent);
    assert_eq!(bus.0.lock().unwrap().len(), 1);
}

/// The header is the only say a webhook has over its event type, and it cannot say RECONCILED.
#[tokio::test]
async fn a_webhook_claiming_to_be_reconciled_is_quarantined() {
    let (store, bus) = (Arc::new(Recording::default()), Arc::new(Bus::default()));
    let ingest = ingest(&store, &bus);
    let recorded = ingest
        .ingest(arrival(BODY, Some("RECONCILED")))
        .await
        .unwrap();
    let Recorded::Quarantined { reason, .. } = recorded else {
        panic!("{recorded:?}")
    };
    assert_eq!(reason.kind(), "unknown_event_type");
    assert!(store.deliveries.lock().unwrap().is_empty());
}
