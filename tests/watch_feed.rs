//! End to end: WatchCases, second version (filters, from_now, bookmarks, list-then-watch, cursors
//! out of range) against the real app, on SQLite and PostgreSQL, with concurrent writers.
//!
//! The reference for "exactly the matching changes" is an unfiltered stream from the start of
//! the feed, read up to the feed's head; "read up to the head" means until a bookmark says the
//! stream examined it, so a missing change cannot hide behind a timeout.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use tokio::task::JoinHandle;
use tonic::{Code, Streaming};
use verdict_domain::Cursor;
use verdict_proto::verdict::v1::{
    CaseView, Decision, ListCasesRequest, WatchCasesRequest, WatchCasesResponse,
};
use verdict_testkit::payloads::{self, webhook};
use verdict_testkit::streams::{FeedEvent, next_feed_event};
use verdict_testkit::{Backend, TestApp, on_every_backend, within};

const AUTO: &str = "IDENTIFICATION_AUTO_FINISHED";
const MANUAL: &str = "IDENTIFICATION_MANUAL_FINISHED";
const CLIENTS: [&str; 3] = ["client-a", "client-b", "client-c"];

/// One change as a stream delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    position: Cursor,
    scan_ref: String,
    revision: u64,
    client_id: String,
    decision: Decision,
    is_final: bool,
}

fn request() -> WatchCasesRequest {
    WatchCasesRequest {
        view: CaseView::Basic.into(),
        ..WatchCasesRequest::default()
    }
}

fn after(cursor: Cursor) -> WatchCasesRequest {
    WatchCasesRequest {
        cursor: cursor.encode(),
        ..request()
    }
}

/// The feed's head now: the first ListCases page's watch_cursor.
async fn head(app: &TestApp) -> Cursor {
    let page = within(
        "ListCases",
        app.grpc().await.list_cases(ListCasesRequest {
            page_size: 1,
            ..ListCasesRequest::default()
        }),
    )
    .await
    .expect("ListCases answers")
    .into_inner();
    Cursor::decode(&page.watch_cursor).expect("a canonical watch_cursor")
}

/// The next change or bookmark, with the change decoded.
async fn next(stream: &mut Streaming<WatchCasesResponse>) -> Result<Seen, Cursor> {
    match next_feed_event(stream).await {
        FeedEvent::Change(change) => {
            let case = change.case.expect("a change carries its case");
            Ok(Seen {
                position: Cursor::decode(&change.cursor).expect("a canonical cursor"),
                decision: case.decision(),
                scan_ref: case.scan_ref,
                revision: case.revision,
                client_id: case.client_id,
                is_final: case.r#final,
            })
        }
        FeedEvent::Bookmark(raw) => Err(Cursor::decode(&raw).expect("a canonical bookmark")),
    }
}

/// Every change a stream sends until a bookmark says it examined `head`. Checks on the way
/// that positions strictly increase and bookmarks never go back or pass a change unsent.
async fn changes_until(stream: &mut Streaming<WatchCasesResponse>, head: Cursor) -> Vec<Seen> {
    let mut seen: Vec<Seen> = Vec::new();
    let mut examined = Cursor::START;
    loop {
        match next(stream).await {
            Ok(change) => {
                assert!(change.position > examined, "{change:?} after {examined:?}");
                examined = change.position;
                seen.push(change);
            }
            Err(bookmark) => {
                assert!(
                    bookmark >= examined,
                    "bookmark {bookmark:?} after {examined:?}"
                );
                examined = bookmark;
                if bookmark >= head {
                    assert_eq!(bookmark, head, "a bookmark past the head");
                    return seen;
                }
            }
        }
    }
}

/// Every change of the feed, from an unfiltered stream from the start.
async fn whole_feed(app: &TestApp) -> Vec<Seen> {
    let head = head(app).await;
    let mut stream = app.watch_cases_with(request()).await;
    let feed = changes_until(&mut stream, head).await;
    let positions: Vec<u64> = feed.iter().map(|c| c.position.0).collect();
    assert_eq!(
        positions,
        (1..=head.0).collect::<Vec<_>>(),
        "a gapless feed"
    );
    feed
}

/// `writers` tasks each posting `cases` cases: a preliminary result, then a final one
/// (APPROVED or DENIED), for clients spread over [`CLIENTS`].
fn spawn_writers(app: &Arc<TestApp>, writers: usize, cases: usize) -> Vec<JoinHandle<()>> {
    (0..writers)
        .map(|w| {
            let app = Arc::clone(app);
            tokio::spawn(async move {
                for i in 0..cases {
                    let scan_ref = payloads::scan_ref();
                    let client = CLIENTS[(w + i) % CLIENTS.len()];
                    let overall = if i % 2 == 0 { "APPROVED" } else { "DENIED" };
                    app.post_ok(AUTO, &webhook(&scan_ref).client_id(client).build())
                        .await;
                    app.post_ok(
                        MANUAL,
                        &webhook(&scan_ref)
                            .client_id(client)
                            .overall(overall)
                            .final_(true)
                            .build(),
                    )
                    .await;
                }
            })
        })
        .collect()
}

async fn join(writers: Vec<JoinHandle<()>>) {
    for writer in within("the writers", futures::future::join_all(writers)).await {
        writer.expect("a writer task");
    }
}

/// Which changes of the whole feed a filtered stream must get.
type Wanted = Box<dyn Fn(&Seen) -> bool>;

async fn each_filter_and_their_combinations_deliver_exactly_the_matching_changes(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let pinned = [payloads::scan_ref(), payloads::scan_ref()];
    let filters: Vec<(&str, WatchCasesRequest, Wanted)> = vec![
        (
            "one client",
            WatchCasesRequest {
                client_ids: vec!["client-a".into()],
                ..request()
            },
            Box::new(|c: &Seen| c.client_id == "client-a"),
        ),
        (
            "two clients",
            WatchCasesRequest {
                client_ids: vec!["client-a".into(), "client-c".into()],
                ..request()
            },
            Box::new(|c: &Seen| c.client_id != "client-b"),
        ),
        (
            "one decision",
            WatchCasesRequest {
                decisions: vec![Decision::Approved.into()],
                ..request()
            },
            Box::new(|c: &Seen| c.decision == Decision::Approved),
        ),
        (
            "two decisions",
            WatchCasesRequest {
                decisions: vec![Decision::Denied.into(), Decision::Suspected.into()],
                ..request()
            },
            Box::new(|c: &Seen| matches!(c.decision, Decision::Denied | Decision::Suspected)),
        ),
        (
            "scan refs",
            WatchCasesRequest {
                scan_refs: pinned.to_vec(),
                ..request()
            },
            Box::new({
                let pinned = pinned.clone();
                move |c: &Seen| pinned.contains(&c.scan_ref)
            }),
        ),
        (
            "final only",
            WatchCasesRequest {
                final_only: true,
                ..request()
            },
            Box::new(|c: &Seen| c.is_final),
        ),
        (
            "client, decisions and final",
            WatchCasesRequest {
                client_ids: vec!["client-b".into()],
                decisions: vec![Decision::Suspected.into(), Decision::Approved.into()],
                final_only: true,
                ..request()
            },
            Box::new(|c: &Seen| {
                c.client_id == "client-b"
                    && matches!(c.decision, Decision::Suspected | Decision::Approved)
                    && c.is_final
            }),
        ),
        (
            "scan refs and another client: nothing",
            WatchCasesRequest {
                scan_refs: pinned.to_vec(),
                client_ids: vec!["client-c".into()],
                ..request()
            },
            Box::new({
                let pinned = pinned.clone();
                move |c: &Seen| pinned.contains(&c.scan_ref) && c.client_id == "client-c"
            }),
        ),
    ];
    // Half the streams follow live, half open afterwards and read what is already there.
    let mut live = Vec::new();
    for (name, request, _) in filters.iter().step_by(2) {
        live.push((*name, app.watch_cases_with(request.clone()).await));
    }

    for (i, scan_ref) in (0..9)
        .map(|_| payloads::scan_ref())
        .chain(pinned.iter().cloned())
        .enumerate()
    {
        let client = CLIENTS[i % CLIENTS.len()];
        let base = webhook(&scan_ref).client_id(client);
        app.post_ok(AUTO, &base.clone().overall("REVIEWING").build())
            .await;
        let overall = ["APPROVED", "DENIED", "SUSPECTED"][i % 3];
        app.post_ok(MANUAL, &base.overall(overall).final_(true).build())
            .await;
    }
    let feed = whole_feed(&app).await;
    let head = feed.last().unwrap().position;
    assert_eq!(feed.len(), 22);

    let mut late = Vec::new();
    for (name, request, _) in filters.iter().skip(1).step_by(2) {
        late.push((*name, app.watch_cases_with(request.clone()).await));
    }
    for (name, mut stream) in live.into_iter().chain(late) {
        let (_, _, wanted) = filters.iter().find(|(n, ..)| *n == name).unwrap();
        let expected: Vec<Seen> = feed.iter().filter(|c| wanted(c)).cloned().collect();
        assert_eq!(changes_until(&mut stream, head).await, expected, "{name}");
    }
}

async fn from_now_under_concurrent_writes_sees_nothing_before_and_misses_nothing_after(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = Arc::new(app);
    let writers = spawn_writers(&app, 4, 6);
    // Open while the writers write (their first webhooks are on the way).
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut stream = app
            .watch_cases_with(WatchCasesRequest {
                from_now: true,
                ..request()
            })
            .await;
        let start = next(&mut stream)
            .await
            .expect_err("a from_now stream starts with a bookmark");
        streams.push((start, stream));
    }
    join(writers).await;

    let feed = whole_feed(&app).await;
    let head = feed.last().unwrap().position;
    for (start, mut stream) in streams {
        let expected: Vec<Seen> = feed
            .iter()
            .filter(|c| c.position > start)
            .cloned()
            .collect();
        assert_eq!(
            changes_until(&mut stream, head).await,
            expected,
            "from {start:?}"
        );
    }
}

async fn resuming_from_any_cursor_or_bookmark_under_concurrent_writes_skips_and_repeats_nothing(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = Arc::new(app);
    let writers = spawn_writers(&app, 4, 8);
    let filtered = WatchCasesRequest {
        client_ids: vec!["client-b".into()],
        ..request()
    };

    // A consumer that hangs up after every couple of events and resumes from the last cursor it
    // got, a change's or a bookmark's, until the writers are done and it has seen the head.
    let mut received: Vec<Seen> = Vec::new();
    let mut bookmarks: Vec<Cursor> = Vec::new();
    let mut cursor = Cursor::START;
    let mut done: Option<Cursor> = None;
    let mut writers = Some(writers);
    loop {
        let mut stream = app
            .watch_cases_with(WatchCasesRequest {
                cursor: cursor.encode(),
                ..filtered.clone()
            })
            .await;
        for _ in 0..2 {
            match next(&mut stream).await {
                Ok(change) => {
                    cursor = change.position;
                    received.push(change);
                }
                Err(bookmark) => {
                    assert!(bookmark >= cursor, "bookmarks never go back");
                    cursor = bookmark;
                    bookmarks.push(bookmark);
                }
            }
        }
        if let Some(head) = done {
            if cursor == head {
                break;
            }
        } else if writers
            .as_ref()
            .is_some_and(|w| w.iter().all(JoinHandle::is_finished))
        {
            join(writers.take().unwrap()).await;
            // The last change is another client's, so the consumer can only reach the head
            // through a bookmark, however the changes before it were spread over its reads.
            let other = webhook(&payloads::scan_ref()).client_id("client-c").build();
            app.post_ok(AUTO, &other).await;
            done = Some(head(&app).await);
        }
    }

    let feed = whole_feed(&app).await;
    let expected: Vec<Seen> = feed
        .iter()
        .filter(|c| c.client_id == "client-b")
        .cloned()
        .collect();
    assert_eq!(received, expected, "every matching change, once, in order");
    assert!(
        !bookmarks.is_empty(),
        "the consumer resumed from bookmarks too"
    );

    // Resuming from a bookmark of a filter that matches nothing, without the filter: the very
    // next position, nothing before it.
    let mut nothing = app
        .watch_cases_with(WatchCasesRequest {
            client_ids: vec!["nobody".into()],
            ..request()
        })
        .await;
    let bookmark = next(&mut nothing)
        .await
        .expect_err("only bookmarks match nothing");
    assert!(
        bookmark > Cursor::START,
        "the bookmark advanced past filtered-out changes"
    );
    let mut resumed = app.watch_cases_with(after(bookmark)).await;
    let head = feed.last().unwrap().position;
    let rest = changes_until(&mut resumed, head).await;
    let expected: Vec<Seen> = feed
        .iter()
        .filter(|c| c.position > bookmark)
        .cloned()
        .collect();
    assert_eq!(rest, expected);
}

async fn list_then_watch_under_concurrent_writes_misses_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = Arc::new(app);
    let early = spawn_writers(&app, 2, 4);
    join(early).await;
    let writers = spawn_writers(&app, 4, 6);

    // List every page while the writers write, then watch from the first page's cursor.
    let mut known: BTreeMap<String, u64> = BTreeMap::new();
    let mut grpc = app.grpc().await;
    let mut page_token = String::new();
    let mut watch_cursor = None;
    loop {
        let page = within(
            "ListCases",
            grpc.list_cases(ListCasesRequest {
                page_size: 3,
                page_token: page_token.clone(),
                ..ListCasesRequest::default()
            }),
        )
        .await
        .expect("ListCases answers")
        .into_inner();
        watch_cursor.get_or_insert(page.watch_cursor);
        for case in page.cases {
            known.insert(case.scan_ref, case.revision);
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let watch_cursor = watch_cursor.unwrap();
    let mut stream = app
        .watch_cases_with(WatchCasesRequest {
            cursor: watch_cursor,
            ..request()
        })
        .await;
    join(writers).await;
    let head = head(&app).await;
    for change in changes_until(&mut stream, head).await {
        // Seen twice is allowed (and expected): keep the higher revision.
        let revision = known.entry(change.scan_ref).or_default();
        *revision = (*revision).max(change.revision);
    }

    // The truth: every case's last revision.
    let mut truth: BTreeMap<String, u64> = BTreeMap::new();
    for change in whole_feed(&app).await {
        truth.insert(change.scan_ref, change.revision);
    }
    assert_eq!(truth.len(), 32);
    assert_eq!(
        known, truth,
        "the listing plus the watch know every case's latest state"
    );
}

async fn a_cursor_from_a_longer_feed_is_out_of_range_on_a_rewound_one(backend: Backend) {
    let Some(original) = TestApp::spawn(backend).await else {
        return;
    };
    for _ in 0..5 {
        original
            .post_ok(AUTO, &webhook(&payloads::scan_ref()).build())
            .await;
    }
    let cursor = whole_feed(&original).await.last().unwrap().position;
    assert_eq!(cursor, Cursor(5));

    // A restore from an older backup: another database whose feed is shorter.
    let restored = TestApp::spawn(backend).await.expect("the backend is up");
    for _ in 0..2 {
        restored
            .post_ok(AUTO, &webhook(&payloads::scan_ref()).build())
            .await;
    }
    let status = within(
        "WatchCases",
        restored.grpc().await.watch_cases(after(cursor)),
    )
    .await
    .expect_err("a cursor past the head is refused");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    for needle in [
        "v1.5",
        "ahead of the feed head v1.2",
        "ListCases",
        "watch_cursor",
    ] {
        assert!(status.message().contains(needle), "{needle}: {status:?}");
    }

    // Listing again gives a cursor that works there.
    let mut stream = restored
        .watch_cases_with(after(head(&restored).await))
        .await;
    let scan_ref = payloads::scan_ref();
    restored.post_ok(AUTO, &webhook(&scan_ref).build()).await;
    let change = next(&mut stream).await.expect("the next change");
    assert_eq!((change.position, change.scan_ref), (Cursor(3), scan_ref));
}

on_every_backend!(
    each_filter_and_their_combinations_deliver_exactly_the_matching_changes,
    from_now_under_concurrent_writes_sees_nothing_before_and_misses_nothing_after,
    resuming_from_any_cursor_or_bookmark_under_concurrent_writes_skips_and_repeats_nothing,
    list_then_watch_under_concurrent_writes_misses_nothing,
    a_cursor_from_a_longer_feed_is_out_of_range_on_a_rewound_one,
);

#[tokio::test]
async fn malformed_cursors_and_page_tokens_are_invalid_argument() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    app.post_ok(AUTO, &webhook(&payloads::scan_ref()).build())
        .await;
    let mut grpc = app.grpc().await;
    for bad in ["v1.+1", "v1.01", "v1.FF", "v1.", "v2.1", "1", "v1.1 "] {
        let status = within(
            "WatchCases",
            grpc.watch_cases(WatchCasesRequest {
                cursor: bad.into(),
                ..request()
            }),
        )
        .await
        .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{bad:?}: {status:?}");
        assert!(status.message().contains("malformed cursor"), "{status:?}");

        let status = within(
            "ListCases",
            grpc.list_cases(ListCasesRequest {
                page_token: bad.into(),
                ..ListCasesRequest::default()
            }),
        )
        .await
        .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{bad:?}: {status:?}");
    }
    // The canonical spellings of the same positions work.
    for good in ["", "v1.0", "v1.1"] {
        within(
            "WatchCases",
            grpc.watch_cases(WatchCasesRequest {
                cursor: good.into(),
                ..request()
            }),
        )
        .await
        .unwrap_or_else(|s| panic!("{good:?}: {s:?}"));
    }
}

#[tokio::test]
async fn watchers_of_several_filters_share_the_feed_with_each_other() {
    // Many filtered streams on one replica: each sees exactly its client's changes.
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let mut streams = Vec::new();
    for i in 0..30 {
        let client = CLIENTS[i % CLIENTS.len()];
        let stream = app
            .watch_cases_with(WatchCasesRequest {
                client_ids: vec![client.into()],
                ..request()
            })
            .await;
        streams.push((client, stream));
    }
    let app = Arc::new(app);
    join(spawn_writers(&app, 3, 4)).await;
    let feed = whole_feed(&app).await;
    let head = feed.last().unwrap().position;
    let mut seen_clients = HashSet::new();
    for (client, mut stream) in streams {
        let expected: Vec<Seen> = feed
            .iter()
            .filter(|c| c.client_id == client)
            .cloned()
            .collect();
        assert!(!expected.is_empty());
        assert_eq!(changes_until(&mut stream, head).await, expected, "{client}");
        seen_clients.insert(client);
    }
    assert_eq!(seen_clients.len(), CLIENTS.len());
}
