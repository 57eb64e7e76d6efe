//! The scenarios, their budgets per mode, and the run that ties them to the report.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::child::{Proc, ServiceSpec};
use crate::db::{Backend, FreshDb};
use crate::machine::{Fingerprint, Sampler};
use crate::report::{Report, Row};

mod feed_filter;
mod ingest;
mod latency;
mod reads;
mod watch;

/// How long and how often.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Three repeats, median reported.
    Full,
    /// One repeat, short windows: about two minutes.
    Quick,
    /// Tiny, correctness only.
    Smoke,
}

/// What the command line asked for.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) target: String,
    pub(crate) mode: Mode,
    pub(crate) postgres_url: String,
    pub(crate) redis_url: String,
    /// `churn --soak`: the churn scenario for [`SOAK`] instead of the mode's window.
    pub(crate) soak: bool,
}

/// How long `churn --soak` runs.
pub(crate) const SOAK: Duration = Duration::from_secs(600);

/// Sizes and windows of one mode.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    pub(crate) warmup: Duration,
    pub(crate) measure: Duration,
    pub(crate) repeats: usize,
    pub(crate) concurrencies: Vec<usize>,
    pub(crate) backends: Vec<Backend>,
    pub(crate) latency_samples: usize,
    pub(crate) cold_cases: usize,
    /// (watchers, connections) for idle memory and fan-out.
    pub(crate) fleets: Vec<(usize, usize)>,
    pub(crate) big_fleet: (usize, usize),
    pub(crate) churn: Duration,
    /// Filtered `WatchCases` streams against unfiltered ones.
    pub(crate) feed: feed_filter::FeedBudget,
}

impl Budget {
    fn of(mode: Mode) -> Self {
        match mode {
            Mode::Full => Self {
                warmup: Duration::from_secs(1),
                measure: Duration::from_secs(3),
                repeats: 3,
                concurrencies: vec![1, 4, 16, 64],
                backends: vec![Backend::Sqlite, Backend::Postgres],
                latency_samples: 300,
                cold_cases: 10_000,
                fleets: vec![(1_000, 10), (10_000, 50), (10_000, 10_000)],
                big_fleet: (100_000, 200),
                churn: Duration::from_secs(10),
                feed: feed_filter::FeedBudget {
                    streams: 1_000,
                    clients: 100,
                    unfiltered: 10,
                    rate: 200.0,
                    window: Duration::from_secs(10),
                },
            },
            Mode::Quick => Self {
                warmup: Duration::from_millis(300),
                measure: Duration::from_secs(1),
                repeats: 1,
                concurrencies: vec![1, 4, 16, 64],
                backends: vec![Backend::Sqlite, Backend::Postgres],
                latency_samples: 100,
                cold_cases: 2_000,
                fleets: vec![(1_000, 10), (10_000, 50), (10_000, 10_000)],
                big_fleet: (100_000, 200),
                churn: Duration::from_secs(4),
                feed: feed_filter::FeedBudget {
                    streams: 1_000,
                    clients: 100,
                    unfiltered: 10,
                    rate: 200.0,
                    window: Duration::from_secs(3),
                },
            },
            Mode::Smoke => Self {
                warmup: Duration::from_millis(100),
                measure: Duration::from_millis(300),
                repeats: 1,
                concurrencies: vec![4],
                backends: vec![Backend::Sqlite],
                latency_samples: 5,
                cold_cases: 20,
                fleets: vec![(100, 4)],
                big_fleet: (0, 0),
                churn: Duration::from_secs(1),
                feed: feed_filter::FeedBudget {
                    streams: 20,
                    clients: 10,
                    unfiltered: 2,
                    rate: 50.0,
                    window: Duration::from_secs(1),
                },
            },
        }
    }
}

/// Shared by every scenario of a run.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) settings: Settings,
    pub(crate) budget: Budget,
    pub(crate) verdict: PathBuf,
    pub(crate) logs: PathBuf,
}

impl Ctx {
    /// A fresh database of `backend`.
    pub(crate) async fn database(&self, backend: Backend) -> anyhow::Result<FreshDb> {
        FreshDb::create(backend, &self.settings.postgres_url, &self.verdict).await
    }

    /// The real service on `db`, optionally on Redis `channel`; logs go to `target/bench/logs`.
    pub(crate) async fn service(
        &self,
        db: &FreshDb,
        channel: Option<&str>,
        label: &str,
    ) -> anyhow::Result<Proc> {
        Proc::service(&ServiceSpec {
            binary: self.verdict.clone(),
            database_url: db.url.clone(),
            redis: channel.map(|c| (self.settings.redis_url.clone(), c.to_owned())),
            log: self.logs.join(format!("{label}.log")),
        })
        .await
    }
}

/// Every scenario, in the order `all` runs them.
const SCENARIOS: [&str; 8] = [
    "ingest",
    "badsig",
    "latency",
    "getcase",
    "watch",
    "watch100k",
    "churn",
    "feedfilter",
];

/// What `--smoke` runs.
const SMOKE: [&str; 5] = ["ingest", "badsig", "latency", "watch", "feedfilter"];

async fn run_one(ctx: &Ctx, name: &str) -> anyhow::Result<Vec<Row>> {
    match name {
        "ingest" => ingest::ingest(ctx).await,
        "badsig" => ingest::bad_signature(ctx).await,
        "latency" => latency::latency(ctx).await,
        "getcase" => reads::get_case(ctx).await,
        "watch" => watch::fleets(ctx).await,
        "watch100k" => watch::big(ctx).await,
        "churn" => watch::churn(ctx).await,
        "feedfilter" => feed_filter::feed_filter(ctx).await,
        other => bail!("unknown scenario {other:?}; one of {SCENARIOS:?} or all"),
    }
}

/// Runs the chosen scenarios, prints the table and writes `target/bench/report.json`.
pub(crate) async fn run_all(settings: Settings) -> anyhow::Result<()> {
    let started = Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339();
    let mut budget = Budget::of(settings.mode);
    // For profiling runs: a longer window than the mode's.
    if let Some(ms) = std::env::var("VERDICT_BENCH_MEASURE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        budget.measure = Duration::from_millis(ms);
    }
    if settings.soak {
        // One long run: its RSS curve is the result, not a median.
        budget.churn = SOAK;
        budget.repeats = 1;
    }
    let names: Vec<&str> = match (settings.mode, settings.target.as_str()) {
        (Mode::Smoke, "all") => SMOKE.to_vec(),
        (_, "all") => SCENARIOS.to_vec(),
        (_, one) => vec![one],
    };
    let target_dir = std::env::current_exe()?
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("bench"))
        .unwrap_or_else(|| PathBuf::from("target/bench"));
    let logs = target_dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let ctx = Ctx {
        verdict: crate::child::verdict_binary()?,
        settings: settings.clone(),
        budget: budget.clone(),
        logs,
    };
    let machine = Fingerprint::read();
    let sampler = Sampler::start();
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for name in names {
        eprintln!("== {name}");
        let mut repeats = Vec::new();
        for r in 0..budget.repeats {
            match run_one(&ctx, name).await {
                Ok(rs) => {
                    for row in &rs {
                        eprintln!(
                            "  [{}] {} {}: {:.2} {} (peer {:?}, ratio {:?}) verified={}",
                            r + 1,
                            row.name,
                            row.params,
                            row.value,
                            row.unit,
                            row.peer_value.map(|v| v.round()),
                            row.ratio.map(|v| (v * 100.0).round() / 100.0),
                            row.verified
                        );
                    }
                    repeats.push(rs);
                }
                Err(e) => {
                    eprintln!("  {name} failed: {e:#}");
                    failed.push(format!("{name}: {e:#}"));
                    break;
                }
            }
        }
        rows.extend(merge(repeats));
    }
    let report = Report {
        machine,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        mode: format!("{:?}", settings.mode).to_lowercase(),
        repeats: budget.repeats,
        started_at,
        duration_s: started.elapsed().as_secs_f64(),
        interference: sampler.snapshot(),
        rows,
    };
    println!("{}", report.table());
    let path = target_dir.join("report.json");
    report.write(&path)?;
    eprintln!("report written to {}", path.display());
    let unverified: Vec<String> = report
        .rows
        .iter()
        .filter(|r| !r.verified)
        .map(|r| format!("{} ({})", r.name, r.params))
        .collect();
    if !failed.is_empty() || !unverified.is_empty() {
        bail!("not verified: {unverified:?}; failed: {failed:?}");
    }
    Ok(())
}

/// Repeats → one row each, the median of its repeats (rows come in the same order each time).
fn merge(repeats: Vec<Vec<Row>>) -> Vec<Row> {
    let Some(first) = repeats.first() else {
        return Vec::new();
    };
    (0..first.len())
        .map(|i| {
            Row::median_of(
                repeats
                    .iter()
                    .filter_map(|rows| rows.get(i).cloned())
                    .collect(),
            )
        })
        .collect()
}

/// `cpu_us` over `ops`, when there were any.
pub(crate) fn per_op(cpu_us: u64, ops: usize) -> Option<f64> {
    (ops > 0).then(|| cpu_us as f64 / ops as f64)
}
