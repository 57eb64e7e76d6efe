//! Change notification: how a committed change reaches every watcher on every replica.
//!
//! The database is the truth; everything here only carries hints ("case X is at least at
//! revision R"), so watchers re-read the database when woken and nothing is lost when a hint is.
//! The one exception stays inside the process that committed a change: its notification
//! carries the committed case, which the hub hands to BASIC watchers and commit listeners.
//!
//! - [`Hub`] fans hints out inside one process: one `tokio::sync::watch` per watched case (latest
//!   value wins, so a slow reader costs O(1) memory) and one for the change feed.
//! - [`LocalBus`] is the [`ChangeBus`](verdict_domain::ChangeBus) of a single replica.
//! - [`RedisBus`] carries hints between replicas over one Redis pub/sub channel, with one
//!   subscription per process however many watchers there are.
//! - [`Resync`] is the safety net for what pub/sub drops: a periodic batched re-read of every
//!   watched case and of the feed head.

mod error;
mod hub;
mod local;
mod redis_bus;
mod resync;
mod trace;

pub use error::Error;
pub use hub::{CaseWatch, CommitListener, FeedWatch, Hub, Signal};
pub use local::LocalBus;
pub use redis_bus::RedisBus;
pub use resync::{DEFAULT_RESYNC_DEGRADED_INTERVAL, DEFAULT_RESYNC_INTERVAL, Resync};
