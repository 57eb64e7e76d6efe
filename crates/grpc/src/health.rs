//! `grpc.health.v1` status driven by the database: SERVING while the store answers a ping
//! (whatever Redis does), NOT_SERVING otherwise and from the moment shutdown begins.

use std::{sync::Arc, time::Duration};

use tokio::time::{MissedTickBehavior, interval, timeout};
use tokio_util::sync::CancellationToken;
use tonic_health::{ServingStatus, server::HealthReporter};
use tracing::{info, warn};
use verdict_domain::CaseStore;
use verdict_proto::verdict::v1::{admin_service_server, case_service_server};

/// The names health answers for: the server as a whole and each service.
const SERVICES: [&str; 3] = [
    "",
    case_service_server::SERVICE_NAME,
    admin_service_server::SERVICE_NAME,
];

/// Keeps the health statuses of the server ("") and of `verdict.v1.CaseService` and
/// `verdict.v1.AdminService` in step with the database.
#[derive(Debug)]
pub(crate) struct Health {
    reporter: HealthReporter,
    store: Arc<dyn CaseStore>,
    every: Duration,
}

impl Health {
    /// Checks `store` every `every` (which is also the ping's timeout).
    pub(crate) fn new(
        reporter: HealthReporter,
        store: Arc<dyn CaseStore>,
        every: Duration,
    ) -> Self {
        Self {
            reporter,
            store,
            every,
        }
    }

    /// Runs until `shutdown`, then reports NOT_SERVING and returns, so the caller can end the
    /// streams knowing load balancers were told first.
    pub(crate) async fn run(mut self, shutdown: CancellationToken) {
        // Not serving until the database has answered once.
        self.set(ServingStatus::NotServing).await;
        let mut serving: Option<bool> = None;
        let mut ticker = interval(self.every);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            let answered = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                answered = self.ping(serving != Some(false)) => answered,
            };
            if serving != Some(answered) {
                serving = Some(answered);
                let status = if answered {
                    info!("database answers, grpc health serving");
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                };
                self.set(status).await;
            }
        }
        self.set(ServingStatus::NotServing).await;
        // Removing the statuses ends open Health/Watch streams, which would otherwise hold the
        // server's graceful drain open forever.
        for name in SERVICES {
            self.reporter.clear_service_status(name).await;
        }
    }

    /// True when the database answered in time. Failures are logged only when `log` (the status
    /// is about to change), so an outage does not flood the logs.
    async fn ping(&self, log: bool) -> bool {
        match timeout(self.every, self.store.ping()).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                if log {
                    warn!(error = ?e, "database ping failed, grpc health not serving");
                }
                false
            }
            Err(_elapsed) => {
                if log {
                    warn!(timeout = ?self.every, "database ping timed out, grpc health not serving");
                }
                false
            }
        }
    }

    async fn set(&self, status: ServingStatus) {
        for name in SERVICES {
            self.reporter.set_service_status(name, status).await;
        }
    }
}
