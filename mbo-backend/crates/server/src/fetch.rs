//! `mbo fetch`: download MBO data from Databento's historical API (cached, cost-checked).

use std::str::FromStr;

use anyhow::{anyhow, Context};
use dbn::SType;
use mbo_feed::databento::{fetch, parse_time, FetchOptions, FetchRequest};

use crate::cli::FetchArgs;

/// Runs the command: prints the data file's path on standard output, a summary on standard
/// error (unless `--quiet`).
pub fn run(args: &FetchArgs) -> anyhow::Result<()> {
    let stype_in = SType::from_str(args.stype.trim()).map_err(|_| {
        anyhow!(
            "--stype {:?}: expected raw_symbol, parent, continuous or instrument_id",
            args.stype
        )
    })?;
    let request = FetchRequest {
        dataset: args.dataset.trim().to_owned(),
        symbols: args
            .symbols
            .iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
        stype_in,
        start: parse_time(&args.start).context("--start")?,
        end: parse_time(&args.end).context("--end")?,
    };
    let options = FetchOptions {
        key: None,
        max_cost_usd: args.max_cost,
        confirmed: args.yes,
        out: args.out.clone(),
        cache_dir: args.cache_dir.clone(),
        base_url: args.base_url.clone(),
        progress: !args.quiet,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let outcome = runtime.block_on(fetch(&request, &options))?;

    if !args.quiet {
        let size = outcome.bytes;
        match (outcome.from_cache, outcome.records, outcome.cost_usd) {
            (true, _, _) => eprintln!("mbo: from the cache, no request made ({size} bytes)"),
            (false, Some(records), Some(cost)) => eprintln!(
                "mbo: fetched {records} records for an estimated ${cost:.2} ({size} bytes)"
            ),
            _ => eprintln!("mbo: fetched {size} bytes"),
        }
    }
    println!("{}", outcome.path.display());
    Ok(())
}
