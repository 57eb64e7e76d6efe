//! Databases: a fresh one per scenario (SQLite file in a temporary directory, or a PostgreSQL
//! database created and dropped), the correctness counts, and the database-ceiling peer.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};

mod peer;

pub(crate) use peer::DbPeer;

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Short name for reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// A database that exists for one scenario; dropped (PostgreSQL) or deleted (SQLite) by
/// [`FreshDb::drop_now`] or, failing that, on drop.
#[derive(Debug)]
pub(crate) struct FreshDb {
    pub(crate) url: String,
    admin: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl FreshDb {
    /// Creates the database and applies the service's migrations with `verdict migrate`.
    pub(crate) async fn create(
        backend: Backend,
        postgres_url: &str,
        verdict: &Path,
    ) -> anyhow::Result<Self> {
        let name = format!("verdict_bench_{}", uuid::Uuid::new_v4().simple());
        let db = match backend {
            Backend::Sqlite => {
                let dir = tempfile::Builder::new()
                    .prefix("verdict-bench-")
                    .tempdir()?;
                let path: PathBuf = dir.path().join("verdict.db");
                Self {
                    url: format!("sqlite://{}?mode=rwc", path.display()),
                    admin: None,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let admin = Database::connect(postgres_url)
                    .await
                    .with_context(|| format!("connect to PostgreSQL at {postgres_url}"))?;
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await?;
                admin.close().await?;
                let base = postgres_url
                    .rsplit_once('/')
                    .map_or(postgres_url, |(b, _)| b);
                Self {
                    url: format!("{base}/{name}"),
                    admin: Some((postgres_url.to_owned(), name)),
                    _dir: None,
                }
            }
        };
        let status = Command::new(verdict)
            .arg("migrate")
            .env("VERDICT_DATABASE_URL", &db.url)
            .stderr(std::process::Stdio::null())
            .status()?;
        if !status.success() {
            bail!("verdict migrate failed on {}", backend.name());
        }
        Ok(db)
    }

    /// Drops the PostgreSQL database now (the SQLite directory goes with `self`).
    pub(crate) async fn drop_now(mut self) -> anyhow::Result<()> {
        if let Some((admin_url, name)) = self.admin.take() {
            let admin = Database::connect(admin_url.as_str()).await?;
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await?;
            admin.close().await?;
        }
        Ok(())
    }

    /// A connection for the correctness counts.
    pub(crate) async fn connect(&self) -> anyhow::Result<DatabaseConnection> {
        Ok(Database::connect(self.url.as_str()).await?)
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.admin.take() {
            // Last resort after an error: the async drop did not run.
            let _ = Command::new("psql")
                .args([
                    admin_url.as_str(),
                    "-qc",
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                ])
                .status();
        }
    }
}

/// Rows of a scanRef pattern: (deliveries, distinct scanRefs among them, cases).
pub(crate) async fn counts(
    db: &DatabaseConnection,
    pattern: &str,
) -> anyhow::Result<(i64, i64, i64)> {
    // The pattern is ours (hex run id and a tag), never user input.
    let sql = format!(
        "SELECT (SELECT COUNT(*) FROM deliveries WHERE scan_ref LIKE '{pattern}'), \
                (SELECT COUNT(DISTINCT scan_ref) FROM deliveries WHERE scan_ref LIKE '{pattern}'), \
                (SELECT COUNT(*) FROM cases WHERE scan_ref LIKE '{pattern}') AS c"
    );
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?
        .context("a count row")?;
    let values: (i64, i64, i64) = row.try_get_many_by_index()?;
    Ok(values)
}

/// Every acknowledged webhook stored exactly once: as many delivery rows as acknowledgements,
/// each for its own scanRef, and one case per scanRef.
pub(crate) async fn stored_exactly_once(
    db: &DatabaseConnection,
    pattern: &str,
    acked: u64,
) -> anyhow::Result<bool> {
    let (deliveries, distinct, cases) = counts(db, pattern).await?;
    let acked = acked as i64;
    let ok = deliveries == acked && distinct == acked && cases == acked;
    if !ok {
        eprintln!(
            "  verification failed for {pattern}: {acked} acknowledged, {deliveries} deliveries, {distinct} distinct, {cases} cases"
        );
    }
    Ok(ok)
}
