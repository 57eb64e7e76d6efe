//! Scenario 4: `GetCase` throughput and latency against the map-backed tonic peer, on one hot
//! case and spread over many (the service reads the database each time; "cold" spreads the
//! reads over many rows instead of one).

use std::net::SocketAddr;
use std::sync::Arc;

use futures::StreamExt;

use super::{Ctx, per_op};
use crate::body::{Bodies, run_id};
use crate::child::Proc;
use crate::db::Backend;
use crate::grpc_load::get_case_loop;
use crate::http_load::Conn;
use crate::report::Row;
use crate::stats::quantile_ms;

/// Hot and cold, 4 connections × 4 concurrent calls.
pub(super) async fn get_case(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let b = &ctx.budget;
    let bodies = Arc::new(Bodies::new(&run_id(), true));
    let db = ctx.database(Backend::Sqlite).await?;
    let service = ctx.service(&db, None, "getcase").await?;
    let peer = Proc::peer("grpc").await?;
    let scan_refs: Vec<String> = (0..b.cold_cases).map(|_| bodies.scan_ref('g')).collect();
    let stored = load(service.http, &bodies, &scan_refs, Preload::Webhook).await?;
    let put = load(peer.http, &bodies, &scan_refs, Preload::PeerPut).await?;
    let mut rows = Vec::new();
    let cases = [
        ("hot (1 case)", Arc::new(scan_refs[..1].to_vec())),
        ("cold", Arc::new(scan_refs.clone())),
    ];
    for (label, set) in cases {
        let out = get_case_loop(
            service.grpc,
            set.clone(),
            4,
            4,
            b.warmup,
            b.measure,
            service.pid(),
        )
        .await?;
        let peer_out = get_case_loop(
            peer.grpc,
            set.clone(),
            4,
            4,
            b.warmup,
            b.measure,
            peer.pid(),
        )
        .await?;
        for (who, o) in [("service", &out), ("peer", &peer_out)] {
            if let Some(bad) = &o.first_bad {
                eprintln!(
                    "  get-case {label}: {who} answered {} bad, first: {bad}",
                    o.bad
                );
            }
        }
        let mut lat = out.latencies.clone();
        let mut row = Row::new(
            "get-case",
            format!("sqlite, {label}, {} cases, 4 conns × 4", set.len()),
            out.rate(),
            "req/s",
        )
        .peer("tonic map", peer_out.rate());
        row.p50_ms = quantile_ms(&mut lat, 0.5);
        row.p99_ms = quantile_ms(&mut lat, 0.99);
        row.cpu_us_per_op = per_op(out.cpu_us, out.latencies.len());
        row.verified = stored && put && out.bad == 0 && peer_out.bad == 0 && out.ok > 0;
        rows.push(row);
    }
    service.stop().await?;
    drop(peer);
    db.drop_now().await?;
    Ok(rows)
}

/// How cases get into a server before reads.
#[derive(Debug, Clone, Copy)]
enum Preload {
    /// A signed webhook to the service.
    Webhook,
    /// `POST /put/{scan_ref}` to the gRPC peer.
    PeerPut,
}

/// Sends one request per scanRef over 16 connections; true when every answer was 2xx.
async fn load(
    addr: SocketAddr,
    bodies: &Arc<Bodies>,
    scan_refs: &[String],
    how: Preload,
) -> anyhow::Result<bool> {
    let size = scan_refs.len().div_ceil(16).max(1);
    let chunks: Vec<Vec<String>> = scan_refs.chunks(size).map(<[String]>::to_vec).collect();
    let results = futures::stream::iter(chunks)
        .map(|chunk| {
            let bodies = bodies.clone();
            async move {
                let mut conn = Conn::open(addr).await?;
                let mut ok = true;
                for s in chunk {
                    let status = match how {
                        Preload::Webhook => {
                            conn.post(&bodies.signed(s), "IDENTIFICATION_AUTO_FINISHED")
                                .await?
                        }
                        Preload::PeerPut => conn.post_empty(&format!("/put/{s}")).await?,
                    };
                    ok &= status.is_success();
                }
                anyhow::Ok(ok)
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let mut all = true;
    for r in results {
        all &= r?;
    }
    Ok(all)
}
