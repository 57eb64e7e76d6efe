//! Scenario 9: filtered `WatchCases`. A thousand streams each follow one of a hundred clients,
//! so each wants 1 % of a 200 webhooks/s load; ten unfiltered streams receive the same number of
//! changes in all. What filtering costs is the service's CPU per delivered change (above what
//! ingesting the load alone costs), filtered against unfiltered: a stream must skip what it does
//! not want for much less than sending it.
//!
//! Verified: every stream gets exactly the changes of its client (every unfiltered stream: all
//! of them), each once, with strictly increasing cursors. A stream knows it has everything when
//! its client's sentinel arrives, posted after the load.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use verdict_domain::Cursor;
use verdict_proto::verdict::v1::{
    self as pb, case_service_client::CaseServiceClient, watch_cases_response::Event,
};

use super::{Ctx, per_op};
use crate::body::{Bodies, CLIENT_ID_LEN, run_id};
use crate::db::Backend;
use crate::http_load::Conn;
use crate::machine::cpu_us_during;
use crate::report::Row;
use crate::stats::quantile_ms;
use crate::watchers::{Opening, connect};

const OPEN_TIMEOUT: Duration = Duration::from_secs(120);
const FINISH_TIMEOUT: Duration = Duration::from_secs(60);
/// Streams share this many HTTP/2 connections.
const CONNECTIONS: usize = 10;
/// Concurrent webhook senders of the paced load.
const SENDERS: usize = 8;
/// The scanRef tag of sentinels (position 9 of `<run:8>-<tag><n:12>`).
const SENTINEL: u8 = b'z';

/// The sizes of one mode.
#[derive(Debug, Clone)]
pub(crate) struct FeedBudget {
    /// Filtered streams, spread evenly over the clients.
    pub(crate) streams: usize,
    /// Clients the load is spread over: each filtered stream wants 1/clients of it.
    pub(crate) clients: usize,
    /// Unfiltered streams: `streams / clients` of them receive as many changes in all.
    pub(crate) unfiltered: usize,
    /// Webhooks per second.
    pub(crate) rate: f64,
    /// How long the load runs (and the CPU is measured) in each phase.
    pub(crate) window: Duration,
}

/// One webhook of the load.
#[derive(Debug)]
struct Posted {
    scan_ref: String,
    client: usize,
    sent: Instant,
    ok: bool,
}

/// One change a stream received.
#[derive(Debug)]
struct Received {
    cursor: Cursor,
    scan_ref: String,
    at: Instant,
}

/// The phases, each on the same fresh service: the load alone, with unfiltered streams, with
/// filtered streams.
pub(super) async fn feed_filter(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let budget = ctx.budget.feed.clone();
    let bodies = Arc::new(Bodies::with_clients(&run_id(), false));
    let db = ctx.database(Backend::Sqlite).await?;
    let service = ctx.service(&db, None, "feedfilter").await?;
    let (http, grpc, pid) = (service.http, service.grpc, service.pid());
    let channels = connect(grpc, CONNECTIONS).await?;

    let (alone, alone_cpu) = load(http, &bodies, &budget, pid).await?;
    let unfiltered = phase(
        &channels,
        http,
        &bodies,
        &budget,
        pid,
        (0..budget.unfiltered).map(|_| None).collect(),
    )
    .await?;
    let filtered = phase(
        &channels,
        http,
        &bodies,
        &budget,
        pid,
        (0..budget.streams)
            .map(|i| Some(i % budget.clients))
            .collect(),
    )
    .await?;
    service.stop().await?;
    db.drop_now().await?;

    let ingest_us = per_op(alone_cpu, ok_count(&alone)).unwrap_or(0.0);
    let delivery_us = |p: &Phase| {
        let extra = p.cpu_us as f64 - ingest_us * ok_count(&p.posted) as f64;
        (p.deliveries > 0).then(|| extra.max(0.0) / p.deliveries as f64)
    };
    let (f_us, u_us) = (delivery_us(&filtered), delivery_us(&unfiltered));
    let verified = alone.iter().all(|p| p.ok) && filtered.verified && unfiltered.verified;
    let share = 100.0 / budget.clients as f64;
    let shape = format!(
        "sqlite, {} streams × {share} % of {} webhooks/s",
        budget.streams, budget.rate
    );

    let mut per_delivery = Row::new(
        "feed-filter",
        format!("{shape}, {} deliveries", filtered.deliveries),
        f_us.unwrap_or(f64::NAN),
        "CPU µs/delivered change",
    )
    .peer(
        &format!("{} unfiltered streams", budget.unfiltered),
        u_us.unwrap_or(f64::NAN),
    );
    let mut latencies = filtered.latencies.clone();
    per_delivery.p50_ms = quantile_ms(&mut latencies, 0.5);
    per_delivery.p99_ms = quantile_ms(&mut latencies, 0.99);
    per_delivery.cpu_us_per_op = f_us;
    per_delivery.verified = verified;

    let mut unfiltered_row = Row::new(
        "feed-unfiltered",
        format!(
            "sqlite, {} streams × all of {} webhooks/s, {} deliveries",
            budget.unfiltered, budget.rate, unfiltered.deliveries
        ),
        u_us.unwrap_or(f64::NAN),
        "CPU µs/delivered change",
    );
    let mut latencies = unfiltered.latencies.clone();
    unfiltered_row.p50_ms = quantile_ms(&mut latencies, 0.5);
    unfiltered_row.p99_ms = quantile_ms(&mut latencies, 0.99);
    unfiltered_row.cpu_us_per_op = u_us;
    unfiltered_row.verified = verified;

    let per_webhook = |p: &Phase| per_op(p.cpu_us, ok_count(&p.posted)).unwrap_or(f64::NAN);
    let mut webhook = Row::new(
        "feed-filter-webhook",
        format!("{shape}: service CPU per webhook"),
        per_webhook(&filtered),
        "CPU µs/webhook",
    )
    .peer("no streams", ingest_us);
    webhook.cpu_us_per_op = Some(per_webhook(&filtered));
    webhook.verified = verified;
    Ok(vec![per_delivery, unfiltered_row, webhook])
}

/// What one phase with streams measured.
#[derive(Debug)]
struct Phase {
    posted: Vec<Posted>,
    cpu_us: u64,
    deliveries: usize,
    /// Webhook sent → change received, per delivery.
    latencies: Vec<Duration>,
    verified: bool,
}

/// Opens one stream per entry of `filters` (a client, or none for everything), runs the load,
/// posts the sentinels, and checks what every stream received.
async fn phase(
    channels: &[Channel],
    http: SocketAddr,
    bodies: &Arc<Bodies>,
    budget: &FeedBudget,
    pid: u32,
    filters: Vec<Option<usize>>,
) -> anyhow::Result<Phase> {
    let streams = open(channels, &filters).await?;
    let (posted, cpu_us) = load(http, bodies, budget, pid).await?;
    // Sentinels: one per client, after the measured window; a stream is complete once its own
    // arrived (an unfiltered one's: the last client's).
    let mut conn = Conn::open(http).await?;
    for client in 0..budget.clients {
        let signed = bodies.signed_for(bodies.scan_ref(SENTINEL as char), &client_id(client));
        if !conn
            .post(&signed, "IDENTIFICATION_AUTO_FINISHED")
            .await?
            .is_success()
        {
            bail!("a sentinel webhook was refused");
        }
    }

    let sent: HashMap<&str, Instant> = posted
        .iter()
        .map(|p| (p.scan_ref.as_str(), p.sent))
        .collect();
    let deadline = tokio::time::Instant::now() + FINISH_TIMEOUT;
    let (mut deliveries, mut latencies, mut failed, mut example) = (0, Vec::new(), 0, None);
    for (filter, task) in filters.iter().zip(streams) {
        let outcome = match tokio::time::timeout_at(deadline, task).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".to_owned()),
        };
        let wanted: HashSet<&str> = posted
            .iter()
            .filter(|p| p.ok && filter.is_none_or(|c| c == p.client))
            .map(|p| p.scan_ref.as_str())
            .collect();
        match outcome.and_then(|received| judge(&received, &wanted).map(|()| received)) {
            Ok(received) => {
                deliveries += received.len();
                latencies.extend(received.iter().filter_map(|r| {
                    sent.get(r.scan_ref.as_str())
                        .map(|s| r.at.saturating_duration_since(*s))
                }));
            }
            Err(e) => {
                failed += 1;
                example.get_or_insert(e);
            }
        }
    }
    if let Some(example) = &example {
        eprintln!(
            "  {failed} of {} streams failed, e.g. {example}",
            filters.len()
        );
    }
    Ok(Phase {
        verified: failed == 0 && posted.iter().all(|p| p.ok),
        posted,
        cpu_us,
        deliveries,
        latencies,
    })
}

/// Exactly the wanted changes, each once, in feed order.
fn judge(received: &[Received], wanted: &HashSet<&str>) -> Result<(), String> {
    if let Some(pair) = received.windows(2).find(|w| w[1].cursor <= w[0].cursor) {
        return Err(format!(
            "cursor {:?} after {:?}",
            pair[1].cursor, pair[0].cursor
        ));
    }
    let got: HashSet<&str> = received.iter().map(|r| r.scan_ref.as_str()).collect();
    if got.len() != received.len() {
        return Err("a change came twice".to_owned());
    }
    if got != *wanted {
        return Err(format!(
            "{} changes, {} wanted, {} missing, {} unwanted",
            got.len(),
            wanted.len(),
            wanted.difference(&got).count(),
            got.difference(wanted).count()
        ));
    }
    Ok(())
}

/// Opens the streams (`from_now`), returning once each has its starting bookmark.
async fn open(
    channels: &[Channel],
    filters: &[Option<usize>],
) -> anyhow::Result<Vec<JoinHandle<Result<Vec<Received>, String>>>> {
    let opening = Opening::new(filters.len());
    let tasks = filters
        .iter()
        .enumerate()
        .map(|(i, filter)| {
            let client = CaseServiceClient::new(channels[i % channels.len()].clone());
            let request = pb::WatchCasesRequest {
                from_now: true,
                view: pb::CaseView::Basic.into(),
                client_ids: filter.iter().map(|&c| client_id(c)).collect(),
                ..pb::WatchCasesRequest::default()
            };
            tokio::spawn(follow(client, request, opening.opened()))
        })
        .collect();
    opening.wait(OPEN_TIMEOUT).await?;
    Ok(tasks)
}

/// One stream: its starting bookmark, then changes until its sentinel.
async fn follow(
    mut client: CaseServiceClient<Channel>,
    request: pb::WatchCasesRequest,
    opened: impl FnOnce(),
) -> Result<Vec<Received>, String> {
    let mut opened = Some(opened);
    let result = async {
        let mut stream = client
            .watch_cases(request)
            .await
            .map_err(|e| e.to_string())?
            .into_inner();
        match stream.message().await {
            Ok(Some(pb::WatchCasesResponse {
                event: Some(Event::Heartbeat(h)),
            })) if !h.cursor.is_empty() => {}
            other => return Err(format!("expected a starting bookmark, got {other:?}")),
        }
        if let Some(opened) = opened.take() {
            opened();
        }
        let mut received = Vec::new();
        loop {
            match stream.message().await {
                Ok(Some(pb::WatchCasesResponse {
                    event: Some(Event::Change(change)),
                })) => {
                    let at = Instant::now();
                    let scan_ref = change.case.map(|c| c.scan_ref).unwrap_or_default();
                    if scan_ref.as_bytes().get(9) == Some(&SENTINEL) {
                        return Ok(received);
                    }
                    let cursor = Cursor::decode(&change.cursor).map_err(|e| e.to_string())?;
                    received.push(Received {
                        cursor,
                        scan_ref,
                        at,
                    });
                }
                Ok(Some(_)) => {}
                Ok(None) => return Err("the stream ended".to_owned()),
                Err(e) => return Err(e.to_string()),
            }
        }
    }
    .await;
    // A stream that failed before its bookmark still counts as open, so opening ends.
    if let Some(opened) = opened.take() {
        opened();
    }
    result
}

/// `budget.rate` webhooks/s for `budget.window`, spread round-robin over the clients; the
/// service's CPU over that window.
async fn load(
    http: SocketAddr,
    bodies: &Arc<Bodies>,
    budget: &FeedBudget,
    pid: u32,
) -> anyhow::Result<(Vec<Posted>, u64)> {
    let mut conns = Vec::with_capacity(SENDERS);
    for _ in 0..SENDERS {
        conns.push(Conn::open(http).await?);
    }
    let start = Instant::now();
    let until = start + budget.window;
    let cpu = tokio::spawn(cpu_us_during(pid, start, until));
    let every = Duration::from_secs_f64(SENDERS as f64 / budget.rate.max(1.0));
    let next = Arc::new(AtomicU64::new(0));
    let senders: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            let (bodies, next, clients) = (bodies.clone(), next.clone(), budget.clients);
            tokio::spawn(async move {
                let mut posted = Vec::new();
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    if Instant::now() >= until {
                        return posted;
                    }
                    let client = (next.fetch_add(1, Ordering::Relaxed) % clients as u64) as usize;
                    let signed = bodies.signed_for(bodies.scan_ref('f'), &client_id(client));
                    let sent = Instant::now();
                    let ok = match conn.post(&signed, "IDENTIFICATION_AUTO_FINISHED").await {
                        Ok(status) => status.is_success(),
                        Err(_) => {
                            // A broken connection cannot be reused.
                            match Conn::open(http).await {
                                Ok(fresh) => conn = fresh,
                                Err(_) => return posted,
                            }
                            false
                        }
                    };
                    posted.push(Posted {
                        scan_ref: signed.scan_ref,
                        client,
                        sent,
                        ok,
                    });
                }
            })
        })
        .collect();
    let mut posted = Vec::new();
    for sender in senders {
        posted.extend(sender.await?);
    }
    Ok((posted, cpu.await?))
}

/// The clientId of client `n`: [`CLIENT_ID_LEN`] bytes, as the bodies need.
fn client_id(n: usize) -> String {
    let id = format!("fc{n:06}");
    assert_eq!(id.len(), CLIENT_ID_LEN, "at most a million clients");
    id
}

fn ok_count(posted: &[Posted]) -> usize {
    posted.iter().filter(|p| p.ok).count()
}
