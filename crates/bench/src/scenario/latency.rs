//! Scenario 3: webhook → `WatchCase` delivery latency, idle and under half load, through the
//! in-process hub (one replica, SQLite) and across Redis (two replicas on one PostgreSQL: the
//! webhook goes to one, the watcher listens on the other).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use verdict_proto::verdict::v1::{
    self as pb, case_service_client::CaseServiceClient, watch_case_response::Event,
};

use super::{Ctx, Mode};
use crate::body::{Bodies, run_id};
use crate::db::Backend;
use crate::http_load::{Conn, Kind, closed_loop, paced};
use crate::report::Row;
use crate::stats::quantile_ms;

/// Both paths, idle and under half of the measured maximum ingest rate.
pub(super) async fn latency(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    // In-process hub.
    {
        let db = ctx.database(Backend::Sqlite).await?;
        let service = ctx.service(&db, None, "latency-hub").await?;
        rows.extend(both_loads(ctx, "in-process hub, sqlite", service.http, service.grpc).await?);
        service.stop().await?;
        db.drop_now().await?;
    }
    if ctx.settings.mode == Mode::Smoke {
        return Ok(rows);
    }
    // Across Redis: two replicas, one channel only this run uses.
    {
        let db = ctx.database(Backend::Postgres).await?;
        let channel = format!("verdict-bench-{}", run_id());
        let a = ctx.service(&db, Some(&channel), "latency-redis-a").await?;
        let b = ctx.service(&db, Some(&channel), "latency-redis-b").await?;
        rows.extend(both_loads(ctx, "across Redis, 2 replicas, postgres", a.http, b.grpc).await?);
        a.stop().await?;
        b.stop().await?;
        db.drop_now().await?;
    }
    Ok(rows)
}

async fn both_loads(
    ctx: &Ctx,
    label: &str,
    http: SocketAddr,
    grpc: SocketAddr,
) -> anyhow::Result<Vec<Row>> {
    let n = ctx.budget.latency_samples;
    let bodies = Arc::new(Bodies::new(&run_id(), true));
    let idle = probe(&bodies, http, grpc, n).await?;
    let mut rows = vec![row(label, "idle", idle)];
    if ctx.settings.mode == Mode::Smoke {
        return Ok(rows);
    }
    // Half of what c=16 sustains, as open-loop background load, while probing.
    let max = closed_loop(
        http,
        bodies.clone(),
        Kind::Valid,
        16,
        ctx.budget.warmup,
        ctx.budget.measure,
        0,
    )
    .await?;
    let rate = max.rate() / 2.0;
    let until = Instant::now() + Duration::from_secs(120);
    let stop = Arc::new(tokio::sync::Notify::new());
    let background = tokio::spawn({
        let bodies = bodies.clone();
        let stop = stop.clone();
        async move {
            tokio::select! {
                r = paced(http, bodies, rate, 8, until) => r,
                () = stop.notified() => Ok((0, 0)),
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let loaded = probe(&bodies, http, grpc, n).await;
    stop.notify_one();
    let _ = background.await?;
    let mut r = row(label, &format!("half load ({rate:.0} webhooks/s)"), loaded?);
    r.verified &= max.other == 0;
    rows.push(r);
    Ok(rows)
}

/// Latency samples and whether every probe was correct.
struct Probed {
    latencies: Vec<Duration>,
    verified: bool,
}

fn row(label: &str, load: &str, mut p: Probed) -> Row {
    let p50 = quantile_ms(&mut p.latencies, 0.5);
    let mut row = Row::new(
        "webhook→watch",
        format!("{label}, {load}, {} samples", p.latencies.len()),
        p50.unwrap_or(f64::NAN),
        "ms p50",
    );
    row.p50_ms = p50;
    row.p99_ms = quantile_ms(&mut p.latencies, 0.99);
    row.verified = p.verified;
    row
}

/// `n` sequential probes: open `WatchCase` on a new case, post its final decision, time from
/// sending the POST to receiving the decision on the stream.
async fn probe(
    bodies: &Bodies,
    http: SocketAddr,
    grpc: SocketAddr,
    n: usize,
) -> anyhow::Result<Probed> {
    let mut conn = Conn::open(http).await?;
    let mut client = CaseServiceClient::new(crate::grpc_load::channel(grpc).await?);
    let mut latencies = Vec::with_capacity(n);
    let mut verified = true;
    for _ in 0..n {
        let signed = bodies.next_signed('l');
        let mut stream = client
            .watch_case(pb::WatchCaseRequest {
                scan_ref: signed.scan_ref.clone(),
                from_revision: 0,
                until_final: true,
                view: pb::CaseView::Basic as i32,
            })
            .await?
            .into_inner();
        let t0 = Instant::now();
        let status = conn.post(&signed, "IDENTIFICATION_AUTO_FINISHED").await?;
        verified &= status.is_success();
        let mut finals = 0;
        let outcome = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(msg) = stream.message().await? {
                if let Some(Event::Case(c)) = msg.event
                    && c.r#final
                {
                    finals += 1;
                    if finals == 1 {
                        latencies.push(t0.elapsed());
                    }
                }
            }
            Ok::<_, tonic::Status>(())
        })
        .await;
        verified &= matches!(outcome, Ok(Ok(()))) && finals == 1;
    }
    Ok(Probed {
        latencies,
        verified,
    })
}
