//! The database ceiling: the rows one new webhook produces (case, person, delivery with its
//! 4–5 KB body, feed counter bump, case position, feed entry) written in one transaction with prepared
//! statements straight through sqlx — no HTTP, no ORM, no domain logic — on the service's own
//! schema and with the service's durability (PostgreSQL defaults; SQLite WAL with
//! `synchronous=FULL`, so an acknowledged webhook survives power loss on both sides of the
//! ratio). Its pool skips sqlx's ping before each checkout, as the service's does for connections
//! in use.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use sea_orm::sqlx::postgres::PgPoolOptions;
use sea_orm::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sea_orm::sqlx::{self, AssertSqlSafe, PgPool, SqlitePool};

use super::Backend;

const PERSON: &str = "INSERT INTO case_persons (scan_ref, first_name, last_name, date_of_birth, nationality, sex, document_type, document_number, document_expiry, issuing_country) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
const DELIVERY: &str = "INSERT INTO deliveries (scan_ref, event_type, body, body_sha256, content_sha256, outcome, is_final, revision, overall_status, received_at, traceparent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
const COUNTER: &str = "UPDATE feed_counter SET value = value + 1 WHERE id = 1 RETURNING value";
const CASE: &str = "INSERT INTO cases (scan_ref, client_id, external_ref, decision, is_final, overall_status, last_event_type, revision, auto_document, auto_face, manual_document, manual_face, fraud_tags, mismatch_tags, suspicion_reasons, created_at, updated_at, finalized_at, last_position, decisive_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)";
const CHANGE: &str = "INSERT INTO case_changes (position, scan_ref, revision, is_final, snapshot, traceparent, committed_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
const POSITION: &str = "UPDATE cases SET last_position = $1 WHERE scan_ref = $2";
const SNAPSHOT: &str = r#"{"scanRef":"x","clientId":"123","decision":"approved","final":true,"overallStatus":"APPROVED","lastEventType":"IDENTIFICATION_AUTO_FINISHED","revision":1,"autoDocument":"DOC_VALIDATED","autoFace":"FACE_MATCH","manualDocument":"DOC_VALIDATED","manualFace":"FACE_MATCH","fraudTags":[],"mismatchTags":[],"suspicionReasons":[]}"#;

#[derive(Debug, Clone)]
enum Pool {
    Pg(PgPool),
    Sqlite(SqlitePool),
}

/// Writes webhook-shaped transactions into a fresh database.
#[derive(Debug, Clone)]
pub(crate) struct DbPeer {
    pool: Pool,
    body: Bytes,
    prefix: String,
    next: Arc<AtomicU64>,
}

/// One closed-loop run of the peer.
#[derive(Debug, Default)]
pub(crate) struct PeerOutcome {
    /// Transactions committed over the whole run.
    pub(crate) committed: u64,
    pub(crate) failed: u64,
    pub(crate) latencies: Vec<Duration>,
}

macro_rules! transaction {
    ($pool:expr, $this:expr, $sql:expr) => {{
        let id = $this.next.fetch_add(1, Ordering::Relaxed);
        let scan_ref = format!("{}{id:012}", $this.prefix);
        let now = Utc::now();
        let mut tx = $pool.begin().await?;
        sqlx::query(AssertSqlSafe($sql(CASE)))
            .bind(&scan_ref)
            .bind("123")
            .bind("external-ref")
            .bind("approved")
            .bind(true)
            .bind("APPROVED")
            .bind("IDENTIFICATION_AUTO_FINISHED")
            .bind(1_i64)
            .bind("DOC_VALIDATED")
            .bind("FACE_MATCH")
            .bind("DOC_VALIDATED")
            .bind("FACE_MATCH")
            .bind("[]")
            .bind("[]")
            .bind("[]")
            .bind(now)
            .bind(now)
            .bind(Some(now))
            .bind(0_i64)
            .bind(Some(now))
            .execute(&mut *tx)
            .await?;
        sqlx::query(AssertSqlSafe($sql(PERSON)))
            .bind(&scan_ref)
            .bind("FIRST-NAME-EXAMPLE")
            .bind("LAST-NAME-EXAMPLE")
            .bind("YYYY-MM-DD")
            .bind("LT")
            .bind("MALE")
            .bind("ID_CARD")
            .bind("XXXXXXXXX")
            .bind("YYYY-MM-DD")
            .bind("LT")
            .execute(&mut *tx)
            .await?;
        sqlx::query(AssertSqlSafe($sql(DELIVERY)))
            .bind(&scan_ref)
            .bind("IDENTIFICATION_AUTO_FINISHED")
            .bind($this.body.as_ref())
            .bind("5f0c1e0d0a3c8f5bb7a0e6b5c5bd4f1e2b8ea0e36b8b5a4f4e3c2d1a0f9e8d7c")
            .bind("0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f")
            .bind("applied")
            .bind(true)
            .bind(1_i64)
            .bind("APPROVED")
            .bind(now)
            .bind(None::<String>)
            .execute(&mut *tx)
            .await?;
        let (position,): (i64,) = sqlx::query_as(AssertSqlSafe($sql(COUNTER)))
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(AssertSqlSafe($sql(POSITION)))
            .bind(position)
            .bind(&scan_ref)
            .execute(&mut *tx)
            .await?;
        sqlx::query(AssertSqlSafe($sql(CHANGE)))
            .bind(position)
            .bind(&scan_ref)
            .bind(1_i64)
            .bind(true)
            .bind(SNAPSHOT)
            .bind(None::<String>)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<(), sqlx::Error>(())
    }};
}

fn pg_sql(sql: &'static str) -> String {
    sql.to_owned()
}

/// SQLite numbers parameters `?N`.
fn sqlite_sql(sql: &'static str) -> String {
    sql.replace('$', "?")
}

impl DbPeer {
    /// Opens a pool of `connections` on `url` (a migrated, fresh database).
    pub(crate) async fn connect(
        backend: Backend,
        url: &str,
        connections: u32,
        body: Bytes,
        prefix: String,
    ) -> anyhow::Result<Self> {
        let pool = match backend {
            Backend::Postgres => Pool::Pg(
                PgPoolOptions::new()
                    .max_connections(connections)
                    .test_before_acquire(false)
                    .connect(url)
                    .await?,
            ),
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)?
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(5))
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true);
                Pool::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(connections)
                        .test_before_acquire(false)
                        .connect_with(options)
                        .await?,
                )
            }
        };
        Ok(Self {
            pool,
            body,
            prefix,
            next: Arc::new(AtomicU64::new(0)),
        })
    }

    async fn one(&self) -> Result<(), sqlx::Error> {
        match &self.pool {
            Pool::Pg(pool) => transaction!(pool, self, pg_sql),
            Pool::Sqlite(pool) => transaction!(pool, self, sqlite_sql),
        }
    }

    /// Closed loop at `concurrency` for `warmup` + `measure`.
    pub(crate) async fn closed_loop(
        &self,
        concurrency: usize,
        warmup: Duration,
        measure: Duration,
    ) -> anyhow::Result<PeerOutcome> {
        let from = Instant::now() + warmup;
        let until = from + measure;
        let mut workers = Vec::new();
        for _ in 0..concurrency {
            let this = self.clone();
            workers.push(tokio::spawn(async move {
                let mut out = PeerOutcome::default();
                while Instant::now() < until {
                    let sent = Instant::now();
                    match this.one().await {
                        Ok(()) => out.committed += 1,
                        Err(e) => {
                            if out.failed == 0 {
                                eprintln!("  db peer: {e}");
                            }
                            out.failed += 1;
                        }
                    }
                    let done = Instant::now();
                    if sent >= from && done <= until {
                        out.latencies.push(done - sent);
                    }
                }
                out
            }));
        }
        let mut total = PeerOutcome::default();
        for w in workers {
            let out = w.await?;
            total.committed += out.committed;
            total.failed += out.failed;
            total.latencies.extend(out.latencies);
        }
        Ok(total)
    }

    /// Rows the peer wrote (its correctness check: one per commit).
    pub(crate) async fn rows(&self) -> anyhow::Result<i64> {
        let sql = "SELECT COUNT(*) FROM deliveries";
        let (n,): (i64,) = match &self.pool {
            Pool::Pg(p) => sqlx::query_as(sql).fetch_one(p).await?,
            Pool::Sqlite(p) => sqlx::query_as(sql).fetch_one(p).await?,
        };
        Ok(n)
    }

    /// Closes the pool.
    pub(crate) async fn close(self) {
        match self.pool {
            Pool::Pg(p) => p.close().await,
            Pool::Sqlite(p) => p.close().await,
        }
    }
}
