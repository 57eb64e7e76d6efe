//! The streams following the tail, and whom to wake when the window moves.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::sync::Notify;
use verdict_domain::{Cursor, FeedFilter};

use super::window::HeldChange;

/// What the reader and one stream share.
#[derive(Debug)]
pub(super) struct Shared {
    filter: FeedFilter,
    /// Every change up to this position has been examined for the stream: by the stream itself,
    /// or by the reader when none of them matched. Only ever raised.
    position: AtomicU64,
    /// Wake the stream once the head reaches this position, matches or not: it owes its client
    /// a bookmark then. `u64::MAX`: nothing owed.
    bookmark_at: AtomicU64,
    wake: Notify,
}

impl Shared {
    /// A stream that examined everything up to `position` and wants what `filter` matches.
    pub(super) fn new(position: Cursor, filter: FeedFilter) -> Self {
        Self {
            filter,
            position: AtomicU64::new(position.0),
            bookmark_at: AtomicU64::new(u64::MAX),
            wake: Notify::new(),
        }
    }

    pub(super) fn filter(&self) -> &FeedFilter {
        &self.filter
    }

    pub(super) fn position(&self) -> Cursor {
        Cursor(self.position.load(Ordering::Acquire))
    }

    pub(super) fn advance(&self, position: Cursor) {
        self.position.fetch_max(position.0, Ordering::AcqRel);
    }

    pub(super) fn bookmark_at(&self, position: Option<Cursor>) {
        let at = position.map_or(u64::MAX, |p| p.0);
        self.bookmark_at.store(at, Ordering::Release);
    }

    /// Resolves at the next wake-up, or at once for one given while nobody waited.
    pub(super) async fn woken(&self) {
        self.wake.notified().await;
    }
}

/// Every stream following the feed.
#[derive(Debug, Default)]
pub(super) struct Followers {
    next_id: u64,
    streams: HashMap<u64, Arc<Shared>>,
}

impl Followers {
    /// Registers a stream; the id removes it.
    pub(super) fn add(&mut self, shared: Arc<Shared>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.streams.insert(id, shared);
        id
    }

    pub(super) fn remove(&mut self, id: u64) {
        self.streams.remove(&id);
    }

    /// After the window moved from `old_head` to `new_head` with `appended`: wakes the streams
    /// that may have something to do, and moves the others past the new changes.
    ///
    /// A stream whose position is `old_head` has examined everything before the new changes
    /// (it records that under the window's read lock, so before the append took the write
    /// lock). If none of them matches its filter and it owes no bookmark, examining them would
    /// only raise its position: done here, and it sleeps on. Every other stream is woken — one
    /// with a match, one still busy (a spurious wake-up costs it one walk), one ahead of the
    /// window.
    pub(super) fn dispatch(
        &self,
        appended: &[Arc<HeldChange>],
        old_head: Cursor,
        new_head: Cursor,
    ) {
        for shared in self.streams.values() {
            let idle_without_match = shared.position.load(Ordering::Acquire) == old_head.0
                && new_head.0 < shared.bookmark_at.load(Ordering::Acquire)
                && !appended
                    .iter()
                    .any(|held| shared.filter.matches(&held.change.case));
            let moved = idle_without_match
                && shared
                    .position
                    .compare_exchange(old_head.0, new_head.0, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok();
            if !moved {
                shared.wake.notify_one();
            }
        }
    }

    /// Wakes every stream: the window was reset, or a read failed.
    pub(super) fn wake_all(&self) {
        for shared in self.streams.values() {
            shared.wake.notify_one();
        }
    }

    /// The position of the stream furthest behind, if any.
    pub(super) fn slowest(&self) -> Option<Cursor> {
        self.streams.values().map(|shared| shared.position()).min()
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt as _;

    use super::super::testing::change;
    use super::*;

    fn held(position: u64, client_id: &str) -> Arc<HeldChange> {
        Arc::new(HeldChange {
            change: change(position, client_id),
        })
    }

    fn follower(followers: &mut Followers, position: u64, client_id: &str) -> Arc<Shared> {
        let filter = FeedFilter::new(vec![client_id.into()], vec![], vec![], false).unwrap();
        let shared = Arc::new(Shared::new(Cursor(position), filter));
        followers.add(Arc::clone(&shared));
        shared
    }

    fn woken(shared: &Shared) -> bool {
        shared.woken().now_or_never().is_some()
    }

    #[test]
    fn only_streams_with_a_match_are_woken_the_others_move_past_the_changes() {
        let mut followers = Followers::default();
        let wants_a = follower(&mut followers, 10, "a");
        let wants_b = follower(&mut followers, 10, "b");
        followers.dispatch(&[held(11, "a"), held(12, "c")], Cursor(10), Cursor(12));

        assert!(woken(&wants_a));
        assert_eq!(wants_a.position(), Cursor(10), "it walks them itself");
        assert!(!woken(&wants_b));
        assert_eq!(wants_b.position(), Cursor(12), "examined on its behalf");
        assert_eq!(followers.slowest(), Some(Cursor(10)));
    }

    #[test]
    fn streams_not_waiting_at_the_old_head_are_woken_and_left_where_they_are() {
        let mut followers = Followers::default();
        let behind = follower(&mut followers, 4, "b");
        let ahead = follower(&mut followers, 30, "b");
        followers.dispatch(&[held(11, "a")], Cursor(10), Cursor(11));
        for shared in [&behind, &ahead] {
            assert!(woken(shared));
        }
        assert_eq!(behind.position(), Cursor(4));
        assert_eq!(ahead.position(), Cursor(30));
    }

    #[test]
    fn a_stream_owing_a_bookmark_is_woken_when_the_head_reaches_it() {
        let mut followers = Followers::default();
        let shared = follower(&mut followers, 10, "b");
        shared.bookmark_at(Some(Cursor(12)));
        followers.dispatch(&[held(11, "a")], Cursor(10), Cursor(11));
        assert!(!woken(&shared));
        followers.dispatch(&[held(12, "a")], Cursor(11), Cursor(12));
        assert!(woken(&shared));
        assert_eq!(shared.position(), Cursor(11));
    }

    #[test]
    fn a_wake_up_given_while_the_stream_was_busy_is_kept() {
        let mut followers = Followers::default();
        let shared = follower(&mut followers, 10, "a");
        followers.dispatch(&[held(11, "a")], Cursor(10), Cursor(11));
        followers.dispatch(&[held(12, "a")], Cursor(11), Cursor(12));
        assert!(woken(&shared), "one wake-up waits for the stream");
        assert!(!woken(&shared), "and only one");
        followers.wake_all();
        assert!(woken(&shared));
    }

    #[test]
    fn positions_only_go_up_and_removed_streams_are_forgotten() {
        let mut followers = Followers::default();
        let shared = Arc::new(Shared::new(Cursor(5), FeedFilter::everything()));
        let id = followers.add(Arc::clone(&shared));
        shared.advance(Cursor(3));
        assert_eq!(shared.position(), Cursor(5));
        shared.advance(Cursor(8));
        assert_eq!(followers.slowest(), Some(Cursor(8)));
        followers.remove(id);
        assert_eq!(followers.slowest(), None);
    }
}
