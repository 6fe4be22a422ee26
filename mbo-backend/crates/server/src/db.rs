//! `mbo db`: the SQLite history database from the command line.
//!
//! * `stats`: sessions, rows, sizes, schema version (`--json` for scripts);
//! * `vacuum`: folds the WAL into the file and rebuilds it, returning the pages retention
//!   freed to the file system;
//! * `import`: stores a DBN file exactly as the server's engine records a feed (a
//!   [`Recorder`] fed by a [`Market`], checkpoint rounds included), once per file content;
//! * `retention`: applies a [`RetentionPolicy`] once.
//!
//! Only `import` creates a database: `stats`, `vacuum` and `retention` on a path that does
//! not exist, or that is not an mbo database, fail with the path in the message instead of
//! leaving an empty database behind (a typo in `--db` must not look like an empty history).

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use dbn::MboMsg;
use mbo_book::Market;
use mbo_feed::RecordSource;
use mbo_store::{
    CheckpointPolicy, Recorder, RecorderOptions, RetentionPolicy, SessionId, Store, SymbolMapping,
    Writer,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// `mbo db`.
#[derive(Debug, Args)]
pub struct DbArgs {
    /// What to do with the database.
    #[command(subcommand)]
    pub command: DbCommand,
}

/// `mbo db` subcommands.
#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Sessions (stored events, index and time ranges), row counts, file and WAL size, bytes
    /// per million events, schema version.
    Stats(DbStatsArgs),
    /// Fold the WAL into the file and rebuild it (VACUUM): returns the space freed by
    /// retention to the file system. Holds the write lock while it runs.
    Vacuum(DbVacuumArgs),
    /// Import a DBN file of MBO records (idempotent: the same content is stored once).
    Import(DbImportArgs),
    /// Apply a retention policy once and print what it deleted.
    Retention(DbRetentionArgs),
    /// Write a session's stored records (all, or a time window, or one symbol) as a DBN
    /// file or NDJSON: raw events back out of the database.
    Export(crate::db_export::DbExportArgs),
}

/// The database path, shared by every `mbo db` command.
#[derive(Debug, Clone, Args)]
pub struct DbPath {
    /// The SQLite database.
    #[arg(
        long,
        env = "MBO_DB",
        value_name = "PATH",
        default_value = "data/mbo.db"
    )]
    pub db: PathBuf,
}

/// `mbo db stats`.
#[derive(Debug, Args)]
pub struct DbStatsArgs {
    #[command(flatten)]
    pub path: DbPath,
    /// One JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// `mbo db vacuum`.
#[derive(Debug, Args)]
pub struct DbVacuumArgs {
    #[command(flatten)]
    pub path: DbPath,
    /// One JSON object instead of the text.
    #[arg(long)]
    pub json: bool,
}

/// `mbo db import`.
#[derive(Debug, Args)]
pub struct DbImportArgs {
    /// A DBN file of MBO records (`.dbn` or zstd-compressed `.dbn.zst`; detected by content).
    pub file: PathBuf,
    #[command(flatten)]
    pub path: DbPath,
    /// Records between two checkpoint rounds (time travel reads at most this many events
    /// after a round; retention cuts only at rounds).
    #[arg(long, value_name = "N", default_value_t = CheckpointPolicy::default().every_events,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_every: u64,
    /// One JSON object instead of the text.
    #[arg(long)]
    pub json: bool,
}

/// `mbo db retention`.
#[derive(Debug, Args)]
pub struct DbRetentionArgs {
    /// What to keep: an age (7d, 12h, 30m), a row count (5000000, 5M), both (7d,10M) or off.
    #[arg(long, value_parser = parse_policy)]
    pub policy: RetentionPolicy,
    #[command(flatten)]
    pub path: DbPath,
    /// One JSON object instead of the text.
    #[arg(long)]
    pub json: bool,
}

fn parse_policy(text: &str) -> Result<RetentionPolicy, String> {
    text.parse::<RetentionPolicy>().map_err(|e| e.to_string())
}

pub fn run(args: &DbArgs) -> Result<()> {
    let text = match &args.command {
        DbCommand::Stats(a) => stats(&a.path.db, a.json)?,
        DbCommand::Vacuum(a) => vacuum(&a.path.db, a.json)?,
        DbCommand::Import(a) => import(a)?,
        DbCommand::Retention(a) => retention(&a.path.db, &a.policy, a.json)?,
        DbCommand::Export(a) => {
            let store = open_existing(&a.path.db)?;
            return crate::db_export::run(a, &store);
        }
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A reader that went away (`| head`) is not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing standard output"),
    }
}

/// Opens an existing mbo database; never creates one (see the module docs).
fn open_existing(path: &Path) -> Result<Store> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("{}: cannot open database", path.display()))?;
    if !meta.is_file() {
        bail!("{}: cannot open database: not a file", path.display());
    }
    check_mbo_database(path)?;
    Store::open(path).with_context(|| format!("{}: cannot open database", path.display()))
}

/// Fails unless `path` is an SQLite file holding mbo's tables. Checked on a connection that
/// cannot create anything, because [`Store::open`] would add mbo's schema to any SQLite file.
fn check_mbo_database(path: &Path) -> Result<()> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("{}: cannot open database", path.display()))?;
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'feed_sessions'",
            [],
            |r| r.get(0),
        )
        .with_context(|| format!("{}: not an SQLite database", path.display()))?;
    if tables == 0 {
        bail!(
            "{}: not an mbo database (no feed_sessions table)",
            path.display()
        );
    }
    Ok(())
}

/// `path` with `suffix` appended to its file name (`mbo.db` → `mbo.db-wal`).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// Sizes of the main file and of its WAL (0 when absent), bytes.
fn sizes(path: &Path) -> (u64, u64) {
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    (size(path), size(&sibling(path, "-wal")))
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// RFC 3339 of a nanosecond timestamp (`None` outside the representable range).
fn rfc3339(ns: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
}

fn time_text(ns: Option<i64>) -> String {
    match ns {
        Some(ns) => match rfc3339(ns) {
            Some(t) => format!("{t} ({ns} ns)"),
            None => format!("{ns} ns"),
        },
        None => "-".into(),
    }
}

/// `12 345 678` → `11.8 MiB`.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// One session as `mbo db stats` shows it.
struct SessionInfo {
    id: i64,
    source: String,
    source_key: String,
    dataset: Option<String>,
    started_at: i64,
    ended_at: Option<i64>,
    first_index: i64,
    last_index: Option<i64>,
    first_ts: Option<i64>,
    last_ts: Option<i64>,
}

impl SessionInfo {
    fn events(&self) -> u64 {
        self.last_index.map_or(0, |last| {
            u64::try_from(last + 1 - self.first_index).unwrap_or(0)
        })
    }

    fn to_json(&self) -> Value {
        let ts = |ns: Option<i64>| ns.map(mbo_store::u64_from_sql);
        json!({
            "id": self.id,
            "source": self.source,
            "source_key": self.source_key,
            "dataset": self.dataset,
            "events": self.events(),
            "first_index": self.first_index,
            "last_index": self.last_index,
            "first_ts_recv": ts(self.first_ts),
            "last_ts_recv": ts(self.last_ts),
            "first_time": self.first_ts.and_then(rfc3339),
            "last_time": self.last_ts.and_then(rfc3339),
            "started_at": self.started_at,
            "started": rfc3339(self.started_at),
            "ended_at": self.ended_at,
            "ended": self.ended_at.and_then(rfc3339),
        })
    }
}

fn sessions(conn: &Connection) -> Result<Vec<SessionInfo>> {
    let mut stmt = conn.prepare(
        "SELECT id, source, source_key, dataset, started_at, ended_at, first_index, last_index \
         FROM feed_sessions ORDER BY id",
    )?;
    let mut out = stmt
        .query_map([], |r| {
            Ok(SessionInfo {
                id: r.get(0)?,
                source: r.get(1)?,
                source_key: r.get(2)?,
                dataset: r.get(3)?,
                started_at: r.get(4)?,
                ended_at: r.get(5)?,
                first_index: r.get(6)?,
                last_index: r.get(7)?,
                first_ts: None,
                last_ts: None,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    // Key seeks to each end of the session's event blocks: no scan.
    let mut first = conn.prepare(
        "SELECT ts_first FROM mbo_blocks WHERE session_id = ?1 ORDER BY first_index LIMIT 1",
    )?;
    let mut last = conn.prepare(
        "SELECT ts_last FROM mbo_blocks WHERE session_id = ?1 ORDER BY first_index DESC LIMIT 1",
    )?;
    for s in &mut out {
        s.first_ts = first.query_row([s.id], |r| r.get(0)).optional()?;
        s.last_ts = last.query_row([s.id], |r| r.get(0)).optional()?;
    }
    Ok(out)
}

fn stats(path: &Path, as_json: bool) -> Result<String> {
    let store = open_existing(path)?;
    let context = || format!("{}: reading statistics", path.display());
    let version = store.schema_version().with_context(context)?;
    let rows = store.stats().with_context(context)?;
    let sessions = sessions(store.connection()).with_context(context)?;
    let (file, wal) = sizes(path);
    let per_million = (rows.events > 0).then(|| (file + wal) as f64 * 1e6 / rows.events as f64);
    if as_json {
        let v = json!({
            "path": path.display().to_string(),
            "schema_version": version,
            "file_bytes": file,
            "wal_bytes": wal,
            "bytes_per_million_events": per_million.map(f64::round),
            "rows": {
                "sessions": rows.sessions,
                "instruments": rows.instruments,
                "events": rows.events,
                "trades": rows.trades,
                "checkpoints": rows.checkpoints,
            },
            "sessions": sessions.iter().map(SessionInfo::to_json).collect::<Vec<_>>(),
        });
        return Ok(format!("{v}\n"));
    }
    let mut t = String::new();
    t += &format!("database  {}\n", path.display());
    t += &format!("schema    version {version}\n");
    t += &format!(
        "size      {} ({file} bytes) + WAL {} ({wal} bytes)\n",
        human(file),
        human(wal)
    );
    t += &format!(
        "rows      {} sessions, {} instruments, {} events, {} trades, {} checkpoints\n",
        rows.sessions, rows.instruments, rows.events, rows.trades, rows.checkpoints
    );
    if let Some(b) = per_million {
        t += &format!(
            "density   {} per million events ({:.1} bytes per event, file + WAL)\n",
            human(b.round() as u64),
            b / 1e6
        );
    }
    for s in &sessions {
        t += &format!(
            "\nsession {}  {}  {}  dataset {}\n",
            s.id,
            s.source,
            s.source_key,
            s.dataset.as_deref().unwrap_or("-")
        );
        match s.last_index {
            Some(last) if s.events() > 0 => {
                t += &format!(
                    "  events   {} stored, indexes {}..={last}\n",
                    s.events(),
                    s.first_index
                );
            }
            _ => t += &format!("  events   none stored (first index {})\n", s.first_index),
        }
        t += &format!("  from     {}\n", time_text(s.first_ts));
        t += &format!("  to       {}\n", time_text(s.last_ts));
        t += &format!("  started  {}\n", time_text(Some(s.started_at)));
        t += &format!(
            "  ended    {}\n",
            if s.ended_at.is_some() {
                time_text(s.ended_at)
            } else {
                "no (open)".into()
            }
        );
    }
    Ok(t)
}

fn vacuum(path: &Path, as_json: bool) -> Result<String> {
    let store = open_existing(path)?;
    let before = sizes(path);
    let start = Instant::now();
    let conn = store.connection();
    let context = || format!("{}: vacuum", path.display());
    // Fold the WAL in first, VACUUM (which writes its new pages through the WAL too), then
    // fold again: only then does the main file have its final, smaller size.
    checkpoint_wal(conn).with_context(context)?;
    conn.execute_batch("VACUUM").with_context(context)?;
    let busy = checkpoint_wal(conn).with_context(context)?;
    let after = sizes(path);
    let seconds = start.elapsed().as_secs_f64();
    if as_json {
        let v = json!({
            "path": path.display().to_string(),
            "before": {"file_bytes": before.0, "wal_bytes": before.1},
            "after": {"file_bytes": after.0, "wal_bytes": after.1},
            "wal_fully_checkpointed": !busy,
            "seconds": seconds,
        });
        return Ok(format!("{v}\n"));
    }
    let mut t = format!(
        "vacuumed {} in {seconds:.2} s\n  before  {} + WAL {}\n  after   {} + WAL {}\n",
        path.display(),
        human(before.0),
        human(before.1),
        human(after.0),
        human(after.1)
    );
    if busy {
        t += "  note: another connection is reading; the WAL could not be emptied completely\n";
    }
    Ok(t)
}

/// `PRAGMA wal_checkpoint(TRUNCATE)`; returns whether a reader kept it from completing.
fn checkpoint_wal(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0).map(|busy| busy != 0)
    })
}

fn retention(path: &Path, policy: &RetentionPolicy, as_json: bool) -> Result<String> {
    let store = open_existing(path)?;
    let start = Instant::now();
    let deleted = mbo_store::enforce_store(&store, policy, now_ns())
        .with_context(|| format!("{}: retention {policy}", path.display()))?;
    let seconds = start.elapsed().as_secs_f64();
    if as_json {
        let v = json!({
            "path": path.display().to_string(),
            "policy": policy.to_string(),
            "deleted": {
                "events": deleted.events,
                "trades": deleted.trades,
                "checkpoints": deleted.checkpoints,
                "sessions": deleted.sessions,
            },
            "seconds": seconds,
        });
        return Ok(format!("{v}\n"));
    }
    if deleted.is_empty() {
        return Ok(format!(
            "retention {policy} on {}: nothing to delete\n",
            path.display()
        ));
    }
    Ok(format!(
        "retention {policy} on {}: deleted {} events, {} trades, {} checkpoints, {} sessions \
         in {seconds:.2} s (run `mbo db vacuum` to shrink the file)\n",
        path.display(),
        deleted.events,
        deleted.trades,
        deleted.checkpoints,
        deleted.sessions
    ))
}

/// Records applied per hand-over to the recorder, extended to the next event boundary (a
/// round can only be taken where no book is inside an event).
const RUN: usize = 4096;

/// What one import did.
struct Imported {
    session: SessionId,
    dataset: String,
    key: String,
    /// Records in the file.
    records: u64,
    /// Records read and applied by this run (0 when everything was already stored).
    read: u64,
    already_stored: bool,
    stats: mbo_store::WriterStats,
    symbols: usize,
    seconds: f64,
}

fn import(args: &DbImportArgs) -> Result<String> {
    let db = &args.path.db;
    let file = &args.file;
    let start = Instant::now();
    let key = mbo_store::file_source_key(file).context("cannot import")?;
    let (mut source, meta) = mbo_feed::replay::open_file_source(file)
        .with_context(|| format!("{}: cannot import", file.display()))?;
    let store = open_or_create(db)?;
    let db_context = || format!("{}: import", db.display());
    let session = store
        .session("file", &key, Some(&meta.dataset))
        .with_context(db_context)?;
    let stored_through = store.last_index(session).with_context(db_context)?;
    let last_round = store.last_checkpoint(session).with_context(db_context)?;
    let total = meta.record_count.unwrap_or(0);
    let mut done = Imported {
        session,
        dataset: meta.dataset.clone(),
        key,
        records: total,
        read: 0,
        already_stored: false,
        stats: mbo_store::WriterStats::default(),
        symbols: 0,
        seconds: 0.0,
    };
    if total > 0 && stored_through.is_some_and(|s| s + 1 >= total) {
        // Everything is there (perhaps partly deleted by retention since): nothing to read.
        done.already_stored = true;
        done.seconds = start.elapsed().as_secs_f64();
        return Ok(import_report(&done, file, db, args.json));
    }

    let writer = Writer::spawn(db, session, 8).with_context(db_context)?;
    let options = RecorderOptions {
        checkpoints: CheckpointPolicy {
            every_events: args.checkpoint_every,
            // Rounds by record count only: where they fall must not depend on how fast this
            // machine imports (the same file gives the same rounds everywhere).
            every: Duration::MAX,
        },
        ..RecorderOptions::default()
    };
    let mut recorder = Recorder::new(writer, options, stored_through, last_round);
    let mut market = Market::new();
    // Runs well below the round interval, so rounds land close to every N records.
    let run_len = usize::try_from(args.checkpoint_every / 4)
        .unwrap_or(RUN)
        .clamp(64, RUN);
    let mut run: Vec<MboMsg> = Vec::with_capacity(run_len * 2);
    let mut records = 0u64;
    while let Some(rec) = source
        .next_record()
        .with_context(|| format!("{}: cannot import", file.display()))?
    {
        let applied = market.apply(rec);
        run.push(rec.clone());
        records += 1;
        // At an event boundary (or, for a file without them, at a bound on memory).
        if (run.len() >= run_len && applied.boundary) || run.len() >= RUN * 16 {
            hand_over(&mut recorder, &market, &mut run).with_context(db_context)?;
        }
    }
    hand_over(&mut recorder, &market, &mut run).with_context(db_context)?;
    let mappings = symbol_mappings(&meta.symbols, &market);
    done.symbols = mappings.len();
    recorder.symbols(mappings);
    done.stats = recorder.finish().with_context(db_context)?;
    store.end_session(session).with_context(db_context)?;
    done.records = records;
    done.read = records;
    done.already_stored = done.stats.events_written == 0;
    done.seconds = start.elapsed().as_secs_f64();
    Ok(import_report(&done, file, db, args.json))
}

/// Opens the database for an import, creating it (and its directory) if it does not exist.
fn open_or_create(db: &Path) -> Result<Store> {
    let exists = std::fs::metadata(db).is_ok_and(|m| m.len() > 0);
    if exists {
        return open_existing(db);
    }
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create directory", dir.display()))?;
    }
    Store::open(db).with_context(|| format!("{}: cannot create database", db.display()))
}

/// Hands the applied `run` to the recorder, offers a checkpoint round, empties `run`.
fn hand_over(
    recorder: &mut Recorder,
    market: &Market,
    run: &mut Vec<MboMsg>,
) -> mbo_store::Result<()> {
    if run.is_empty() {
        return Ok(());
    }
    let first = market.next_index() - run.len() as u64;
    recorder.record(first, run)?;
    recorder.boundary(market)?;
    run.clear();
    Ok(())
}

/// The file's symbols for every book seen (the metadata knows instruments, the records their
/// publishers).
fn symbol_mappings(symbols: &[mbo_feed::SymbolInfo], market: &Market) -> Vec<SymbolMapping> {
    let mut out = Vec::new();
    for book in market.books() {
        let key = book.key();
        for s in symbols
            .iter()
            .filter(|s| s.instrument_id == key.instrument_id)
        {
            out.push(SymbolMapping {
                instrument_id: key.instrument_id,
                publisher_id: key.publisher_id,
                symbol: s.symbol.clone(),
            });
        }
    }
    out
}

fn import_report(done: &Imported, file: &Path, db: &Path, as_json: bool) -> String {
    let rate = if done.seconds > 0.0 {
        done.read as f64 / done.seconds
    } else {
        0.0
    };
    let s = &done.stats;
    if as_json {
        let v = json!({
            "file": file.display().to_string(),
            "db": db.display().to_string(),
            "session": done.session.0,
            "source_key": done.key,
            "dataset": done.dataset,
            "records": done.records,
            "records_read": done.read,
            "already_stored": done.already_stored,
            "events_written": s.events_written,
            "trades_written": s.trades_written,
            "checkpoints_written": s.checkpoints_written,
            "symbols": done.symbols,
            "seconds": done.seconds,
            "records_per_second": rate.round(),
        });
        return format!("{v}\n");
    }
    let mut t = format!(
        "{} → {} session {} ({}, {})\n",
        file.display(),
        db.display(),
        done.session.0,
        done.dataset,
        done.key
    );
    if done.already_stored {
        t += &format!(
            "  already stored: all {} records of this content are in the session; nothing added\n",
            done.records
        );
    } else {
        t += &format!(
            "  {} records; written {} events, {} trades, {} checkpoints, {} symbols\n",
            done.records, s.events_written, s.trades_written, s.checkpoints_written, done.symbols
        );
    }
    if done.read > 0 {
        t += &format!(
            "  {:.2} s, {} records/s\n",
            done.seconds,
            rate.round() as u64
        );
    } else {
        t += &format!("  {:.2} s (the file was not read)\n", done.seconds);
    }
    t
}
