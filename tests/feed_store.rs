//! The store's side of the filtered feed, on SQLite and PostgreSQL: filters in SQL with the
//! snapshot as the authority, bounded ranges, the migration that added the filter columns, and
//! the changed cases `GetCase`'s cache checks.

use chrono::Utc;
use verdict_domain::{
    CaseStore, Cursor, Decision, EventType, FeedChange, FeedFilter, FeedQuery, NewDelivery, Payload,
};
use verdict_store::migration::sea_orm::{ConnectionTrait, Statement};
use verdict_store::migration::{Migrator, MigratorTrait};
use verdict_store::{SeaStore, StoreOptions};
use verdict_testkit::payloads::webhook;
use verdict_testkit::{Backend, TestDatabase, on_every_backend, within};

/// A migrated store on a fresh database (declared first, so its pool closes first).
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

/// Records the feed `(scan_ref, client, final overall status or None)`, one change each.
async fn record_all(store: &SeaStore, changes: &[(&str, &str, Option<&str>)]) {
    for (scan_ref, client, overall) in changes {
        let (event, body) = match overall {
            Some(overall) => (
                EventType::ManualFinished,
                webhook(scan_ref)
                    .client_id(client)
                    .overall(overall)
                    .final_(true),
            ),
            None => (EventType::AutoFinished, webhook(scan_ref).client_id(client)),
        };
        let body = body.build();
        within(
            "record",
            store.record(NewDelivery {
                event,
                payload: Payload::parse(&body).unwrap(),
                body: body.into(),
                received_at: Utc::now(),
                traceparent: None,
                releases: None,
            }),
        )
        .await
        .expect("record");
    }
}

/// Positions 1..=8: s1..s4 of client a/b alternating, each preliminary then final.
const FEED: [(&str, &str, Option<&str>); 8] = [
    ("s1", "a", None),
    ("s2", "b", None),
    ("s3", "a", None),
    ("s4", "b", None),
    ("s1", "a", Some("APPROVED")),
    ("s2", "b", Some("DENIED")),
    ("s3", "a", Some("DENIED")),
    ("s4", "b", Some("APPROVED")),
];

fn filter(
    clients: &[&str],
    decisions: &[Decision],
    scan_refs: &[&str],
    final_only: bool,
) -> FeedFilter {
    let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
    FeedFilter::new(
        strings(clients),
        decisions.to_vec(),
        strings(scan_refs),
        final_only,
    )
    .unwrap()
}

async fn positions(store: &SeaStore, query: FeedQuery) -> Vec<u64> {
    let changes: Vec<FeedChange> = within("changes_after", store.changes_after(&query))
        .await
        .expect("read the feed");
    for change in &changes {
        assert!(query.filter.matches(&change.case), "{change:?}");
    }
    changes.iter().map(|c| c.position.0).collect()
}

fn query(filter: FeedFilter, after: u64, until: Option<u64>, limit: u32) -> FeedQuery {
    FeedQuery {
        filter,
        until: until.map(Cursor),
        ..FeedQuery::after(Cursor(after), limit)
    }
}

async fn filters_and_ranges_select_exactly_the_matching_changes(backend: Backend) {
    let Some(Fixture { store, _db }) = fixture(backend).await else {
        return;
    };
    record_all(&store, &FEED).await;

    let a = || filter(&["a"], &[], &[], false);
    assert_eq!(
        positions(&store, query(a(), 0, None, 100)).await,
        [1, 3, 5, 7]
    );
    assert_eq!(positions(&store, query(a(), 1, Some(5), 100)).await, [3, 5]);
    assert_eq!(positions(&store, query(a(), 0, None, 3)).await, [1, 3, 5]);
    assert_eq!(
        positions(&store, query(a(), 7, None, 100)).await,
        Vec::<u64>::new()
    );

    let denied = filter(&[], &[Decision::Denied], &[], false);
    assert_eq!(positions(&store, query(denied, 0, None, 100)).await, [6, 7]);
    let scan_refs = filter(&[], &[], &["s2", "s3"], false);
    assert_eq!(
        positions(&store, query(scan_refs, 0, None, 100)).await,
        [2, 3, 6, 7]
    );
    let combined = filter(
        &["b"],
        &[Decision::Approved, Decision::Denied],
        &["s4", "s2"],
        true,
    );
    assert_eq!(
        positions(&store, query(combined, 0, None, 100)).await,
        [6, 8]
    );
    let nothing = filter(&["a"], &[], &["s2"], false);
    assert_eq!(
        positions(&store, query(nothing, 0, None, 100)).await,
        Vec::<u64>::new()
    );

    let with_person = FeedQuery {
        with_person: true,
        ..query(filter(&["b"], &[], &[], true), 0, None, 100)
    };
    let changes = store.changes_after(&with_person).await.unwrap();
    assert_eq!(changes.len(), 2);
    assert!(changes.iter().all(|c| c.case.person.is_some()));
}

/// Rows written without the filter columns (by a replica of the previous release, during a
/// rolling upgrade) must still be filtered right, and a page the snapshot check thinned out
/// must not look like the end of the matches.
async fn rows_without_filter_columns_are_judged_by_their_snapshot(backend: Backend) {
    let Some(Fixture { store, _db }) = fixture(backend).await else {
        return;
    };
    record_all(&store, &FEED).await;
    let db = store.connection();
    db.execute_raw(Statement::from_string(
        db.get_database_backend(),
        "UPDATE case_changes SET client_id = NULL, decision = NULL",
    ))
    .await
    .unwrap();

    let a = || filter(&["a"], &[], &[], false);
    assert_eq!(positions(&store, query(a(), 0, None, 2)).await, [1, 3]);
    assert_eq!(
        positions(&store, query(a(), 0, None, 100)).await,
        [1, 3, 5, 7]
    );
    assert_eq!(positions(&store, query(a(), 0, Some(4), 2)).await, [1, 3]);
    let approved = filter(&[], &[Decision::Approved], &[], false);
    assert_eq!(positions(&store, query(approved, 0, None, 1)).await, [5]);
}

async fn the_filter_columns_migration_fills_rows_written_before_it(backend: Backend) {
    let Some(Fixture { store, _db }) = fixture(backend).await else {
        return;
    };
    record_all(&store, &FEED).await;
    let db = store.connection();
    // Undo the migration (dropping the columns) and apply it again over the existing rows.
    let steps = Migrator::steps_back_to("m20261129_100001_add_case_changes_filter_columns");
    within(
        "migrate down",
        Migrator::down(db, Some(steps.expect("a known migration"))),
    )
    .await
    .expect("down");
    within("migrate up", Migrator::up(db, None))
        .await
        .expect("up");

    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT client_id, decision FROM case_changes ORDER BY position",
        ))
        .await
        .unwrap();
    let filled: Vec<(String, String)> = rows
        .iter()
        .map(|row| {
            (
                row.try_get::<String>("", "client_id").unwrap(),
                row.try_get::<String>("", "decision").unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = FEED
        .iter()
        .map(|(_, client, overall)| {
            let decision = overall.unwrap_or("PENDING");
            ((*client).to_owned(), decision.to_owned())
        })
        .collect();
    assert_eq!(filled, expected);
}

/// What `GetCase`'s cache checks before answering: the head, and which cases changed after a
/// position, cut at the limit and saying so.
async fn changed_cases_reads_the_head_and_the_changes_after_a_position(backend: Backend) {
    let Some(Fixture { store, _db }) = fixture(backend).await else {
        return;
    };
    let empty = store.changed_cases(Cursor::START, 10).await.unwrap();
    assert_eq!(empty.head, Cursor::START);
    assert!(empty.changes.is_empty() && empty.complete);

    record_all(&store, &FEED).await;
    let owned = |pairs: &[(&str, u64)]| -> Vec<(String, u64)> {
        pairs.iter().map(|(s, r)| ((*s).to_owned(), *r)).collect()
    };
    let all = store.changed_cases(Cursor(3), 10).await.unwrap();
    assert_eq!(all.head, Cursor(8));
    assert_eq!(
        all.changes,
        owned(&[("s4", 1), ("s1", 2), ("s2", 2), ("s3", 2), ("s4", 2)])
    );
    assert!(all.complete);

    let exact = store.changed_cases(Cursor(6), 2).await.unwrap();
    assert_eq!(exact.changes, owned(&[("s3", 2), ("s4", 2)]));
    assert!(exact.complete, "exactly the limit is complete");

    let cut = store.changed_cases(Cursor(5), 2).await.unwrap();
    assert_eq!(cut.head, Cursor(8));
    assert_eq!(cut.changes, owned(&[("s2", 2), ("s3", 2)]));
    assert!(!cut.complete);

    let none = store.changed_cases(Cursor(8), 10).await.unwrap();
    assert_eq!(none.head, Cursor(8));
    assert!(none.changes.is_empty() && none.complete);

    // A cursor above the head (the database is an older copy) reads nothing and shows the head.
    let ahead = store.changed_cases(Cursor(20), 10).await.unwrap();
    assert_eq!(ahead.head, Cursor(8));
    assert!(ahead.changes.is_empty());
}

/// The check runs on a connection the store keeps for it. When the server drops that connection
/// (a restart, a proxy's idle timeout), the next check is answered on a new one, not failed.
#[tokio::test]
async fn a_check_whose_connection_was_dropped_is_answered_on_a_new_one() {
    let Some(Fixture { store, _db }) = fixture(Backend::Postgres).await else {
        return;
    };
    record_all(&store, &FEED[..3]).await;
    let before = store.changed_cases(Cursor::START, 10).await.unwrap();
    assert_eq!(before.head, Cursor(3));
    // Every other connection to this database whose last statement was the check; the
    // timeout makes the call wait until the backend is gone.
    let terminated = store
        .connection()
        .query_one_raw(Statement::from_string(
            store.connection().get_database_backend(),
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) AS n \
             FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND query LIKE '%LEFT JOIN case_changes%'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap();
    assert_eq!(terminated, 1, "one connection held for the check");
    let after = within("the check after", store.changed_cases(Cursor::START, 10))
        .await
        .expect("a dropped connection is replaced, not reported");
    assert_eq!(after.head, before.head);
    assert_eq!(after.changes, before.changes);
}

on_every_backend!(
    changed_cases_reads_the_head_and_the_changes_after_a_position,
    filters_and_ranges_select_exactly_the_matching_changes,
    rows_without_filter_columns_are_judged_by_their_snapshot,
    the_filter_columns_migration_fills_rows_written_before_it,
);
