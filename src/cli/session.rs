//! The use cases for a short-lived command (`quarantine reprocess`, `replay`, `reconcile`,
//! `purge`): the database of `VERDICT_DATABASE_URL`, the deployment's bus — so watchers on every
//! replica see what the command changes — and every publish finished before it exits.

use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use verdict_bus::Hub;
use verdict_ingest::Ingest;
use verdict_lifecycle::Lifecycle;

use crate::config::{BusConfig, DatabaseConfig};

/// An open store and bus with the use cases over them.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) ingest: Ingest,
    pub(super) lifecycle: Lifecycle,
    /// Stops the Redis subscriber the bus runs.
    shutdown: CancellationToken,
}

impl Session {
    /// Opens the database and connects the bus as `serve` would.
    pub(super) async fn open(db: &DatabaseConfig, bus: &BusConfig) -> anyhow::Result<Self> {
        let store = Arc::new(db.connect().await.context("could not open the database")?);
        let shutdown = CancellationToken::new();
        let bus = bus
            .connect(Hub::new(), shutdown.clone())
            .await
            .context("could not set up the change bus")?;
        Ok(Self {
            ingest: Ingest::new(store.clone(), bus.publisher.clone()),
            lifecycle: Lifecycle::new(store, bus.publisher),
            shutdown,
        })
    }

    /// Waits until every change recorded or purged so far was published, then stops the bus.
    pub(super) async fn close(self) {
        self.ingest.flush().await;
        self.lifecycle.flush().await;
        self.shutdown.cancel();
    }
}
