//! The SeaORM store against real databases: every behaviour on SQLite and on PostgreSQL, including
//! the concurrency that DESIGN.md asks to prove (gap-free revisions, a commit-ordered feed).

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Utc;
use serde_json::json;
use verdict_domain::event::UnknownEventType;
use verdict_domain::{
    Case, CaseQuery, CaseStore, Cursor, Decision, ErrorKind, EventType, FeedFilter, FeedQuery,
    Fingerprint, NewDelivery, NewQuarantine, Outcome, Payload, QuarantineReason, Recorded,
};
use verdict_store::migration::{Migrator, MigratorTrait};
use verdict_store::{SeaStore, StoreOptions};
use verdict_testkit::payloads::{self, webhook};
use verdict_testkit::{Backend, TestDatabase, on_every_backend, within};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A migrated store on a fresh database. The store is declared first so its pool closes before
/// the database is dropped.
struct Fixture {
    store: SeaStore,
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
    Some(Fixture { store, _db: db })
}

fn delivery(event: EventType, body: Vec<u8>) -> NewDelivery {
    NewDelivery {
        event,
        payload: Payload::parse(&body).expect("test bodies parse"),
        body: body.into(),
        received_at: Utc::now(),
        traceparent: Some(TRACEPARENT.to_owned()),
        releases: None,
    }
}

async fn record(store: &SeaStore, event: EventType, body: Vec<u8>) -> Recorded {
    within("record", store.record(delivery(event, body)))
        .await
        .expect("record")
}

/// The outcome, the case's revision after it and the feed position of an applied change.
fn summary(recorded: &Recorded) -> (&'static str, Option<u64>, Option<Cursor>) {
    let position = match recorded {
        Recorded::Applied { position, .. } => Some(*position),
        _ => None,
    };
    (
        recorded.label(),
        recorded.case().map(|case| case.revision),
        position,
    )
}

/// The case after a recorded delivery.
fn case_of(recorded: &Recorded) -> &Case {
    recorded.case().expect("a recorded delivery has a case")
}

/// A final APPROVED (or other) manual review of `scan_ref`.
fn manual(scan_ref: &str, overall: &str) -> Vec<u8> {
    webhook(scan_ref).overall(overall).final_(true).build()
}

async fn migrations_go_up_down_and_up_again(backend: Backend) {
    let Some(Fixture { store, _db }) = fixture(backend).await else {
        return;
    };
    let db = store.connection();
    within("migrating down", Migrator::down(db, None))
        .await
        .expect("down");
    assert!(
        within("feed head", store.feed_head()).await.is_err(),
        "tables are gone after down"
    );
    within("migrating up again", store.migrate())
        .await
        .expect("up again");
    let pending = within("status", Migrator::get_pending_migrations(db))
        .await
        .expect("status");
    assert!(pending.is_empty());

    // The schema works again, feed counter included.
    assert_eq!(store.feed_head().await.unwrap(), Cursor::START);
    let scan_ref = payloads::scan_ref();
    let recorded = record(&store, EventType::AutoFinished, webhook(&scan_ref).build()).await;
    assert_eq!(summary(&recorded), ("applied", Some(1), Some(Cursor(1))));
}

async fn recorded_case_reads_back_with_person_only_on_request(backend: Backend) {
    let Some(Fixture { store, _db }) = fixture(backend).await else {
        return;
    };
    let scan_ref = payloads::scan_ref();
    let body = webhook(&scan_ref)
        .client_id("client-read")
        .status("fraudTags", json!(["DOC_PHOTOCOPY"]))
        .build();

    let first = record(&store, EventType::AutoFinished, body).await;
    assert_eq!(summary(&first), ("applied", Some(1), Some(Cursor(1))));

    let case = store.case(&scan_ref, false).await.unwrap().expect("stored");
    assert_eq!(case.revision, 1);
    assert_eq!(case.client_id, "client-read");
    assert_eq!(case.external_ref.as_deref(), Some("ext-1"));
    assert_eq!(case.decision, Decision::Pending);
    assert!(!case.is_final);
    assert_eq!(case.overall_status.as_deref(), Some("REVIEWING"));
    assert_eq!(case.last_event_type, "IDENTIFICATION_AUTO_FINISHED");
    assert_eq!(case.auto_document.as_deref(), Some("DOC_VALIDATED"));
    assert_eq!(case.fraud_tags, ["DOC_PHOTOCOPY"]);
    assert!(case.mismatch_tags.is_empty());
    assert_eq!(case.finalized_at, None);
    assert_eq!(case.person, None, "no personal data unless asked for");
    // The case a write answers (and this process's watchers and cache take without a read) is
    // the case a read returns, timestamps included.
    assert_eq!(
        case,
        Case {
            person: None,
            ..case_of(&first).clone()
        }
    );

    let full = store.case(&scan_ref, true).await.unwrap().expect("stored");
    let person = full.person.expect("person with with_person");
    assert_eq!(person.first_name.as_deref(), Some("JONAS"));
    assert_eq!(person.document_number.as_deref(), Some("LT1234567"));

    let body = webhook(&scan_ref)
        .client_id("client-read")
        .overall("APPROVED")
        .final_(true)
        .build();
    let second = record(&store, EventType::ManualFinished, body).await;
    assert_eq!(summary(&second), ("applied", Some(2), Some(Cursor(2))));

    let case = store.case(&scan_ref, false).await.unwrap().expect("stored");
    assert_eq!(case.decision, Decision::Approved);
    assert!(case.is_final);
    assert!(case.finalized_at.is_some());
    assert_eq!(case.created_at, full.created_at);
    assert_eq!(
        case,
        Case {
            person: None,
            ..case_of(&second).clone()
        }
    );

    let latest = store
        .latest_case_of_client("client-read", true)
        .await
        .unwrap()
        .expect("the client's case");
    assert_eq!(latest.scan_ref, scan_ref);
    assert!(latest.person.is_some());
    assert!(
        store
            .latest_case_of_client("nobody", false)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.case("unknown", true).await.unwrap().is_none());

    let history = store.history(&scan_ref, u32::MAX).await.unwrap();
    let summary: Vec<_> = history
        .iter()
        .map(|e| (e.event_type.as_str(), e.is_final, e.outcome, e.revision))
        .collect();
    assert_eq!(
        summary,
        [
            ("IDENTIFICATION_AUTO_FINISHED", false, Outcome::Applied, 1),
            ("IDENTIFICATION_MANUAL_FINISHED", true, Outcome::Applied, 2),
        ]
    );
    assert_eq!(history[1].overall_status.as_deref(), Some("APPROVED"));
}

async fn duplicate_delivery_does_not_bump_revision(backend: Backend) {
    let Some(Fixture { store, _db }) = fixture(backend).await else {
        return;
    };
    let scan_ref = payloads::scan_ref();
    let body = webhook(&scan_ref).build();

    record(&store, EventType::AutoFinished, body.clone()).await;
    let again = record(&store, EventType::AutoFinished, body.clone()).await;
    assert_eq!(summary(&again), ("duplicate", Some(1), None));

    // The same bytes under another header are the same delivery (rule 1a): the header is not
    // signed, so it cannot turn them into a final result.
    let forged = record(&store, EventType::ManualFinished, body.clone()).await;
    assert_eq!(summary(&forged), ("duplicate", Some(1), None));
    assert!(!case_of(&forged).is_final);

    // A resend with re-signed file links under the same header is one too (rule 1b)...
    let resent = |signature: &str| {
        let url = format!("https://s3.example/front.png?Signature={signature}");
        webhook(&scan_ref)
            .field("fileUrls", json!({"FRONT": url}))
            .build()
    };
    let resend = record(&store, EventType::AutoFinished, resent("new")).await;
    assert_eq!(summary(&resend), ("duplicate", Some(1), None));
    // ...but not under another header: those are new bytes, judged on their own.
    let legacy = record(&store, EventType::Legacy, resent("other")).await;
    assert_eq!(summary(&legacy), ("applied", Some(2), Some(Cursor(2))));

    let outcomes: Vec<_> = store
        .history(&scan_ref, u32::MAX)
        .await
        .unwrap()
        .iter()
        .map(|e| (e.outcome, e.revision))
        .collect();
    assert_eq!(
        outcomes,
        [
            (Outcome::Applied, 1),
            (Outcome::Duplicate, 1),
            (Outcome::Duplicate, 1),
            (Outcome::Duplicate, 1),
            (Outcome::Applied, 2)
        ]
    );
    assert_eq!(store.feed_head().await.unwrap(), Cursor(2));
}

async fn late_preliminary_result_after_final_is_stale(backend: Backend) {
    let Some(Fixture { store, _db }) = fixture(backend).await else {
        return;
    };
    let scan_ref = payloads::scan_ref();
    record(
        &store,
        EventType::ManualFinished,
        manual(&scan_ref, "DENIED"),
    )
    .await;

    let late = record(&store, EventType::AutoFinished, webhook(&scan_ref).build()).await;
    assert_eq!(summary(&late), ("stale", Some(1), None));
    let case = store.case(&scan_ref, false).await.unwrap().unwrap();
    assert_eq!((case.decision, case.revision), (Decision::Denied, 1));

    // A resubmission reopens the case even after the final result.
    let resubmission = webhook(&scan_ref).overall("ACTIVE").build();
    let reopened = record(&store, EventType::Resubmitted, resubmission).await;
    assert_eq!(summary(&reopened).0, "applied");
    let case = store.case(&scan_ref, false).await.unwrap().unwrap();
    assert_eq!(
        (case.decision, case.is_final, case.revision),
        (Decision::Pending, false, 2)
    );

    let outcomes: Vec<_> = store
        .history(&scan_ref, u32::MAX)
        .await
        .unwrap()
        .iter()
        .map(|e| e.outcome)
        .collect();
    assert_eq!(
        outcomes,
        [Outcome::Applied, Outcome::Stale, Outcome::Applied]
    );
}

async fn list_cases_filters_and_pages_most_recently_changed_first(backend: Backend) {
    let Some(Fixture { store, _db }) = fixture(backend).await else {
        return;
    };
    // Created in this order: a1 (approved), a2 (pending), b1 (denied), a3 (approved), b2 (pending).
    let cases: Vec<(String, &str, Option<&str>)> = vec![
        (payloads::scan_ref(), "client-a", Some("APPROVED")),
        (payloads::scan_ref(), "client-a", None),
        (payloads::scan_ref(), "client-b", Some("DENIED")),
        (payloads::scan_ref(), "client-a", Some("APPROVED")),
        (payloads::scan_ref(), "client-b", None),
    ];
    for (scan_ref, client, overall) in &cases {
        let body = match overall {
            Some(overall) => webhook(scan_ref)
                .client_id(client)
                .overall(overall)
                .final_(true),
            None => webhook(scan_ref).client_id(client),
        };
        record(&store, EventType::AutoFinished, body.build()).await;
    }
    let newest_first: Vec<&str> = cases.iter().rev().map(|c| c.0.as_str()).collect();

    // Every case, two per page, newest change first, pages chained by `next`.
    let mut seen = Vec::new();
    let mut before = None;
    let mut pages = 0;
    loop {
        let page = store
            .list_cases(&CaseQuery {
                limit: 2,
                before,
                ..CaseQuery::default()
            })
            .await
            .unwrap();
        pages += 1;
        assert!(page.cases.len() <= 2);
        seen.extend(page.cases.iter().map(|c| c.scan_ref.clone()));
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, newest_first);
    assert_eq!(pages, 3);

    let query =
        |client: Option<&str>, decision: Option<Decision>, is_final: Option<bool>| CaseQuery {
            client_id: client.map(str::to_owned),
            decision,
            is_final,
            limit: 10,
            ..CaseQuery::default()
        };
    let refs = |page: verdict_domain::CasePage| -> Vec<String> {
        assert!(page.next.is_none());
        page.cases.into_iter().map(|c| c.scan_ref).collect()
    };
    let by_client = refs(
        store
            .list_cases(&query(Some("client-a"), None, None))
            .await
            .unwrap(),
    );
    assert_eq!(
        by_client,
        [
            cases[3].0.as_str(),
            cases[1].0.as_str(),
            cases[0].0.as_str()
        ]
    );
    let approved = refs(
        store
            .list_cases(&query(None, Some(Decision::Approved), None))
            .await
            .unwrap(),
    );
    assert_eq!(approved, [cases[3].0.as_str(), cases[0].0.as_str()]);
    let open = refs(
        store
            .list_cases(&query(None, None, Some(false)))
            .await
            .unwrap(),
    );
    assert_eq!(open, [cases[4].0.as_str(), cases[1].0.as_str()]);
    let b_final = refs(
        store
            .list_cases(&query(Some("client-b"), None, Some(true)))
            .await
            .unwrap(),
    );
    assert_eq!(b_final, [cases[2].0.as_str()]);

    // A new change moves the oldest case to the front.
    record(
        &store,
        EventType::ManualFinished,
        manual(cases[0].0.as_str(), "DENIED"),
    )
    .await;
    let page = store.list_cases(&query(None, None, None)).await.unwrap();
    assert_eq!(page.cases[0].scan_ref, cases[0].0);
    assert_eq!(page.cases[0].decision, Decision::Denied);
    assert!(page.cases.iter().all(|c| c.person.is_none()));
    let with_person = CaseQuery {
        with_person: true,
        ..query(None, None, None)
    };
    let page = store.list_cases(&with_person).await.unwrap();
    assert!(page.cases.iter().all(|c| c.person.is_some()));
}

async fn changes_after_is_ordered_and_filters_finals(backend: Backend) {
    let Some(Fixture { store, _db }) = fixture(backend).await else {
        return;
    };
    let a = payloads::scan_ref();
    let b = payloads::scan_ref();
    record(&store, EventType::AutoFinished, webhook(&a).build()).await; // 1
    record(&store, EventType::AutoFinished, webhook(&b).build()).await; // 2
    record(&store, EventType::AutoFinished, webhook(&a).build()).await; // duplicate, no change
    record(&store, EventType::ManualFinished, manual(&a, "APPROVED")).await; // 3, final
    let cancellation = webhook(&b).overall("ACTIVE").build();
    record(&store, EventType::Cancelled, cancellation).await; // 4, final

    let all = store
        .changes_after(&FeedQuery::after(Cursor::START, 100))
        .await
        .unwrap();
    let summary: Vec<_> = all
        .iter()
        .map(|c| {
            (
                c.position.0,
                c.case.scan_ref.as_str(),
                c.case.revision,
                c.case.is_final,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, a.as_str(), 1, false),
            (2, b.as_str(), 1, false),
            (3, a.as_str(), 2, true),
            (4, b.as_str(), 2, true),
        ]
    );
    assert!(all.iter().all(|c| c.case.person.is_none()));
    assert!(
        all.iter()
            .all(|c| c.traceparent.as_deref() == Some(TRACEPARENT))
    );
    assert_eq!(all[2].case.decision, Decision::Approved);
    assert_eq!(all[3].case.decision, Decision::Cancelled);

    let resumed = store
        .changes_after(&FeedQuery::after(Cursor(1), 2))
        .await
        .unwrap();
    let positions: Vec<u64> = resumed.iter().map(|c| c.position.0).collect();
    assert_eq!(positions, [2, 3]);

    let finals = store
        .changes_after(&FeedQuery {
            filter: FeedFilter::new(vec![], vec![], vec![], true).unwrap(),
            ..FeedQuery::after(Cursor::START, 100)
        })
        .await
        .unwrap();
    let positions: Vec<u64> = finals.iter().map(|c| c.position.0).collect();
    assert_eq!(positions, [3, 4]);

    let with_person = store
        .changes_after(&FeedQuery {
            with_person: true,
            ..FeedQuery::after(Cursor(2), 100)
        })
        .await
        .unwrap();
    assert!(with_person.iter().all(|c| c.case.person.is_some()));

    assert!(
        store
            .changes_after(&FeedQuery::after(Cursor(4), 100))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .changes_after(&FeedQuery::after(Cursor(u64::MAX), 100))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.feed_head().await.unwrap(), Cursor(4));
}

async fn revisions_reports_current_revisions_of_known_cases(backend: Backend) {
    let Some(Fixture { store, _db }) = fixture(backend).await else {
        return;
    };
    let a = payloads::scan_ref();
    let b = payloads::scan_ref();
    record(&store, EventType::AutoFinished, webhook(&a).build()).await;
    record(&store, EventType::ManualFinished, manual(&a, "APPROVED")).await;
    record(&store, EventType::AutoFinished, webhook(&b).build()).await;

    let mut revisions = store
        .revisions(&[a.clone(), b.clone(), "unknown".to_owned()])
        .await
        .unwrap();
    revisions.sort();
    let mut expected = vec![(a, 2), (b, 1)];
    expected.sort();
    assert_eq!(revisions, expected);
    assert!(store.revisions(&[]).await.unwrap().is_empty());
}

async fn quarantine_round_trip(backend: Backend) {
    let Some(Fixture { store, _db }) = fixture(backend).await else {
        return;
    };
    let item = |event_type: Option<&str>, body: &[u8], reason: QuarantineReason| NewQuarantine {
        event_type: event_type.map(str::to_owned),
        body: body.to_vec().into(),
        reason,
        received_at: Utc::now(),
        traceparent: Some(TRACEPARENT.to_owned()),
    };
    let not_json = Payload::parse(b"not json").unwrap_err();
    let first = store
        .quarantine(item(None, b"not json \xff", not_json.into()))
        .await
        .unwrap();
    let unknown = UnknownEventType("IDENTIFICATION_NEW_THING".into());
    let second = store
        .quarantine(item(
            Some("IDENTIFICATION_NEW_THING"),
            br#"{"scanRef":"s"}"#,
            unknown.into(),
        ))
        .await
        .unwrap();
    assert!(second > first);

    let pending = store.quarantined(0, 10).await.unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0].id, first);
    assert_eq!(&pending[0].body[..], b"not json \xff");
    assert_eq!(pending[0].event_type, None);
    assert!(pending[0].reason.starts_with("body is not a JSON object: "));
    assert_eq!(pending[0].reason_kind.as_deref(), Some("unparseable"));
    assert_eq!(pending[0].traceparent.as_deref(), Some(TRACEPARENT));
    assert_eq!(
        pending[1].event_type.as_deref(),
        Some("IDENTIFICATION_NEW_THING")
    );
    assert_eq!(
        pending[1].reason,
        r#"unknown event type "IDENTIFICATION_NEW_THING""#
    );
    assert_eq!(
        pending[1].reason_kind.as_deref(),
        Some("unknown_event_type")
    );
    assert_eq!(store.quarantined(0, 1).await.unwrap().len(), 1);
    store.ping().await.unwrap();
}

/// A reprocess records its item and releases it in one transaction, once: a second reprocess
/// of the same item, even a concurrent one, finds it released and writes nothing.
async fn reprocess_records_and_releases_an_item_exactly_once(backend: Backend) {
    let Some(Fixture { store, _db }) = fixture(backend).await else {
        return;
    };
    let store = Arc::new(store);
    let scan_ref = payloads::scan_ref();
    let body = manual(&scan_ref, "APPROVED");
    let id = store
        .quarantine(NewQuarantine {
            event_type: Some("IDENTIFICATION_MANUAL_FINISHED".into()),
            body: body.clone().into(),
            reason: UnknownEventType("IDENTIFICATION_MANUAL_FINISHED".into()).into(),
            received_at: Utc::now(),
            traceparent: None,
        })
        .await
        .unwrap();
    let item = store.quarantined(0, 10).await.unwrap().remove(0);
    let reprocess = || {
        let store = Arc::clone(&store);
        let delivery = NewDelivery {
            received_at: item.received_at,
            releases: Some(id),
            ..delivery(EventType::ManualFinished, body.clone())
        };
        tokio::spawn(async move { store.record(delivery).await })
    };
    let (a, b) = within("two reprocesses", async {
        let (a, b) = (reprocess(), reprocess());
        (a.await.unwrap(), b.await.unwrap())
    })
    .await;
    let (done, refused) = match (a, b) {
        (Ok(done), Err(refused)) | (Err(refused), Ok(done)) => (done, refused),
        other => panic!("exactly one reprocess may record the item: {other:?}"),
    };
    assert_eq!(summary(&done), ("applied", Some(1), Some(Cursor(1))));
    assert_eq!(refused.kind(), ErrorKind::NotFound);
    assert!(
        store.quarantined(0, 10).await.unwrap().is_empty(),
        "released"
    );
    assert_eq!(store.history(&scan_ref, u32::MAX).await.unwrap().len(), 1);
}

/// What the state machine quarantines is written to the quarantine in the record transaction,
/// and no case row is left behind for a case that did not exist; bytes waiting there make a
/// replay under another header a duplicate, which creates no case either.
async fn machine_quarantine_and_replays_of_it_leave_no_case(backend: Backend) {
    let Some(Fixture { store, _db }) = fixture(backend).await else {
        return;
    };
    let scan_ref = payloads::scan_ref();
    let contradicting = webhook(&scan_ref).overall("APPROVED").final_(false).build();
    let recorded = record(&store, EventType::ManualFinished, contradicting.clone()).await;
    let Recorded::Quarantined { id, reason } = recorded else {
        panic!("{recorded:?}")
    };
    assert_eq!(reason.kind(), "header_body_mismatch");
    let pending = store.quarantined(0, 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, id);
    assert_eq!(
        pending[0].reason_kind.as_deref(),
        Some("header_body_mismatch")
    );
    assert_eq!(
        pending[0].event_type.as_deref(),
        Some("IDENTIFICATION_MANUAL_FINISHED")
    );
    assert_eq!(&pending[0].body[..], &contradicting[..]);
    assert!(
        store.case(&scan_ref, true).await.unwrap().is_none(),
        "no case, no placeholder"
    );

    for forged in [EventType::Cancelled, EventType::AutoFinished] {
        let replay = record(&store, forged, contradicting.clone()).await;
        assert_eq!(summary(&replay), ("duplicate", None, None), "{forged}");
        assert!(
            store.case(&scan_ref, true).await.unwrap().is_none(),
            "{forged}"
        );
    }
    // The replays are kept: every delivery stays recognisable, revision 0 meaning "no case".
    let history: Vec<_> = store
        .history(&scan_ref, u32::MAX)
        .await
        .unwrap()
        .iter()
        .map(|e| (e.event_type.clone(), e.outcome, e.revision))
        .collect();
    assert_eq!(
        history,
        [
            ("IDENTIFICATION_CANCELLED".to_owned(), Outcome::Duplicate, 0),
            (
                "IDENTIFICATION_AUTO_FINISHED".to_owned(),
                Outcome::Duplicate,
                0
            ),
        ]
    );
    assert_eq!(store.feed_head().await.unwrap(), Cursor::START);
}

/// Rows written before the 2026-11-29 migrations keep working: their hashes and the cases'
/// decisive time are filled in from what is stored, so a resend of an old delivery is still
/// recognised and a delayed delivery is still judged against the old decision.
async fn migrations_fill_in_what_earlier_rows_lack(backend: Backend) {
    use verdict_store::migration::sea_orm::{ConnectionTrait, Statement};

    let Some(db) = TestDatabase::new(backend).await else {
        return;
    };
    let store = SeaStore::connect(db.url(), StoreOptions::default())
        .await
        .unwrap();
    let conn = store.connection();
    // The first release's schema, and rows as it wrote them.
    within("first release", Migrator::up(conn, Some(6)))
        .await
        .unwrap();
    let scan_ref = payloads::scan_ref();
    let body =
        String::from_utf8(webhook(&scan_ref).overall("DENIED").final_(true).build()).unwrap();
    let decided_at = "2026-01-02 03:04:05+00:00";
    let sql = format!(
        "INSERT INTO cases (scan_ref, client_id, decision, is_final, overall_status, \
           last_event_type, revision, fraud_tags, mismatch_tags, suspicion_reasons, created_at, \
           updated_at, finalized_at, last_position) \
         VALUES ('{scan_ref}', 'client-1', 'DENIED', TRUE, 'DENIED', \
           'IDENTIFICATION_MANUAL_FINISHED', 1, '[]', '[]', '[]', '{decided_at}', '{decided_at}', \
           '{decided_at}', 0);\
         INSERT INTO deliveries (scan_ref, event_type, body, body_sha256, outcome, is_final, \
           revision, overall_status, received_at) \
         VALUES ('{scan_ref}', 'IDENTIFICATION_MANUAL_FINISHED', {body}, '{sha}', 'applied', \
           TRUE, 1, 'DENIED', '{decided_at}');\
         INSERT INTO quarantine (event_type, body, reason, received_at) \
         VALUES ('IDENTIFICATION_NEW', {body}, 'unknown event type \"IDENTIFICATION_NEW\"', \
           '{decided_at}');",
        body = blob_literal(backend, body.as_bytes()),
        sha = Fingerprint::of(body.as_bytes()).body_sha256,
    );
    for statement in sql.split(';').filter(|s| !s.trim().is_empty()) {
        conn.execute_raw(Statement::from_string(
            conn.get_database_backend(),
            statement,
        ))
        .await
        .unwrap();
    }

    within("the new migrations", store.migrate()).await.unwrap();

    let fingerprint = Fingerprint::of(body.as_bytes());
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT d.content_sha256, q.body_sha256, q.content_sha256, q.reason_kind \
             FROM deliveries d, quarantine q",
        ))
        .await
        .unwrap()
        .unwrap();
    let text = |i: usize| row.try_get_by_index::<Option<String>>(i).unwrap();
    assert_eq!(
        text(0).as_deref(),
        Some(fingerprint.content_sha256.as_str())
    );
    assert_eq!(text(1).as_deref(), Some(fingerprint.body_sha256.as_str()));
    assert_eq!(
        text(2).as_deref(),
        Some(fingerprint.content_sha256.as_str())
    );
    assert_eq!(text(3).as_deref(), Some("unknown_event_type"));

    // A resend of the old final with new file links is recognised (rule 1b)...
    let resent = webhook(&scan_ref)
        .overall("DENIED")
        .final_(true)
        .field(
            "fileUrls",
            json!({"FACE": "https://s3.example/face.png?Signature=new"}),
        )
        .build();
    let resend = record(&store, EventType::ManualFinished, resent).await;
    assert_eq!(summary(&resend), ("duplicate", Some(1), None));
    // ...and a delivery that arrived before the old decision cannot override it.
    let before = webhook(&scan_ref).overall("APPROVED").final_(true).build();
    let early = NewDelivery {
        received_at: "2026-01-01T00:00:00Z".parse().unwrap(),
        ..delivery(EventType::ManualFinished, before)
    };
    let early = within("record", store.record(early)).await.unwrap();
    assert_eq!(summary(&early), ("stale", Some(1), None));
    assert_eq!(case_of(&early).decision, Decision::Denied);
}

/// A byte string as a SQL literal of the backend's blob type.
fn blob_literal(backend: Backend, bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    match backend {
        Backend::Sqlite => format!("X'{hex}'"),
        Backend::Postgres => format!("'\\x{hex}'::bytea"),
    }
}

const TASKS: u64 = 8;
const PER_TASK: u64 = 25;

/// Many concurrent deliveries for ONE new case: every one recorded and applied, revisions exactly
/// 1..=N, and the feed gap-free and in revision order.
async fn concurrent_deliveries_get_gap_free_revisions_and_positions(backend: Backend) {
    let Some(Fixture { store, _db }) = fixture(backend).await else {
        return;
    };
    let store = Arc::new(store);
    let scan_ref = payloads::scan_ref();
    // Deliveries that arrived at the same instant: none is older than another, so each applies
    // whatever order the writers commit in.
    let arrived = Utc::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = Arc::clone(&store);
            let scan_ref = scan_ref.clone();
            tokio::spawn(async move {
                let mut recorded = Vec::new();
                for i in 0..PER_TASK {
                    // Distinct bodies, all preliminary: each one applies.
                    let body = webhook(&scan_ref)
                        .field("seq", json!(task * PER_TASK + i))
                        .build();
                    let delivery = NewDelivery {
                        received_at: arrived,
                        ..delivery(EventType::AutoFinished, body)
                    };
                    let r = store
                        .record(delivery)
                        .await
                        .expect("record under contention");
                    recorded.push(r);
                }
                recorded
            })
        })
        .collect();
    let mut recorded = Vec::new();
    for task in within("concurrent writers", futures::future::join_all(tasks)).await {
        recorded.extend(task.expect("writer task"));
    }
    let n = TASKS * PER_TASK;
    assert_eq!(recorded.len() as u64, n);
    assert!(recorded.iter().all(|r| r.label() == "applied"));

    let revisions: BTreeSet<u64> = recorded.iter().map(|r| case_of(r).revision).collect();
    assert_eq!(
        revisions,
        (1..=n).collect(),
        "revisions are exactly 1..=N, no repeats"
    );
    let positions: BTreeSet<u64> = recorded.iter().map(|r| summary(r).2.unwrap().0).collect();
    assert_eq!(
        positions,
        (1..=n).collect(),
        "positions are exactly 1..=N, no repeats"
    );
    for r in &recorded {
        // One case only, so its feed position equals its revision.
        assert_eq!(summary(r).2, Some(Cursor(case_of(r).revision)));
    }

    let feed = store
        .changes_after(&FeedQuery::after(Cursor::START, 1000))
        .await
        .unwrap();
    let feed: Vec<(u64, u64)> = feed
        .iter()
        .map(|c| (c.position.0, c.case.revision))
        .collect();
    let expected: Vec<(u64, u64)> = (1..=n).map(|p| (p, p)).collect();
    assert_eq!(feed, expected, "feed strictly increasing and gap-free");

    let case = store.case(&scan_ref, false).await.unwrap().unwrap();
    assert_eq!(case.revision, n);
    assert_eq!(
        store.history(&scan_ref, u32::MAX).await.unwrap().len() as u64,
        n
    );
    assert_eq!(store.feed_head().await.unwrap(), Cursor(n));
}

/// Deliveries written together (on SQLite, the ones waiting at the write gate share one
/// transaction) fail one at a time: a reprocess of an item that does not exist, among many new
/// cases arriving at once, is refused alone, and every other delivery is applied exactly once
/// with gap-free feed positions; nothing of the refused one is stored.
async fn a_failing_delivery_among_concurrent_ones_fails_alone(backend: Backend) {
    let Some(Fixture { store, _db }) = fixture(backend).await else {
        return;
    };
    let store = Arc::new(store);
    const CASES: u64 = 24;
    let refused_ref = payloads::scan_ref();
    let spawn = |delivery: NewDelivery| {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.record(delivery).await })
    };
    let mut tasks: Vec<_> = (0..CASES)
        .map(|_| {
            spawn(delivery(
                EventType::ManualFinished,
                manual(&payloads::scan_ref(), "APPROVED"),
            ))
        })
        .collect();
    // In the middle of the queue, so a batch holds deliveries before and after it.
    tasks.insert(
        (CASES / 2) as usize,
        spawn(NewDelivery {
            releases: Some(i64::MAX),
            ..delivery(EventType::ManualFinished, manual(&refused_ref, "APPROVED"))
        }),
    );
    let outcomes: Vec<_> = within("concurrent writers", futures::future::join_all(tasks))
        .await
        .into_iter()
        .map(|task| task.expect("writer task"))
        .collect();
    let (applied, refused): (Vec<_>, Vec<_>) = outcomes.into_iter().partition(Result::is_ok);
    assert_eq!(refused.len(), 1, "only the reprocess is refused");
    let refused = refused.into_iter().next().unwrap().unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::NotFound, "{refused:?}");
    let applied: Vec<Recorded> = applied.into_iter().map(Result::unwrap).collect();
    assert!(
        applied
            .iter()
            .all(|r| summary(r).0 == "applied" && summary(r).1 == Some(1))
    );
    let positions: BTreeSet<u64> = applied.iter().map(|r| summary(r).2.unwrap().0).collect();
    assert_eq!(
        positions,
        (1..=CASES).collect(),
        "each applied once, no gaps"
    );
    assert_eq!(store.feed_head().await.unwrap(), Cursor(CASES));
    assert!(store.case(&refused_ref, false).await.unwrap().is_none());
    assert!(
        store
            .history(&refused_ref, u32::MAX)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A delivery refused inside its transaction (a reprocess of an item that does not exist)
/// leaves the writer able to write: the next delivery is applied at the next position, and
/// nothing of the refused one is stored. On SQLite the refused transaction's connection is
/// dropped (closing it rolls back); given back instead, the next `BEGIN` would fail inside a
/// transaction still open.
async fn a_refused_delivery_leaves_nothing_open_for_the_next(backend: Backend) {
    let Some(Fixture { store, _db }) = fixture(backend).await else {
        return;
    };
    let before = record(
        &store,
        EventType::ManualFinished,
        manual(&payloads::scan_ref(), "APPROVED"),
    )
    .await;
    assert_eq!(summary(&before), ("applied", Some(1), Some(Cursor(1))));
    let refused_ref = payloads::scan_ref();
    let refused = within(
        "refused reprocess",
        store.record(NewDelivery {
            releases: Some(i64::MAX),
            ..delivery(EventType::ManualFinished, manual(&refused_ref, "APPROVED"))
        }),
    )
    .await
    .expect_err("no such quarantine item");
    assert_eq!(refused.kind(), ErrorKind::NotFound, "{refused:?}");
    let after = record(
        &store,
        EventType::ManualFinished,
        manual(&payloads::scan_ref(), "DENIED"),
    )
    .await;
    assert_eq!(summary(&after), ("applied", Some(1), Some(Cursor(2))));
    assert!(store.case(&refused_ref, false).await.unwrap().is_none());
    assert!(
        store
            .history(&refused_ref, u32::MAX)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Concurrent writers on several cases while a reader tails the feed by cursor, as WatchCases
/// does: the reader never sees a position before an earlier one has committed, so it ends with
/// every change exactly once and never observes a gap.
async fn feed_reader_never_skips_a_late_commit(backend: Backend) {
    let Some(Fixture { store, _db }) = fixture(backend).await else {
        return;
    };
    let store = Arc::new(store);
    // One arrival time for all, as above: every delivery applies.
    let arrived = Utc::now();
    let writers: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                // Two cases per writer pair, so rows of different cases interleave in the feed.
                let scan_ref = format!("case-{}", task % 4);
                for i in 0..PER_TASK {
                    let body = webhook(&scan_ref)
                        .field("seq", json!(task * PER_TASK + i))
                        .build();
                    let delivery = NewDelivery {
                        received_at: arrived,
                        ..delivery(EventType::AutoFinished, body)
                    };
                    store
                        .record(delivery)
                        .await
                        .expect("record under contention");
                }
            })
        })
        .collect();
    let n = TASKS * PER_TASK;
    let reader = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let mut cursor = Cursor::START;
            let mut seen = 0;
            while seen < n {
                let batch = store
                    .changes_after(&FeedQuery::after(cursor, 7))
                    .await
                    .expect("read");
                if batch.is_empty() {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
                for change in batch {
                    assert_eq!(
                        change.position.0,
                        cursor.0 + 1,
                        "the reader saw a position before an earlier one committed"
                    );
                    cursor = change.position;
                    seen += 1;
                }
            }
            cursor
        })
    };
    for writer in within("concurrent writers", futures::future::join_all(writers)).await {
        writer.expect("writer task");
    }
    let last = within("the feed reader", reader)
        .await
        .expect("reader task");
    assert_eq!(last, Cursor(n));

    let mut revisions = store
        .revisions(&(0..4).map(|c| format!("case-{c}")).collect::<Vec<_>>())
        .await
        .unwrap();
    revisions.sort();
    let expected: Vec<(String, u64)> = (0..4).map(|c| (format!("case-{c}"), n / 4)).collect();
    assert_eq!(revisions, expected);
}

#[tokio::test]
async fn sqlite_connections_use_wal_busy_timeout_full_sync_and_foreign_keys() {
    use verdict_store::migration::sea_orm::{ConnectionTrait, Statement};

    let Fixture { store, _db } = fixture(Backend::Sqlite)
        .await
        .expect("SQLite is always there");
    let db = store.connection();
    let mut pragmas = Vec::new();
    for pragma in [
        "journal_mode",
        "busy_timeout",
        "synchronous",
        "foreign_keys",
    ] {
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                format!("PRAGMA {pragma}"),
            ))
            .await
            .unwrap()
            .expect("a pragma row");
        let value = row
            .try_get_by_index::<String>(0)
            .or_else(|_| row.try_get_by_index::<i64>(0).map(|v| v.to_string()))
            .unwrap();
        pragmas.push((pragma, value));
    }
    assert_eq!(
        pragmas,
        [
            ("journal_mode", "wal".to_owned()),
            ("busy_timeout", "5000".to_owned()),
            // FULL: an acknowledged webhook survives power loss.
            ("synchronous", "2".to_owned()),
            ("foreign_keys", "1".to_owned()),
        ]
    );
}

/// Two replicas on one PostgreSQL database write batches over the same cases, one replica's
/// writers taking them in one order and the other's in the reverse: every delivery applies once
/// with gap-free revisions and positions, and PostgreSQL never had to break a deadlock. (A batch
/// locks its cases in key order whatever order its deliveries arrived in. A deadlock would not
/// show in the answers: PostgreSQL aborts one batch after a second and its deliveries are
/// written again one by one; its statistics count it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_batching_the_same_cases_never_deadlock() {
    use verdict_store::migration::sea_orm::{ConnectionTrait, Database, Statement};

    const CASES: usize = 6;
    const ROUNDS: usize = 20;
    let Some(db) = TestDatabase::new(Backend::Postgres).await else {
        return;
    };
    let connect = || SeaStore::connect(db.url(), StoreOptions::default());
    let first = within("connecting", connect()).await.expect("connect");
    within("migrating", first.migrate()).await.expect("migrate");
    let second = within("connecting", connect()).await.expect("connect");
    let scan_refs: Vec<String> = (0..CASES).map(|_| payloads::scan_ref()).collect();
    // One arrival time for all: every delivery applies whatever order they commit in.
    let arrived = Utc::now();
    // Each replica gets every case at once, round after round, in its own order: its writers
    // queue in that order and are written as one batch.
    let replicas = [&first, &second]
        .into_iter()
        .enumerate()
        .map(|(replica, store)| {
            let mut order = scan_refs.clone();
            if replica == 1 {
                order.reverse();
            }
            async move {
                let mut recorded = Vec::new();
                for round in 0..ROUNDS {
                    let writers = order.iter().map(|scan_ref| {
                        let body = webhook(scan_ref)
                            .field("seq", json!([replica, round]))
                            .build();
                        store.record(NewDelivery {
                            received_at: arrived,
                            ..delivery(EventType::AutoFinished, body)
                        })
                    });
                    for outcome in futures::future::join_all(writers).await {
                        recorded.push(outcome.expect("record"));
                    }
                }
                recorded
            }
        });
    let recorded: Vec<Recorded> =
        within("both replicas writing", futures::future::join_all(replicas))
            .await
            .into_iter()
            .flatten()
            .collect();

    let n = (2 * ROUNDS * CASES) as u64;
    assert!(recorded.iter().all(|r| r.label() == "applied"));
    let positions: BTreeSet<u64> = recorded.iter().map(|r| summary(r).2.unwrap().0).collect();
    assert_eq!(positions, (1..=n).collect(), "each applied once, no gaps");
    for scan_ref in &scan_refs {
        let revisions: BTreeSet<u64> = recorded
            .iter()
            .map(case_of)
            .filter(|case| &case.scan_ref == scan_ref)
            .map(|case| case.revision)
            .collect();
        assert_eq!(revisions, (1..=n / CASES as u64).collect(), "{scan_ref}");
    }

    // A backend counts a deadlock in its statistics, which it hands in by the time it exits.
    first.connection().clone().close().await.expect("close");
    second.connection().clone().close().await.expect("close");
    let admin = Database::connect(db.url()).await.expect("connect");
    let query = |sql: &str| {
        let admin = &admin;
        let statement = Statement::from_string(admin.get_database_backend(), sql.to_owned());
        async move {
            let row = admin.query_one_raw(statement).await.unwrap().unwrap();
            row.try_get_by_index::<i64>(0).unwrap()
        }
    };
    within("the replicas' connections ending", async {
        let others = "SELECT COUNT(*) FROM pg_stat_activity \
                      WHERE datname = current_database() AND pid <> pg_backend_pid()";
        while query(others).await > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    let deadlocks = query(
        "SELECT COALESCE(deadlocks, 0) FROM pg_stat_database WHERE datname = current_database()",
    )
    .await;
    assert_eq!(
        deadlocks, 0,
        "PostgreSQL broke deadlocks between the replicas"
    );
    admin.close().await.expect("close");
}

on_every_backend!(
    migrations_go_up_down_and_up_again,
    recorded_case_reads_back_with_person_only_on_request,
    duplicate_delivery_does_not_bump_revision,
    late_preliminary_result_after_final_is_stale,
    list_cases_filters_and_pages_most_recently_changed_first,
    changes_after_is_ordered_and_filters_finals,
    revisions_reports_current_revisions_of_known_cases,
    quarantine_round_trip,
    reprocess_records_and_releases_an_item_exactly_once,
    machine_quarantine_and_replays_of_it_leave_no_case,
    migrations_fill_in_what_earlier_rows_lack,
    concurrent_deliveries_get_gap_free_revisions_and_positions,
    a_failing_delivery_among_concurrent_ones_fails_alone,
    a_refused_delivery_leaves_nothing_open_for_the_next,
    feed_reader_never_skips_a_late_commit,
);
