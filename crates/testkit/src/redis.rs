//! Redis for one test: the machine's server, with a channel no other test uses.

use crate::services;

const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// A reachable Redis and a random channel name, so tests run in parallel on one server.
#[derive(Debug, Clone)]
pub struct TestRedis {
    url: String,
    channel: String,
}

impl TestRedis {
    /// Redis at `VERDICT_TEST_REDIS_URL`; `None` when unreachable outside CI.
    pub async fn connect() -> Option<Self> {
        let url = std::env::var("VERDICT_TEST_REDIS_URL")
            .unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned());
        let ping = async {
            let client = ::redis::Client::open(url.as_str())?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            ::redis::cmd("PING").query_async::<String>(&mut conn).await
        };
        match tokio::time::timeout(std::time::Duration::from_secs(5), ping).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                services::unreachable("Redis", &url, &e);
                return None;
            }
            Err(e) => {
                services::unreachable("Redis", &url, &e);
                return None;
            }
        }
        Some(Self {
            url,
            channel: format!("verdict-test-{}", uuid::Uuid::new_v4().simple()),
        })
    }

    /// A Redis the test started itself (with a password, or TLS), not checked here: the app
    /// must start whatever Redis does.
    pub fn at(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            channel: format!("verdict-test-{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// The connection URL for `VERDICT_REDIS_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A channel only this test uses.
    pub fn channel(&self) -> &str {
        &self.channel
    }
}
