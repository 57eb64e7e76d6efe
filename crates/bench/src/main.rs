//! `verdict-bench`: the real Verdict (release binary, child process, loopback only) measured
//! against minimal peers in the same run, reported as ratios.
//!
//! `cargo run --release -p verdict-bench -- all` runs every scenario three times and reports
//! the median; `--quick` runs each once with short windows; a scenario name runs just that
//! one; `--smoke` runs a tiny version of a few scenarios and asserts correctness only.

#![forbid(unsafe_code)]

mod body;
mod child;
mod db;
mod grpc_load;
mod http_load;
mod machine;
mod peer;
mod report;
mod scenario;
mod stats;
mod watchers;

use clap::Parser;

/// Command line of the benchmark runner.
#[derive(Debug, Parser)]
#[command(name = "verdict-bench", about)]
struct Cli {
    /// `all`, or one scenario: ingest, badsig, latency, getcase, watch, watch100k, churn,
    /// feedfilter.
    #[arg(default_value = "all")]
    target: String,

    /// Short windows and one repeat: about two minutes for everything.
    #[arg(long)]
    quick: bool,

    /// A tiny run of a few scenarios that asserts correctness, never speed (for CI).
    #[arg(long)]
    smoke: bool,

    /// With `churn`: run it for ten minutes and report whether RSS stays flat after warm-up.
    #[arg(long)]
    soak: bool,

    /// PostgreSQL server on which a fresh database is created (and dropped) per scenario.
    #[arg(
        long,
        env = "VERDICT_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres_url: String,

    /// Redis server; the run uses a random channel on it.
    #[arg(
        long,
        env = "VERDICT_BENCH_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    redis_url: String,

    /// Internal: run as a peer process (`http` or `grpc`) on the given addresses.
    #[arg(long, hide = true, num_args = 1..)]
    peer: Option<Vec<String>>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(args) = cli.peer {
        return peer::run_process(&args);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mode = if cli.smoke {
        scenario::Mode::Smoke
    } else if cli.quick {
        scenario::Mode::Quick
    } else {
        scenario::Mode::Full
    };
    runtime.block_on(scenario::run_all(scenario::Settings {
        target: cli.target,
        mode,
        postgres_url: cli.postgres_url,
        redis_url: cli.redis_url,
        soak: cli.soak,
    }))
}
