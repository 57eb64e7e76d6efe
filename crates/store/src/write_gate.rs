//! Turns for SQLite's single write lock, taken before a connection is, on one connection kept
//! for writing.
//!
//! A SQLite database has one write lock. A writer that finds it held waits inside SQLite's busy
//! handler, which sleeps in growing steps (up to 100 ms), on a connection taken from the pool.
//! Under concurrent webhooks the pool filled with such sleeping writers: reads (a `WatchCase`
//! opening, `GetCase`) queued for seconds behind them, writes missed their deadline and were
//! answered 503. So writers take turns here first, in arrival order and without a connection;
//! only the writer whose turn it is writes, and its `BEGIN IMMEDIATE` finds the lock free.
//! Other processes on the same file (the CLI) still meet the busy handler, as before.
//!
//! The writer whose turn it is writes on the gate's own connection, never a pooled one. In WAL
//! mode a connection that finds the database changed by another connection since its last
//! transaction throws its whole page cache away; with writes spread over sixteen pooled
//! connections every write began that way, reading the pages it needed (the case and delivery
//! indexes, the feed counter) back from the file. One writing connection keeps its cache warm,
//! since only it changes the database.
//!
//! Deliveries wait here together and are written in one transaction by whoever gets the turn
//! (group commit, `record::group_commit`).
//!
//! PostgreSQL locks rows, not the database: there is no gate there.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::record::Waiting;

/// The turn-taking of one store's writers; see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct WriteGate(Option<Gate>);

#[derive(Debug, Clone)]
struct Gate {
    writer: Arc<Mutex<DatabaseConnection>>,
    waiting: Arc<Waiting>,
}

/// A writer's turn: the next one waits until this is dropped (after the commit or rollback).
#[derive(Debug)]
pub(crate) struct Turn {
    held: Option<OwnedMutexGuard<DatabaseConnection>>,
}

impl WriteGate {
    /// No gate: PostgreSQL.
    pub(crate) fn open() -> Self {
        Self(None)
    }

    /// A gate whose writers write on `writer` (a pool of one SQLite connection; for an in-memory
    /// database the pool itself, whose one connection is the database).
    pub(crate) fn sqlite(writer: DatabaseConnection) -> Self {
        Self(Some(Gate {
            writer: Arc::new(Mutex::new(writer)),
            waiting: Arc::default(),
        }))
    }

    /// Waits for this writer's turn (tokio's mutex is fair: first come, first served).
    pub(crate) async fn turn(&self) -> Turn {
        match &self.0 {
            Some(gate) => Turn {
                held: Some(Arc::clone(&gate.writer).lock_owned().await),
            },
            None => Turn { held: None },
        }
    }

    /// The deliveries waiting to be written together, where there is a gate.
    pub(crate) fn waiting(&self) -> Option<&Waiting> {
        self.0.as_ref().map(|gate| &*gate.waiting)
    }
}

impl Turn {
    /// Where this writer writes: the gate's connection, or `pool` where there is no gate.
    pub(crate) fn connection<'a>(&'a self, pool: &'a DatabaseConnection) -> &'a DatabaseConnection {
        self.held.as_deref().unwrap_or(pool)
    }
}
