//! Turns for writers: on SQLite for its single write lock, taken before a connection is, on one
//! connection kept for writing; on both backends for batches of deliveries (group commit).
//!
//! A SQLite database has one write lock. A writer that finds it held waits inside SQLite's busy
//! handler, which sleeps in growing steps (up to 100 ms), on a connection taken from the pool.
//! Under concurrent webhooks the pool filled with such sleeping writers: reads (a `WatchCase`
//! opening, `GetCase`) queued for seconds behind them, writes missed their deadline and were
//! answered 503. So writers take turns here first, in arrival order and without a connection;
//! only the writer whose turn it is writes, and its `BEGIN IMMEDIATE` finds the lock free.
//! Other processes on the same file (the CLI) still meet the busy handler, as before.
//!
//! The writer whose turn it is writes on the gate's own connections, never a pooled one. In WAL
//! mode a connection that finds the database changed by another connection since its last
//! transaction throws its whole page cache away; with writes spread over sixteen pooled
//! connections every write began that way, reading the pages it needed (the case and delivery
//! indexes, the feed counter) back from the file. A writing connection of its own keeps the
//! deliveries' cache warm, since almost only it changes the database.
//!
//! Deliveries are written on a connection the gate keeps out of that pool, in transactions
//! whose `BEGIN` and `COMMIT` travel with their statements (`sqlite_write`); the pool's
//! connection writes the rest (purges, quarantined bodies, reconciliation). A delivery
//! transaction that does not commit leaves no connection behind: the gate drops it, and closing
//! it rolls back whatever it left open; the next takes a new one.
//!
//! PostgreSQL locks rows, not the database: a purge or a quarantined body writes whenever it
//! likes, on the pool. Deliveries still take turns, because they wait together and are written
//! in one transaction by whoever gets a turn (group commit, `record::group_commit`): with
//! sixteen webhooks in flight, sixteen transactions queued on the feed counter's row lock, each
//! paying its own commit while the others waited. Two batches per replica may be written at
//! once, so one is written while the other commits (`verdict-bench ingest --quick`, PostgreSQL
//! c=4, three alternating runs each: 0.70 / 0.66 of the ceiling with one, 0.77 / 0.71 / 0.75
//! with two, 0.70 / 0.75 with four).

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use sea_orm::sqlx::SqliteConnection;
use tokio::sync::{Mutex, OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

use crate::Error;
use crate::connect::detached;
use crate::record::Waiting;

/// Batches of deliveries written at once on PostgreSQL, per replica: while one commits, the next
/// one is written.
const POSTGRES_BATCHES: usize = 2;

/// The turn-taking of one store's writers; see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct WriteGate {
    turns: Turns,
    waiting: Arc<Waiting>,
}

#[derive(Debug, Clone)]
enum Turns {
    /// Every writer in turn, on the writing connections.
    Sqlite(Arc<Mutex<SqliteWriter>>),
    /// Batches of deliveries only, [`POSTGRES_BATCHES`] at a time, on the pool.
    Postgres(Arc<Semaphore>),
}

/// A writer's turn: the next one waits until this is dropped (after the commit or rollback).
#[derive(Debug)]
pub(crate) enum Turn {
    /// No turn was needed: PostgreSQL outside batches of deliveries.
    Free,
    Writer(OwnedMutexGuard<SqliteWriter>),
    Batch(#[expect(dead_code, reason = "held for its drop")] OwnedSemaphorePermit),
}

impl WriteGate {
    /// PostgreSQL: only batches of deliveries take turns.
    pub(crate) fn postgres() -> Self {
        Self {
            turns: Turns::Postgres(Arc::new(Semaphore::new(POSTGRES_BATCHES))),
            waiting: Arc::default(),
        }
    }

    /// SQLite: every writer takes its turn and writes on `writer` (a pool of one connection; for
    /// an in-memory database the pool itself, whose one connection is the database). Deliveries
    /// are written on a connection of their own taken out of `writer`'s pool, unless
    /// `in_memory`.
    pub(crate) fn sqlite(writer: DatabaseConnection, in_memory: bool) -> Self {
        let writer = SqliteWriter {
            pool: writer,
            deliveries: None,
            may_take: !in_memory,
        };
        Self {
            turns: Turns::Sqlite(Arc::new(Mutex::new(writer))),
            waiting: Arc::default(),
        }
    }

    /// Waits for this writer's turn where writers take turns (tokio's mutex is fair: first come,
    /// first served); on PostgreSQL a purge or a quarantined body needs none.
    pub(crate) async fn turn(&self) -> Turn {
        match &self.turns {
            Turns::Sqlite(_) => self.batch_turn().await,
            Turns::Postgres(_) => Turn::Free,
        }
    }

    /// Waits for the turn of a batch of deliveries, on either backend.
    pub(crate) async fn batch_turn(&self) -> Turn {
        match &self.turns {
            Turns::Sqlite(writer) => Turn::Writer(Arc::clone(writer).lock_owned().await),
            Turns::Postgres(batches) => match Arc::clone(batches).acquire_owned().await {
                Ok(permit) => Turn::Batch(permit),
                // Never closed.
                Err(_) => Turn::Free,
            },
        }
    }

    /// The deliveries waiting to be written together.
    pub(crate) fn waiting(&self) -> &Waiting {
        &self.waiting
    }
}

/// SQLite's writing connections: a pool of one for every writer, and the deliveries' own.
#[derive(Debug)]
pub(crate) struct SqliteWriter {
    pool: DatabaseConnection,
    /// Out of `pool`, taken when first needed; `None` while a transaction uses it, and after
    /// one that did not commit.
    deliveries: Option<SqliteConnection>,
    /// `false` for an in-memory database, whose one connection must stay in its pool.
    may_take: bool,
}

impl Turn {
    /// Where this writer writes through SeaORM: SQLite's writing pool, or `pool`.
    pub(crate) fn connection<'a>(&'a self, pool: &'a DatabaseConnection) -> &'a DatabaseConnection {
        match self {
            Self::Writer(writer) => &writer.pool,
            Self::Free | Self::Batch(_) => pool,
        }
    }

    /// SQLite's connection for deliveries, taken out for one transaction (a new one if the last
    /// did not come back): give it back with [`Turn::give_back`] once the transaction committed.
    /// `None` on PostgreSQL and for an in-memory database: deliveries go through SeaORM there.
    pub(crate) async fn take_deliveries(&mut self) -> Option<Result<SqliteConnection, Error>> {
        let Self::Writer(writer) = self else {
            return None;
        };
        if !writer.may_take {
            return None;
        }
        if let Some(connection) = writer.deliveries.take() {
            return Some(Ok(connection));
        }
        Some(detached(writer.pool.get_sqlite_connection_pool()).await)
    }

    /// Gives back the connection [`Turn::take_deliveries`] gave, after its transaction
    /// committed.
    pub(crate) fn give_back(&mut self, connection: SqliteConnection) {
        if let Self::Writer(writer) = self {
            writer.deliveries = Some(connection);
        }
    }
}
