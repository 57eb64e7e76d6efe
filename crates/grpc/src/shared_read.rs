//! One database read per change of a case, however many streams watch it.
//!
//! Every `WatchCase` stream re-reads its case when the hub wakes it. Ten thousand watchers of
//! one case would mean ten thousand identical reads queueing for the connection pool for every
//! change. Instead the watchers of a case share a slot, and reads are stamped with the hub's
//! generation of the case when they start (`CaseWatch::latest_generation`). A watcher that last
//! saw generation `g` (at subscription or at its latest wake-up) needs a read stamped `g` or
//! later: the notification behind `g` followed its commit, so such a read sees that commit. It
//! takes the slot's last result when that qualifies, and otherwise reads itself while the others
//! wait on the slot and then reuse what it read. All the watchers woken by one notification
//! (or opened together on one case) thus share one read.
//!
//! The last result is kept under a plain lock that every watcher checks first; only a watcher
//! that finds it too old takes the slot's async lock, to read or to wait for the read running.
//! Ten thousand watchers woken together would otherwise pass through the async lock one by
//! one, each release waking the next (3 % of the fan-out's samples went to that hand-over
//! chain), although all but the first find the read done.
//!
//! A read stamped with the generation a watcher subscribed at may have started just before the
//! subscription. That is safe: a change committed in between either reached the hub before the
//! subscription (then the watcher saw a later generation and reads again) or reaches it after,
//! and wakes the watcher.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Weak},
};

use verdict_bus::CaseWatch;
use verdict_domain::{Case, CaseStore, Error};

/// Which reads can be shared: the same case with the same view.
type Key = (String, bool);

/// The slots of every watched case, shared by all streams of this server.
#[derive(Debug)]
pub(crate) struct SharedReads {
    store: Arc<dyn CaseStore>,
    slots: Mutex<HashMap<Key, Weak<Slot>>>,
}

/// The last read of one case, and the lock that makes concurrent watchers wait for one read.
#[derive(Debug, Default)]
struct Slot {
    last: Mutex<Option<LastRead>>,
    reading: tokio::sync::Mutex<()>,
}

impl Slot {
    /// The case as the last read saw it, if that read started at generation `needed` or later.
    fn fresh(&self, needed: u64) -> Option<Option<Arc<Case>>> {
        let last = self.last.lock().expect("last read lock poisoned");
        last.as_ref()
            .filter(|read| read.generation >= needed)
            .map(|read| read.case.clone())
    }
}

#[derive(Debug)]
struct LastRead {
    /// The hub's generation of the case when the read started.
    generation: u64,
    case: Option<Arc<Case>>,
}

impl SharedReads {
    /// Reads go to `store`.
    pub(crate) fn new(store: Arc<dyn CaseStore>) -> Arc<Self> {
        Arc::new(Self {
            store,
            slots: Mutex::default(),
        })
    }

    /// The reader one stream uses for its case; the slot lives while any reader of it does.
    pub(crate) fn reader(self: &Arc<Self>, scan_ref: &str, with_person: bool) -> CaseReader {
        let key = (scan_ref.to_owned(), with_person);
        let mut slots = self.slots.lock().expect("slot map lock poisoned");
        let slot = match slots.get(&key).and_then(Weak::upgrade) {
            Some(slot) => slot,
            None => {
                let slot = Arc::new(Slot::default());
                slots.insert(key.clone(), Arc::downgrade(&slot));
                slot
            }
        };
        CaseReader {
            reads: Arc::clone(self),
            key,
            slot,
        }
    }

    #[cfg(test)]
    fn slot_count(&self) -> usize {
        self.slots.lock().expect("slot map lock poisoned").len()
    }
}

/// One stream's access to the shared reads of its case.
#[derive(Debug)]
pub(crate) struct CaseReader {
    reads: Arc<SharedReads>,
    key: Key,
    slot: Arc<Slot>,
}

impl CaseReader {
    /// The case as seen by a read that started once the hub was at the generation `watch` (of
    /// this case) last saw, or later.
    ///
    /// For the BASIC view, the case as this process committed it when the hub holds it: the
    /// newest revision anyone told the hub of, so as new as such a read (see
    /// [`CaseWatch::committed`]); the watcher of a local commit sends it without a read.
    ///
    /// Shared, not copied: every watcher of the case gets the same one.
    pub(crate) async fn read(&self, watch: &CaseWatch) -> Result<Option<Arc<Case>>, Error> {
        if !self.key.1
            && let Some(committed) = watch.committed()
        {
            return Ok(Some(committed));
        }
        let needed = watch.seen_generation();
        if let Some(case) = self.slot.fresh(needed) {
            return Ok(case);
        }
        let _reading = self.slot.reading.lock().await;
        // The read this watcher waited for may be the one it needs.
        if let Some(case) = self.slot.fresh(needed) {
            return Ok(case);
        }
        let generation = watch.latest_generation();
        // A failed read is not cached: the next waiter tries again.
        let case = self
            .reads
            .store
            .case(&self.key.0, self.key.1)
            .await?
            .map(Arc::new);
        *self.slot.last.lock().expect("last read lock poisoned") = Some(LastRead {
            generation,
            case: case.clone(),
        });
        Ok(case)
    }
}

impl Drop for CaseReader {
    fn drop(&mut self) {
        let mut slots = self.reads.slots.lock().expect("slot map lock poisoned");
        // Readers are only created under this lock, so nobody can revive the slot meanwhile.
        if Arc::strong_count(&self.slot) == 1 {
            slots.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests;
