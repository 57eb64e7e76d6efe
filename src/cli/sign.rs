//! `verdict sign`: what operators use to post a correctly signed test webhook.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use secrecy::{ExposeSecret, SecretString};

use crate::config::parse_secret;

/// Arguments of `verdict sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The body to sign, byte for byte (`-` reads standard input).
    pub file: PathBuf,

    /// The signing key; with several comma-separated keys the first one signs.
    #[arg(long, env = "VERDICT_WEBHOOK_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub key: SecretString,
}

/// Prints the hex signature followed by a newline.
pub(super) fn run(args: SignArgs) -> anyhow::Result<()> {
    let body = read_body(&args.file)?;
    let keys = crate::config::split_keys(args.key.expose_secret());
    let key = keys.first().context("the signing key is empty")?;
    println!("{}", verdict_domain::sign(key, &body));
    Ok(())
}

/// A body file byte for byte; `-` reads standard input.
pub(super) fn read_body(file: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    if file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).context("read stdin")?;
        Ok(buf)
    } else {
        std::fs::read(file).with_context(|| format!("read {}", file.display()))
    }
}
