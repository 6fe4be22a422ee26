//! `mbo`: the command-line entry point. Parsing and wiring only; work lives in modules.

mod bench;
mod cli;
mod export;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::ExportBook(args) => export::run(&args),
        cli::Command::Bench(args) => bench::run(&args),
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
