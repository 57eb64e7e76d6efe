//! A fleet of `WatchCase` streams (`until_final`), spread over a number of HTTP/2 connections,
//! each checking that it gets exactly one final decision and then a clean end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use verdict_proto::verdict::v1::{
    self as pb, case_service_client::CaseServiceClient, watch_case_response::Event,
};

/// What one watcher saw.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// Final snapshots received (exactly one is correct).
    pub(crate) finals: u32,
    /// When the first final snapshot arrived.
    pub(crate) final_at: Option<Instant>,
    /// The stream ended with OK.
    pub(crate) ended_ok: bool,
    pub(crate) error: Option<String>,
    /// A deliberately slow reader: its delivery time is not a latency.
    pub(crate) slow: bool,
}

/// Open streams and their tasks.
#[derive(Debug)]
pub(crate) struct Fleet {
    tasks: Vec<JoinHandle<Seen>>,
    /// Connections held open (dropped with the fleet).
    _channels: Vec<Channel>,
    /// How long opening every stream took.
    pub(crate) open_time: Duration,
}

/// How to open a fleet.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) addr: SocketAddr,
    pub(crate) connections: usize,
    /// One entry per stream: the case it watches.
    pub(crate) scan_refs: Vec<String>,
    /// The case exists: each stream's first message is its (non-final) snapshot, and a stream
    /// counts as open once that arrived. Otherwise it counts as open once its headers arrived.
    pub(crate) expect_snapshot: bool,
    /// Every `slow_every`-th watcher waits this long before reading the decision.
    pub(crate) slow: Option<(usize, Duration)>,
}

impl Fleet {
    /// Opens every stream of `plan` and returns once all are open (or fails after `timeout`).
    pub(crate) async fn open(plan: Plan, timeout: Duration) -> anyhow::Result<Self> {
        let start = Instant::now();
        let channels = connect(plan.addr, plan.connections).await?;
        Self::open_on(channels, plan, timeout, start).await
    }

    /// Opens every stream of `plan` on existing connections; `start` is when opening began.
    pub(crate) async fn open_on(
        channels: Vec<Channel>,
        plan: Plan,
        timeout: Duration,
        start: Instant,
    ) -> anyhow::Result<Self> {
        let opening = Opening::new(plan.scan_refs.len());
        let mut tasks = Vec::with_capacity(plan.scan_refs.len());
        for (i, scan_ref) in plan.scan_refs.into_iter().enumerate() {
            let client = CaseServiceClient::new(channels[i % channels.len()].clone());
            let slow = plan
                .slow
                .and_then(|(every, delay)| (i % every == every - 1).then_some(delay));
            tasks.push(tokio::spawn(watch(
                client,
                scan_ref,
                plan.expect_snapshot,
                slow,
                opening.opened(),
            )));
        }
        opening.wait(timeout).await?;
        Ok(Self {
            tasks,
            _channels: channels,
            open_time: start.elapsed(),
        })
    }

    /// Waits for every watcher to finish (bounded by `timeout`; stragglers count as failures).
    pub(crate) async fn finish(self, timeout: Duration) -> Vec<Seen> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seen = Vec::with_capacity(self.tasks.len());
        for task in self.tasks {
            let abort = task.abort_handle();
            match tokio::time::timeout_at(deadline, task).await {
                Ok(Ok(s)) => seen.push(s),
                Ok(Err(e)) => seen.push(Seen {
                    error: Some(e.to_string()),
                    ..Seen::default()
                }),
                Err(_) => {
                    abort.abort();
                    seen.push(Seen {
                        error: Some("timed out".to_owned()),
                        ..Seen::default()
                    });
                }
            }
        }
        seen
    }
}

/// Counts streams as they open, so a fleet can wait until all of them are.
#[derive(Debug)]
pub(crate) struct Opening {
    opened: Arc<AtomicUsize>,
    all_open: Arc<Notify>,
    total: usize,
}

impl Opening {
    /// For `total` streams.
    pub(crate) fn new(total: usize) -> Self {
        Self {
            opened: Arc::default(),
            all_open: Arc::default(),
            total,
        }
    }

    /// What one stream calls once it is open (or failed to open).
    pub(crate) fn opened(&self) -> impl FnOnce() + Send + 'static {
        let (opened, all_open, total) = (self.opened.clone(), self.all_open.clone(), self.total);
        move || {
            if opened.fetch_add(1, Ordering::AcqRel) + 1 == total {
                all_open.notify_one();
            }
        }
    }

    /// Returns once every stream is open; fails after `timeout`.
    pub(crate) async fn wait(&self, timeout: Duration) -> anyhow::Result<()> {
        if self.total == 0 {
            return Ok(());
        }
        tokio::time::timeout(timeout, self.all_open.notified())
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "only {} of {} streams opened within {timeout:?}",
                    self.opened.load(Ordering::Acquire),
                    self.total
                )
            })
    }
}

/// `n` connections to `addr`, opened 64 at a time.
pub(crate) async fn connect(addr: SocketAddr, n: usize) -> anyhow::Result<Vec<Channel>> {
    futures::stream::iter(0..n.max(1))
        .map(|_| crate::grpc_load::channel(addr))
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Delivery times of the fleet relative to `t0`, how many watchers failed (not exactly one
/// final decision and a clean end), and one failure as an example.
pub(crate) fn judge(seen: &[Seen], t0: Instant) -> (Vec<Duration>, usize, Option<String>) {
    let times = seen
        .iter()
        .filter(|s| !s.slow)
        .filter_map(|s| s.final_at.map(|at| at.saturating_duration_since(t0)))
        .collect();
    let bad: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.finals != 1 || !s.ended_ok || s.error.is_some())
        .collect();
    let example = bad.first().map(|s| format!("{s:?}"));
    (times, bad.len(), example)
}

async fn watch(
    mut client: CaseServiceClient<Channel>,
    scan_ref: String,
    expect_snapshot: bool,
    slow: Option<Duration>,
    opened: impl FnOnce(),
) -> Seen {
    let mut seen = Seen {
        slow: slow.is_some(),
        ..Seen::default()
    };
    let request = pb::WatchCaseRequest {
        scan_ref,
        from_revision: 0,
        until_final: true,
        view: pb::CaseView::Basic as i32,
    };
    let mut stream = match client.watch_case(request).await {
        Ok(r) => r.into_inner(),
        Err(e) => {
            seen.error = Some(e.to_string());
            opened();
            return seen;
        }
    };
    if expect_snapshot {
        match stream.message().await {
            Ok(Some(pb::WatchCaseResponse {
                event: Some(Event::Case(c)),
            })) if !c.r#final => {}
            other => seen.error = Some(format!("expected a pending snapshot, got {other:?}")),
        }
    }
    opened();
    if let Some(delay) = slow {
        tokio::time::sleep(delay).await;
    }
    loop {
        match stream.message().await {
            Ok(Some(pb::WatchCaseResponse {
                event: Some(Event::Case(c)),
            })) => {
                if c.r#final {
                    seen.finals += 1;
                    seen.final_at.get_or_insert_with(Instant::now);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                seen.ended_ok = true;
                break;
            }
            Err(e) => {
                seen.error = Some(e.to_string());
                break;
            }
        }
    }
    seen
}
