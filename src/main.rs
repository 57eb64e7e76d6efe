//! The `verdict` binary: parse the command line and hand over to the library.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    verdict::cli::Cli::parse().run().await
}
