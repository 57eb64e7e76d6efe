//! WatchCases, second version: filters, from_now, bookmarks, cursors out of range, and the shared
//! tail of the feed (one read per change for every stream; streams behind it read themselves).

use verdict_domain::Cursor;

use super::*;

fn of_client(scan_ref: &str, client_id: &str, decision: Decision, is_final: bool) -> Case {
    Case {
        client_id: client_id.into(),
        ..case(scan_ref, 1, decision, is_final)
    }
}

fn request() -> pb::WatchCasesRequest {
    pb::WatchCasesRequest {
        view: pb::CaseView::Basic.into(),
        ..Default::default()
    }
}

fn clients(ids: &[&str]) -> pb::WatchCasesRequest {
    pb::WatchCasesRequest {
        client_ids: ids.iter().map(|id| (*id).to_owned()).collect(),
        ..request()
    }
}

async fn open(
    server: &Server,
    request: pb::WatchCasesRequest,
) -> Streaming<pb::WatchCasesResponse> {
    server
        .client()
        .await
        .watch_cases(request)
        .await
        .expect("WatchCases opens")
        .into_inner()
}

/// A change or a heartbeat's bookmark.
#[derive(Debug, PartialEq)]
enum Event {
    Change(String, String),
    Bookmark(String),
}

async fn next_event(stream: &mut Streaming<pb::WatchCasesResponse>) -> Event {
    let item = within("next event", stream.message()).await.unwrap();
    match item.and_then(|r| r.event) {
        Some(pb::watch_cases_response::Event::Change(change)) => {
            Event::Change(change.case.unwrap().scan_ref, change.cursor)
        }
        Some(pb::watch_cases_response::Event::Heartbeat(heartbeat)) => {
            Event::Bookmark(heartbeat.cursor)
        }
        None => panic!("stream ended or sent an empty event"),
    }
}

/// The scanRefs of the next `n` changes, skipping heartbeats.
async fn next_scan_refs(stream: &mut Streaming<pb::WatchCasesResponse>, n: usize) -> Vec<String> {
    let mut scan_refs = Vec::with_capacity(n);
    while scan_refs.len() < n {
        scan_refs.push(next_change(stream).await.case.unwrap().scan_ref);
    }
    scan_refs
}

/// Heartbeats until one carries `cursor`: every bookmark on the way may only move forward.
async fn bookmark_reaches(stream: &mut Streaming<pb::WatchCasesResponse>, cursor: Cursor) {
    let mut last = Cursor::START;
    loop {
        match next_event(stream).await {
            Event::Bookmark(raw) => {
                let bookmark = Cursor::decode(&raw).unwrap();
                assert!(
                    bookmark >= last,
                    "bookmarks go forward: {raw} after {last:?}"
                );
                assert!(bookmark <= cursor, "{raw} is past {cursor:?}");
                if bookmark == cursor {
                    return;
                }
                last = bookmark;
            }
            other => panic!("expected only heartbeats, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn filters_combine_with_and_across_fields_and_or_within_one() {
    let server = Server::start(quiet_options()).await;
    let mut by_client = open(&server, clients(&["a", "c"])).await;
    let mut by_decision = open(
        &server,
        pb::WatchCasesRequest {
            decisions: vec![pb::Decision::Approved.into(), pb::Decision::Denied.into()],
            ..request()
        },
    )
    .await;
    let mut by_scan_ref = open(
        &server,
        pb::WatchCasesRequest {
            scan_refs: vec!["s2".into(), "s5".into()],
            ..request()
        },
    )
    .await;
    let mut combined = open(
        &server,
        pb::WatchCasesRequest {
            client_ids: vec!["a".into()],
            decisions: vec![pb::Decision::Approved.into()],
            final_only: true,
            ..request()
        },
    )
    .await;

    server.commit(of_client("s1", "a", Decision::Pending, false));
    server.commit(of_client("s2", "b", Decision::Approved, true));
    server.commit(of_client("s3", "c", Decision::Denied, true));
    server.commit(of_client("s4", "a", Decision::Approved, true));
    server.commit(of_client("s5", "d", Decision::Suspected, true));
    // A change after every other one, so each stream has a last thing to wait for.
    server.commit(of_client("s6", "a", Decision::Denied, true));

    assert_eq!(
        next_scan_refs(&mut by_client, 4).await,
        ["s1", "s3", "s4", "s6"]
    );
    assert_eq!(
        next_scan_refs(&mut by_decision, 4).await,
        ["s2", "s3", "s4", "s6"]
    );
    assert_eq!(next_scan_refs(&mut by_scan_ref, 2).await, ["s2", "s5"]);
    assert_eq!(next_scan_refs(&mut combined, 1).await, ["s4"]);
    server.stop().await;
}

#[tokio::test]
async fn filters_match_the_case_as_of_each_change() {
    let server = Server::start(quiet_options()).await;
    let mut approvals = open(
        &server,
        pb::WatchCasesRequest {
            decisions: vec![pb::Decision::Approved.into()],
            ..request()
        },
    )
    .await;
    server.commit(approved("scan-1", 1));
    // Reopened since: the change that approved it is still an approval.
    server.commit(pending("scan-1", 2));
    server.commit(approved("scan-2", 1));
    let first = next_change(&mut approvals).await.case.unwrap();
    assert_eq!((first.scan_ref.as_str(), first.revision), ("scan-1", 1));
    assert_eq!(
        next_change(&mut approvals).await.case.unwrap().scan_ref,
        "scan-2"
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_filters_are_invalid_argument_and_say_which() {
    let server = Server::start(quiet_options()).await;
    let mut client = server.client().await;
    let too_many: Vec<String> = (0..1001).map(|i| format!("scan-{i}")).collect();
    for (bad, needle) in [
        (
            pb::WatchCasesRequest {
                scan_refs: too_many,
                ..request()
            },
            "scan_refs has 1001 values",
        ),
        (
            pb::WatchCasesRequest {
                decisions: vec![pb::Decision::Unspecified.into()],
                ..request()
            },
            "DECISION_UNSPECIFIED",
        ),
        (
            pb::WatchCasesRequest {
                decisions: vec![42],
                ..request()
            },
            "unknown decision 42",
        ),
        (clients(&["a", ""]), "client_ids[1] must not be empty"),
        (
            pb::WatchCasesRequest {
                cursor: "v1.+1".into(),
                ..request()
            },
            "malformed cursor",
        ),
    ] {
        let status = client.watch_cases(bad).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(needle), "{needle}: {status:?}");
    }
    let thousand: Vec<String> = (0..1000).map(|i| format!("scan-{i}")).collect();
    client
        .watch_cases(pb::WatchCasesRequest {
            scan_refs: thousand,
            ..request()
        })
        .await
        .expect("1000 scan_refs are allowed");
    server.stop().await;
}

#[tokio::test]
async fn from_now_starts_at_the_head_and_says_so_first() {
    let server = Server::start(quiet_options()).await;
    for n in 1..=3 {
        server.commit(pending(&format!("old-{n}"), 1));
    }
    let mut stream = open(
        &server,
        pb::WatchCasesRequest {
            from_now: true,
            // Ignored with from_now, even when it would be refused otherwise.
            cursor: "garbage".into(),
            ..request()
        },
    )
    .await;
    assert_eq!(
        next_event(&mut stream).await,
        Event::Bookmark(Cursor(3).encode())
    );
    server.commit(pending("new", 1));
    assert_eq!(
        next_event(&mut stream).await,
        Event::Change("new".into(), Cursor(4).encode())
    );
    server.stop().await;
}

#[tokio::test]
async fn a_cursor_past_the_head_is_out_of_range_and_says_to_list_again() {
    let server = Server::start(quiet_options()).await;
    server.commit(pending("scan-1", 1));
    server.commit(pending("scan-2", 1));
    let mut client = server.client().await;
    let status = client
        .watch_cases(pb::WatchCasesRequest {
            cursor: Cursor(3).encode(),
            ..request()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(
        status.message().contains("ahead of the feed head")
            && status.message().contains("ListCases"),
        "{}",
        status.message()
    );
    // The head itself is a valid place to resume.
    let mut stream = open(
        &server,
        pb::WatchCasesRequest {
            cursor: Cursor(2).encode(),
            ..request()
        },
    )
    .await;
    server.commit(pending("scan-3", 1));
    assert_eq!(next_change(&mut stream).await.cursor, Cursor(3).encode());
    server.stop().await;
}

#[tokio::test]
async fn a_feed_rewound_under_a_stream_ends_it_out_of_range() {
    let server = Server::start(GrpcOptions {
        poll_interval: Duration::from_millis(20),
        ..quiet_options()
    })
    .await;
    for n in 1..=5 {
        server.commit(pending(&format!("scan-{n}"), 1));
    }
    let mut ahead = open(&server, request()).await;
    assert_eq!(next_scan_refs(&mut ahead, 5).await.len(), 5);
    let mut behind = open(&server, clients(&["nobody"])).await;

    // A restore from an older backup: positions 3..=5 are gone.
    server.store.rewind(2);
    let status = ends_with(&mut ahead, Code::OutOfRange).await;
    assert!(status.message().contains("v1.5"), "{}", status.message());
    let status = ends_with(&mut behind, Code::OutOfRange).await;
    assert!(
        status.message().contains("ahead of the feed head v1.2"),
        "{status:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn idle_bookmarks_advance_under_a_filter_that_matches_nothing() {
    let server = Server::start(GrpcOptions {
        heartbeat_interval: Duration::from_millis(50),
        ..quiet_options()
    })
    .await;
    let mut stream = open(&server, clients(&["nobody"])).await;
    for n in 1..=10 {
        server.commit(pending(&format!("scan-{n}"), 1));
    }
    bookmark_reaches(&mut stream, Cursor(10)).await;

    // Resuming from the bookmark: nothing before it, the next match after it.
    drop(stream);
    let mut resumed = open(
        &server,
        pb::WatchCasesRequest {
            cursor: Cursor(10).encode(),
            ..request()
        },
    )
    .await;
    server.commit(pending("scan-11", 1));
    assert_eq!(
        next_event(&mut resumed).await,
        Event::Change("scan-11".into(), Cursor(11).encode())
    );
    server.stop().await;
}

#[tokio::test]
async fn a_long_run_of_filtered_out_changes_sends_a_bookmark_before_the_stream_is_idle() {
    // Heartbeats for idleness never fire here: only the run of filtered-out changes can
    // make a bookmark.
    let server = Server::start(quiet_options()).await;
    let mut stream = open(&server, clients(&["nobody"])).await;
    for n in 1..=1500 {
        server.commit(pending(&format!("scan-{n}"), 1));
    }
    match next_event(&mut stream).await {
        Event::Bookmark(raw) => {
            let bookmark = Cursor::decode(&raw).unwrap();
            assert!(
                bookmark >= Cursor(1024) && bookmark <= Cursor(1500),
                "{raw}"
            );
        }
        other => panic!("expected a bookmark, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn streams_share_one_read_of_the_feed_per_change() {
    let server = Server::start(quiet_options()).await;
    let mut streams = Vec::new();
    for n in 0..40 {
        let client = format!("client-{}", n % 4);
        streams.push(open(&server, clients(&[client.as_str()])).await);
    }
    let reads_before = server.store.feed_reads();
    for n in 0..20 {
        server.commit(of_client(
            &format!("scan-{n}"),
            &format!("client-{}", n % 4),
            Decision::Pending,
            false,
        ));
        // Let the change reach every stream before the next one, the worst case for sharing.
        for (i, stream) in streams.iter_mut().enumerate() {
            if i % 4 == n % 4 {
                assert_eq!(
                    next_change(stream).await.case.unwrap().scan_ref,
                    format!("scan-{n}")
                );
            }
        }
    }
    let reads = server.store.feed_reads() - reads_before;
    assert_eq!(server.store.catch_up_reads(), 0, "no stream fell behind");
    // One read per change (sometimes two, when a wake-up lands mid-read), never one per stream.
    assert!(
        (20..=40).contains(&reads),
        "{reads} feed reads for 20 changes and 40 streams"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_stream_that_falls_out_of_the_window_still_gets_every_change_in_order() {
    let server = Server::start(GrpcOptions {
        feed_window: 8,
        ..quiet_options()
    })
    .await;
    // Behind the window from the start: 300 changes before it opens, 300 while it reads.
    for n in 0..300 {
        server.commit(of_client(
            &format!("early-{n}"),
            "a",
            Decision::Pending,
            false,
        ));
    }
    let mut all = open(&server, request()).await;
    let mut only_b = open(&server, clients(&["b"])).await;
    for n in 0..300 {
        let client = if n % 3 == 0 { "b" } else { "a" };
        server.commit(of_client(
            &format!("late-{n}"),
            client,
            Decision::Pending,
            false,
        ));
    }
    // Nothing read until now: the streams stalled on their clients while the window moved on.
    let mut cursors = Vec::new();
    for _ in 0..600 {
        cursors.push(Cursor::decode(&next_change(&mut all).await.cursor).unwrap());
    }
    assert_eq!(cursors, (1..=600).map(Cursor).collect::<Vec<_>>());
    let expected: Vec<String> = (0..300).step_by(3).map(|n| format!("late-{n}")).collect();
    assert_eq!(next_scan_refs(&mut only_b, 100).await, expected);
    assert!(
        server.store.catch_up_reads() > 0,
        "the streams read behind the window"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_slow_client_falls_behind_the_window_and_catches_up_without_a_gap() {
    let server = Server::start(GrpcOptions {
        feed_window: 16,
        ..quiet_options()
    })
    .await;
    let mut stream = open(&server, request()).await;
    server.commit(pending("first", 1));
    assert_eq!(next_change(&mut stream).await.cursor, Cursor(1).encode());
    // Far more than HTTP/2 and the stream's channel buffer: the producer blocks on the client
    // while the window moves thousands of positions past it.
    for n in 2..=4000 {
        server.commit(pending(&format!("scan-{n}"), 1));
    }
    for n in 2..=4000 {
        assert_eq!(next_change(&mut stream).await.cursor, Cursor(n).encode());
    }
    assert!(
        server.store.catch_up_reads() > 0,
        "the stream read behind the window"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_full_view_carries_the_person_and_the_basic_view_never() {
    let server = Server::start(quiet_options()).await;
    let mut full = open(
        &server,
        pb::WatchCasesRequest {
            view: pb::CaseView::Full.into(),
            client_ids: vec!["a".into()],
            ..request()
        },
    )
    .await;
    let mut basic = open(&server, clients(&["a"])).await;
    server.commit(of_client("scan-b", "b", Decision::Pending, false));
    server.commit(of_client("scan-a", "a", Decision::Pending, false));
    let case = next_change(&mut full).await.case.unwrap();
    assert_eq!(case.scan_ref, "scan-a");
    assert_eq!(case.person.unwrap().first_name, "Jonas");
    let case = next_change(&mut basic).await.case.unwrap();
    assert_eq!(case.scan_ref, "scan-a");
    assert!(case.person.is_none());
    server.stop().await;
}

#[tokio::test]
async fn a_failed_read_of_the_feed_ends_streams_unavailable() {
    let server = Server::start(GrpcOptions {
        poll_interval: Duration::from_millis(20),
        ..quiet_options()
    })
    .await;
    server.commit(pending("scan-1", 1));
    let mut stream = open(&server, request()).await;
    next_change(&mut stream).await;
    server.store.set_down(true);
    let status = ends_with(&mut stream, Code::Unavailable).await;
    assert!(status.message().contains("resume"), "{status:?}");
    server.store.set_down(false);
    server.stop().await;
}

#[tokio::test]
async fn the_first_list_page_carries_a_watch_cursor_from_before_the_listing() {
    let server = Server::start(quiet_options()).await;
    for n in 1..=3 {
        server.commit(pending(&format!("scan-{n}"), 1));
    }
    let mut client = server.client().await;
    let list = |page_token: String| pb::ListCasesRequest {
        page_size: 2,
        page_token,
        ..Default::default()
    };
    let first = client
        .list_cases(list(String::new()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.watch_cursor, Cursor(3).encode());
    let second = client
        .list_cases(list(first.next_page_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.watch_cursor, "", "only the first page has one");

    let mut stream = open(
        &server,
        pb::WatchCasesRequest {
            cursor: first.watch_cursor,
            ..request()
        },
    )
    .await;
    server.commit(pending("scan-4", 1));
    assert_eq!(
        next_change(&mut stream).await.case.unwrap().scan_ref,
        "scan-4"
    );
    server.stop().await;
}

#[tokio::test]
async fn without_streams_the_feed_is_not_read_and_a_late_first_stream_starts_at_the_head() {
    let server = Server::start(GrpcOptions {
        feed_window: 8,
        ..quiet_options()
    })
    .await;
    for n in 1..=2000 {
        server.commit(pending(&format!("scan-{n}"), 1));
    }
    assert_eq!(server.store.feed_reads(), 0, "nobody follows the feed");

    let mut stream = open(
        &server,
        pb::WatchCasesRequest {
            from_now: true,
            ..request()
        },
    )
    .await;
    assert_eq!(
        next_event(&mut stream).await,
        Event::Bookmark(Cursor(2000).encode())
    );
    server.commit(pending("scan-2001", 1));
    assert_eq!(next_change(&mut stream).await.cursor, Cursor(2001).encode());
    // The tail skipped what it could not hold instead of pushing 2000 changes through 8 slots.
    assert!(
        server.store.feed_reads() <= 3,
        "{} feed reads",
        server.store.feed_reads()
    );
    server.stop().await;
}

/// `verdict_watch_feed_lag` as Prometheus shows it (process-wide; nextest runs one test per
/// process).
fn feed_lag() -> u64 {
    let text = verdict_telemetry::metrics::render_prometheus();
    text.lines()
        .find_map(|line| line.strip_prefix("verdict_watch_feed_lag"))
        .and_then(|rest| rest.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn the_feed_lag_shows_a_stalled_stream_and_not_idle_filtered_ones() {
    let server = Server::start(GrpcOptions {
        feed_window: 64,
        ..quiet_options()
    })
    .await;
    // Filtered streams that never match: moved along by the tail, never lagging.
    let _idle: Vec<_> =
        futures::future::join_all((0..5).map(|_| open(&server, clients(&["nobody"])))).await;
    let mut stalled = open(&server, request()).await;
    for n in 1..=3000 {
        server.commit(pending(&format!("scan-{n}"), 1));
    }
    within("the lag to show the stalled stream", async {
        while feed_lag() < 1000 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    for n in 1..=3000 {
        assert_eq!(next_change(&mut stalled).await.cursor, Cursor(n).encode());
    }
    within("the lag to go back to 0", async {
        while feed_lag() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    server.stop().await;
}
