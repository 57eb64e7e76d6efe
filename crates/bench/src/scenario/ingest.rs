//! Scenarios 1 and 2: ingest throughput against the database ceiling, and the bad-signature
//! path against the HMAC-only axum peer.

use std::sync::Arc;

use super::{Ctx, per_op};
use crate::body::{Bodies, run_id};
use crate::child::Proc;
use crate::db::{self, DbPeer};
use crate::http_load::{Kind, closed_loop};
use crate::report::Row;
use crate::stats::quantile_ms;

/// Scenario 1: signed 4.6 KB webhooks at each concurrency, on each backend, each point
/// followed by the database ceiling at the same concurrency.
pub(super) async fn ingest(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let b = &ctx.budget;
    let mut rows = Vec::new();
    for &backend in &b.backends {
        let run = run_id();
        let bodies = Arc::new(Bodies::new(&run, true));
        let db = ctx.database(backend).await?;
        let peer_db = ctx.database(backend).await?;
        let service = ctx
            .service(&db, None, &format!("ingest-{}", backend.name()))
            .await?;
        let check = db.connect().await?;
        let mut acked = 0;
        let mut committed = 0;
        for &c in &b.concurrencies {
            let out = closed_loop(
                service.http,
                bodies.clone(),
                Kind::Valid,
                c,
                b.warmup,
                b.measure,
                service.pid(),
            )
            .await?;
            acked += out.ok;
            let stored = db::stored_exactly_once(&check, &bodies.pattern('i'), acked).await?;
            // The service's pool is 16 connections; so is the peer's, at most.
            let peer = DbPeer::connect(
                backend,
                &peer_db.url,
                c.min(16) as u32,
                bodies.signed(bodies.scan_ref('p')).body,
                format!("{run}-q{c:03}-"),
            )
            .await?;
            let peer_out = peer.closed_loop(c, b.warmup, b.measure).await?;
            committed += peer_out.committed;
            let peer_ok = peer_out.failed == 0 && peer.rows().await? == committed as i64;
            peer.close().await;
            let peer_rate = peer_out.latencies.len() as f64 / b.measure.as_secs_f64();
            let mut lat = out.latencies.clone();
            let mut row = Row::new(
                "ingest",
                format!("{}, c={c}, {} B body", backend.name(), bodies.len()),
                out.rate(),
                "webhooks/s",
            )
            .peer("db ceiling (sqlx, same rows, 1 txn)", peer_rate);
            row.p50_ms = quantile_ms(&mut lat, 0.5);
            row.p99_ms = quantile_ms(&mut lat, 0.99);
            row.cpu_us_per_op = per_op(out.cpu_us, out.latencies.len());
            row.verified = out.other == 0 && out.unauthorized == 0 && stored && peer_ok;
            if out.other > 0 {
                eprintln!("  {} requests failed", out.other);
            }
            rows.push(row);
        }
        check.close().await?;
        service.stop().await?;
        db.drop_now().await?;
        peer_db.drop_now().await?;
    }
    Ok(rows)
}

/// Scenario 2: a wrong signature at concurrency 16 and 64, against the HMAC-only peer.
pub(super) async fn bad_signature(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let b = &ctx.budget;
    let bodies = Arc::new(Bodies::new(&run_id(), true));
    let db = ctx.database(crate::db::Backend::Sqlite).await?;
    let service = ctx.service(&db, None, "badsig").await?;
    let peer = Proc::peer("http").await?;
    let check = db.connect().await?;
    let mut rows = Vec::new();
    let concurrencies: &[usize] = if ctx.settings.mode == super::Mode::Smoke {
        &[4]
    } else {
        &[16, 64]
    };
    for &c in concurrencies {
        let out = closed_loop(
            service.http,
            bodies.clone(),
            Kind::BadSignature,
            c,
            b.warmup,
            b.measure,
            service.pid(),
        )
        .await?;
        let peer_out = closed_loop(
            peer.http,
            bodies.clone(),
            Kind::BadSignature,
            c,
            b.warmup,
            b.measure,
            peer.pid(),
        )
        .await?;
        let (deliveries, _, cases) = db::counts(&check, &bodies.pattern('x')).await?;
        let mut lat = out.latencies.clone();
        let mut row = Row::new(
            "bad-signature",
            format!("sqlite, c={c}, answered 401"),
            out.rate(),
            "req/s",
        )
        .peer("axum HMAC-only", peer_out.rate());
        row.p50_ms = quantile_ms(&mut lat, 0.5);
        row.p99_ms = quantile_ms(&mut lat, 0.99);
        row.cpu_us_per_op = per_op(out.cpu_us, out.latencies.len());
        row.verified = out.ok == 0
            && out.other == 0
            && out.unauthorized > 0
            && peer_out.ok == 0
            && peer_out.other == 0
            && deliveries == 0
            && cases == 0;
        rows.push(row);
    }
    check.close().await?;
    service.stop().await?;
    drop(peer);
    db.drop_now().await?;
    Ok(rows)
}
