//! Scenarios 5–8: idle watch streams (memory, time to open), fan-out of one final decision,
//! 100 000 streams in one process, and decision churn with slow watchers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Ctx, per_op};
use crate::body::{Bodies, run_id};
use crate::child::Proc;
use crate::db::Backend;
use crate::http_load::Conn;
use crate::machine::{cpu_us, rss_bytes};
use crate::report::Row;
use crate::stats::quantile_ms;
use crate::watchers::{Fleet, Plan, connect, judge};

const OPEN_TIMEOUT: Duration = Duration::from_secs(120);
const FINISH_TIMEOUT: Duration = Duration::from_secs(60);

/// What one fleet measured on one server.
struct Measured {
    kib_per_stream: f64,
    rss_mib: f64,
    open: Duration,
    last: Duration,
    deliveries: Vec<Duration>,
    cpu_us: u64,
    verified: bool,
}

/// One server under test: where to watch, and how to publish the final decision.
enum Target<'a> {
    Service {
        proc: &'a Proc,
        bodies: &'a Bodies,
        finals: &'a Bodies,
    },
    Peer(&'a Proc),
}

impl Target<'_> {
    fn proc(&self) -> &Proc {
        match self {
            Self::Service { proc, .. } | Self::Peer(proc) => proc,
        }
    }

    /// Makes the case exist, pending.
    async fn create(&self, conn: &mut Conn, scan_ref: &str) -> anyhow::Result<bool> {
        Ok(match self {
            Self::Service { bodies, .. } => conn
                .post(
                    &bodies.signed(scan_ref.to_owned()),
                    "IDENTIFICATION_AUTO_FINISHED",
                )
                .await?
                .is_success(),
            Self::Peer(_) => conn
                .post_empty(&format!("/put/{scan_ref}"))
                .await?
                .is_success(),
        })
    }

    /// Publishes the final decision.
    async fn decide(&self, conn: &mut Conn, scan_ref: &str) -> anyhow::Result<bool> {
        Ok(match self {
            Self::Service { finals, .. } => conn
                .post(
                    &finals.signed(scan_ref.to_owned()),
                    "IDENTIFICATION_MANUAL_FINISHED",
                )
                .await?
                .is_success(),
            Self::Peer(_) => conn
                .post_empty(&format!("/publish/{scan_ref}"))
                .await?
                .is_success(),
        })
    }
}

/// `n` watchers over `connections` on one pending case; then its final decision.
async fn measure(
    target: &Target<'_>,
    n: usize,
    connections: usize,
    scan_ref: &str,
) -> anyhow::Result<Measured> {
    let proc = target.proc();
    let mut conn = Conn::open(proc.http).await?;
    let mut verified = target.create(&mut conn, scan_ref).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss0 = rss_bytes(proc.pid());
    let fleet = Fleet::open(
        Plan {
            addr: proc.grpc,
            connections,
            scan_refs: vec![scan_ref.to_owned(); n],
            expect_snapshot: true,
            slow: None,
        },
        OPEN_TIMEOUT,
    )
    .await?;
    let open = fleet.open_time;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss1 = rss_bytes(proc.pid());
    let cpu0 = cpu_us(proc.pid());
    // A fresh connection: opening 100 000 streams outlasts the service's idle-connection timeout
    // (VERDICT_HTTP_HEADER_TIMEOUT), which closes the one that created the case.
    let mut conn = Conn::open(proc.http).await?;
    let t0 = Instant::now();
    verified &= target.decide(&mut conn, scan_ref).await?;
    let seen = fleet.finish(FINISH_TIMEOUT).await;
    let cpu_used = cpu_us(proc.pid()).saturating_sub(cpu0);
    let (deliveries, failed, example) = judge(&seen, t0);
    if let Some(example) = example {
        eprintln!("  {failed} of {n} watchers failed, e.g. {example}");
    }
    verified &= failed == 0 && deliveries.len() == n;
    Ok(Measured {
        kib_per_stream: rss1.saturating_sub(rss0) as f64 / 1024.0 / n as f64,
        rss_mib: rss1 as f64 / 1024.0 / 1024.0,
        open,
        last: deliveries.iter().max().copied().unwrap_or_default(),
        deliveries,
        cpu_us: cpu_used,
        verified,
    })
}

/// The service and the peer, each fresh, for one fleet shape: memory, open time, fan-out rows.
async fn compare(
    ctx: &Ctx,
    n: usize,
    connections: usize,
    with_total: bool,
) -> anyhow::Result<Vec<Row>> {
    let run = run_id();
    let (bodies, finals) = (Bodies::new(&run, false), Bodies::new(&run, true));
    let db = ctx.database(Backend::Sqlite).await?;
    let service = ctx
        .service(&db, None, &format!("watch-{n}-{connections}"))
        .await?;
    let scan_ref = bodies.scan_ref('w');
    let svc = measure(
        &Target::Service {
            proc: &service,
            bodies: &bodies,
            finals: &finals,
        },
        n,
        connections,
        &scan_ref,
    )
    .await?;
    service.stop().await?;
    db.drop_now().await?;
    let peer = Proc::peer("grpc").await?;
    let peer_m = measure(&Target::Peer(&peer), n, connections, &scan_ref).await?;
    drop(peer);

    let shape = format!("{n} streams / {connections} conns");
    let verified = svc.verified && peer_m.verified;
    let mut memory = Row::new(
        "idle-stream-memory",
        format!("sqlite, {shape}"),
        svc.kib_per_stream,
        "KiB/stream",
    )
    .peer("tonic broadcast", peer_m.kib_per_stream);
    memory.verified = verified;
    let mut open = Row::new(
        "idle-stream-open",
        shape.clone(),
        svc.open.as_secs_f64() * 1000.0,
        "ms to open all",
    )
    .peer("tonic broadcast", peer_m.open.as_secs_f64() * 1000.0);
    open.verified = verified;
    let mut fanout = Row::new(
        "fan-out",
        shape.clone(),
        svc.last.as_secs_f64() * 1000.0,
        "ms to last",
    )
    .peer("tonic broadcast", peer_m.last.as_secs_f64() * 1000.0);
    let mut d = svc.deliveries;
    fanout.p50_ms = quantile_ms(&mut d, 0.5);
    fanout.p99_ms = quantile_ms(&mut d, 0.99);
    fanout.cpu_us_per_op = per_op(svc.cpu_us, n);
    fanout.verified = verified;
    let mut rows = vec![memory, open, fanout];
    if with_total {
        let mut total = Row::new("idle-stream-rss", shape, svc.rss_mib, "MiB total RSS")
            .peer("tonic broadcast", peer_m.rss_mib);
        total.verified = verified;
        rows.push(total);
    }
    Ok(rows)
}

/// Scenarios 5 and 6: the fleet shapes of the budget.
pub(super) async fn fleets(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for &(n, connections) in &ctx.budget.fleets {
        rows.extend(compare(ctx, n, connections, false).await?);
    }
    Ok(rows)
}

/// Scenario 7: 100 000 idle streams in one process, multiplexed (the 20 000 open-files limit
/// rules out a connection each), then one decision to all of them.
pub(super) async fn big(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let (n, connections) = ctx.budget.big_fleet;
    if n == 0 {
        return Ok(Vec::new());
    }
    compare(ctx, n, connections, true).await
}

/// Scenario 8: 100 decisions/s, each to 100 new watchers (every 20th a slow reader), on 20
/// shared connections: delivery p99 and whether memory stays flat.
pub(super) async fn churn(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let run = run_id();
    let finals = Arc::new(Bodies::new(&run, true));
    let db = ctx.database(Backend::Sqlite).await?;
    let service = ctx.service(&db, None, "churn").await?;
    let channels = connect(service.grpc, 20).await?;
    let (pid, http) = (service.pid(), service.http);
    let started = Instant::now();
    let until = started + ctx.budget.churn;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut tasks = Vec::new();
    let mut rss = Vec::new();
    while Instant::now() < until {
        tick.tick().await;
        if tasks.len() % 100 == 0 {
            rss.push(rss_bytes(pid));
        }
        let (channels, finals) = (channels.clone(), finals.clone());
        tasks.push(tokio::spawn(decision(channels, finals, http)));
    }
    let mut deliveries = Vec::new();
    let (mut failed, mut posts_failed, mut example) = (0, 0, None);
    for t in tasks {
        let (d, posted, f, e) = t.await??;
        deliveries.extend(d);
        failed += f;
        posts_failed += usize::from(!posted);
        example = example.or(e);
    }
    if let Some(example) = example {
        eprintln!("  {failed} watchers and {posts_failed} decisions failed, e.g. {example}");
    }
    let verified = failed == 0 && posts_failed == 0;
    rss.push(rss_bytes(pid));
    service.stop().await?;
    db.drop_now().await?;
    let decisions = (ctx.budget.churn.as_secs_f64() * 100.0).round();
    let (name, growth_name) = match ctx.settings.soak {
        true => ("churn-soak", "churn-soak-rss-growth"),
        false => ("churn", "churn-rss-growth"),
    };
    let mut p99 = Row::new(
        name,
        format!("sqlite, 100 decisions/s × 100 watchers (5 % slow), {decisions} decisions"),
        quantile_ms(&mut deliveries, 0.99).unwrap_or(f64::NAN),
        "ms delivery p99",
    );
    p99.p50_ms = quantile_ms(&mut deliveries, 0.5);
    p99.p99_ms = quantile_ms(&mut deliveries, 0.99);
    p99.verified = verified;
    // Flat memory: RSS at the end against RSS after the first third (allocator warm).
    let third = rss.get(rss.len() / 3).copied().unwrap_or_default() as f64;
    let last = rss.last().copied().unwrap_or_default() as f64;
    let mut growth = Row::new(
        growth_name,
        "last vs first third",
        (last - third) / 1024.0 / 1024.0,
        "MiB",
    );
    growth.verified = verified;
    Ok(vec![p99, growth])
}

/// One churn decision: 100 watchers on a new case, then its final decision.
async fn decision(
    channels: Vec<tonic::transport::Channel>,
    finals: Arc<Bodies>,
    http: SocketAddr,
) -> anyhow::Result<(Vec<Duration>, bool, usize, Option<String>)> {
    let signed = finals.next_signed('c');
    let fleet = Fleet::open_on(
        channels,
        Plan {
            addr: http,
            connections: 0,
            scan_refs: vec![signed.scan_ref.clone(); 100],
            expect_snapshot: false,
            slow: Some((20, Duration::from_millis(200))),
        },
        OPEN_TIMEOUT,
        Instant::now(),
    )
    .await?;
    let mut conn = Conn::open(http).await?;
    let t0 = Instant::now();
    let status = conn.post(&signed, "IDENTIFICATION_MANUAL_FINISHED").await?;
    let seen = fleet.finish(FINISH_TIMEOUT).await;
    let (times, failed, example) = judge(&seen, t0);
    let example = match status.is_success() {
        true => example,
        false => Some(format!("the decision was answered {status}")),
    };
    Ok((times, status.is_success(), failed, example))
}
