//! One reader of the change feed for the whole process, whatever the number of `WatchCases`
//! streams.
//!
//! If every stream read the feed itself, each change would cost one database query per stream
//! (1 000 filtered streams at 200 changes/s: up to 200 000 queries/s), and filtering in SQL would
//! not change that. Instead one reader task follows the feed's head into a bounded [`Window`] of
//! recent changes, each held once, and wakes the streams; a stream at the head walks the window,
//! matches its filters against the plain domain change and converts only what it sends.
//!
//! A stream whose position is older than the window (a reconnect with an old cursor, or a client
//! so slow that the window moved past it) reads `(position, floor]` from the database in
//! batches, with its filters in SQL, then joins the window. Nothing waits for slow streams and no
//! change is lost by falling out: it costs that stream database reads, nothing else.
//!
//! Streams are not all woken for every change: after each read the reader matches the new
//! changes against the filter of every stream waiting at the old head, wakes those with a match,
//! and moves the others' positions past the changes on their behalf (they would only have
//! examined and skipped them). A thousand streams each wanting 1 % of the feed thus cost, per
//! change, a thousand filter comparisons on one task and ten wake-ups, not a thousand wake-ups.
//!
//! The reader runs only while streams follow the feed: idle, it holds no hub subscription,
//! reads nothing and keeps no changes, and on waking it starts over at the head if the feed
//! moved further than the window holds.

use std::{
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::Duration,
};

use tokio::{
    sync::watch,
    time::{Instant, MissedTickBehavior, interval, sleep_until},
};
use tokio_util::sync::CancellationToken;
use tracing::warn;
use verdict_bus::Hub;
use verdict_domain::{CaseStore, Cursor, Error, FeedFilter, FeedQuery};
use verdict_telemetry::metrics::metrics;

use crate::status;

mod followers;
#[cfg(test)]
mod testing;
mod window;

use followers::{Followers, Shared};
pub(crate) use window::Walk;
use window::Window;

/// Changes per database read of the reader.
const BATCH: u32 = 512;

/// How often `verdict.watch.feed_lag` is recomputed while streams follow the feed (also after
/// every read), so a stream catching up shows without waiting for a change.
const LAG_EVERY: Duration = Duration::from_secs(1);

/// What the reader tells the streams: where the window is, and the events that end streams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// The newest position in the window.
    pub(crate) head: Cursor,
    /// How often the feed was found behind the window: the database was replaced by an older
    /// copy under a running server. A stream past the new head then ends OUT_OF_RANGE.
    pub(crate) rewinds: u64,
    /// Reads that failed: every stream ends UNAVAILABLE and its client resumes.
    pub(crate) failures: u64,
}

/// The shared tail of the feed; see the module docs.
#[derive(Debug)]
pub(crate) struct FeedTail {
    store: Arc<dyn CaseStore>,
    hub: Arc<Hub>,
    poll_every: Duration,
    capacity: usize,
    window: RwLock<Window>,
    progress: watch::Sender<Progress>,
    followers: Mutex<Followers>,
    /// How many streams follow the feed; the reader idles at zero.
    following: watch::Sender<usize>,
}

impl FeedTail {
    /// A tail over `store`, woken by `hub`, re-reading at least every `poll_every` (notifications
    /// can be lost), holding at most `capacity` changes.
    pub(crate) fn new(
        store: Arc<dyn CaseStore>,
        hub: Arc<Hub>,
        poll_every: Duration,
        capacity: usize,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            hub,
            poll_every,
            capacity,
            window: RwLock::new(Window::new(capacity)),
            progress: watch::Sender::new(Progress::default()),
            followers: Mutex::default(),
            following: watch::Sender::new(0),
        })
    }

    /// Registers a stream that has examined everything up to `position` and wants what `filter`
    /// matches; wakes the reader if it was idle.
    pub(crate) fn follow(self: &Arc<Self>, position: Cursor, filter: FeedFilter) -> Follower {
        let shared = Arc::new(Shared::new(position, filter));
        let id = self.lock_followers().add(Arc::clone(&shared));
        self.following.send_modify(|n| *n += 1);
        Follower {
            tail: Arc::clone(self),
            id,
            shared,
            progress: self.progress.subscribe(),
        }
    }

    /// The newest position the window covers (at most the feed's head).
    pub(crate) fn head(&self) -> Cursor {
        self.read_window().head()
    }

    /// Where a stream at `position` stands against the window, with at most `max` matches. What
    /// it examined is recorded while the window cannot move, so the reader's next
    /// [`Followers::dispatch`] sees it.
    fn walk(&self, shared: &Shared, position: Cursor, max: usize) -> Walk {
        let window = self.read_window();
        let walk = window.walk(position, shared.filter(), max);
        if let Walk::Walked { examined, .. } = &walk {
            shared.advance(*examined);
        }
        walk
    }

    /// The reader: idle while no stream follows, following the feed otherwise, until `shutdown`.
    pub(crate) async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut following = self.following.subscribe();
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                woken = following.wait_for(|n| *n > 0) => if woken.is_err() { return },
            }
            self.follow_feed(&mut following, &shutdown).await;
            // Unfollowed, the window would go stale (or, after a restore, wrong) without anyone
            // noticing: let it go, with its memory. The next stream older than the head reads
            // the database until the window fills again.
            let head = self.head();
            self.write_window().reset(head);
            self.record_lag();
        }
    }

    /// Reads whenever the hub signals a change or the poll interval passes, until no stream
    /// follows any more or `shutdown`.
    async fn follow_feed(
        &self,
        following: &mut watch::Receiver<usize>,
        shutdown: &CancellationToken,
    ) {
        // Subscribe before the first read, like every watcher: a change committed after that read
        // wakes us.
        let mut feed = self.hub.watch_feed();
        let mut lag = interval(LAG_EVERY);
        lag.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // While nobody followed, the feed may have moved on, or even back.
        let mut check_head = true;
        loop {
            if let Err(e) = self.read(check_head).await {
                // Logged here, once; the streams only learn that they must end.
                let _logged = status::from_domain(e);
                self.progress.send_modify(|p| p.failures += 1);
                self.lock_followers().wake_all();
            }
            self.record_lag();
            let poll_at = Instant::now() + self.poll_every;
            check_head = loop {
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => return,
                    _ = following.wait_for(|n| *n == 0) => return,
                    _ = feed.changed() => break false,
                    () = sleep_until(poll_at) => break true,
                    _ = lag.tick() => self.record_lag(),
                }
            };
        }
    }

    /// Brings the window up to the feed's head. With `check_head`, first compares the head with
    /// the window's: behind it means the database went back in time (start over there, and tell
    /// the streams); far ahead means reading everything in between would only push it through
    /// the window (start over at the head; streams behind read the database).
    async fn read(&self, check_head: bool) -> Result<(), Error> {
        if check_head {
            let head = self.store.feed_head().await?;
            let current = self.head();
            if head < current {
                warn!(
                    feed_head = head.0,
                    window_head = current.0,
                    "the change feed went backwards (database restored?): streams past its head end"
                );
                self.write_window().reset(head);
                self.progress.send_modify(|p| {
                    p.head = head;
                    p.rewinds += 1;
                });
                self.lock_followers().wake_all();
            } else if head.0 - current.0 > self.capacity as u64 {
                self.write_window().reset(head);
                self.progress.send_modify(|p| p.head = head);
                self.lock_followers().wake_all();
            }
        }
        loop {
            // Only this task writes the window, so its head cannot move meanwhile.
            let old_head = self.head();
            let batch = self
                .store
                .changes_after(&FeedQuery::after(old_head, BATCH))
                .await?;
            let short = batch.len() < BATCH as usize;
            if !batch.is_empty() {
                let (appended, head) = {
                    let mut window = self.write_window();
                    let appended = window.extend(batch).ok_or_else(|| {
                        Error::Internal(
                            "the store returned a feed change at or below the position asked after"
                                .into(),
                        )
                    })?;
                    (appended, window.head())
                };
                self.progress.send_modify(|p| p.head = head);
                self.lock_followers().dispatch(&appended, old_head, head);
            }
            if short {
                return Ok(());
            }
        }
    }

    /// `verdict.watch.feed_lag`: positions between the window's head and the slowest stream.
    fn record_lag(&self) {
        let head = self.head();
        let slowest = self.lock_followers().slowest();
        metrics().watch_feed_lag(slowest.map_or(0, |p| head.0.saturating_sub(p.0)));
    }

    fn read_window(&self) -> std::sync::RwLockReadGuard<'_, Window> {
        // Every critical section leaves the window consistent: a panic inside one cannot
        // leave it half-written.
        self.window.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_window(&self) -> std::sync::RwLockWriteGuard<'_, Window> {
        self.window.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_followers(&self) -> std::sync::MutexGuard<'_, Followers> {
        self.followers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// One stream following the tail: what it shares with the reader, and the reader's progress.
/// Dropping it unregisters the stream.
#[derive(Debug)]
pub(crate) struct Follower {
    tail: Arc<FeedTail>,
    id: u64,
    shared: Arc<Shared>,
    progress: watch::Receiver<Progress>,
}

impl Follower {
    /// Where the stream at `position` stands against the window (at most `max` matches).
    pub(crate) fn walk(&self, position: Cursor, max: usize) -> Walk {
        self.tail.walk(&self.shared, position, max)
    }

    /// Everything up to this position has been examined, by the stream or on its behalf.
    pub(crate) fn position(&self) -> Cursor {
        self.shared.position()
    }

    /// The stream has examined everything up to `position`.
    pub(crate) fn advance(&self, position: Cursor) {
        self.shared.advance(position);
    }

    /// Asks to be woken once the head reaches `position` even without a match (`None`: no
    /// need), for the bookmark the stream owes its client then.
    pub(crate) fn bookmark_at(&self, position: Option<Cursor>) {
        self.shared.bookmark_at(position);
    }

    /// The reader's latest progress.
    pub(crate) fn progress(&self) -> Progress {
        *self.progress.borrow()
    }

    /// Resolves when the reader woke this stream (see [`Followers::dispatch`]); a wake-up
    /// given while the stream was busy is kept for its next wait. Cancel-safe.
    pub(crate) async fn changed(&self) {
        self.shared.woken().await;
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.tail.lock_followers().remove(self.id);
        self.tail
            .following
            .send_modify(|n| *n = n.saturating_sub(1));
    }
}
