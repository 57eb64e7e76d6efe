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
//! The reader runs only while streams follow the feed: idle, it holds no hub subscription and
//! reads nothing, and on waking it starts over at the head if the feed moved further than the
//! window holds.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
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

mod window;

pub(crate) use window::Walk;
use window::Window;

/// Changes per database read of the reader.
const BATCH: u32 = 512;

/// How often `verdict.watch.feed_lag` is recomputed while streams follow the feed (also after
/// every read), so a stream catching up shows without waiting for a change.
const LAG_EVERY: Duration = Duration::from_secs(1);

/// What the reader tells the streams whenever something happens; they wake on every change.
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

/// The position of every stream following the feed, for the lag gauge.
#[derive(Debug, Default)]
struct Followers {
    next_id: u64,
    positions: HashMap<u64, Arc<AtomicU64>>,
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

    /// Registers a stream starting at the window's head (see [`Follower::set_position`]) and
    /// wakes the reader if it was idle.
    pub(crate) fn follow(self: &Arc<Self>) -> Follower {
        let position = Arc::new(AtomicU64::new(self.head().0));
        let id = {
            let mut followers = self.lock_followers();
            let id = followers.next_id;
            followers.next_id += 1;
            followers.positions.insert(id, Arc::clone(&position));
            id
        };
        self.following.send_modify(|n| *n += 1);
        Follower {
            tail: Arc::clone(self),
            id,
            position,
            progress: self.progress.subscribe(),
        }
    }

    /// The newest position the window covers (at most the feed's head).
    pub(crate) fn head(&self) -> Cursor {
        self.read_window().head()
    }

    /// Where `position` stands against the window, with at most `max` matches of `filter`.
    pub(crate) fn walk(&self, position: Cursor, filter: &FeedFilter, max: usize) -> Walk {
        self.read_window().walk(position, filter, max)
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
            } else if head.0 - current.0 > self.capacity as u64 {
                self.write_window().reset(head);
                self.progress.send_modify(|p| p.head = head);
            }
        }
        loop {
            // Only this task writes the window, so its head cannot move meanwhile.
            let batch = self
                .store
                .changes_after(&FeedQuery::after(self.head(), BATCH))
                .await?;
            let short = batch.len() < BATCH as usize;
            if !batch.is_empty() {
                let head = {
                    let mut window = self.write_window();
                    if !window.extend(batch) {
                        return Err(Error::Internal(
                            "the store returned a feed change at or below the position asked after"
                                .into(),
                        ));
                    }
                    window.head()
                };
                self.progress.send_modify(|p| p.head = head);
            }
            if short {
                return Ok(());
            }
        }
    }

    /// `verdict.watch.feed_lag`: positions between the window's head and the slowest stream.
    fn record_lag(&self) {
        let head = self.head().0;
        let slowest = self
            .lock_followers()
            .positions
            .values()
            .map(|p| p.load(Ordering::Relaxed))
            .min();
        metrics().watch_feed_lag(slowest.map_or(0, |p| head.saturating_sub(p)));
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

/// One stream following the tail: its position (for the lag gauge) and its wake-ups. Dropping
/// it unregisters the stream.
#[derive(Debug)]
pub(crate) struct Follower {
    tail: Arc<FeedTail>,
    id: u64,
    position: Arc<AtomicU64>,
    progress: watch::Receiver<Progress>,
}

impl Follower {
    /// The tail this follower walks.
    pub(crate) fn tail(&self) -> &FeedTail {
        &self.tail
    }

    /// Everything up to `position` has been examined by this stream.
    pub(crate) fn set_position(&self, position: Cursor) {
        self.position.store(position.0, Ordering::Relaxed);
    }

    /// The latest progress, marked seen: [`Follower::changed`] then waits for the next one.
    pub(crate) fn progress(&mut self) -> Progress {
        *self.progress.borrow_and_update()
    }

    /// Resolves when the reader made progress (or failed) since [`Follower::progress`].
    /// Cancel-safe.
    pub(crate) async fn changed(&mut self) {
        if self.progress.changed().await.is_err() {
            // Unreachable: the tail, which owns the sender, lives as long as this follower.
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.tail.lock_followers().positions.remove(&self.id);
        self.tail
            .following
            .send_modify(|n| *n = n.saturating_sub(1));
    }
}
