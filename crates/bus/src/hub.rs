//! The in-process fan-out hub: every notification this process learns of (from its own commits,
//! from Redis, from the resync) goes through [`Hub::notify`], and every watcher waits on it.
//!
//! One `tokio::sync::watch` per watched case holds the newest revision known, shared by all the
//! watchers of that case: a burst of changes conflates into one wake-up carrying the latest value,
//! so a slow reader costs O(1) memory and never slows the writer. A second `watch` carries the
//! highest feed position for `WatchCases`. Nothing here queues.
//!
//! Every value a case's `watch` takes is stamped with a generation from one counter for the whole
//! hub, so generations only grow, across cases and across a case's entry going and coming back.
//! A database read that starts once the hub is at generation `g` sees every change whose
//! notification the hub had received by `g`: watchers woken by the same notification can share
//! one read (see the gRPC crate's shared reads).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};

use tokio::sync::watch;
use verdict_domain::{Case, Cursor, Notification};
use verdict_telemetry::metrics::metrics;

#[cfg(test)]
mod tests;

/// What a watcher learns: "case X is at least at revision R". A hint only: the watcher re-reads
/// the database, which may already be further along.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signal {
    /// The newest revision the hub knows of (0 until the first notification).
    pub revision: u64,
    /// The W3C traceparent of the change that brought `revision`, so the delivery can join the
    /// webhook's trace. It belongs to `revision` only: use it when the revision read from the
    /// database equals `revision`.
    pub traceparent: Option<String>,
    /// The case at `revision` when this process committed it ([`Notification::committed`]):
    /// as new as anything the hub was told, so a watcher of the BASIC view sends it without a
    /// read. `None` for changes learnt otherwise, and after [`Hub::wake_all`], which asks for
    /// a read.
    pub committed: Option<Arc<Case>>,
}

/// Told of every case this process commits, as its notification reaches the hub, whether or
/// not anyone watches it: the `GetCase` cache keeps what was just written instead of reading it
/// back. Called on the publishing task, so it must be quick and must not block.
pub trait CommitListener: Send + Sync {
    /// `case` (without its person) was committed at feed `position`.
    fn committed(&self, case: &Arc<Case>, position: Cursor);
}

/// The process-wide fan-out point between the bus (and the resync) and the watchers. Keeps the
/// `verdict.watch.cases` gauge (cases with at least one watcher).
pub struct Hub {
    cases: Mutex<HashMap<String, CaseEntry>>,
    /// Held weakly: a listener goes when its owner does.
    listeners: RwLock<Vec<Weak<dyn CommitListener>>>,
    /// Highest feed position signalled; woken on every notification.
    feed: watch::Sender<u64>,
    /// The last generation handed out; see the module docs.
    generation: AtomicU64,
}

/// One watched case: the shared signal and how many [`CaseWatch`]es hold it.
struct CaseEntry {
    signal: watch::Sender<Stamped>,
    watchers: usize,
}

/// A case's signal with the generation at which it took this value.
#[derive(Debug)]
struct Stamped {
    signal: Signal,
    generation: u64,
}

impl Hub {
    /// A hub with no watchers, shared as `Arc<Hub>` by the bus, the resync and the watchers.
    pub fn new() -> Arc<Hub> {
        Arc::new(Hub {
            cases: Mutex::new(HashMap::new()),
            listeners: RwLock::default(),
            feed: watch::Sender::new(0),
            generation: AtomicU64::new(0),
        })
    }

    /// Wakes the watchers of `n.scan_ref` if `n.revision` is newer than what the hub knew, and
    /// the feed watchers. Cheap and non-blocking: safe to call from any task or callback.
    pub fn notify(&self, n: &Notification) {
        self.bump_case(
            &n.scan_ref,
            n.revision,
            n.traceparent.as_deref(),
            n.committed.as_ref(),
        );
        self.feed
            .send_modify(|seen| *seen = (*seen).max(n.position.0));
        if let Some(case) = &n.committed {
            let listeners = self
                .listeners
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            for listener in listeners.iter().filter_map(Weak::upgrade) {
                listener.committed(case, n.position);
            }
        }
    }

    /// Tells `listener` of every commit notified from now on, while it lives.
    pub fn listen(&self, listener: Weak<dyn CommitListener>) {
        let mut listeners = self
            .listeners
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        listeners.retain(|held| held.strong_count() > 0);
        listeners.push(listener);
    }

    /// Raises the known revision of a watched case and wakes its watchers; false when nobody
    /// watches the case or the hub already knew this revision (so it woke nobody).
    pub(crate) fn bump_case(
        &self,
        scan_ref: &str,
        revision: u64,
        traceparent: Option<&str>,
        committed: Option<&Arc<Case>>,
    ) -> bool {
        let cases = self.lock();
        let Some(entry) = cases.get(scan_ref) else {
            return false;
        };
        entry.signal.send_if_modified(|stamped| {
            if revision <= stamped.signal.revision {
                return false;
            }
            stamped.signal.revision = revision;
            stamped.signal.traceparent = traceparent.map(str::to_owned);
            stamped.signal.committed = committed.cloned();
            stamped.generation = self.next_generation();
            true
        })
    }

    /// Raises the feed position to `head` and wakes the feed watchers if the hub was behind;
    /// true when it was.
    pub(crate) fn advance_feed(&self, head: u64) -> bool {
        self.feed.send_if_modified(|seen| {
            if head <= *seen {
                return false;
            }
            *seen = head;
            true
        })
    }

    /// Subscribes to one case. Subscribe BEFORE reading the snapshot: a change committed after
    /// the read then always wakes this watch (possibly spuriously, never too late). The case need
    /// not exist yet. Every watcher of a case shares one `watch`; the entry goes away when the
    /// last [`CaseWatch`] of the case drops.
    pub fn watch_case(self: &Arc<Self>, scan_ref: &str) -> CaseWatch {
        let (rx, seen) = {
            let mut cases = self.lock();
            let entry = cases.entry(scan_ref.to_owned()).or_insert_with(|| {
                metrics().watched_cases(1);
                CaseEntry {
                    signal: watch::Sender::new(Stamped {
                        signal: Signal::default(),
                        generation: self.next_generation(),
                    }),
                    watchers: 0,
                }
            });
            entry.watchers += 1;
            let rx = entry.signal.subscribe();
            // Under the lock, so no notification slips in between.
            let seen = rx.borrow().generation;
            (rx, seen)
        };
        CaseWatch {
            hub: Arc::clone(self),
            scan_ref: scan_ref.to_owned(),
            rx,
            seen,
        }
    }

    /// Subscribes to "some case changed" (for `WatchCases`). Like [`Hub::watch_case`], subscribe
    /// before reading the feed.
    pub fn watch_feed(&self) -> FeedWatch {
        FeedWatch {
            rx: self.feed.subscribe(),
            _sender: self.feed.clone(),
        }
    }

    /// `(scan_ref, highest revision known)` of every watched case: the input of the batched
    /// re-read that catches what pub/sub dropped.
    pub fn watched_cases(&self) -> Vec<(String, u64)> {
        self.lock()
            .iter()
            .map(|(scan_ref, entry)| (scan_ref.clone(), entry.signal.borrow().signal.revision))
            .collect()
    }

    /// The highest feed position signalled so far (0 before the first).
    pub fn feed_position(&self) -> u64 {
        *self.feed.borrow()
    }

    /// Wakes every case and feed watcher without changing the revisions they are told, so they
    /// all re-read the database: after a Redis (re)connect, whatever was published while the
    /// subscription was down is lost and only a re-read recovers it (so no committed case
    /// stands in for the read).
    pub fn wake_all(&self) {
        for entry in self.lock().values() {
            entry.signal.send_modify(|stamped| {
                stamped.signal.committed = None;
                stamped.generation = self.next_generation();
            });
        }
        self.feed.send_modify(|_| {});
    }

    /// How many cases have at least one watcher.
    pub fn watched_case_count(&self) -> usize {
        self.lock().len()
    }

    /// Active [`CaseWatch`]es plus [`FeedWatch`]es (the active-watchers gauge).
    pub fn watcher_count(&self) -> usize {
        let cases: usize = self.lock().values().map(|entry| entry.watchers).sum();
        cases + self.feed.receiver_count()
    }

    /// A generation above every one handed out before.
    fn next_generation(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, CaseEntry>> {
        // The map stays consistent even if a holder panicked: every critical section is a
        // single insert, update or remove.
        self.cases.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn release(&self, scan_ref: &str) {
        let mut cases = self.lock();
        if let Some(entry) = cases.get_mut(scan_ref) {
            entry.watchers = entry.watchers.saturating_sub(1);
            if entry.watchers == 0 {
                cases.remove(scan_ref);
                metrics().watched_cases(-1);
            }
        }
    }
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("watched_cases", &self.watched_case_count())
            .field("watchers", &self.watcher_count())
            .field("feed_position", &self.feed_position())
            .finish()
    }
}

/// A subscription to one case; see [`Hub::watch_case`]. Dropping it unsubscribes.
pub struct CaseWatch {
    hub: Arc<Hub>,
    scan_ref: String,
    rx: watch::Receiver<Stamped>,
    /// The generation of the last value this watch saw (at subscription, then at each wake-up).
    seen: u64,
}

impl CaseWatch {
    /// Resolves when the case may have changed (a newer revision was notified, or
    /// [`Hub::wake_all`] ran) and returns the latest signal; intermediate revisions are
    /// conflated. Cancel-safe, so it can sit in a `select!` next to a heartbeat timer.
    pub async fn changed(&mut self) -> Signal {
        if self.rx.changed().await.is_err() {
            // Unreachable: the hub keeps the sender while this watch is registered in it.
            std::future::pending::<()>().await;
        }
        let stamped = self.rx.borrow_and_update();
        self.seen = stamped.generation;
        stamped.signal.clone()
    }

    /// The latest signal without waiting (and without marking it seen).
    pub fn current(&self) -> Signal {
        self.rx.borrow().signal.clone()
    }

    /// The case as committed by this process at the newest revision the hub knows, if it was
    /// (see [`Signal::committed`]): a read would return this revision or a newer one that the
    /// hub has not heard of yet, which will wake this watch when it does.
    pub fn committed(&self) -> Option<Arc<Case>> {
        self.rx.borrow().signal.committed.clone()
    }

    /// The generation of the last value this watch saw: a read of the case that started once
    /// the hub was at this generation or later sees everything this watch was told about.
    pub fn seen_generation(&self) -> u64 {
        self.seen
    }

    /// The case's newest generation, seen or not: stamp a read with this just before it starts.
    pub fn latest_generation(&self) -> u64 {
        self.rx.borrow().generation
    }

    /// The case this watch follows.
    pub fn scan_ref(&self) -> &str {
        &self.scan_ref
    }
}

impl Drop for CaseWatch {
    fn drop(&mut self) {
        self.hub.release(&self.scan_ref);
    }
}

impl fmt::Debug for CaseWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaseWatch")
            .field("scan_ref", &self.scan_ref)
            .field("signal", &self.rx.borrow().signal)
            .field("seen_generation", &self.seen)
            .finish()
    }
}

/// A subscription to "some case changed"; see [`Hub::watch_feed`].
#[derive(Debug)]
pub struct FeedWatch {
    rx: watch::Receiver<u64>,
    // Keeps the channel open even if the hub goes away first, so `changed` never spins.
    _sender: watch::Sender<u64>,
}

impl FeedWatch {
    /// Resolves when some case may have changed and returns the highest feed position
    /// signalled so far. The watcher then reads the feed after its own cursor (positions from
    /// several replicas may arrive out of order, so this is a wake-up, not a bound). Cancel-safe.
    pub async fn changed(&mut self) -> u64 {
        // Cannot fail: this watch holds a sender.
        let _ = self.rx.changed().await;
        *self.rx.borrow_and_update()
    }
}
