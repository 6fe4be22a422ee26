//! `mbo`: the command-line entry point. Parsing and wiring only; work lives in modules.

mod bench;
mod cli;
mod export;
mod fetch;
mod output;
mod replay_cmd;
mod simulate;
mod stats;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::parse();
    let result = match cli.command {
        cli::Command::ExportBook(args) => export::run(&args),
        cli::Command::Bench(args) => bench::run(&args),
        cli::Command::Fetch(args) => fetch::run(&args),
        cli::Command::Replay(args) => replay_cmd::run(&args),
        cli::Command::Simulate(args) => simulate::run(&args),
        cli::Command::Stats(args) => stats::run(&args),
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
