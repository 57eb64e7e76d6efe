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
    no_transparent_huge_pages();
    verdict::cli::Cli::parse().run().await
}

/// Transparent huge pages off for this process. mimalloc advises the kernel to back its arenas
/// with them, and a huge page is 2 MiB of RSS as soon as one byte of it is touched: with 10 000
/// idle streams on 50 connections, 120 of the service's 140 MiB were huge pages and a stream
/// cost 10.5 KiB instead of 7.7 (`verdict-bench watch`, `AnonHugePages` in
/// `/proc/PID/smaps_rollup`). Set before the servers allocate anything sizeable; a kernel
/// without the call keeps its own setting.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}
