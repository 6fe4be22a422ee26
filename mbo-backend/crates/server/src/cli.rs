//! Command-line interface definition.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// mbo: exact market-by-order books from Databento DBN data.
#[derive(Debug, Parser)]
#[command(name = "mbo", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Rebuild the book from a DBN file and write it, as JSON lines, at every event boundary.
    ExportBook(ExportBookArgs),
    /// Measure decode-only and decode+apply throughput over one file.
    Bench(BenchArgs),
}

/// `mbo export-book`.
#[derive(Debug, Args)]
pub struct ExportBookArgs {
    /// A DBN file of MBO records (`.dbn` or zstd-compressed `.dbn.zst`; detected by content).
    pub file: PathBuf,
    /// Levels per side in each line.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub depth: u32,
    /// Output file; `-` or absent means standard output. Written atomically (temp + rename).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `mbo bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A DBN file of MBO records (decompressed into memory once, before timing).
    pub file: PathBuf,
    /// Passes over the file for each measurement (the market is reset between passes).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub loops: u32,
}
