//! `mbo db export`: stored records back out of the database, as a DBN file or NDJSON.
//!
//! Events are stored in compact blocks ([`mbo_store::blocks`]), not one SQL row each, so this
//! is how a researcher gets raw records out of a database without a running server: a whole
//! session or a `ts_recv` window of it, optionally one symbol, either as **DBN** (version 3,
//! schema `mbo`, the session's dataset and symbol mappings in the metadata: Databento's own
//! tools read it, and `mbo export-book`/`mbo serve --dbn` replay it) or as **NDJSON** (one
//! object per record with its stream `index`, every field, prices as 1e-9 integers).
//!
//! Reading goes through [`mbo_store::blocks::scan`] in index order with constant memory: the
//! records stream from SQLite's buffers to the encoder, whatever the window's size. A DBN
//! output file is written to a temporary file and renamed on success (as `mbo simulate`).

use std::io::{BufWriter, Write};
use std::num::NonZeroU64;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use dbn::encode::{DbnEncoder, DynWriter, EncodeRecord};
use dbn::{Compression, MappingInterval, Metadata, SType, Schema, SymbolMapping};
use mbo_store::{SessionId, Store};
use rusqlite::OptionalExtension;

use crate::db::DbPath;
use crate::output::{is_broken_pipe, write_atomically};

/// Output format of `mbo db export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// DBN when `--out` ends in `.dbn` or `.dbn.zst`, NDJSON otherwise (and on stdout).
    Auto,
    /// DBN version 3, zstd-compressed when `--out` ends in `.zst`.
    Dbn,
    /// One JSON object per record.
    Ndjson,
}

/// `mbo db export`.
#[derive(Debug, Args)]
pub struct DbExportArgs {
    #[command(flatten)]
    pub path: DbPath,
    /// The session to export (`mbo db stats` lists them); default: the most recent.
    #[arg(long, value_name = "ID")]
    pub session: Option<i64>,
    /// Only records with `ts_recv` at or after this time (Unix ns or RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub from: Option<u64>,
    /// Only records with `ts_recv` at or before this time (Unix ns or RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub to: Option<u64>,
    /// Only this symbol's records (as stored for the session, e.g. `CLX5`).
    #[arg(long, value_name = "SYMBOL")]
    pub symbol: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ExportFormat::Auto)]
    pub format: ExportFormat,
    /// Output file; `-` is standard output.
    #[arg(long, value_name = "PATH", default_value = "-")]
    pub out: PathBuf,
}

fn parse_time(s: &str) -> Result<u64, String> {
    mbo_api::http::control::parse_ts_str(s).map_err(|e| e.message)
}

/// What an export wrote (the JSON summary on standard error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Exported {
    records: u64,
    first_index: Option<u64>,
    last_index: Option<u64>,
}

/// The session's facts an export needs.
struct SessionFacts {
    id: SessionId,
    dataset: Option<String>,
    first_ts: Option<u64>,
    last_ts: Option<u64>,
    /// `(instrument_id, symbol)`, by instrument.
    symbols: Vec<(u32, String)>,
}

fn session_facts(store: &Store, wanted: Option<i64>) -> Result<SessionFacts> {
    let conn = store.connection();
    let id: Option<i64> = match wanted {
        Some(id) => conn
            .query_row("SELECT id FROM feed_sessions WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?,
        None => conn
            .query_row(
                "SELECT id FROM feed_sessions ORDER BY started_at DESC, id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?,
    };
    let Some(id) = id else {
        match wanted {
            Some(w) => bail!("no session {w} in this database (see `mbo db stats`)"),
            None => bail!("the database holds no session"),
        }
    };
    let dataset: Option<String> = conn.query_row(
        "SELECT dataset FROM feed_sessions WHERE id = ?1",
        [id],
        |r| r.get(0),
    )?;
    let range = mbo_store::blocks::time_range(conn, SessionId(id))?;
    let mut stmt = conn.prepare(
        "SELECT instrument_id, min(symbol) FROM instruments WHERE session_id = ?1 \
         GROUP BY instrument_id ORDER BY instrument_id",
    )?;
    let symbols = stmt
        .query_map([id], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(SessionFacts {
        id: SessionId(id),
        dataset,
        first_ts: range.map(|r| r.0),
        last_ts: range.map(|r| r.1),
        symbols,
    })
}

fn is_dbn_name(path: &Path) -> bool {
    let name = path.to_string_lossy();
    name.ends_with(".dbn") || name.ends_with(".dbn.zst")
}

/// Runs `mbo db export`; the summary line goes to standard error.
///
/// # Errors
/// A database that is not mbo's, an unknown session or symbol, `--from` after `--to`, a
/// corrupt block, or an output that cannot be written.
pub fn run(args: &DbExportArgs, store: &Store) -> Result<()> {
    let facts = session_facts(store, args.session)?;
    let (from, to) = (args.from.unwrap_or(0), args.to.unwrap_or(u64::MAX));
    if from > to {
        bail!("--from is after --to");
    }
    let instrument = match &args.symbol {
        None => None,
        Some(sym) => Some(
            facts
                .symbols
                .iter()
                .find(|(_, s)| s == sym)
                .map(|(i, _)| *i)
                .with_context(|| {
                    let known: Vec<&str> = facts.symbols.iter().map(|(_, s)| s.as_str()).collect();
                    format!(
                        "unknown symbol {sym:?} in session {} (known: {})",
                        facts.id.0,
                        known.join(", ")
                    )
                })?,
        ),
    };
    let to_stdout = args.out == Path::new("-");
    let dbn = match args.format {
        ExportFormat::Dbn => true,
        ExportFormat::Ndjson => false,
        ExportFormat::Auto => !to_stdout && is_dbn_name(&args.out),
    };
    let keep = |rec: &dbn::MboMsg| {
        rec.ts_recv >= from
            && rec.ts_recv <= to
            && instrument.is_none_or(|i| i == rec.hd.instrument_id)
    };
    let conn = store.connection();
    let scan = |visit: &mut dyn FnMut(u64, &dbn::MboMsg) -> Result<()>| -> Result<Exported> {
        let mut out = Exported {
            records: 0,
            first_index: None,
            last_index: None,
        };
        let mut failure = None;
        mbo_store::blocks::scan(conn, facts.id, 0, u64::MAX, |index, rec| {
            // Records are in ts_recv order: past `to`, nothing more can match.
            if rec.ts_recv > to {
                return Ok(ControlFlow::Break(()));
            }
            if keep(&rec) {
                if let Err(e) = visit(index, &rec) {
                    failure = Some(e);
                    return Ok(ControlFlow::Break(()));
                }
                out.records += 1;
                out.first_index.get_or_insert(index);
                out.last_index = Some(index);
            }
            Ok(ControlFlow::Continue(()))
        })?;
        match failure {
            Some(e) => Err(e),
            None => Ok(out),
        }
    };
    let result = if dbn {
        let metadata = dbn_metadata(&facts, from, to, instrument)?;
        let compression = if !to_stdout && args.out.to_string_lossy().ends_with(".zst") {
            Compression::Zstd
        } else {
            Compression::None
        };
        if to_stdout {
            encode_dbn(std::io::stdout().lock(), &metadata, compression, &scan)
        } else {
            write_atomically(&args.out, |file| {
                encode_dbn(file, &metadata, compression, &scan)
            })
        }
    } else {
        let mut line = Vec::with_capacity(256);
        let mut n = itoa::Buffer::new();
        let mut emit = |w: &mut dyn Write, index: u64, rec: &dbn::MboMsg| -> Result<()> {
            line.clear();
            ndjson_record(&mut line, &mut n, index, rec);
            w.write_all(&line)?;
            Ok(())
        };
        if to_stdout {
            let mut w = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
            let done = scan(&mut |i, r| emit(&mut w, i, r));
            done.and_then(|d| {
                w.flush()?;
                Ok(d)
            })
        } else {
            write_atomically(&args.out, |file| {
                let mut w = BufWriter::with_capacity(1 << 16, file);
                let done = scan(&mut |i, r| emit(&mut w, i, r))?;
                w.flush()?;
                Ok(done)
            })
        }
    };
    let done = match result {
        // A reader that went away (`| head`) is not a failure.
        Err(e) if is_broken_pipe(&e) => return Ok(()),
        other => other?,
    };
    let summary = serde_json::json!({
        "session": facts.id.0,
        "records": done.records,
        "first_index": done.first_index,
        "last_index": done.last_index,
        "format": if dbn { "dbn" } else { "ndjson" },
        "out": args.out.display().to_string(),
    });
    eprintln!("{summary}");
    Ok(())
}

/// The records `scan` visits, encoded as DBN into `sink`.
fn encode_dbn<W, S>(
    sink: W,
    metadata: &Metadata,
    compression: Compression,
    scan: &S,
) -> Result<Exported>
where
    W: Write,
    S: Fn(&mut dyn FnMut(u64, &dbn::MboMsg) -> Result<()>) -> Result<Exported>,
{
    let dyn_writer = DynWriter::new(BufWriter::with_capacity(1 << 20, sink), compression)?;
    let mut encoder = DbnEncoder::new(BufWriter::with_capacity(1 << 20, dyn_writer), metadata)?;
    let done = scan(&mut |_, rec| Ok(encoder.encode_record(rec)?))?;
    encoder.get_mut().flush()?;
    encoder.get_mut().get_mut().finish()?;
    Ok(done)
}

/// One record as a JSON object line: its stream `index`, then every field (codes as
/// one-character strings, prices as 1e-9 integers).
fn ndjson_record(out: &mut Vec<u8>, n: &mut itoa::Buffer, index: u64, r: &dbn::MboMsg) {
    let num = |out: &mut Vec<u8>, key: &str, v: &str| {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\":");
        out.extend_from_slice(v.as_bytes());
    };
    out.extend_from_slice(b"{\"index\":");
    out.extend_from_slice(n.format(index).as_bytes());
    num(out, "ts_recv", n.format(r.ts_recv));
    num(out, "ts_event", n.format(r.hd.ts_event));
    num(out, "instrument_id", n.format(r.hd.instrument_id));
    num(out, "publisher_id", n.format(r.hd.publisher_id));
    for (key, code) in [("action", r.action as u8), ("side", r.side as u8)] {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\":");
        // Codes are ASCII letters in valid data; anything else is written as its number.
        if code.is_ascii_alphanumeric() {
            out.extend_from_slice(&[b'"', code, b'"']);
        } else {
            out.extend_from_slice(n.format(code).as_bytes());
        }
    }
    num(out, "price", n.format(r.price));
    num(out, "size", n.format(r.size));
    num(out, "order_id", n.format(r.order_id));
    num(out, "flags", n.format(r.flags.raw()));
    num(out, "sequence", n.format(r.sequence));
    num(out, "channel_id", n.format(r.channel_id));
    num(out, "ts_in_delta", n.format(r.ts_in_delta));
    out.extend_from_slice(b"}\n");
}

/// DBN metadata for the export: the session's dataset, schema `mbo`, the window, and the
/// symbol → instrument mappings stored for the session (whole UTC days, as Databento's).
fn dbn_metadata(
    facts: &SessionFacts,
    from: u64,
    to: u64,
    instrument: Option<u32>,
) -> Result<Metadata> {
    let start = from.max(facts.first_ts.unwrap_or(0));
    let last = to.min(facts.last_ts.unwrap_or(start)).max(start);
    let day = |ts: u64| -> Result<time::Date> {
        Ok(
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts))
                .context("timestamp out of range")?
                .date(),
        )
    };
    let (first_day, last_day) = (day(start)?, day(last)?);
    let end_day = last_day.next_day().unwrap_or(last_day);
    let symbols: Vec<&(u32, String)> = facts
        .symbols
        .iter()
        .filter(|(i, _)| instrument.is_none_or(|w| w == *i))
        .collect();
    let mappings = symbols
        .iter()
        .map(|(id, sym)| SymbolMapping {
            raw_symbol: sym.clone(),
            intervals: vec![MappingInterval {
                start_date: first_day,
                end_date: end_day,
                symbol: id.to_string(),
            }],
        })
        .collect();
    Ok(Metadata::builder()
        .dataset(facts.dataset.clone().unwrap_or_else(|| "UNKNOWN".into()))
        .schema(Some(Schema::Mbo))
        .start(start)
        .end(NonZeroU64::new(last.saturating_add(1)))
        .stype_in(Some(SType::RawSymbol))
        .stype_out(SType::InstrumentId)
        .symbols(symbols.iter().map(|(_, s)| s.clone()).collect())
        .mappings(mappings)
        .build())
}
