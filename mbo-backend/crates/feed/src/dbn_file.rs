//! A strict, fast DBN reader for MBO files.
//!
//! Metadata is decoded by the `dbn` crate. Records are framed and parsed here, field by field
//! from their little-endian bytes into [`MboMsg`] values. Why not `dbn`'s record decoder: it is
//! general (any schema, version upgrades, alignment copies, a per-record state machine) and
//! `mbo bench` measured it at 30–60 M records/s on the project's 2-core reference machine,
//! which alone would cap decode+apply below the 30 M/s target. Parsing one fixed layout is a
//! few nanoseconds, safe code, and strict: every record must be a whole MBO record and the
//! stream must end on a record boundary, so a truncated file is an error, never a silent short
//! read (`dbn`'s decoder reports a partial trailing record as a clean end of stream). A zstd
//! stream cut mid-frame is truncation too. Compression is detected from the first bytes, not
//! the file name.
//!
//! The MBO record layout is identical in DBN v1, v2 and v3; v4 files (a wider record header)
//! are refused with a clear message.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use dbn::decode::dbn::MetadataDecoder;
use dbn::{FlagSet, MboMsg, Metadata, RType, RecordHeader, Schema};

/// Why a file cannot be read as a complete MBO stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The path does not exist.
    #[error("no such file")]
    NotFound,
    /// The OS refused to read it.
    #[error("cannot read: {0}")]
    Io(#[source] io::Error),
    /// The content is neither DBN nor zstd-compressed DBN.
    #[error("not a DBN file ({0})")]
    NotDbn(String),
    /// The file holds another schema.
    #[error("holds {found} records, expected mbo")]
    WrongSchema {
        /// Schema (or record type) found.
        found: String,
    },
    /// The stream ends in the middle of the metadata, a record or a compressed frame.
    #[error("truncated after {records} complete records ({detail})")]
    Truncated {
        /// Records decoded before the cut.
        records: u64,
        /// What was cut.
        detail: String,
    },
    /// The DBN decoder rejected the content.
    #[error("corrupt DBN data: {0}")]
    Corrupt(String),
}

/// A [`Problem`] with the file it concerns. Displays as one line: `PATH: problem`.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct DbnFileError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: Problem,
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, DbnFileError>;

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

const TRUNCATED_FRAME: &str = "compressed stream ends mid-frame";

/// Size of an MBO record in DBN v1–v3 (without `ts_out`).
const MBO_LEN: usize = 56;
/// `rtype` of MBO records.
const RTYPE_MBO: u8 = 0xA0;
/// Highest DBN version whose record header this reader parses.
const MAX_VERSION: u8 = 3;
/// Read buffer size: large enough that refills are rare, small enough to stay in L2.
const BUF_LEN: usize = 1 << 18;

/// Decodes MBO records from a DBN stream, strictly.
pub struct MboDecoder<R: Read> {
    path: PathBuf,
    metadata: Metadata,
    reader: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    eof: bool,
    records: u64,
    current: MboMsg,
}

impl<R: Read> std::fmt::Debug for MboDecoder<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MboDecoder")
            .field("path", &self.path)
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

/// A decoder over a file: plain or zstd, detected from content.
pub type FileDecoder = MboDecoder<Box<dyn Read + Send>>;

impl FileDecoder {
    /// Opens `path`, detects compression, reads the metadata and checks the schema is MBO.
    ///
    /// # Errors
    /// [`Problem::NotFound`], [`Problem::Io`], [`Problem::NotDbn`], [`Problem::WrongSchema`],
    /// [`Problem::Truncated`] (cut inside the metadata) or [`Problem::Corrupt`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let err = |problem| DbnFileError {
            path: path.to_owned(),
            problem,
        };
        let file = File::open(path).map_err(|e| {
            err(if e.kind() == io::ErrorKind::NotFound {
                Problem::NotFound
            } else {
                Problem::Io(e)
            })
        })?;
        if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            return Err(err(Problem::Io(io::Error::other("is a directory"))));
        }
        let mut reader = BufReader::with_capacity(1 << 16, file);
        let mut magic = [0u8; 4];
        let got = read_up_to(&mut reader, &mut magic).map_err(|e| err(Problem::Io(e)))?;
        let magic = &magic[..got];
        let chained = io::Cursor::new(magic.to_vec()).chain(reader);
        let inner: Box<dyn Read + Send> = if magic.starts_with(b"DBN") {
            Box::new(chained)
        } else if magic == ZSTD_MAGIC {
            Box::new(ZstdEofGuard(
                zstd::stream::read::Decoder::new(chained).map_err(|e| err(Problem::Io(e)))?,
            ))
        } else if got == 0 {
            return Err(err(Problem::NotDbn("empty file".into())));
        } else {
            return Err(err(Problem::NotDbn(
                "no DBN or zstd signature at the start".into(),
            )));
        };
        MboDecoder::new(path, inner)
    }
}

/// zstd reports a stream cut mid-frame as `UnexpectedEof`; name it so it reads as truncation.
struct ZstdEofGuard<R>(R);

impl<R: Read> Read for ZstdEofGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                TRUNCATED_FRAME,
            )),
            other => other,
        }
    }
}

impl<'a> MboDecoder<&'a [u8]> {
    /// A decoder over uncompressed DBN bytes in memory (benchmarks, tests).
    ///
    /// # Errors
    /// As [`MboDecoder::new`].
    pub fn from_bytes(name: impl AsRef<Path>, bytes: &'a [u8]) -> Result<Self> {
        MboDecoder::new(name.as_ref(), bytes)
    }
}

impl<R: Read> MboDecoder<R> {
    /// Wraps an uncompressed DBN stream; `path` names it in errors.
    ///
    /// # Errors
    /// [`Problem::NotDbn`], [`Problem::WrongSchema`], [`Problem::Truncated`] or
    /// [`Problem::Corrupt`] when the metadata cannot be read or is not MBO.
    pub fn new(path: &Path, mut reader: R) -> Result<Self> {
        let metadata = read_metadata(path, &mut reader)?;
        Ok(Self {
            path: path.to_owned(),
            metadata,
            reader,
            buf: vec![0u8; BUF_LEN].into_boxed_slice(),
            pos: 0,
            end: 0,
            eof: false,
            records: 0,
            current: MboMsg::default(),
        })
    }

    /// The file's metadata: dataset, schema, symbols and their instrument mappings.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The name used in errors.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records decoded so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The next record, or `None` at a clean end of stream.
    ///
    /// # Errors
    /// [`Problem::Truncated`] when the stream ends inside a record or compressed frame,
    /// [`Problem::WrongSchema`] for a non-MBO record in a mixed-schema file,
    /// [`Problem::Corrupt`] for an impossible record length, [`Problem::Io`] otherwise.
    #[inline]
    pub fn next_record(&mut self) -> Result<Option<&MboMsg>> {
        if self.end - self.pos < MBO_LEN && !self.fill(MBO_LEN)? {
            return Ok(None);
        }
        let len = usize::from(self.buf[self.pos]) * 4;
        if len > self.end - self.pos && !self.fill(len)? {
            return Ok(None);
        }
        let rec = &self.buf[self.pos..self.end];
        let rtype = rec[1];
        if rtype != RTYPE_MBO || len < MBO_LEN {
            let problem = bad_record(rtype, len, self.records);
            return Err(self.fail(problem));
        }
        // `fill` guaranteed at least MBO_LEN bytes, so the chunk is always there.
        if let Some(b) = rec.first_chunk::<MBO_LEN>() {
            self.current = parse_mbo(b);
        }
        self.pos += len;
        self.records += 1;
        Ok(Some(&self.current))
    }

    /// Makes at least `need` bytes available at `pos`. `Ok(false)` at a clean end of stream
    /// (no bytes left); truncation if the stream ends with fewer than `need` bytes.
    #[cold]
    fn fill(&mut self, need: usize) -> Result<bool> {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        while self.end < need && !self.eof {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    let problem = Problem::Truncated {
                        records: self.records,
                        detail: e.to_string(),
                    };
                    return Err(self.fail(problem));
                }
                Err(e) => return Err(self.fail(Problem::Io(e))),
            }
        }
        if self.end >= need {
            return Ok(true);
        }
        if self.end == 0 {
            return Ok(false);
        }
        let problem = Problem::Truncated {
            records: self.records,
            detail: format!("{} trailing bytes do not form a whole record", self.end),
        };
        Err(self.fail(problem))
    }

    fn fail(&mut self, problem: Problem) -> DbnFileError {
        // Stop: no further records after an error.
        self.eof = true;
        self.pos = 0;
        self.end = 0;
        DbnFileError {
            path: self.path.clone(),
            problem,
        }
    }
}

/// Reads and checks the DBN prefix and metadata (MBO schema, DBN v1–v3) from the start of
/// `reader`, leaving it at the first record.
fn read_metadata(path: &Path, reader: &mut impl Read) -> Result<Metadata> {
    let err = |problem| DbnFileError {
        path: path.to_owned(),
        problem,
    };
    let truncated_meta = || Problem::Truncated {
        records: 0,
        detail: "inside the metadata".into(),
    };
    let io_err = |e: io::Error| {
        err(if e.kind() == io::ErrorKind::UnexpectedEof {
            truncated_meta()
        } else {
            Problem::Io(e)
        })
    };
    let mut prefix = [0u8; 8];
    let got = read_up_to(reader, &mut prefix).map_err(io_err)?;
    if got < 3 || &prefix[..3] != b"DBN" {
        return Err(err(Problem::NotDbn("no DBN signature".into())));
    }
    if got < 8 {
        return Err(err(truncated_meta()));
    }
    let version = prefix[3];
    if version == 0 || version > MAX_VERSION {
        return Err(err(Problem::Corrupt(format!(
            "DBN version {version} is not supported (mbo reads versions 1 to {MAX_VERSION})"
        ))));
    }
    let meta_len = u32::from_le_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]) as usize;
    let mut meta = vec![0u8; 8 + meta_len];
    meta[..8].copy_from_slice(&prefix);
    let got = read_up_to(reader, &mut meta[8..]).map_err(io_err)?;
    if got < meta_len {
        return Err(err(truncated_meta()));
    }
    let metadata = MetadataDecoder::new(&meta[..])
        .decode()
        .map_err(|e| err(Problem::Corrupt(format!("bad metadata: {e}"))))?;
    if let Some(schema) = metadata.schema {
        if schema != Schema::Mbo {
            return Err(err(Problem::WrongSchema {
                found: schema.as_str().to_owned(),
            }));
        }
    }
    Ok(metadata)
}

/// The problem with a record that is not a whole MBO record.
#[cold]
fn bad_record(rtype: u8, len: usize, records: u64) -> Problem {
    if rtype != RTYPE_MBO {
        Problem::WrongSchema {
            found: RType::try_from(rtype)
                .map(|r| format!("{r:?}"))
                .unwrap_or_else(|_| format!("rtype 0x{rtype:02x}")),
        }
    } else {
        Problem::Corrupt(format!(
            "record {records} has length {len}, an MBO record needs {MBO_LEN}"
        ))
    }
}

/// Decodes MBO records from uncompressed DBN bytes already in memory, without copying them
/// (the streaming [`MboDecoder`] copies through its read buffer). Same strictness.
#[derive(Debug)]
pub struct SliceDecoder<'a> {
    path: PathBuf,
    metadata: Metadata,
    data: &'a [u8],
    pos: usize,
    records: u64,
    current: MboMsg,
}

impl<'a> SliceDecoder<'a> {
    /// Reads the metadata at the start of `bytes`; `name` names the data in errors.
    ///
    /// # Errors
    /// As [`MboDecoder::new`].
    pub fn new(name: impl AsRef<Path>, bytes: &'a [u8]) -> Result<Self> {
        let path = name.as_ref();
        let mut rest = bytes;
        let metadata = read_metadata(path, &mut rest)?;
        Ok(Self {
            path: path.to_owned(),
            metadata,
            data: rest,
            pos: 0,
            records: 0,
            current: MboMsg::default(),
        })
    }

    /// The metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Records decoded so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The next record, or `None` at the end of the bytes.
    ///
    /// # Errors
    /// As [`MboDecoder::next_record`].
    #[inline]
    pub fn next_record(&mut self) -> Result<Option<&MboMsg>> {
        let rest = &self.data[self.pos..];
        let Some(&first) = rest.first() else {
            return Ok(None);
        };
        let len = usize::from(first) * 4;
        if rest.len() < len.max(MBO_LEN) {
            return Err(self.fail(Problem::Truncated {
                records: self.records,
                detail: format!("{} trailing bytes do not form a whole record", rest.len()),
            }));
        }
        let rtype = rest[1];
        if rtype != RTYPE_MBO || len < MBO_LEN {
            return Err(self.fail(bad_record(rtype, len, self.records)));
        }
        // Checked above: at least MBO_LEN bytes remain.
        if let Some(b) = rest.first_chunk::<MBO_LEN>() {
            self.current = parse_mbo(b);
        }
        self.pos += len;
        self.records += 1;
        Ok(Some(&self.current))
    }

    fn fail(&mut self, problem: Problem) -> DbnFileError {
        self.pos = self.data.len();
        DbnFileError {
            path: self.path.clone(),
            problem,
        }
    }
}

/// Reads one MBO record (DBN v1–v3 layout, little-endian).
#[inline(always)]
fn parse_mbo(b: &[u8; MBO_LEN]) -> MboMsg {
    let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let u64_at = |i: usize| {
        u64::from_le_bytes([
            b[i],
            b[i + 1],
            b[i + 2],
            b[i + 3],
            b[i + 4],
            b[i + 5],
            b[i + 6],
            b[i + 7],
        ])
    };
    MboMsg {
        hd: RecordHeader::new::<MboMsg>(RTYPE_MBO, u16_at(2), u32_at(4), u64_at(8)),
        order_id: u64_at(16),
        price: u64_at(24) as i64,
        size: u32_at(32),
        flags: FlagSet::new(b[36]),
        channel_id: b[37],
        action: b[38] as std::ffi::c_char,
        side: b[39] as std::ffi::c_char,
        ts_recv: u64_at(40),
        ts_in_delta: u32_at(48) as i32,
        sequence: u32_at(52),
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads a whole DBN file (plain or zstd) into memory, decompressed, after validating it
/// end to end. For benchmarks and tools that replay the same bytes many times.
///
/// # Errors
/// Any [`Problem`] of the file.
pub fn read_decompressed(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    // Validate first: a truncated or foreign file never reaches a benchmark.
    let mut check = FileDecoder::open(path)?;
    while check.next_record()?.is_some() {}
    let raw = std::fs::read(path).map_err(|e| DbnFileError {
        path: path.to_owned(),
        problem: Problem::Io(e),
    })?;
    if raw.starts_with(&ZSTD_MAGIC) {
        zstd::stream::decode_all(&raw[..]).map_err(|e| DbnFileError {
            path: path.to_owned(),
            problem: Problem::Io(e),
        })
    } else {
        Ok(raw)
    }
}

/// A DBN file as a rewindable [`RecordSource`](crate::RecordSource) (rewind reopens the file).
#[derive(Debug)]
pub struct DbnFileSource {
    path: PathBuf,
    decoder: FileDecoder,
}

impl DbnFileSource {
    /// Opens `path` (see [`FileDecoder::open`]).
    ///
    /// # Errors
    /// Any [`Problem`] of the file's start.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_owned();
        let decoder = FileDecoder::open(&path)?;
        Ok(Self { path, decoder })
    }

    /// The file's metadata.
    pub fn metadata(&self) -> &Metadata {
        self.decoder.metadata()
    }
}

impl crate::RecordSource for DbnFileSource {
    fn next_record(&mut self) -> crate::source::Result<Option<&MboMsg>> {
        Ok(self.decoder.next_record()?)
    }

    fn rewind(&mut self) -> crate::source::Result<()> {
        self.decoder = FileDecoder::open(&self.path)?;
        Ok(())
    }
}
