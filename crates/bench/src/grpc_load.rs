//! Unary gRPC load: `GetCase` in a closed loop over a few HTTP/2 connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::transport::{Channel, Endpoint};
use verdict_proto::verdict::v1::{self as pb, case_service_client::CaseServiceClient};

/// One connection to `addr`.
pub(crate) async fn channel(addr: SocketAddr) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))?
        .tcp_nodelay(true)
        .connect()
        .await?)
}

/// A `GetCase` run's outcome.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Answers with the asked-for case, over the whole run.
    pub(crate) ok: u64,
    /// Errors or wrong cases.
    pub(crate) bad: u64,
    /// What the first bad answer was, so a failed verification says why.
    pub(crate) first_bad: Option<String>,
    pub(crate) latencies: Vec<Duration>,
    pub(crate) window: Duration,
    pub(crate) cpu_us: u64,
}

impl Outcome {
    /// Completed requests per second inside the window.
    pub(crate) fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.window.as_secs_f64()
    }
}

/// `connections` × `per_connection` senders, each asking for a random case of `scan_refs`.
pub(crate) async fn get_case_loop(
    addr: SocketAddr,
    scan_refs: Arc<Vec<String>>,
    connections: usize,
    per_connection: usize,
    warmup: Duration,
    measure: Duration,
    pid: u32,
) -> anyhow::Result<Outcome> {
    let from = Instant::now() + warmup;
    let until = from + measure;
    let mut workers = Vec::new();
    for c in 0..connections {
        let channel = channel(addr).await?;
        for s in 0..per_connection {
            let mut client = CaseServiceClient::new(channel.clone());
            let scan_refs = scan_refs.clone();
            let mut seed = 0x9E37_79B9_7F4A_7C15_u64 ^ ((c * 1000 + s) as u64 + 1);
            workers.push(tokio::spawn(async move {
                let mut out = Outcome::default();
                while Instant::now() < until {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let scan_ref = &scan_refs[(seed % scan_refs.len() as u64) as usize];
                    let sent = Instant::now();
                    let answer = client
                        .get_case(pb::GetCaseRequest {
                            key: Some(pb::get_case_request::Key::ScanRef(scan_ref.clone())),
                            view: pb::CaseView::Basic as i32,
                            include_history: false,
                        })
                        .await;
                    match answer {
                        Ok(r)
                            if r.get_ref()
                                .case
                                .as_ref()
                                .is_some_and(|c| &c.scan_ref == scan_ref) =>
                        {
                            out.ok += 1;
                        }
                        other => {
                            out.bad += 1;
                            if out.first_bad.is_none() {
                                out.first_bad = Some(match other {
                                    Ok(_) => format!("wrong case for {scan_ref}"),
                                    Err(status) => {
                                        format!("{:?}: {}", status.code(), status.message())
                                    }
                                });
                            }
                        }
                    }
                    let done = Instant::now();
                    if sent >= from && done <= until {
                        out.latencies.push(done - sent);
                    }
                }
                out
            }));
        }
    }
    let mut total = Outcome {
        window: measure,
        cpu_us: crate::machine::cpu_us_during(pid, from, until).await,
        ..Outcome::default()
    };
    for w in workers {
        let out = w.await?;
        total.ok += out.ok;
        total.bad += out.bad;
        total.first_bad = total.first_bad.or(out.first_bad);
        total.latencies.extend(out.latencies);
    }
    Ok(total)
}
