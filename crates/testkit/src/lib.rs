//! Test harness for Verdict: real databases, real Redis, the real app on `127.0.0.1:0`.
//!
//! Services are never mocked. A test that needs PostgreSQL or Redis asks for it and gets `None`
//! (after a loud message) when it is unreachable on a developer's machine; with `CI=true` an
//! unreachable service fails the test instead, so CI can never pass by skipping.

pub mod app;
mod calls;
pub mod db;
pub mod idenfy;
pub mod payloads;
pub mod redis;
mod services;
pub mod streams;
pub mod tls;

pub use app::{TestApp, TestAppOptions};
pub use db::{Backend, TestDatabase};
pub use idenfy::FakeIdenfy;
pub use redis::TestRedis;
pub use tls::TestPki;

/// Generous bound for any await in tests: long enough for a loaded 2-core CI machine, short
/// enough that a hang fails instead of stalling the suite.
pub const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Awaits `fut` under [`TIMEOUT`], panicking with `what` when it does not finish.
pub async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(TIMEOUT, fut).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {TIMEOUT:?} waiting for {what}"),
    }
}

/// Defines each listed `async fn name(backend: Backend)` as a test on SQLite and on PostgreSQL
/// (`sqlite::name`, `postgres::name`), so storage behaviour is proven on both databases.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Postgres).await
                }
            )*
        }
    };
}
