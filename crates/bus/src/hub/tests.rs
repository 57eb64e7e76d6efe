use std::future::Future;
use std::time::Duration;

use verdict_domain::Cursor;

use super::*;

const WAIT: Duration = Duration::from_secs(5);
/// How long a "does not wake" assertion waits: wakes here are synchronous, so any wake that
/// was going to happen has happened before the assertion starts.
const QUIET: Duration = Duration::from_millis(50);

fn note(scan_ref: &str, revision: u64, position: u64) -> Notification {
    Notification {
        scan_ref: scan_ref.to_owned(),
        revision,
        position: Cursor(position),
        traceparent: Some(format!("00-{revision:032x}-{position:016x}-01")),
        committed: None,
    }
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn stays_quiet<T: fmt::Debug>(future: impl Future<Output = T>) {
    if let Ok(value) = tokio::time::timeout(QUIET, future).await {
        panic!("expected no wake-up, got {value:?}");
    }
}

#[tokio::test]
async fn notify_after_subscribe_wakes_the_case_watcher_with_revision_and_trace() {
    let hub = Hub::new();
    let mut watch = hub.watch_case("scan-1");
    hub.notify(&note("scan-1", 3, 10));
    let signal = within("case signal", watch.changed()).await;
    assert_eq!(signal.revision, 3);
    assert_eq!(signal.traceparent, note("scan-1", 3, 10).traceparent);
}

#[tokio::test]
async fn notify_of_another_case_does_not_wake() {
    let hub = Hub::new();
    let mut watch = hub.watch_case("scan-1");
    hub.notify(&note("scan-2", 1, 1));
    stays_quiet(watch.changed()).await;
}

#[tokio::test]
async fn older_or_equal_revisions_do_not_wake() {
    let hub = Hub::new();
    let mut watch = hub.watch_case("scan-1");
    hub.notify(&note("scan-1", 5, 10));
    assert_eq!(within("first signal", watch.changed()).await.revision, 5);

    hub.notify(&note("scan-1", 5, 10));
    hub.notify(&note("scan-1", 4, 9));
    stays_quiet(watch.changed()).await;
    assert_eq!(
        watch.current().revision,
        5,
        "an older revision must not overwrite"
    );
}

#[tokio::test]
async fn many_watchers_of_one_case_share_one_entry_and_all_wake() {
    let hub = Hub::new();
    let mut watches: Vec<_> = (0..10).map(|_| hub.watch_case("scan-1")).collect();
    assert_eq!(hub.watched_case_count(), 1);
    assert_eq!(hub.watcher_count(), 10);

    hub.notify(&note("scan-1", 2, 2));
    for watch in &mut watches {
        assert_eq!(within("every watcher", watch.changed()).await.revision, 2);
    }
}

#[tokio::test]
async fn entry_is_removed_when_the_last_watcher_drops() {
    let hub = Hub::new();
    let first = hub.watch_case("scan-1");
    let second = hub.watch_case("scan-1");
    let _other = hub.watch_case("scan-2");
    assert_eq!(hub.watched_case_count(), 2);

    drop(first);
    assert_eq!(hub.watched_case_count(), 2, "one watcher of scan-1 remains");
    drop(second);
    assert_eq!(hub.watched_case_count(), 1);
    assert_eq!(hub.watched_cases(), vec![("scan-2".to_owned(), 0)]);
    assert_eq!(hub.watcher_count(), 1);
}

#[tokio::test]
async fn a_new_entry_starts_from_scratch_after_removal() {
    let hub = Hub::new();
    let watch = hub.watch_case("scan-1");
    hub.notify(&note("scan-1", 7, 7));
    drop(watch);

    let mut watch = hub.watch_case("scan-1");
    assert_eq!(watch.current(), Signal::default());
    hub.notify(&note("scan-1", 7, 7));
    assert_eq!(
        within("re-notified revision", watch.changed())
            .await
            .revision,
        7
    );
}

#[tokio::test]
async fn wake_all_wakes_case_and_feed_watchers_without_changing_the_signal() {
    let hub = Hub::new();
    let mut one = hub.watch_case("scan-1");
    let mut two = hub.watch_case("scan-2");
    let mut feed = hub.watch_feed();
    hub.notify(&note("scan-1", 4, 8));
    within("scan-1", one.changed()).await;
    within("feed", feed.changed()).await;

    hub.wake_all();
    assert_eq!(
        within("scan-1 woken", one.changed()).await,
        note_signal(4, 8)
    );
    assert_eq!(
        within("scan-2 woken", two.changed()).await,
        Signal::default()
    );
    assert_eq!(within("feed woken", feed.changed()).await, 8);
}

#[tokio::test]
async fn a_committed_case_belongs_to_its_revision_and_a_wake_all_drops_it() {
    let hub = Hub::new();
    let mut watch = hub.watch_case("scan-1");
    let mut case = Case::new("scan-1", Default::default());
    case.revision = 2;
    hub.notify(&Notification::of_commit(&case, Cursor(5), None));
    let signal = within("committed", watch.changed()).await;
    assert_eq!(signal.committed.as_deref(), Some(&case));
    assert_eq!(watch.committed().as_deref(), Some(&case));

    // An older notification leaves it; a newer one learnt elsewhere replaces it with nothing.
    hub.notify(&note("scan-1", 1, 4));
    assert_eq!(watch.committed().as_deref(), Some(&case));
    hub.notify(&note("scan-1", 3, 6));
    assert_eq!(within("from Redis", watch.changed()).await.committed, None);

    case.revision = 4;
    hub.notify(&Notification::of_commit(&case, Cursor(7), None));
    within("committed again", watch.changed()).await;
    hub.wake_all();
    let woken = within("woken", watch.changed()).await;
    assert_eq!((woken.revision, woken.committed), (4, None));
    assert_eq!(watch.committed(), None, "a wake-all asks for a read");
}

fn note_signal(revision: u64, position: u64) -> Signal {
    Signal {
        revision,
        traceparent: note("", revision, position).traceparent,
        committed: None,
    }
}

#[tokio::test]
async fn feed_watch_wakes_on_any_case_and_reports_the_highest_position() {
    let hub = Hub::new();
    let mut feed = hub.watch_feed();
    assert_eq!(hub.watcher_count(), 1);

    hub.notify(&note("unwatched", 1, 5));
    assert_eq!(within("feed", feed.changed()).await, 5);

    // A late notification from another replica still wakes (it may be a change not yet read)
    // but never lowers the position.
    hub.notify(&note("other", 1, 3));
    assert_eq!(within("feed again", feed.changed()).await, 5);
    assert_eq!(hub.feed_position(), 5);

    drop(feed);
    assert_eq!(hub.watcher_count(), 0);
}

#[tokio::test]
async fn advance_feed_wakes_only_when_behind() {
    let hub = Hub::new();
    let mut feed = hub.watch_feed();
    hub.notify(&note("scan-1", 1, 5));
    within("feed", feed.changed()).await;

    assert!(!hub.advance_feed(5));
    stays_quiet(feed.changed()).await;
    assert!(hub.advance_feed(9));
    assert_eq!(within("feed behind", feed.changed()).await, 9);
}

#[tokio::test]
async fn bump_case_reports_whether_it_woke_anyone() {
    let hub = Hub::new();
    assert!(
        !hub.bump_case("scan-1", 3, None, None),
        "nobody watches scan-1"
    );
    let mut watch = hub.watch_case("scan-1");
    assert!(hub.bump_case("scan-1", 3, None, None));
    assert!(!hub.bump_case("scan-1", 3, None, None));
    assert_eq!(
        within("bumped", watch.changed()).await,
        Signal {
            revision: 3,
            traceparent: None,
            committed: None,
        }
    );
}

#[tokio::test]
async fn a_burst_of_notifications_conflates_into_the_latest() {
    let hub = Hub::new();
    let mut watch = hub.watch_case("scan-1");
    for revision in 1..=100 {
        hub.notify(&note("scan-1", revision, revision));
    }
    assert_eq!(
        within("latest", watch.changed()).await,
        note_signal(100, 100)
    );
    stays_quiet(watch.changed()).await;
}

#[tokio::test]
async fn a_watcher_waiting_in_another_task_is_woken() {
    let hub = Hub::new();
    let mut watch = hub.watch_case("scan-1");
    let waiter = tokio::spawn(async move { watch.changed().await });
    tokio::task::yield_now().await;
    hub.notify(&note("scan-1", 1, 1));
    let signal = within("spawned watcher", waiter)
        .await
        .expect("watcher task");
    assert_eq!(signal.revision, 1);
}

#[test]
fn debug_shows_counts_only() {
    let hub = Hub::new();
    let _watch = hub.watch_case("scan-1");
    let shown = format!("{hub:?}");
    assert!(shown.contains("watched_cases: 1"), "{shown}");
}

#[test]
fn watches_and_their_futures_can_move_into_spawned_streams() {
    fn send<T: Send + 'static>(_: &T) {}
    let hub = Hub::new();
    let mut case = hub.watch_case("scan-1");
    let mut feed = hub.watch_feed();
    send(&hub);
    send(&async move { case.changed().await });
    send(&async move { feed.changed().await });
}

#[derive(Default)]
struct Listener(Mutex<Vec<(String, u64, Cursor)>>);

impl CommitListener for Listener {
    fn committed(&self, case: &Arc<Case>, position: Cursor) {
        let mut heard = self.0.lock().unwrap();
        heard.push((case.scan_ref.clone(), case.revision, position));
    }
}

#[test]
fn listeners_hear_every_commit_watched_or_not_while_they_live() {
    let hub = Hub::new();
    let listener = Arc::new(Listener::default());
    let weak: std::sync::Weak<Listener> = Arc::downgrade(&listener);
    hub.listen(weak);
    let mut case = Case::new("unwatched", Default::default());
    case.revision = 1;

    hub.notify(&Notification::of_commit(&case, Cursor(3), None));
    hub.notify(&note("unwatched", 2, 4));
    assert_eq!(
        *listener.0.lock().unwrap(),
        [("unwatched".to_owned(), 1, Cursor(3))],
        "only this process's commits carry a case"
    );

    drop(listener);
    hub.notify(&Notification::of_commit(&case, Cursor(5), None));
    let other = Arc::new(Listener::default());
    let weak: std::sync::Weak<Listener> = Arc::downgrade(&other);
    hub.listen(weak);
    assert_eq!(hub.listeners.read().unwrap().len(), 1, "the dead one went");
}
