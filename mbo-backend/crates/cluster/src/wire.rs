//! What travels on NATS: streams, subjects, headers and payloads (see the crate docs for the
//! protocol). Both roles use these definitions and nothing else, so the two sides cannot
//! drift apart.

use std::time::Duration;

use async_nats::jetstream::stream::{Config, DiscardPolicy, StorageType};
use async_nats::HeaderMap;
use dbn::MboMsg;
use mbo_feed::{FeedMetadata, Pace, PlayState, ReplayStatus, SourceKind, SymbolInfo};
use serde::{Deserialize, Serialize};

use crate::ClusterError;

/// Stream of the applied record batches, resets and ends, in engine order.
pub const RECORDS_STREAM: &str = "MBO_RECORDS";
/// Its one subject.
pub const RECORDS_SUBJECT: &str = "mbo.records";
/// Stream of snapshot rounds (the latest message per subject is kept).
pub const SNAPSHOTS_STREAM: &str = "MBO_SNAPSHOTS";
/// Subject of the round markers.
pub const ROUND_SUBJECT: &str = "mbo.snapshot.round";
/// Stream of the ingest's status (the latest is kept).
pub const STATUS_STREAM: &str = "MBO_STATUS";
/// Its one subject (also received live by every gateway).
pub const STATUS_SUBJECT: &str = "mbo.status";
/// Request/reply: publish a snapshot round now; the reply names it.
pub const SNAPSHOT_REQUEST_SUBJECT: &str = "mbo.ctl.snapshot";
/// Request/reply: an HTTP request forwarded by a gateway (history, replay commands).
pub const HTTP_REQUEST_SUBJECT: &str = "mbo.ctl.http";

/// How long record batches are kept: a gateway that starts needs only what follows the
/// latest round (at most [`crate::ingest::ROUND_EVERY`] old).
pub const RECORDS_MAX_AGE: Duration = Duration::from_secs(600);
/// Bytes of record batches (and of book changes) kept at most on file (the oldest go first).
pub const RECORDS_MAX_BYTES: i64 = 1 << 30;
/// The same in memory: a gateway needs only the last second or so (see
/// [`crate::ingest::ROUND_EVERY`]); 256 MiB is minutes at 100,000 records/s.
pub const RECORDS_MAX_MEMORY: i64 = 256 << 20;

/// Where JetStream keeps the records and book-change streams (`--nats-storage`). Snapshot
/// rounds and the status are always on file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordsStorage {
    /// In the NATS server's memory: no disk write per message (the default; a NATS restart
    /// loses them, and gateways resynchronise from a fresh round, as after any restart).
    #[default]
    Memory,
    /// On disk: survives a NATS restart, at the cost of a write per message (a latency
    /// tail of a few ms measured here).
    File,
}
/// JetStream's de-duplication window for `Nats-Msg-Id` (a republished message after a
/// NATS reconnect is dropped if the first copy landed).
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Header: what a message on [`RECORDS_SUBJECT`] is (`records`, `reset`, `end`).
pub const H_KIND: &str = "Mbo-Kind";
/// Header: the feed epoch.
pub const H_EPOCH: &str = "Mbo-Epoch";
/// Header: index of the first record (`records`), or of the next one (`reset`, rounds).
pub const H_INDEX: &str = "Mbo-Index";
/// Header: number of records in the batch.
pub const H_COUNT: &str = "Mbo-Count";
/// Header: `1` for the catch-up records of a seek.
pub const H_CATCH_UP: &str = "Mbo-Catch-Up";
/// Header: Unix ns at which the ingest applied the batch (for the added-latency figure).
pub const H_APPLIED_NS: &str = "Mbo-Applied-Ns";
/// Header: number of books restored by a reset (a seek from a checkpoint round): gateways
/// take them from the round that follows.
pub const H_RESTORED: &str = "Mbo-Restored";
/// Header of snapshot messages: the round, `"{epoch}.{next_index}"`.
pub const H_ROUND: &str = "Mbo-Round";
/// Header of round markers: stream sequence of the last message of [`RECORDS_STREAM`] the
/// round includes (a gateway follows from the next one).
pub const H_RECORDS_SEQ: &str = "Mbo-Records-Seq";
/// JetStream's de-duplication header.
pub const H_MSG_ID: &str = "Nats-Msg-Id";

/// The streams, as the ingest creates them.
pub fn stream_configs(records: RecordsStorage) -> [Config; 4] {
    let (storage, max_bytes) = match records {
        RecordsStorage::Memory => (StorageType::Memory, RECORDS_MAX_MEMORY),
        RecordsStorage::File => (StorageType::File, RECORDS_MAX_BYTES),
    };
    [
        Config {
            name: RECORDS_STREAM.into(),
            description: Some("mbo: applied MBO record batches, resets and ends, in order".into()),
            subjects: vec![RECORDS_SUBJECT.into()],
            max_age: RECORDS_MAX_AGE,
            max_bytes,
            discard: DiscardPolicy::Old,
            storage,
            duplicate_window: DUPLICATE_WINDOW,
            ..Config::default()
        },
        Config {
            name: SNAPSHOTS_STREAM.into(),
            description: Some("mbo: the latest snapshot round, one message per book".into()),
            subjects: vec!["mbo.snapshot.>".into()],
            max_messages_per_subject: 1,
            storage: StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            ..Config::default()
        },
        Config {
            name: crate::book_changes::BOOKS_STREAM.into(),
            description: Some("mbo: per instrument, the levels and trades of each event".into()),
            subjects: vec!["mbo.book.>".into()],
            max_age: RECORDS_MAX_AGE,
            max_bytes,
            discard: DiscardPolicy::Old,
            storage,
            duplicate_window: DUPLICATE_WINDOW,
            ..Config::default()
        },
        Config {
            name: STATUS_STREAM.into(),
            description: Some("mbo: the ingest's latest status".into()),
            subjects: vec![STATUS_SUBJECT.into()],
            max_messages_per_subject: 1,
            storage: StorageType::File,
            ..Config::default()
        },
    ]
}

/// Subject of one book's snapshot message.
pub fn book_subject(instrument_id: u32, publisher_id: u16) -> String {
    format!("mbo.snapshot.{instrument_id}.{publisher_id}")
}

/// A header's value as an integer.
///
/// # Errors
/// [`ClusterError::Protocol`] when it is missing or not an integer.
pub fn header_u64(headers: Option<&HeaderMap>, name: &str) -> Result<u64, ClusterError> {
    headers
        .and_then(|h| h.get(name))
        .and_then(|v| v.as_str().parse().ok())
        .ok_or_else(|| ClusterError::Protocol(format!("header {name} missing or not an integer")))
}

/// A header's value as text (`""` when missing).
pub fn header_str<'a>(headers: Option<&'a HeaderMap>, name: &str) -> &'a str {
    headers.and_then(|h| h.get(name)).map_or("", |v| v.as_str())
}

/// A round's name.
pub fn round_name(epoch: u64, next_index: u64) -> String {
    format!("{epoch}.{next_index}")
}

/// Headers of a `records` message (what [`RecordsMessage::decode`] reads back).
pub fn records_headers(
    epoch: u64,
    first_index: u64,
    count: usize,
    applied_ns: u64,
    catch_up: bool,
) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(H_MSG_ID, format!("r.{epoch}.{first_index}").as_str());
    h.insert(H_KIND, "records");
    h.insert(H_EPOCH, epoch.to_string().as_str());
    h.insert(H_INDEX, first_index.to_string().as_str());
    h.insert(H_COUNT, count.to_string().as_str());
    h.insert(H_APPLIED_NS, applied_ns.to_string().as_str());
    if catch_up {
        h.insert(H_CATCH_UP, "1");
    }
    h
}

/// What a message on [`RECORDS_SUBJECT`] says.
#[derive(Debug)]
pub enum RecordsMessage {
    /// Applied records.
    Records {
        /// Epoch.
        epoch: u64,
        /// Index of `records[0]`.
        first_index: u64,
        /// Catch-up after a seek.
        catch_up: bool,
        /// Unix ns the ingest applied them.
        applied_ns: u64,
        /// The records.
        records: Vec<MboMsg>,
    },
    /// The market was reset.
    Reset {
        /// New epoch.
        epoch: u64,
        /// Next index.
        next_index: u64,
        /// Books restored (0: none; else take them from the round that follows).
        restored: u64,
    },
    /// The feed ended.
    End {
        /// Epoch.
        epoch: u64,
    },
}

impl RecordsMessage {
    /// Decodes a message of [`RECORDS_SUBJECT`].
    ///
    /// # Errors
    /// [`ClusterError::Protocol`] for missing headers, an unknown kind or a corrupt block.
    pub fn decode(headers: Option<&HeaderMap>, payload: &[u8]) -> Result<Self, ClusterError> {
        let epoch = header_u64(headers, H_EPOCH)?;
        match header_str(headers, H_KIND) {
            "records" => {
                let first_index = header_u64(headers, H_INDEX)?;
                let count = header_u64(headers, H_COUNT)?;
                let records =
                    mbo_store::blocks::decode_block(mbo_store::blocks::BLOCK_FORMAT, payload)
                        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                        .map_err(|e| ClusterError::Protocol(format!("record block: {e}")))?;
                if records.len() as u64 != count {
                    return Err(ClusterError::Protocol(format!(
                        "record block holds {} records, header says {count}",
                        records.len()
                    )));
                }
                Ok(Self::Records {
                    epoch,
                    first_index,
                    catch_up: header_str(headers, H_CATCH_UP) == "1",
                    applied_ns: header_u64(headers, H_APPLIED_NS).unwrap_or(0),
                    records,
                })
            }
            "reset" => Ok(Self::Reset {
                epoch,
                next_index: header_u64(headers, H_INDEX)?,
                restored: header_u64(headers, H_RESTORED).unwrap_or(0),
            }),
            "end" => Ok(Self::End { epoch }),
            other => Err(ClusterError::Protocol(format!(
                "unknown {H_KIND} {other:?} on {RECORDS_SUBJECT}"
            ))),
        }
    }
}

/// The ingest's status: published every second and on every replay change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatusMessage {
    /// Random id of the ingest process (a new one after a restart).
    pub ingest_id: String,
    /// Unix ns of this status.
    pub ts: u64,
    /// The ingest's health label (`starting`, `ready`, `failed`, `stale`).
    pub health: String,
    /// Why it is not ready.
    pub health_detail: Option<String>,
    /// Current epoch.
    pub epoch: u64,
    /// The feed.
    pub feed: FeedStatus,
    /// The replay (`None`: a source that cannot be controlled).
    pub replay: Option<ReplayStatusMessage>,
    /// The crypto venues' layout (`None`: no venues).
    #[serde(default)]
    pub venues: Option<mbo_api::venues::mirror::MirrorLayout>,
}

/// The feed's metadata and description.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FeedStatus {
    /// `file`, `simulator`, `historical`, `live`, `none`.
    pub source: String,
    /// The description (file name, seed, dataset).
    pub description: String,
    /// Dataset.
    pub dataset: String,
    /// `(symbol, instrument_id)` pairs.
    pub symbols: Vec<(String, u32)>,
    /// First `ts_recv`.
    pub start_ts: Option<u64>,
    /// Last `ts_recv`.
    pub end_ts: Option<u64>,
    /// Records in the source.
    pub record_count: Option<u64>,
}

impl FeedStatus {
    /// From the ingest's feed.
    pub fn new(metadata: &FeedMetadata, description: &str) -> Self {
        Self {
            source: metadata.source.label().into(),
            description: description.into(),
            dataset: metadata.dataset.clone(),
            symbols: metadata
                .symbols
                .iter()
                .map(|s| (s.symbol.clone(), s.instrument_id))
                .collect(),
            start_ts: metadata.start_ts,
            end_ts: metadata.end_ts,
            record_count: metadata.record_count,
        }
    }

    /// The metadata a gateway's feed reports. The source kind is the ingest's, so status
    /// reads the same on every replica (a file's path is not sent: only its name matters).
    pub fn metadata(&self) -> FeedMetadata {
        let source = match self.source.as_str() {
            "file" => SourceKind::File {
                path: self.description.clone().into(),
            },
            "simulator" => SourceKind::Simulator { seed: 0 },
            "historical" => SourceKind::Historical,
            "live" => SourceKind::Live,
            _ => SourceKind::None,
        };
        FeedMetadata {
            source,
            dataset: self.dataset.clone(),
            symbols: self
                .symbols
                .iter()
                .map(|(symbol, id)| SymbolInfo {
                    symbol: symbol.clone(),
                    instrument_id: *id,
                })
                .collect(),
            start_ts: self.start_ts,
            end_ts: self.end_ts,
            record_count: self.record_count,
        }
    }
}

/// A replay's status on the wire.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReplayStatusMessage {
    /// `playing`, `paused`, `ended`.
    pub state: String,
    /// `max`, `rate`, `realtime`.
    pub pace: String,
    /// Records per second at `rate`.
    pub rate: Option<u64>,
    /// Speed at `realtime`.
    pub speed: Option<f64>,
    /// Position.
    pub position_ts: u64,
    /// Next index.
    pub next_index: u64,
    /// Progress 0–1.
    pub progress: f64,
    /// Records released.
    pub released: u64,
}

impl From<&ReplayStatus> for ReplayStatusMessage {
    fn from(s: &ReplayStatus) -> Self {
        let (pace, rate, speed) = match s.pace {
            Pace::Max => ("max", None, None),
            Pace::Rate(n) => ("rate", Some(n), None),
            Pace::Realtime { speed } => ("realtime", None, Some(speed)),
        };
        Self {
            state: s.state.label().into(),
            pace: pace.into(),
            rate,
            speed,
            position_ts: s.position_ts,
            next_index: s.next_index,
            progress: s.progress,
            released: s.released,
        }
    }
}

impl ReplayStatusMessage {
    /// Back to the feed's type.
    pub fn to_status(&self) -> ReplayStatus {
        ReplayStatus {
            state: match self.state.as_str() {
                "paused" => PlayState::Paused,
                "ended" => PlayState::Ended,
                _ => PlayState::Playing,
            },
            pace: match (self.pace.as_str(), self.rate, self.speed) {
                ("rate", Some(n), _) => Pace::Rate(n),
                ("realtime", _, Some(speed)) => Pace::Realtime { speed },
                _ => Pace::Max,
            },
            position_ts: self.position_ts,
            next_index: self.next_index,
            progress: self.progress,
            released: self.released,
        }
    }
}

/// The marker that closes a snapshot round (payload of [`ROUND_SUBJECT`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RoundMarker {
    /// Epoch of the round.
    pub epoch: u64,
    /// Index of the next record after the round's state.
    pub next_index: u64,
    /// Last stream sequence of [`RECORDS_STREAM`] included.
    pub records_seq: u64,
    /// The books of the round, `(instrument_id, publisher_id)`.
    pub books: Vec<(u32, u16)>,
}

/// Reply to [`SNAPSHOT_REQUEST_SUBJECT`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RoundReply {
    /// Epoch of the round published.
    pub epoch: u64,
    /// Its next index.
    pub next_index: u64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use dbn::{FlagSet, RecordHeader};

    fn records(n: u64) -> Vec<MboMsg> {
        (0..n)
            .map(|i| MboMsg {
                hd: RecordHeader::new::<MboMsg>(dbn::rtype::MBO, 1, 7, 1_000 + i),
                order_id: 10 + i,
                price: 64_820_000_000 + i as i64 * 10_000_000,
                size: 3,
                flags: FlagSet::empty().set_last(),
                channel_id: 0,
                action: b'A' as std::ffi::c_char,
                side: b'B' as std::ffi::c_char,
                ts_recv: 2_000 + i,
                ts_in_delta: 5,
                sequence: i as u32,
            })
            .collect()
    }

    fn block(r: &[MboMsg]) -> Vec<u8> {
        let mut out = Vec::new();
        mbo_store::blocks::encode_block(r, &mut out);
        out
    }

    #[test]
    fn a_records_message_round_trips_every_field() {
        let r = records(5);
        let h = records_headers(3, 41, r.len(), 99, true);
        match RecordsMessage::decode(Some(&h), &block(&r)).unwrap() {
            RecordsMessage::Records {
                epoch,
                first_index,
                catch_up,
                applied_ns,
                records,
            } => {
                assert_eq!(
                    (epoch, first_index, catch_up, applied_ns),
                    (3, 41, true, 99)
                );
                assert_eq!(records, r);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_messages_are_protocol_errors_not_panics() {
        let r = records(3);
        // No headers at all.
        assert!(matches!(
            RecordsMessage::decode(None, &block(&r)),
            Err(ClusterError::Protocol(_))
        ));
        // The count says 4, the block holds 3.
        let h = records_headers(0, 0, 4, 0, false);
        assert!(matches!(
            RecordsMessage::decode(Some(&h), &block(&r)),
            Err(ClusterError::Protocol(_))
        ));
        // A truncated block.
        let h = records_headers(0, 0, 3, 0, false);
        let b = block(&r);
        assert!(matches!(
            RecordsMessage::decode(Some(&h), &b[..b.len() / 2]),
            Err(ClusterError::Protocol(_))
        ));
        // An unknown kind.
        let mut h = records_headers(0, 0, 3, 0, false);
        h.insert(H_KIND, "rewind");
        assert!(matches!(
            RecordsMessage::decode(Some(&h), &b),
            Err(ClusterError::Protocol(_))
        ));
    }

    #[test]
    fn replay_status_survives_the_wire() {
        for pace in [
            Pace::Max,
            Pace::Rate(100_000),
            Pace::Realtime { speed: 2.5 },
        ] {
            let s = ReplayStatus {
                state: PlayState::Paused,
                pace,
                position_ts: 7,
                next_index: 8,
                progress: 0.25,
                released: 9,
            };
            let wire: ReplayStatusMessage = serde_json::from_str(
                &serde_json::to_string(&ReplayStatusMessage::from(&s)).unwrap(),
            )
            .unwrap();
            assert_eq!(wire.to_status(), s);
        }
    }
}
