//! `mbo`: the command-line entry point. Parsing and wiring only; work lives in modules.

mod bench;
mod cli;
mod cluster_bench;
mod db;
mod db_export;
mod export;
mod fetch;
mod loadtest;
mod output;
mod record;
mod replay_cmd;
mod serve;
mod simulate;
mod stats;
mod venue_bench;
mod venue_replay;
mod venue_sim;

use std::process::ExitCode;

fn main() -> ExitCode {
    // `.env` fills in what the environment does not set (defaults < .env < MBO_* < flags).
    // A missing .env is normal; a malformed one is reported, not ignored.
    if let Err(e) = dotenvy::dotenv() {
        if !e.not_found() {
            eprintln!("mbo: error: .env: {e}");
            return ExitCode::from(2);
        }
    }
    let cli = cli::parse();
    let result = match cli.command {
        None => serve::run(&cli.serve),
        Some(cli::Command::Serve(args)) => serve::run(&args),
        Some(cli::Command::ExportBook(args)) => export::run(&args),
        Some(cli::Command::Bench(args)) => bench::run(&args),
        Some(cli::Command::Fetch(args)) => fetch::run(&args),
        Some(cli::Command::Replay(args)) => replay_cmd::run(&args),
        Some(cli::Command::Simulate(args)) => simulate::run(&args),
        Some(cli::Command::Stats(args)) => stats::run(&args),
        Some(cli::Command::Loadtest(args)) => loadtest::run(&args),
        Some(cli::Command::ClusterBench(args)) => cluster_bench::run(&args),
        Some(cli::Command::Db(args)) => db::run(&args),
        Some(cli::Command::VenueReplay(args)) => venue_replay::run(&args),
        Some(cli::Command::VenueSim(args)) => venue_sim::run(&args),
        Some(cli::Command::Record(args)) => record::run(&args),
        Some(cli::Command::VenueBench(args)) => venue_bench::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, naming the file and the problem (the chain is joined with ": ").
            eprintln!("mbo: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
