//! The `verdict` binary: parse the command line and hand over to the library.

use clap::Parser;

/// mimalloc rather than glibc's malloc: under stream churn (thousands of short-lived streams a
/// second, each allocated on one worker thread and freed on another) glibc's per-thread arenas
/// fragmented, RSS grew by hundreds of MiB and malloc was the largest single cost in the
/// profile (README, Performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    verdict::cli::Cli::parse().run().await
}
