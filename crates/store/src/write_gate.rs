//! Turns for SQLite's single write lock, taken before a connection is.
//!
//! A SQLite database has one write lock. A writer that finds it held waits inside SQLite's busy
//! handler, which sleeps in growing steps (up to 100 ms), on a connection taken from the pool.
//! Under concurrent webhooks the pool filled with such sleeping writers: reads (a `WatchCase`
//! opening, `GetCase`) queued for seconds behind them, writes missed their deadline and were
//! answered 503. So writers take turns here first, in arrival order and without a connection;
//! only the writer whose turn it is takes one, and its `BEGIN IMMEDIATE` finds the lock free.
//! Other processes on the same file (the CLI) still meet the busy handler, as before.
//!
//! PostgreSQL locks rows, not the database: there is no gate there.

use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::Backend;

/// The turn-taking of one store's writers; see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct WriteGate(Option<Arc<Mutex<()>>>);

/// A writer's turn: the next one waits until this is dropped (after the commit or rollback).
#[derive(Debug)]
pub(crate) struct Turn {
    _held: Option<OwnedMutexGuard<()>>,
}

impl WriteGate {
    /// A gate on SQLite, none on PostgreSQL.
    pub(crate) fn for_backend(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Self(Some(Arc::new(Mutex::new(())))),
            Backend::Postgres => Self(None),
        }
    }

    /// Waits for this writer's turn (tokio's mutex is fair: first come, first served).
    pub(crate) async fn turn(&self) -> Turn {
        match &self.0 {
            Some(lock) => Turn {
                _held: Some(Arc::clone(lock).lock_owned().await),
            },
            None => Turn { _held: None },
        }
    }
}
