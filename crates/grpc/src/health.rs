//! `grpc.health.v1` status following the process's readiness signal: SERVING while the database
//! answered the last readiness ping (whatever Redis does), NOT_SERVING otherwise and from the
//! moment shutdown begins. `/readyz` reports the same signal.

use tokio_util::sync::CancellationToken;
use tonic_health::{ServingStatus, server::HealthReporter};
use verdict_ingest::readiness::{Readiness, Status};
use verdict_proto::verdict::v1::{admin_service_server, case_service_server};

/// The names health answers for: the server as a whole and each service.
const SERVICES: [&str; 3] = [
    "",
    case_service_server::SERVICE_NAME,
    admin_service_server::SERVICE_NAME,
];

/// Keeps the health statuses of the server ("") and of `verdict.v1.CaseService` and
/// `verdict.v1.AdminService` in step with the readiness signal.
#[derive(Debug)]
pub(crate) struct Health {
    reporter: HealthReporter,
    readiness: Readiness,
}

impl Health {
    pub(crate) fn new(reporter: HealthReporter, readiness: Readiness) -> Self {
        Self {
            reporter,
            readiness,
        }
    }

    /// Runs until `shutdown`, then reports NOT_SERVING and returns, so the caller can end the
    /// streams knowing load balancers were told first.
    pub(crate) async fn run(mut self, shutdown: CancellationToken) {
        let mut status = self.readiness.status();
        loop {
            self.set(serving(&status)).await;
            let next = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                next = self.readiness.changed() => next,
            };
            match next {
                Some(next) => status = next,
                // The ping loop stops only at shutdown, which the next turn sees.
                None => {
                    shutdown.cancelled().await;
                    break;
                }
            }
        }
        self.set(ServingStatus::NotServing).await;
        // Removing the statuses ends open Health/Watch streams, which would otherwise hold the
        // server's graceful drain open forever.
        for name in SERVICES {
            self.reporter.clear_service_status(name).await;
        }
    }

    async fn set(&self, status: ServingStatus) {
        for name in SERVICES {
            self.reporter.set_service_status(name, status).await;
        }
    }
}

fn serving(status: &Status) -> ServingStatus {
    match status {
        Status::Ready => ServingStatus::Serving,
        Status::Unready(_) => ServingStatus::NotServing,
    }
}
