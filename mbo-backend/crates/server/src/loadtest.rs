//! `mbo loadtest`: placeholder, being written.

use clap::Args;

/// `mbo loadtest`.
#[derive(Debug, Args)]
pub struct LoadtestArgs {
    /// Base URL of a running `mbo serve` (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
}

/// Runs the load test.
pub fn run(_args: &LoadtestArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
