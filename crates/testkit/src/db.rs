//! A fresh database per test: a temporary SQLite file, or a PostgreSQL database created for the
//! test and dropped when it ends.

use sea_orm::{ConnectionTrait, Database};

use crate::services;

/// The storage backends Verdict supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where PostgreSQL test databases are created; override with `VERDICT_TEST_DATABASE_URL`.
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    backend: Backend,
    /// Keeps the SQLite file's directory alive.
    _dir: Option<tempfile::TempDir>,
    /// (server URL, database name) to drop a PostgreSQL database afterwards.
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// A database of the given backend; `None` when PostgreSQL is unreachable outside CI.
    pub async fn new(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => Some(Self::sqlite()),
            Backend::Postgres => Self::postgres().await,
        }
    }

    /// A fresh SQLite file in a temporary directory.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("verdict.db").display()
        );
        Self {
            url,
            backend: Backend::Sqlite,
            _dir: Some(dir),
            postgres: None,
        }
    }

    /// A fresh PostgreSQL database on the server of `VERDICT_TEST_DATABASE_URL`.
    pub async fn postgres() -> Option<Self> {
        let admin_url = std::env::var("VERDICT_TEST_DATABASE_URL")
            .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let admin = match Database::connect(admin_url.as_str()).await {
            Ok(admin) => admin,
            Err(e) => {
                services::unreachable("PostgreSQL", &admin_url, &e);
                return None;
            }
        };
        let name = format!("verdict_test_{}", uuid::Uuid::new_v4().simple());
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the test database");
        let _ = admin.close().await;
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(base, _)| base);
        Some(Self {
            url: format!("{base}/{name}"),
            backend: Backend::Postgres,
            _dir: None,
            postgres: Some((admin_url.clone(), name)),
        })
    }

    /// The connection URL for `VERDICT_DATABASE_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// PostgreSQL only: refuses (or allows again) connections to this database and ends the open
    /// ones, which is what the app sees when its database goes down.
    pub async fn set_reachable(&self, reachable: bool) {
        let (admin_url, name) = self
            .postgres
            .as_ref()
            .expect("only a PostgreSQL database can be taken down");
        let admin = Database::connect(admin_url.as_str())
            .await
            .expect("connect to the PostgreSQL server");
        admin
            .execute_unprepared(&format!(
                "ALTER DATABASE {name} ALLOW_CONNECTIONS {reachable}"
            ))
            .await
            .expect("change ALLOW_CONNECTIONS");
        if !reachable {
            admin
                .execute_unprepared(&format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
                ))
                .await
                .expect("end the open connections");
        }
        let _ = admin.close().await;
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot block on async work: use a thread
        // with its own small runtime. FORCE ends connections the app under test left open.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("build a runtime to drop the test database");
            runtime.block_on(async {
                let admin = Database::connect(admin_url.as_str()).await?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await?;
                admin.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop a PostgreSQL test database");
        }
    }
}
