//! `mbo export-book`: the book at every event boundary, one JSON line each.
//!
//! Line shape (the research export; stable):
//! `{"i":..,"ts_recv":..,"ts_event":..,"sequence":..,"instrument_id":..,"publisher_id":..,
//!   "bids":[[price,size,count],..],"asks":[..]}` with prices as 1e-9 integers, best first.
//!
//! Nothing partial pretends to be complete: a file output is written to a temporary file in
//! the same directory and renamed only on success; for standard output the input is
//! validated end to end before the first line is written.

use std::io::{self, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use mbo_book::{Book, Market, Side};
use mbo_feed::dbn_file::FileDecoder;

use crate::cli::ExportBookArgs;
use crate::output::{is_broken_pipe, write_atomically};

pub fn run(args: &ExportBookArgs) -> Result<()> {
    let depth = args.depth as usize;
    let result = match args.out.as_deref() {
        None => export_to_stdout(&args.file, depth),
        Some(p) if p == Path::new("-") => export_to_stdout(&args.file, depth),
        Some(out) => export_to_file(&args.file, out, depth),
    };
    match result {
        // A reader that stops early (`| head`) is not an error: nothing is lost that it wanted.
        Err(e) if is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

fn export_to_stdout(input: &Path, depth: usize) -> Result<()> {
    let mut check = FileDecoder::open(input)?;
    while check.next_record()?.is_some() {}
    let stdout = io::stdout();
    let mut w = BufWriter::with_capacity(1 << 16, stdout.lock());
    export(input, &mut w, depth)?;
    w.flush().context("writing standard output")?;
    Ok(())
}

fn export_to_file(input: &Path, out: &Path, depth: usize) -> Result<()> {
    write_atomically(out, |file| {
        let mut w = BufWriter::with_capacity(1 << 16, file);
        export(input, &mut w, depth)?;
        w.flush().context("flushing output")?;
        Ok(())
    })
}

/// Streams the export of `input` into `w`.
fn export(input: &Path, w: &mut impl Write, depth: usize) -> Result<()> {
    let mut decoder = FileDecoder::open(input)?;
    let mut market = Market::new();
    let mut line = Vec::with_capacity(4096);
    while let Some(rec) = decoder.next_record()? {
        let applied = market.apply(rec);
        if !applied.boundary {
            continue;
        }
        let Some(book) = market.book(applied.key) else {
            continue;
        };
        line.clear();
        write_line(&mut line, applied.index, rec, book, depth);
        w.write_all(&line).context("writing output")?;
    }
    Ok(())
}

fn write_line(out: &mut Vec<u8>, index: u64, rec: &mbo_book::MboMsg, book: &Book, depth: usize) {
    let mut num = itoa::Buffer::new();
    out.extend_from_slice(b"{\"i\":");
    out.extend_from_slice(num.format(index).as_bytes());
    out.extend_from_slice(b",\"ts_recv\":");
    out.extend_from_slice(num.format(rec.ts_recv).as_bytes());
    out.extend_from_slice(b",\"ts_event\":");
    out.extend_from_slice(num.format(rec.hd.ts_event).as_bytes());
    out.extend_from_slice(b",\"sequence\":");
    out.extend_from_slice(num.format(rec.sequence).as_bytes());
    out.extend_from_slice(b",\"instrument_id\":");
    out.extend_from_slice(num.format(rec.hd.instrument_id).as_bytes());
    out.extend_from_slice(b",\"publisher_id\":");
    out.extend_from_slice(num.format(rec.hd.publisher_id).as_bytes());
    for (name, side) in [
        (&b",\"bids\":["[..], Side::Bid),
        (b",\"asks\":[", Side::Ask),
    ] {
        out.extend_from_slice(name);
        for (n, level) in book.levels(side).take(depth).enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.push(b'[');
            out.extend_from_slice(num.format(level.price).as_bytes());
            out.push(b',');
            out.extend_from_slice(num.format(level.size).as_bytes());
            out.push(b',');
            out.extend_from_slice(num.format(level.count).as_bytes());
            out.push(b']');
        }
        out.push(b']');
    }
    out.extend_from_slice(b"}\n");
}
