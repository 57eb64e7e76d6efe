//! `verdict serve` and `verdict migrate`.

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use verdict_telemetry::TelemetryConfig;

use crate::App;
use crate::config::{Config, DatabaseConfig};

/// Serves until SIGTERM or Ctrl-C; a second signal exits at once.
pub(super) async fn run(config: Config) -> anyhow::Result<()> {
    let telemetry = verdict_telemetry::init(&TelemetryConfig {
        log_format: config.log_format,
        service_name_default: "verdict",
    })
    .context("could not set up telemetry")?;

    let result = async {
        let app = App::build(config).await?;
        let token = CancellationToken::new();
        tokio::spawn(stop_on_signals(token.clone()));
        app.run(token).await?;
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = &result {
        tracing::error!(error = ?e, "verdict stopped with an error");
    }
    // Last, so the shutdown itself is traced.
    telemetry.shutdown();
    result
}

/// Applies migrations to the configured database.
pub(super) async fn migrate(db: DatabaseConfig) -> anyhow::Result<()> {
    let store = db.connect().await.context("could not open the database")?;
    store.migrate().await.context("migration failed")?;
    eprintln!("migrations applied");
    Ok(())
}

async fn stop_on_signals(token: CancellationToken) {
    signal().await;
    info!("signal received, shutting down (send another to exit at once)");
    token.cancel();
    signal().await;
    warn!("second signal, exiting now");
    std::process::exit(130);
}

async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
