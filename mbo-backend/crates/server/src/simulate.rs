//! `mbo simulate`: a simulated market written as a real DBN file.
//!
//! The file is what Databento would send: DBN (version 3) metadata with dataset `SIM`, schema
//! `mbo`, the raw symbols and their symbol → instrument id mappings, start and end times;
//! then the records, zstd-compressed when the output name ends in `.zst`. The metadata's
//! `end` must be known before the first record is written, and the simulator is
//! deterministic, so a first pass runs the simulator without writing to find the last
//! timestamp (generation is several times faster than encoding, so this costs little).
//!
//! A file output is written to a temporary file in the same directory and renamed only on
//! success (an existing device or pipe is written in place). A one-line JSON summary goes to
//! standard error.

use std::io::{self, BufWriter, Write};
use std::num::NonZeroU64;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use dbn::encode::{DbnEncoder, DynWriter, EncodeRecord};
use dbn::{Compression, MappingInterval, Metadata, SType, Schema, SymbolMapping};
use mbo_feed::{SimConfig, Simulator};

use crate::cli::SimulateArgs;
use crate::output::{is_broken_pipe, write_atomically};

pub fn run(args: &SimulateArgs) -> Result<()> {
    let mut config = SimConfig::new(args.seed, args.instruments as usize);
    config.pre_open = args.pre_open;
    config.max_records = Some(args.records);
    let start = Instant::now();
    let mut sim = Simulator::new(config)?;
    let metadata = metadata(&mut sim)?;
    let to_stdout = args.out == Path::new("-");
    let compression = if !to_stdout && args.out.extension().is_some_and(|e| e == "zst") {
        Compression::Zstd
    } else {
        Compression::None
    };
    let written = if to_stdout {
        let stdout = io::stdout();
        match write(&mut sim, &metadata, stdout.lock(), Compression::None) {
            Err(e) if is_broken_pipe(&e) => return Ok(()),
            other => other.context("writing standard output")?,
        }
    } else {
        write_file(&mut sim, &metadata, &args.out, compression)?
    };
    let seconds = start.elapsed().as_secs_f64();
    let summary = serde_json::json!({
        "out": args.out.display().to_string(),
        "records": written,
        "instruments": args.instruments,
        "seed": args.seed,
        "pre_open": args.pre_open,
        "compression": if compression == Compression::Zstd { "zstd" } else { "none" },
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "records_per_s": (written as f64 / seconds.max(1e-9)).round() as u64,
    });
    eprintln!("{summary}");
    Ok(())
}

/// The DBN metadata of the simulated stream: runs the simulator once to find its last
/// `ts_recv`, then rewinds it.
fn metadata(sim: &mut Simulator) -> Result<Metadata> {
    let config = sim.config().clone();
    let mut last = config.start_ts;
    while let Some(event) = sim.next_event() {
        if let Some(r) = event.last() {
            last = r.ts_recv;
        }
    }
    mbo_feed::RecordSource::rewind(sim)?;
    let date = |ts: u64| -> Result<time::Date> {
        Ok(
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts))
                .context("timestamp out of range")?
                .date(),
        )
    };
    let (first_day, last_day) = (date(config.start_ts)?, date(last)?);
    // Mapping intervals are whole UTC days, the end exclusive.
    let end_day = last_day.next_day().unwrap_or(last_day);
    let mappings = config
        .instruments
        .iter()
        .map(|i| SymbolMapping {
            raw_symbol: i.symbol.clone(),
            intervals: vec![MappingInterval {
                start_date: first_day,
                end_date: end_day,
                symbol: i.instrument_id.to_string(),
            }],
        })
        .collect();
    Ok(Metadata::builder()
        .dataset("SIM")
        .schema(Some(Schema::Mbo))
        .start(config.start_ts)
        // The query end is exclusive: one nanosecond after the last record.
        .end(NonZeroU64::new(last.saturating_add(1)))
        .stype_in(Some(SType::RawSymbol))
        .stype_out(SType::InstrumentId)
        .symbols(
            config
                .instruments
                .iter()
                .map(|i| i.symbol.clone())
                .collect(),
        )
        .mappings(mappings)
        .build())
}

fn write_file(
    sim: &mut Simulator,
    metadata: &Metadata,
    out: &Path,
    compression: Compression,
) -> Result<u64> {
    write_atomically(out, |file| write(sim, metadata, file, compression))
}

/// Encodes the whole stream into `sink`; returns the number of records.
fn write<W: Write>(
    sim: &mut Simulator,
    metadata: &Metadata,
    sink: W,
    compression: Compression,
) -> Result<u64> {
    let dyn_writer = DynWriter::new(BufWriter::with_capacity(1 << 20, sink), compression)?;
    // Records are small (56 bytes): a buffer in front of the compressor keeps zstd's
    // per-call overhead off every event.
    let mut encoder = DbnEncoder::new(BufWriter::with_capacity(1 << 20, dyn_writer), metadata)?;
    let mut written = 0u64;
    while let Some(event) = sim.next_event() {
        encoder.encode_records(event)?;
        written += event.len() as u64;
    }
    encoder.get_mut().flush()?;
    encoder.get_mut().get_mut().finish()?;
    Ok(written)
}

/// The same bytes `mbo simulate` writes, for tests: plain DBN of `config`'s stream.
#[cfg(test)]
pub(crate) fn to_bytes(config: SimConfig) -> Result<Vec<u8>> {
    let mut sim = Simulator::new(config)?;
    let metadata = metadata(&mut sim)?;
    let mut out = Vec::new();
    write(&mut sim, &metadata, &mut out, Compression::None)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mbo_feed::dbn_file::MboDecoder;

    #[test]
    fn bytes_decode_with_metadata_and_every_record() {
        let mut config = SimConfig::new(3, 2);
        config.max_records = Some(5_000);
        let bytes = to_bytes(config).unwrap();
        let mut dec = MboDecoder::from_bytes("sim", &bytes).unwrap();
        let meta = dec.metadata().clone();
        assert_eq!(meta.dataset, "SIM");
        assert_eq!(meta.schema, Some(Schema::Mbo));
        assert_eq!(meta.symbols, ["CL.SIM", "ES.SIM"]);
        assert_eq!(meta.mappings.len(), 2);
        assert_eq!(meta.mappings[1].intervals[0].symbol, "1002");
        let mut n = 0;
        let mut last = 0;
        while let Some(r) = dec.next_record().unwrap() {
            n += 1;
            last = r.ts_recv;
        }
        assert_eq!(n, 5_000);
        assert_eq!(meta.end.map(NonZeroU64::get), Some(last + 1));
    }
}
