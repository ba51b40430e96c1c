//! Snapshots of the ledger state, from build to install, in memory independent of the
//! state's size: built by streaming one RocksDB snapshot of the `state` column family into a
//! file, sent to followers in chunks straight from that file, received into a file,
//! verified as a stream, and installed by ingesting SST files. Nothing holds the pairs of a
//! snapshot in memory: every pass reads or writes through a buffer of `IO_BUFFER_BYTES`,
//! and SST files are cut at `SST_BYTES_MAX`.
//!
//! # Frame (version 2)
//!
//! `LDGSNP02 | (u32 key length, key, u32 value length, value)* | u32 0xFFFF_FFFF |
//! u64 pair count | u64 checksum`, all big-endian. Keys strictly increase (the column
//! family's order: the SST writer needs it, and a reordered stream is refused). The end
//! marker makes the frame self-delimiting; the count catches a lost pair; the checksum,
//! over every byte before it, catches a damaged byte in a value that no check parses. The
//! values are the same evolvable JSON as on disk. Version 1 (no end marker, no checksum,
//! decoded whole in memory) is no longer read: a version-1 file left by an older node is
//! removed at open, and openraft builds a new snapshot at startup when its log is purged
//! and no snapshot exists.
//!
//! # Files, in the snapshot directory
//!
//! - `N.data`: a complete, synced frame. `N` is a local sequence number, never reused.
//! - `current`: `{seq, meta, summary}` in JSON, naming the snapshot openraft sees. It is
//!   replaced by writing `current.tmp`, syncing it, renaming it and syncing the directory,
//!   so a crash leaves the old pointer or the new one. A snapshot older than the current
//!   one never replaces it (a build that started before an install finishes late).
//! - `N.pending`: a received snapshot, verified and synced, that openraft was told about
//!   but the state machine has not adopted yet (see below).
//! - `N.building`, `N.receiving`, `N.copying`, `N.stage/`: work in progress, removed at open.
//!
//! # Installing, and why a crash at any step is safe
//!
//! 1. *Receive.* Each chunk is written to `N.receiving` and synced before it is
//!    acknowledged, so the last sync is short whatever the size. A crash: the file is
//!    removed at open; nothing else changed; the leader sends the snapshot again.
//! 2. *Seal* ([`SnapshotData::seal`], by the gRPC handler on the last chunk, before openraft
//!    hears of the snapshot). The whole stream is verified: frame, key order, count,
//!    checksum, every account decoded with no negative balance, conservation (sum of
//!    balances == recorded total), and the applied log id and membership in the data equal
//!    to the meta. A refused stream is deleted and the leader told: neither openraft nor
//!    the state saw it. An accepted one becomes `N.data` + `N.pending`, synced.
//! 3. *openraft accepts it.* It raises its committed index to the snapshot's and purges its
//!    log up to it, without waiting for the state machine (openraft 0.9 does not order the
//!    purge after the install). From here the log cannot rebuild the state: the pending
//!    snapshot can, and open (below) uses it.
//! 4. *Adopt* ([`SnapshotStore::install`]): `current` is pointed at `N` (atomic rename),
//!    then `N.pending` is removed. Not yet verified data (another store's file, in tests)
//!    is verified while it is copied to a new `N.data` first, before anything else.
//! 5. *Stage.* The frame is merged with the live state into SST files: a put for every new
//!    or changed pair, a delete for every live key the snapshot lacks, nothing for equal
//!    pairs (a follower that lags a little writes little). The frame is re-checked as read.
//! 6. *Ingest.* One `ingest_external_file` call: atomic (readers see the old state or the
//!    new one, never a mix, never an empty family) and durable when it returns (RocksDB
//!    syncs the files and the MANIFEST). The applied log id is one of the ingested pairs.
//!
//! The live state changes at step 6 only, atomically. At open, before openraft reads
//! anything ([`SnapshotStore::recover`]): if `current` is ahead of the applied log id, a
//! crash fell between steps 4 and 6, and steps 5-6 are redone from `current`; if the log is
//! purged beyond the applied log id, a crash fell between steps 3 and 4 (or an unsynced
//! apply was lost after a purge), and the newest pending or current snapshot that covers
//! the purge is adopted and loaded. Either way the state machine is at or beyond
//! everything openraft may have purged, and openraft's own startup (committed = applied,
//! logs behind applied purged) completes. A pending snapshot that is not needed is
//! discarded: openraft never accepted it, or it is installed already.

use std::fs;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll};

use rocksdb::{IngestExternalFileOptions, IteratorMode, Options, SstFileWriter, DB};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::db::{cf, decode, get};
use crate::domain::Account;
use crate::error::{Error, Result};
use crate::keys::{self, CF_RAFT, CF_STATE};
use crate::types::{LogId, SnapshotMeta, StoredMembership};

const MAGIC: &[u8; 8] = b"LDGSNP02";
/// Where a key length would be: the end of the pairs. Far above `FIELD_BYTES_MAX`.
const END_OF_PAIRS: u32 = u32::MAX;
/// No key or value of ours comes near this; a larger length means corrupt data.
const FIELD_BYTES_MAX: usize = 64 * 1024 * 1024;
/// The largest snapshot a node accepts: far beyond any ledger this node can hold, a bound on
/// what a misbehaving peer can make it write.
pub const SNAPSHOT_BYTES_MAX: u64 = 1 << 40;
/// Buffer of every streamed read or write of a snapshot file.
const IO_BUFFER_BYTES: usize = 1024 * 1024;
/// SST files are cut at this size while staging an install: bounds the SST writer's index
/// in memory, while keeping the file count of a large install small.
const SST_BYTES_MAX: u64 = 256 * 1024 * 1024;
/// The checksum's start, multiplier and rotation (constants of FNV-1a and of Fibonacci
/// hashing; any odd multiplier keeps each step a bijection).
const CHECKSUM_SEED: u64 = 0xcbf2_9ce4_8422_2325;
const CHECKSUM_MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;
const CHECKSUM_ROTATION: u32 = 29;

fn corrupt(what: impl Into<String>) -> Error {
    Error::CorruptSnapshot(what.into())
}

fn io_error(error: io::Error) -> Error {
    Error::Io(error)
}

/// A 64-bit checksum over a byte stream fed in pieces of any size. Whole 8-byte words are
/// mixed by xor, multiply and rotate; each step is a bijection of the state, so a single
/// changed word always changes the result. It catches damage, not forgery.
#[derive(Debug, Clone)]
struct Checksum {
    state: u64,
    /// Bytes of an unfinished word, little-endian, and how many.
    word: u64,
    word_bytes: u32,
    total_bytes: u64,
}

impl Checksum {
    fn new() -> Checksum {
        Checksum {
            state: CHECKSUM_SEED,
            word: 0,
            word_bytes: 0,
            total_bytes: 0,
        }
    }

    fn mix(&mut self, word: u64) {
        self.state = (self.state ^ word)
            .wrapping_mul(CHECKSUM_MULTIPLIER)
            .rotate_left(CHECKSUM_ROTATION);
    }

    fn push_byte(&mut self, byte: u8) {
        self.word |= u64::from(byte) << (8 * self.word_bytes);
        self.word_bytes += 1;
        if self.word_bytes == 8 {
            let word = self.word;
            self.mix(word);
            self.word = 0;
            self.word_bytes = 0;
        }
    }

    fn update(&mut self, mut bytes: &[u8]) {
        self.total_bytes += bytes.len() as u64;
        while self.word_bytes != 0 && !bytes.is_empty() {
            self.push_byte(bytes[0]);
            bytes = &bytes[1..];
        }
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.mix(u64::from_le_bytes(word.try_into().expect("8 bytes")));
        }
        for byte in words.remainder() {
            self.push_byte(*byte);
        }
    }

    /// The checksum of everything so far (the length included, so trailing zeros count).
    fn value(&self) -> u64 {
        let mut last = self.clone();
        let (word, total) = (last.word, last.total_bytes);
        last.mix(word);
        last.mix(total);
        last.state
    }
}

/// What a complete frame holds: checked against on every later read of the same file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FrameSummary {
    pub pairs: u64,
    /// The whole frame, trailer included.
    pub bytes: u64,
    pub checksum: u64,
}

/// Writes a frame pair by pair; nothing is kept but the previous key (to assert the order).
pub struct FrameWriter<W: Write> {
    out: W,
    checksum: Checksum,
    pairs: u64,
    previous_key: Vec<u8>,
}

impl<W: Write> FrameWriter<W> {
    pub fn new(out: W) -> Result<FrameWriter<W>> {
        let mut writer = FrameWriter {
            out,
            checksum: Checksum::new(),
            pairs: 0,
            previous_key: Vec::new(),
        };
        writer.write_hashed(MAGIC)?;
        Ok(writer)
    }

    fn write_hashed(&mut self, bytes: &[u8]) -> Result<()> {
        self.checksum.update(bytes);
        self.out.write_all(bytes).map_err(io_error)
    }

    /// Appends one pair. Keys must strictly increase, as a column family yields them.
    pub fn push(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        assert!(
            key.len() <= FIELD_BYTES_MAX && value.len() <= FIELD_BYTES_MAX,
            "a key or value of {} / {} bytes is beyond the frame's bound",
            key.len(),
            value.len()
        );
        assert!(
            self.pairs == 0 || self.previous_key.as_slice() < key,
            "snapshot keys strictly increase"
        );
        for field in [key, value] {
            let length = u32::try_from(field.len()).expect("bounded above");
            self.write_hashed(&length.to_be_bytes())?;
            self.write_hashed(field)?;
        }
        self.previous_key.clear();
        self.previous_key.extend_from_slice(key);
        self.pairs += 1;
        Ok(())
    }

    /// Writes the trailer; returns the output (not flushed) and what the frame holds.
    pub fn finish(mut self) -> Result<(W, FrameSummary)> {
        self.write_hashed(&END_OF_PAIRS.to_be_bytes())?;
        let count = self.pairs.to_be_bytes();
        self.write_hashed(&count)?;
        let checksum = self.checksum.value();
        self.out
            .write_all(&checksum.to_be_bytes())
            .map_err(io_error)?;
        let summary = FrameSummary {
            pairs: self.pairs,
            bytes: self.checksum.total_bytes + 8,
            checksum,
        };
        Ok((self.out, summary))
    }
}

/// Reads a frame pair by pair, refusing anything malformed: a bad magic, a length beyond
/// bounds, keys out of order, a truncation, a wrong count or checksum, bytes after the end.
pub struct FrameReader<R: Read> {
    input: R,
    checksum: Checksum,
    pairs: u64,
    key: Vec<u8>,
    previous_key: Vec<u8>,
    value: Vec<u8>,
    /// Set once the trailer was read and checked.
    summary: Option<FrameSummary>,
}

fn read_exact_hashed(
    input: &mut impl Read,
    checksum: &mut Checksum,
    buffer: &mut [u8],
    what: &str,
) -> Result<()> {
    input.read_exact(buffer).map_err(|error| {
        if error.kind() == io::ErrorKind::UnexpectedEof {
            corrupt(format!("truncated in the {what}"))
        } else {
            io_error(error)
        }
    })?;
    checksum.update(buffer);
    Ok(())
}

impl<R: Read> FrameReader<R> {
    pub fn new(mut input: R) -> Result<FrameReader<R>> {
        let mut checksum = Checksum::new();
        let mut magic = [0u8; 8];
        read_exact_hashed(&mut input, &mut checksum, &mut magic, "magic")?;
        if &magic != MAGIC {
            return Err(corrupt("bad magic: not a version 2 ledger snapshot"));
        }
        Ok(FrameReader {
            input,
            checksum,
            pairs: 0,
            key: Vec::new(),
            previous_key: Vec::new(),
            value: Vec::new(),
            summary: None,
        })
    }

    fn read_u32(&mut self, what: &str) -> Result<u32> {
        let mut bytes = [0u8; 4];
        read_exact_hashed(&mut self.input, &mut self.checksum, &mut bytes, what)?;
        Ok(u32::from_be_bytes(bytes))
    }

    fn read_field(&mut self, length: u32, into_value: bool, what: &str) -> Result<()> {
        let length = length as usize;
        if length > FIELD_BYTES_MAX {
            return Err(corrupt(format!("{what} of {length} bytes")));
        }
        let field = if into_value {
            &mut self.value
        } else {
            &mut self.key
        };
        field.resize(length, 0);
        read_exact_hashed(&mut self.input, &mut self.checksum, field, what)
    }

    /// The next pair, or `None` once the trailer has been read and checked.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<(&[u8], &[u8])>> {
        if self.summary.is_some() {
            return Ok(None);
        }
        let key_length = self.read_u32("key length")?;
        if key_length == END_OF_PAIRS {
            self.read_trailer()?;
            return Ok(None);
        }
        std::mem::swap(&mut self.key, &mut self.previous_key);
        self.read_field(key_length, false, "key")?;
        if self.pairs > 0 && self.key <= self.previous_key {
            return Err(corrupt(format!(
                "keys out of order at pair {}",
                self.pairs + 1
            )));
        }
        let value_length = self.read_u32("value length")?;
        self.read_field(value_length, true, "value")?;
        self.pairs += 1;
        Ok(Some((&self.key, &self.value)))
    }

    fn read_trailer(&mut self) -> Result<()> {
        let mut count = [0u8; 8];
        read_exact_hashed(
            &mut self.input,
            &mut self.checksum,
            &mut count,
            "pair count",
        )?;
        let count = u64::from_be_bytes(count);
        if count != self.pairs {
            return Err(corrupt(format!(
                "pair count says {count}, the frame holds {}",
                self.pairs
            )));
        }
        let expected = self.checksum.value();
        let mut stored = [0u8; 8];
        let mut unhashed = Checksum::new();
        read_exact_hashed(&mut self.input, &mut unhashed, &mut stored, "checksum")?;
        if u64::from_be_bytes(stored) != expected {
            return Err(corrupt("checksum does not match"));
        }
        let mut extra = [0u8; 1];
        loop {
            match self.input.read(&mut extra) {
                Ok(0) => break,
                Ok(_) => return Err(corrupt("bytes after the end of the frame")),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(io_error(error)),
            }
        }
        self.summary = Some(FrameSummary {
            pairs: self.pairs,
            bytes: self.checksum.total_bytes + 8,
            checksum: expected,
        });
        Ok(())
    }

    /// What the frame held, once read to its end.
    pub fn summary(&self) -> Option<FrameSummary> {
        self.summary
    }
}

/// The ledger's invariants over the pairs of one snapshot, checked as they stream past:
/// every account decodes under its own key with no negative balance, the balances sum to
/// the recorded total, and the applied log id and membership are those of the meta.
#[derive(Debug, Default)]
pub struct LedgerCheck {
    accounts: u64,
    sum: Decimal,
    total: Option<Decimal>,
    applied: Option<Option<LogId>>,
    membership: Option<StoredMembership>,
}

impl LedgerCheck {
    pub fn observe(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        if key.first() == Some(&keys::account_prefix()[0]) {
            let account: Account = decode(key, value)?;
            if keys::account(&account.account_id) != key {
                return Err(corrupt(format!(
                    "account {} stored under another key",
                    account.account_id.as_str()
                )));
            }
            let balance = account.balance.value();
            if balance < Decimal::ZERO {
                return Err(corrupt(format!(
                    "account {} has a negative balance",
                    account.account_id.as_str()
                )));
            }
            self.sum = self
                .sum
                .checked_add(balance)
                .ok_or_else(|| corrupt("the sum of balances overflows"))?;
            self.accounts += 1;
        } else if key == keys::META_TOTAL_BALANCE {
            self.total = Some(decode(key, value)?);
        } else if key == keys::META_APPLIED {
            self.applied = Some(decode(key, value)?);
        } else if key == keys::META_MEMBERSHIP {
            self.membership = Some(decode(key, value)?);
        }
        Ok(())
    }

    pub fn finish(self, meta: &SnapshotMeta) -> Result<()> {
        let total = self.total.unwrap_or_default();
        if self.sum != total {
            return Err(corrupt(format!(
                "{} balances sum to {}, the recorded total is {total}",
                self.accounts, self.sum
            )));
        }
        let applied = self.applied.flatten();
        if applied != meta.last_log_id {
            return Err(corrupt(format!(
                "data holds applied {applied:?}, meta says {:?}",
                meta.last_log_id
            )));
        }
        if self.membership.unwrap_or_default() != meta.last_membership {
            return Err(corrupt("data holds another membership than the meta"));
        }
        Ok(())
    }
}

/// Reads a whole frame from `input`, checking the frame and the ledger against `meta`.
pub fn verify(input: impl Read, meta: &SnapshotMeta) -> Result<FrameSummary> {
    let mut frame = FrameReader::new(input)?;
    let mut check = LedgerCheck::default();
    while let Some((key, value)) = frame.next()? {
        check.observe(key, value)?;
    }
    check.finish(meta)?;
    Ok(frame.summary().expect("read to the end"))
}

/// A reader that copies every byte it reads to `copy`: verifies a snapshot while it is
/// copied, in one pass.
struct TeeReader<R, W> {
    input: R,
    copy: W,
}

impl<R: Read, W: Write> Read for TeeReader<R, W> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.input.read(buffer)?;
        self.copy.write_all(&buffer[..read])?;
        Ok(read)
    }
}

/// What becomes of a snapshot file when its [`SnapshotData`] is dropped.
#[derive(Debug)]
enum Role {
    /// A stored snapshot (or, in tests, another store's): only read through this handle.
    Stored,
    /// Being received into `N.receiving`: removed if dropped before it is sealed.
    Receiving { dir: PathBuf, seq: u64 },
    /// Received, verified and synced as `N.data` + `N.pending`: removed if dropped without
    /// being installed (openraft found it older than what it has).
    Sealed {
        dir: PathBuf,
        seq: u64,
        meta: Box<SnapshotMeta>,
        summary: FrameSummary,
    },
}

/// openraft's `SnapshotData`: the bytes of one snapshot, in a file, read (to send) or
/// written (while receiving) in place. It knows its file, so that a received snapshot is
/// adopted by renaming rather than copying, and an abandoned one is removed.
pub struct SnapshotData {
    file: tokio::fs::File,
    path: PathBuf,
    role: Role,
}

impl SnapshotData {
    fn new(file: fs::File, path: PathBuf, role: Role) -> SnapshotData {
        SnapshotData {
            file: tokio::fs::File::from_std(file),
            path,
            role,
        }
    }

    /// Flushes and syncs what was written so far: called after every received chunk, so
    /// the sync before sealing stays short whatever the snapshot's size.
    pub async fn sync_chunk(&mut self) -> Result<()> {
        self.file.flush().await.map_err(io_error)?;
        self.file.sync_data().await.map_err(io_error)
    }

    /// Cuts the file at `length`: a resent chunk may have rewound the writer.
    pub async fn set_len(&mut self, length: u64) -> Result<()> {
        self.file.flush().await.map_err(io_error)?;
        self.file.set_len(length).await.map_err(io_error)
    }

    /// The receiving side's last step before openraft hears of the snapshot: syncs the file,
    /// verifies the whole stream against `meta` (see the module docs) and keeps it as
    /// `N.data` + `N.pending`. A refused stream stays in its temporary file, which is
    /// removed when this is dropped.
    pub async fn seal(&mut self, meta: &SnapshotMeta) -> Result<FrameSummary> {
        let Role::Receiving { dir, seq } = &self.role else {
            return Err(corrupt("only a snapshot being received can be sealed"));
        };
        let (dir, seq) = (dir.clone(), *seq);
        self.file.flush().await.map_err(io_error)?;
        self.file.sync_all().await.map_err(io_error)?;
        let (path, sealed_meta) = (self.path.clone(), meta.clone());
        let sealed_dir = dir.clone();
        let summary = tokio::task::spawn_blocking(move || -> Result<FrameSummary> {
            let file = fs::File::open(&path).map_err(io_error)?;
            let summary = verify(
                BufReader::with_capacity(IO_BUFFER_BYTES, file),
                &sealed_meta,
            )?;
            fs::rename(&path, data_path(&sealed_dir, seq)).map_err(io_error)?;
            let record = PendingRecord {
                meta: sealed_meta,
                summary,
            };
            write_json_synced(&pending_path(&sealed_dir, seq), &record)?;
            sync_dir(&sealed_dir)?;
            Ok(summary)
        })
        .await
        .map_err(|error| io_error(io::Error::other(error)))??;
        self.path = data_path(&dir, seq);
        self.role = Role::Sealed {
            dir,
            seq,
            meta: Box::new(meta.clone()),
            summary,
        };
        Ok(summary)
    }

    /// The file as a blocking handle, with what it is; this handle's cleanup passes to the
    /// caller.
    pub async fn into_parts(mut self) -> Result<SnapshotParts> {
        self.file.flush().await.map_err(io_error)?;
        let file = self
            .file
            .try_clone()
            .await
            .map_err(io_error)?
            .into_std()
            .await;
        let role = std::mem::replace(&mut self.role, Role::Stored);
        Ok(SnapshotParts {
            file,
            path: std::mem::take(&mut self.path),
            role,
        })
    }
}

impl Drop for SnapshotData {
    fn drop(&mut self) {
        match &self.role {
            Role::Stored => {}
            Role::Receiving { .. } => {
                let _ = fs::remove_file(&self.path);
            }
            Role::Sealed { dir, seq, .. } => {
                // The pending record first: a record without its data is discarded at open.
                let _ = fs::remove_file(pending_path(dir, *seq));
                let _ = fs::remove_file(data_path(dir, *seq));
            }
        }
    }
}

impl std::fmt::Debug for SnapshotData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SnapshotData({}, {:?})", self.path.display(), self.role)
    }
}

impl AsyncRead for SnapshotData {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().file).poll_read(cx, buf)
    }
}

impl AsyncWrite for SnapshotData {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().file).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().file).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().file).poll_shutdown(cx)
    }
}

impl AsyncSeek for SnapshotData {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        Pin::new(&mut self.get_mut().file).start_seek(position)
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Pin::new(&mut self.get_mut().file).poll_complete(cx)
    }
}

/// A [`SnapshotData`] taken apart for a blocking install.
pub struct SnapshotParts {
    file: fs::File,
    path: PathBuf,
    role: Role,
}

/// The `current` file: which snapshot openraft sees.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CurrentRecord {
    seq: u64,
    meta: SnapshotMeta,
    summary: FrameSummary,
}

/// An `N.pending` file: a sealed snapshot not yet adopted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PendingRecord {
    meta: SnapshotMeta,
    summary: FrameSummary,
}

/// What an install changed in the live state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstallReport {
    pub pairs: u64,
    pub bytes: u64,
    /// Pairs new or changed, and live keys the snapshot lacks.
    pub puts: u64,
    pub deletes: u64,
    pub sst_files: u64,
}

const CURRENT: &str = "current";
const CURRENT_TEMPORARY: &str = "current.tmp";
/// The single file of the version-1 layout.
const LEGACY_CURRENT: &str = "current.snapshot";

fn numbered(dir: &Path, seq: u64, extension: &str) -> PathBuf {
    dir.join(format!("{seq:020}.{extension}"))
}

fn data_path(dir: &Path, seq: u64) -> PathBuf {
    numbered(dir, seq, "data")
}

fn pending_path(dir: &Path, seq: u64) -> PathBuf {
    numbered(dir, seq, "pending")
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error)
}

/// Writes `value` as JSON to `path` through a synced temporary file and a rename (the
/// caller syncs the directory).
fn write_json_synced<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let temporary = path.with_extension("json.tmp");
    let mut file = fs::File::create(&temporary).map_err(io_error)?;
    file.write_all(&serde_json::to_vec(value)?)
        .map_err(io_error)?;
    file.sync_all().map_err(io_error)?;
    fs::rename(&temporary, path).map_err(io_error)
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(io_error(error)),
        _ => Ok(()),
    }
}

/// The snapshot directory: the current snapshot, and every step of building, receiving and
/// installing one (see the module docs).
pub struct SnapshotStore {
    dir: PathBuf,
    next_seq: AtomicU64,
    /// The current snapshot. Held while it is replaced: a build that started before an
    /// install (or another build) finished must not replace a newer snapshot.
    current: Mutex<Option<CurrentRecord>>,
    /// Sealed snapshots found at open, for [`SnapshotStore::recover`] only.
    pending_at_open: Mutex<Vec<(u64, PendingRecord)>>,
}

impl SnapshotStore {
    /// Opens the directory: reads `current`, keeps pending snapshots for `recover`, and
    /// removes work in progress, version-1 files and data nothing refers to.
    pub fn open(dir: PathBuf) -> Result<SnapshotStore> {
        fs::create_dir_all(&dir).map_err(io_error)?;
        let current: Option<CurrentRecord> = match fs::read(dir.join(CURRENT)) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes)?),
            Err(error) if error.kind() == io::ErrorKind::NotFound => None,
            Err(error) => return Err(io_error(error)),
        };
        let mut max_seq = current.as_ref().map_or(0, |c| c.seq);
        let mut data_files = Vec::new();
        let mut pending = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_error)? {
            let entry = entry.map_err(io_error)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name == LEGACY_CURRENT {
                tracing::warn!(path = %path.display(), "removing a version-1 snapshot file");
                remove_if_present(&path)?;
                continue;
            }
            if name == CURRENT_TEMPORARY || name.ends_with(".json.tmp") {
                remove_if_present(&path)?;
                continue;
            }
            let Some((stem, extension)) = name.split_once('.') else {
                continue;
            };
            let Ok(seq) = stem.parse::<u64>() else {
                continue;
            };
            max_seq = max_seq.max(seq);
            match extension {
                "data" => data_files.push(seq),
                "pending" => match fs::read(&path)
                    .ok()
                    .and_then(|bytes| serde_json::from_slice::<PendingRecord>(&bytes).ok())
                {
                    Some(record) => pending.push((seq, record)),
                    None => remove_if_present(&path)?,
                },
                "receiving" | "building" | "copying" => remove_if_present(&path)?,
                "stage" => fs::remove_dir_all(&path).map_err(io_error)?,
                _ => {}
            }
        }
        pending.retain(|(seq, _)| data_files.contains(seq));
        pending.sort_by(|a, b| a.1.meta.last_log_id.cmp(&b.1.meta.last_log_id));
        for seq in data_files {
            let referenced = current.as_ref().is_some_and(|c| c.seq == seq)
                || pending.iter().any(|(p, _)| *p == seq);
            if !referenced {
                remove_if_present(&data_path(&dir, seq))?;
            }
        }
        if let Some(record) = &current {
            if !data_path(&dir, record.seq).exists() {
                return Err(corrupt(format!(
                    "the current snapshot's data file {} is missing",
                    data_path(&dir, record.seq).display()
                )));
            }
        }
        Ok(SnapshotStore {
            dir,
            next_seq: AtomicU64::new(max_seq + 1),
            current: Mutex::new(current),
            pending_at_open: Mutex::new(pending),
        })
    }

    fn allocate(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }

    pub fn current_meta(&self) -> Option<SnapshotMeta> {
        let current = self.current.lock().expect("not poisoned");
        current.as_ref().map(|record| record.meta.clone())
    }

    /// The current snapshot, opened for reading (the open handle keeps the bytes readable
    /// even if a newer snapshot replaces it meanwhile).
    pub fn open_current(&self) -> Result<Option<(SnapshotMeta, SnapshotData)>> {
        let current = self.current.lock().expect("not poisoned");
        let Some(record) = current.as_ref() else {
            return Ok(None);
        };
        let path = data_path(&self.dir, record.seq);
        let file = fs::File::open(&path).map_err(io_error)?;
        let length = file.metadata().map_err(io_error)?.len();
        if length != record.summary.bytes {
            return Err(corrupt(format!(
                "{} holds {length} bytes, the snapshot {}",
                path.display(),
                record.summary.bytes
            )));
        }
        let data = SnapshotData::new(file, path, Role::Stored);
        Ok(Some((record.meta.clone(), data)))
    }

    /// Points `current` at snapshot `seq` unless it is older than the current one; removes
    /// the data file that loses. Returns whether `seq` became current.
    fn publish(&self, seq: u64, meta: &SnapshotMeta, summary: FrameSummary) -> Result<bool> {
        let mut current = self.current.lock().expect("not poisoned");
        if current
            .as_ref()
            .is_some_and(|c| meta.last_log_id < c.meta.last_log_id)
        {
            remove_if_present(&data_path(&self.dir, seq))?;
            return Ok(false);
        }
        let record = CurrentRecord {
            seq,
            meta: meta.clone(),
            summary,
        };
        let temporary = self.dir.join(CURRENT_TEMPORARY);
        let mut file = fs::File::create(&temporary).map_err(io_error)?;
        file.write_all(&serde_json::to_vec(&record)?)
            .map_err(io_error)?;
        file.sync_all().map_err(io_error)?;
        fs::rename(&temporary, self.dir.join(CURRENT)).map_err(io_error)?;
        // Also makes the rename of `N.data` into place durable: same directory.
        sync_dir(&self.dir)?;
        if let Some(previous) = current.replace(record) {
            if previous.seq != seq {
                remove_if_present(&data_path(&self.dir, previous.seq))?;
            }
        }
        Ok(true)
    }

    /// Builds a snapshot of the state as of one RocksDB snapshot (apply keeps running),
    /// streamed to `N.building`, synced, renamed to `N.data` and made current unless a
    /// newer snapshot became current meanwhile. `built` numbers the snapshot id.
    pub fn build(&self, db: &DB, built: u64) -> Result<(SnapshotMeta, SnapshotData)> {
        let view = db.snapshot();
        let seq = self.allocate();
        let temporary = numbered(&self.dir, seq, "building");
        let result = self.build_into(db, &view, &temporary, seq, built);
        if result.is_err() {
            let _ = fs::remove_file(&temporary);
        }
        result
    }

    fn build_into(
        &self,
        db: &DB,
        view: &rocksdb::SnapshotWithThreadMode<'_, DB>,
        temporary: &Path,
        seq: u64,
        built: u64,
    ) -> Result<(SnapshotMeta, SnapshotData)> {
        let file = fs::File::create(temporary).map_err(io_error)?;
        let mut writer = FrameWriter::new(BufWriter::with_capacity(IO_BUFFER_BYTES, file))?;
        let mut applied: Option<LogId> = None;
        let mut membership = StoredMembership::default();
        for item in view.iterator_cf(cf(db, CF_STATE), IteratorMode::Start) {
            let (key, value) = item?;
            if &*key == keys::META_APPLIED {
                applied = decode(&key, &value)?;
            } else if &*key == keys::META_MEMBERSHIP {
                membership = decode(&key, &value)?;
            }
            writer.push(&key, &value)?;
        }
        let (buffered, summary) = writer.finish()?;
        let file = buffered
            .into_inner()
            .map_err(|error| io_error(error.into_error()))?;
        file.sync_all().map_err(io_error)?;
        drop(file);
        let path = data_path(&self.dir, seq);
        fs::rename(temporary, &path).map_err(io_error)?;
        let snapshot_id = match applied {
            Some(log_id) => format!("{}-{}-{built}", log_id.leader_id, log_id.index),
            None => format!("empty-{built}"),
        };
        let meta = SnapshotMeta {
            last_log_id: applied,
            last_membership: membership,
            snapshot_id,
        };
        // Opened before publishing, which removes the file if a newer snapshot won.
        let reader = fs::File::open(&path).map_err(io_error)?;
        self.publish(seq, &meta, summary)?;
        Ok((meta, SnapshotData::new(reader, path, Role::Stored)))
    }

    /// A new file to receive a snapshot into.
    pub fn begin_receiving(&self) -> Result<SnapshotData> {
        let seq = self.allocate();
        let path = numbered(&self.dir, seq, "receiving");
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_error)?;
        let role = Role::Receiving {
            dir: self.dir.clone(),
            seq,
        };
        Ok(SnapshotData::new(file, path, role))
    }

    /// Installs a snapshot into the live state (blocking; see the module docs for the steps
    /// and the crash argument). On an error before the ingest, the live state is untouched.
    pub fn install(
        &self,
        db: &DB,
        meta: &SnapshotMeta,
        data: SnapshotParts,
    ) -> Result<InstallReport> {
        let SnapshotParts { file, path, role } = data;
        let (seq, summary) = match role {
            Role::Sealed {
                seq,
                meta: sealed,
                summary,
                ..
            } if sealed.signature() == meta.signature() => (seq, summary),
            other => {
                // Not verified by this node yet: verify while copying into a file of ours,
                // before anything refers to it.
                let copied = self.verify_copy(file, meta);
                match other {
                    Role::Receiving { .. } => remove_if_present(&path)?,
                    Role::Sealed { dir, seq, .. } => {
                        remove_if_present(&pending_path(&dir, seq))?;
                        remove_if_present(&data_path(&dir, seq))?;
                    }
                    Role::Stored => {}
                }
                copied?
            }
        };
        {
            let current = self.current.lock().expect("not poisoned");
            let current_log_id = current.as_ref().and_then(|c| c.meta.last_log_id);
            assert!(
                meta.last_log_id >= current_log_id,
                "installing {:?} behind the current snapshot {current_log_id:?}",
                meta.last_log_id
            );
        }
        let adopted = self.publish(seq, meta, summary)?;
        assert!(adopted, "a newer snapshot is always adopted");
        remove_if_present(&pending_path(&self.dir, seq))?;
        self.load_into_state(db, seq, summary)
    }

    /// Copies `source` into a new `N.data` while verifying it; nothing refers to the copy
    /// until it has passed.
    fn verify_copy(
        &self,
        mut source: fs::File,
        meta: &SnapshotMeta,
    ) -> Result<(u64, FrameSummary)> {
        let seq = self.allocate();
        let temporary = numbered(&self.dir, seq, "copying");
        let copied = (|| {
            source.seek(SeekFrom::Start(0)).map_err(io_error)?;
            let copy = fs::File::create(&temporary).map_err(io_error)?;
            let mut tee = TeeReader {
                input: BufReader::with_capacity(IO_BUFFER_BYTES, source),
                copy: BufWriter::with_capacity(IO_BUFFER_BYTES, copy),
            };
            let summary = verify(&mut tee, meta)?;
            let copy = tee
                .copy
                .into_inner()
                .map_err(|error| io_error(error.into_error()))?;
            copy.sync_all().map_err(io_error)?;
            fs::rename(&temporary, data_path(&self.dir, seq)).map_err(io_error)?;
            Ok(summary)
        })();
        match copied {
            Ok(summary) => Ok((seq, summary)),
            Err(error) => {
                let _ = fs::remove_file(&temporary);
                Err(error)
            }
        }
    }

    /// Steps 5 and 6: merges snapshot `seq` with the live state into SST files and ingests
    /// them in one atomic call.
    fn load_into_state(&self, db: &DB, seq: u64, expected: FrameSummary) -> Result<InstallReport> {
        let stage = numbered(&self.dir, seq, "stage");
        if stage.exists() {
            fs::remove_dir_all(&stage).map_err(io_error)?;
        }
        fs::create_dir(&stage).map_err(io_error)?;
        let loaded = self.stage_and_ingest(db, seq, expected, &stage);
        let _ = fs::remove_dir_all(&stage);
        loaded
    }

    fn stage_and_ingest(
        &self,
        db: &DB,
        seq: u64,
        expected: FrameSummary,
        stage: &Path,
    ) -> Result<InstallReport> {
        let file = fs::File::open(data_path(&self.dir, seq)).map_err(io_error)?;
        let mut frame = FrameReader::new(BufReader::with_capacity(IO_BUFFER_BYTES, file))?;
        let options = Options::default();
        let mut sink = SstSink {
            options: &options,
            dir: stage,
            writer: None,
            files: Vec::new(),
        };
        let mut report = InstallReport::default();
        let state = cf(db, CF_STATE);
        let mut live = db.iterator_cf(state, IteratorMode::Start);
        let mut old = live.next().transpose()?;
        while let Some((key, value)) = frame.next()? {
            while let Some((old_key, _)) = old.as_ref().filter(|(k, _)| &**k < key) {
                sink.delete(old_key)?;
                report.deletes += 1;
                old = live.next().transpose()?;
            }
            match old.as_ref() {
                Some((old_key, old_value)) if &**old_key == key => {
                    if &**old_value != value {
                        sink.put(key, value)?;
                        report.puts += 1;
                    }
                    old = live.next().transpose()?;
                }
                _ => {
                    sink.put(key, value)?;
                    report.puts += 1;
                }
            }
        }
        while let Some((old_key, _)) = old.as_ref() {
            sink.delete(old_key)?;
            report.deletes += 1;
            old = live.next().transpose()?;
        }
        drop(live);
        let summary = frame.summary().expect("read to the end");
        if summary != expected {
            return Err(corrupt(format!(
                "snapshot file {seq} changed since it was verified: {summary:?} != {expected:?}"
            )));
        }
        let files = sink.finish()?;
        report.pairs = summary.pairs;
        report.bytes = summary.bytes;
        report.sst_files = files.len() as u64;
        if !files.is_empty() {
            let mut ingest = IngestExternalFileOptions::default();
            ingest.set_move_files(true);
            db.ingest_external_file_cf_opts(state, &ingest, files)?;
        }
        Ok(report)
    }

    /// Brings the live state up to the newest snapshot it must reflect, after a crash in the
    /// middle of an install (see the module docs). Called at open, before openraft reads
    /// the state. Returns what was loaded, if anything.
    pub fn recover(&self, db: &DB) -> Result<Option<SnapshotMeta>> {
        let applied: Option<LogId> = get(db, CF_STATE, keys::META_APPLIED)?.flatten();
        let purged: Option<LogId> = get(db, CF_RAFT, keys::RAFT_PURGED)?.flatten();
        let pending = std::mem::take(&mut *self.pending_at_open.lock().expect("not poisoned"));
        let current = self.current.lock().expect("not poisoned").clone();
        let current_log_id = current.as_ref().and_then(|c| c.meta.last_log_id);
        let target = if current_log_id > applied && current_log_id >= purged {
            current.map(|c| (c.seq, c.meta, c.summary))
        } else if purged > applied {
            let newest = pending
                .iter()
                .filter(|(_, record)| record.meta.last_log_id >= purged)
                .max_by(|a, b| a.1.meta.last_log_id.cmp(&b.1.meta.last_log_id));
            match newest {
                Some((seq, record)) => {
                    self.publish(*seq, &record.meta, record.summary)?;
                    Some((*seq, record.meta.clone(), record.summary))
                }
                None => {
                    return Err(corrupt(format!(
                        "the state is at {applied:?}, the log is purged to {purged:?}, and no \
                         snapshot on disk covers the gap"
                    )))
                }
            }
        } else {
            None
        };
        for (seq, _) in &pending {
            remove_if_present(&pending_path(&self.dir, *seq))?;
            let is_current = self
                .current
                .lock()
                .expect("not poisoned")
                .as_ref()
                .is_some_and(|c| c.seq == *seq);
            if !is_current {
                remove_if_present(&data_path(&self.dir, *seq))?;
            }
        }
        let Some((seq, meta, summary)) = target else {
            return Ok(None);
        };
        tracing::warn!(
            ?applied,
            ?purged,
            snapshot = ?meta.last_log_id,
            "an install was cut short: loading the snapshot again"
        );
        let report = self.load_into_state(db, seq, summary)?;
        tracing::info!(?report, "snapshot loaded");
        Ok(Some(meta))
    }
}

/// SST files being written for one install, cut at `SST_BYTES_MAX`.
struct SstSink<'a> {
    options: &'a Options,
    dir: &'a Path,
    writer: Option<SstFileWriter<'a>>,
    files: Vec<PathBuf>,
}

impl<'a> SstSink<'a> {
    fn writer(&mut self) -> Result<&mut SstFileWriter<'a>> {
        if self.writer.is_none() {
            let path = self.dir.join(format!("{:06}.sst", self.files.len()));
            let writer = SstFileWriter::create(self.options);
            writer.open(&path)?;
            self.files.push(path);
            self.writer = Some(writer);
        }
        Ok(self.writer.as_mut().expect("just set"))
    }

    fn cut_if_full(&mut self) -> Result<()> {
        if self
            .writer
            .as_ref()
            .is_some_and(|w| w.file_size() >= SST_BYTES_MAX)
        {
            self.writer.take().expect("checked").finish()?;
        }
        Ok(())
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.writer()?.put(key, value)?;
        self.cut_if_full()
    }

    fn delete(&mut self, key: &[u8]) -> Result<()> {
        self.writer()?.delete(key)?;
        self.cut_if_full()
    }

    /// Finishes the last file; every file listed holds at least one entry.
    fn finish(mut self) -> Result<Vec<PathBuf>> {
        if let Some(mut writer) = self.writer.take() {
            writer.finish()?;
        }
        Ok(self.files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::encode;
    use crate::domain::{AccountId, AccountType, Amount, Currency};
    use openraft::{CommittedLeaderId, LogId as RaftLogId};
    use std::sync::Arc;

    fn log_id(index: u64) -> LogId {
        RaftLogId::new(CommittedLeaderId::new(1, 0), index)
    }

    fn frame(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut writer = FrameWriter::new(Vec::new()).unwrap();
        for (key, value) in pairs {
            writer.push(key, value).unwrap();
        }
        let (bytes, summary) = writer.finish().unwrap();
        assert_eq!(summary.bytes, bytes.len() as u64);
        bytes
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut reader = FrameReader::new(bytes)?;
        let mut pairs = Vec::new();
        while let Some((key, value)) = reader.next()? {
            pairs.push((key.to_vec(), value.to_vec()));
        }
        Ok(pairs)
    }

    fn refused(result: Result<impl std::fmt::Debug>, mentions: &str) {
        match result {
            Err(Error::CorruptSnapshot(message)) => {
                assert!(message.contains(mentions), "'{message}' lacks '{mentions}'")
            }
            other => panic!("expected a refusal mentioning '{mentions}', got {other:?}"),
        }
    }

    #[test]
    fn checksum_does_not_depend_on_how_the_stream_is_split() {
        let bytes: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut whole = Checksum::new();
        whole.update(&bytes);
        for split in [1, 3, 7, 8, 9, 500] {
            let mut pieces = Checksum::new();
            for piece in bytes.chunks(split) {
                pieces.update(piece);
            }
            assert_eq!(pieces.value(), whole.value(), "split {split}");
        }
        let mut longer = Checksum::new();
        longer.update(&bytes);
        longer.update(&[0]);
        assert_ne!(longer.value(), whole.value(), "a trailing zero counts");
    }

    #[test]
    fn frames_round_trip_and_every_damage_is_refused() {
        let data = frame(&[(b"a1", b"{\"x\":1}"), (b"mapplied", b"")]);
        assert_eq!(
            read_all(&data).unwrap(),
            vec![
                (b"a1".to_vec(), b"{\"x\":1}".to_vec()),
                (b"mapplied".to_vec(), Vec::new())
            ]
        );
        refused(read_all(&data[..data.len() - 3]), "truncated");
        refused(read_all(&data[..20]), "truncated");
        refused(read_all(&data[1..]), "bad magic");
        let mut flipped = data.clone();
        flipped[12] ^= 0x01; // inside the first key
        refused(read_all(&flipped), "checksum");
        let mut longer = data.clone();
        longer.push(0);
        refused(read_all(&longer), "after the end");
        // A count that disagrees with the pairs.
        let mut counted = data.clone();
        let count_at = data.len() - 16;
        counted[count_at + 7] = 3;
        refused(read_all(&counted), "pair count");
        // A length beyond the bound.
        let mut huge = data.clone();
        huge[8..12].copy_from_slice(&(FIELD_BYTES_MAX as u32 + 1).to_be_bytes());
        refused(read_all(&huge), "key of");
        // Keys out of order (written by hand: the writer refuses them).
        let mut reordered = MAGIC.to_vec();
        for key in [b"b", b"a"] {
            for field in [&key[..], b"v"] {
                reordered.extend_from_slice(&(field.len() as u32).to_be_bytes());
                reordered.extend_from_slice(field);
            }
        }
        refused(read_all(&reordered), "out of order");
        assert_eq!(read_all(&frame(&[])).unwrap(), Vec::new());
    }

    struct Node {
        _dir: tempfile::TempDir,
        db: Arc<DB>,
        store: SnapshotStore,
        snapshots: PathBuf,
    }

    fn node() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::open(&dir.path().join("rocksdb")).unwrap();
        let snapshots = dir.path().join("snapshots");
        let store = SnapshotStore::open(snapshots.clone()).unwrap();
        Node {
            _dir: dir,
            db,
            store,
            snapshots,
        }
    }

    fn account(id: &str, balance: i64) -> Account {
        Account {
            account_id: AccountId::parse(id).unwrap(),
            balance: Amount::parse(Decimal::from(balance)).unwrap(),
            account_type: AccountType::parse("SAVINGS").unwrap(),
            currency: Currency::parse("USD").unwrap(),
            created_at_ms: 1,
            updated_at_ms: 1,
            version: 1,
        }
    }

    /// Writes a consistent ledger state: `accounts` accounts of 10 each, applied at `index`.
    fn seed(db: &DB, accounts: u64, index: u64, extra: &[(&[u8], &[u8])]) {
        let state = cf(db, CF_STATE);
        for n in 0..accounts {
            let account = account(&format!("acc{n:05}"), 10);
            db.put_cf(state, keys::account(&account.account_id), encode(&account))
                .unwrap();
        }
        db.put_cf(
            state,
            keys::META_TOTAL_BALANCE,
            encode(&Decimal::from(10 * accounts)),
        )
        .unwrap();
        db.put_cf(state, keys::META_APPLIED, encode(&Some(log_id(index))))
            .unwrap();
        for (key, value) in extra {
            db.put_cf(state, key, value).unwrap();
        }
    }

    fn state_pairs(db: &DB) -> Vec<(Box<[u8]>, Box<[u8]>)> {
        db.iterator_cf(cf(db, CF_STATE), IteratorMode::Start)
            .map(|item| item.unwrap())
            .collect()
    }

    /// A snapshot built on `leader`, as a receiving node would hold it: its bytes in a
    /// receiving file of `follower`'s store.
    async fn received(
        leader: &Node,
        follower: &Node,
        bytes: Option<Vec<u8>>,
    ) -> (SnapshotMeta, SnapshotData) {
        let (meta, _) = leader.store.build(&leader.db, 1).unwrap();
        let built = fs::read(data_path(
            &leader.snapshots,
            leader.store.current.lock().unwrap().as_ref().unwrap().seq,
        ))
        .unwrap();
        let mut data = follower.store.begin_receiving().unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut data, &bytes.unwrap_or(built))
            .await
            .unwrap();
        data.sync_chunk().await.unwrap();
        (meta, data)
    }

    #[tokio::test]
    async fn a_sealed_snapshot_installs_into_a_different_state() {
        let leader = node();
        seed(
            &leader.db,
            300,
            40,
            &[(b"x-kept", b"same"), (b"x-new", b"1")],
        );
        let follower = node();
        // Behind, with a key the leader no longer has and one that changed.
        seed(
            &follower.db,
            120,
            7,
            &[(b"x-kept", b"same"), (b"x-gone", b"old")],
        );
        let (meta, mut data) = received(&leader, &follower, None).await;
        let summary = data.seal(&meta).await.unwrap();
        assert!(pending_path(&follower.snapshots, 1).exists());
        let parts = data.into_parts().await.unwrap();
        let report = follower.store.install(&follower.db, &meta, parts).unwrap();
        assert_eq!(state_pairs(&follower.db), state_pairs(&leader.db));
        assert_eq!(report.pairs, summary.pairs);
        assert_eq!(report.deletes, 1, "x-gone");
        // 120 accounts, x-kept and... unchanged; 180 accounts, x-new, total, applied written.
        assert_eq!(report.puts, 180 + 3);
        assert_eq!(follower.store.current_meta(), Some(meta.clone()));
        assert!(!pending_path(&follower.snapshots, 1).exists());
        // What openraft sends on from here is the installed snapshot.
        let (current, mut reader) = follower.store.open_current().unwrap().unwrap();
        assert_eq!(current, meta);
        let mut bytes = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut bytes)
            .await
            .unwrap();
        assert_eq!(verify(&bytes[..], &meta).unwrap(), summary);
    }

    #[tokio::test]
    async fn a_bad_stream_is_refused_and_the_live_state_is_untouched() {
        let leader = node();
        seed(
            &leader.db,
            50,
            9,
            &[(b"x-note", b"a value no check parses")],
        );
        let (meta, _) = leader.store.build(&leader.db, 1).unwrap();
        let good = fs::read(data_path(&leader.snapshots, 1)).unwrap();
        // Conservation broken: the total says 1 more than the balances hold.
        let unbalanced = {
            let mut writer = FrameWriter::new(Vec::new()).unwrap();
            let mut reader = FrameReader::new(&good[..]).unwrap();
            while let Some((key, value)) = reader.next().unwrap() {
                if key == keys::META_TOTAL_BALANCE {
                    writer.push(key, &encode(&Decimal::from(501))).unwrap();
                } else {
                    writer.push(key, value).unwrap();
                }
            }
            writer.finish().unwrap().0
        };
        let mut flipped = good.clone();
        let note_at = good
            .windows(7)
            .position(|w| w == b"a value")
            .expect("the note is in the frame");
        flipped[note_at + 2] ^= 0x20;
        let mut counted = good.clone();
        let count_at = good.len() - 9;
        counted[count_at] ^= 0x01;
        let mut other_meta = meta.clone();
        other_meta.last_log_id = Some(log_id(10));
        let cases: Vec<(&str, Vec<u8>, &SnapshotMeta, &str)> = vec![
            ("corrupt byte", flipped, &meta, "checksum"),
            (
                "truncated",
                good[..good.len() - 100].to_vec(),
                &meta,
                "truncated",
            ),
            ("wrong count", counted, &meta, "pair count"),
            ("conservation", unbalanced, &meta, "recorded total"),
            ("applied", good.clone(), &other_meta, "data holds applied"),
        ];
        for (case, bytes, case_meta, mentions) in cases {
            let follower = node();
            seed(&follower.db, 20, 3, &[(b"x-mine", b"1")]);
            let before = state_pairs(&follower.db);
            let mut data = follower.store.begin_receiving().unwrap();
            tokio::io::AsyncWriteExt::write_all(&mut data, &bytes)
                .await
                .unwrap();
            refused(data.seal(case_meta).await, mentions);
            drop(data);
            assert_eq!(state_pairs(&follower.db), before, "{case}");
            assert!(follower.store.current_meta().is_none(), "{case}");
            let left: Vec<_> = fs::read_dir(&follower.snapshots).unwrap().collect();
            assert!(
                left.is_empty(),
                "{case}: a refused stream leaves nothing: {left:?}"
            );
            // The same bytes handed straight to install (no seal) are refused too.
            let mut data = follower.store.begin_receiving().unwrap();
            tokio::io::AsyncWriteExt::write_all(&mut data, &bytes)
                .await
                .unwrap();
            let parts = data.into_parts().await.unwrap();
            refused(
                follower.store.install(&follower.db, case_meta, parts),
                mentions,
            );
            assert_eq!(state_pairs(&follower.db), before, "{case}");
            assert!(follower.store.current_meta().is_none(), "{case}");
        }
    }

    #[tokio::test]
    async fn an_install_cut_short_is_finished_at_open() {
        let leader = node();
        seed(&leader.db, 80, 30, &[]);
        // Cut after adoption: `current` is ahead of the applied state.
        let follower = node();
        seed(&follower.db, 10, 5, &[]);
        let (meta, mut data) = received(&leader, &follower, None).await;
        let summary = data.seal(&meta).await.unwrap();
        let parts = data.into_parts().await.unwrap();
        let Role::Sealed { seq, .. } = parts.role else {
            panic!("sealed")
        };
        follower.store.publish(seq, &meta, summary).unwrap();
        let reopened = SnapshotStore::open(follower.snapshots.clone()).unwrap();
        assert_eq!(reopened.recover(&follower.db).unwrap(), Some(meta.clone()));
        assert_eq!(state_pairs(&follower.db), state_pairs(&leader.db));
        assert_eq!(reopened.recover(&follower.db).unwrap(), None, "once");

        // Cut before adoption, after openraft purged its log: the pending snapshot is used.
        let follower = node();
        seed(&follower.db, 10, 5, &[]);
        let (meta, mut data) = received(&leader, &follower, None).await;
        data.seal(&meta).await.unwrap();
        std::mem::forget(data); // the process died holding it
        follower
            .db
            .put_cf(
                cf(&follower.db, CF_RAFT),
                keys::RAFT_PURGED,
                encode(&Some(log_id(30))),
            )
            .unwrap();
        let reopened = SnapshotStore::open(follower.snapshots.clone()).unwrap();
        assert_eq!(reopened.recover(&follower.db).unwrap(), Some(meta.clone()));
        assert_eq!(state_pairs(&follower.db), state_pairs(&leader.db));
        assert_eq!(reopened.current_meta(), Some(meta));

        // Sealed but never accepted by openraft: discarded, the state stays.
        let follower = node();
        seed(&follower.db, 10, 5, &[]);
        let before = state_pairs(&follower.db);
        let (meta, mut data) = received(&leader, &follower, None).await;
        data.seal(&meta).await.unwrap();
        std::mem::forget(data);
        let reopened = SnapshotStore::open(follower.snapshots.clone()).unwrap();
        assert_eq!(reopened.recover(&follower.db).unwrap(), None);
        assert_eq!(state_pairs(&follower.db), before);
        let left: Vec<_> = fs::read_dir(&follower.snapshots).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }

    /// Measures (asserts nothing) what the defaults of `raft.snapshot_chunk_bytes` and
    /// `raft.install_snapshot_timeout_ms` are sized by, on this machine:
    /// `MEASURE_ACCOUNTS=1200000 cargo test --workspace --lib measure_snapshot_costs --
    /// --ignored --nocapture`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a measurement, minutes long"]
    async fn measure_snapshot_costs() {
        use openraft::raft::InstallSnapshotRequest;
        use std::time::Instant;
        let accounts: u64 = std::env::var("MEASURE_ACCOUNTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_200_000);
        let leader = node();
        let started = Instant::now();
        let state = cf(&leader.db, CF_STATE);
        for first in (0..accounts).step_by(10_000) {
            let mut batch = rocksdb::WriteBatch::default();
            for n in first..(first + 10_000).min(accounts) {
                let account = account(&format!("bench-{n:09}"), 10);
                batch.put_cf(state, keys::account(&account.account_id), encode(&account));
            }
            leader.db.write(batch).unwrap();
        }
        seed(&leader.db, 0, 100, &[]);
        leader
            .db
            .put_cf(
                state,
                keys::META_TOTAL_BALANCE,
                encode(&Decimal::from(10 * accounts)),
            )
            .unwrap();
        println!("seeded {accounts} accounts in {:?}", started.elapsed());
        let started = Instant::now();
        let (meta, _) = leader.store.build(&leader.db, 1).unwrap();
        let path = data_path(&leader.snapshots, 1);
        let bytes = fs::metadata(&path).unwrap().len();
        println!(
            "build: {:?} for {bytes} bytes ({:.0} MB/s)",
            started.elapsed(),
            bytes as f64 / 1e6 / started.elapsed().as_secs_f64()
        );
        let mut sample = vec![0u8; 8 << 20];
        fs::File::open(&path)
            .unwrap()
            .read_exact(&mut sample)
            .unwrap();
        for chunk_bytes in [256usize << 10, 1 << 20, 4 << 20, 8 << 20] {
            let request = InstallSnapshotRequest::<crate::TypeConfig> {
                vote: openraft::Vote::new_committed(1, 0),
                meta: meta.clone(),
                offset: 0,
                data: sample[..chunk_bytes].to_vec(),
                done: false,
            };
            let started = Instant::now();
            let json = serde_json::to_vec(&request).unwrap();
            let encoded = started.elapsed();
            let started = Instant::now();
            let decoded: InstallSnapshotRequest<crate::TypeConfig> =
                serde_json::from_slice(&json).unwrap();
            let decoded_in = started.elapsed();
            assert_eq!(decoded.data.len(), chunk_bytes);
            let follower = node();
            let mut data = follower.store.begin_receiving().unwrap();
            let started = Instant::now();
            for _ in 0..8 {
                tokio::io::AsyncWriteExt::write_all(&mut data, &request.data)
                    .await
                    .unwrap();
                data.sync_chunk().await.unwrap();
            }
            println!(
                "chunk {chunk_bytes} B: JSON {} B ({:.2}x), encode {encoded:?}, decode \
                 {decoded_in:?}, write+sync {:?}",
                json.len(),
                json.len() as f64 / chunk_bytes as f64,
                started.elapsed() / 8
            );
        }
        // Receive the whole snapshot in 1 MiB chunks, each synced, then seal and install.
        let follower = node();
        seed(&follower.db, 1_000, 50, &[]);
        let mut data = follower.store.begin_receiving().unwrap();
        let mut source = fs::File::open(&path).unwrap();
        let mut chunk = vec![0u8; 1 << 20];
        let started = Instant::now();
        loop {
            let read = source.read(&mut chunk).unwrap();
            if read == 0 {
                break;
            }
            tokio::io::AsyncWriteExt::write_all(&mut data, &chunk[..read])
                .await
                .unwrap();
            data.sync_chunk().await.unwrap();
        }
        println!("receive (write+sync per MiB): {:?}", started.elapsed());
        let started = Instant::now();
        data.seal(&meta).await.unwrap();
        println!("seal (sync + verify): {:?}", started.elapsed());
        let started = Instant::now();
        let parts = data.into_parts().await.unwrap();
        let report = tokio::task::spawn_blocking(move || {
            follower.store.install(&follower.db, &meta, parts).unwrap()
        })
        .await
        .unwrap();
        println!(
            "install (stage + ingest): {:?}, {report:?}",
            started.elapsed()
        );
    }

    #[test]
    fn an_older_snapshot_finishing_late_never_replaces_a_newer_one() {
        let node = node();
        seed(&node.db, 5, 9, &[]);
        let (newer, _) = node.store.build(&node.db, 1).unwrap();
        // A build of an older state (one that started before) finishes after it.
        let seq = node.store.allocate();
        fs::copy(
            data_path(&node.snapshots, 1),
            data_path(&node.snapshots, seq),
        )
        .unwrap();
        let mut older = newer.clone();
        older.last_log_id = Some(log_id(4));
        let summary = node.store.current.lock().unwrap().as_ref().unwrap().summary;
        assert!(!node.store.publish(seq, &older, summary).unwrap());
        assert!(
            !data_path(&node.snapshots, seq).exists(),
            "the loser is removed"
        );
        assert_eq!(node.store.current_meta(), Some(newer.clone()));
        // The current snapshot survives a restart; leftovers do not.
        fs::write(numbered(&node.snapshots, 77, "receiving"), b"half").unwrap();
        fs::write(node.snapshots.join(LEGACY_CURRENT), b"v1").unwrap();
        let reopened = SnapshotStore::open(node.snapshots.clone()).unwrap();
        assert_eq!(reopened.current_meta(), Some(newer));
        assert_eq!(reopened.allocate(), 78, "sequence numbers are never reused");
        let mut names: Vec<String> = fs::read_dir(&node.snapshots)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, vec![format!("{:020}.data", 1), CURRENT.to_owned()]);
        // A torn data file is refused, never half-read.
        let path = data_path(&node.snapshots, 1);
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 4]).unwrap();
        refused(reopened.open_current(), "bytes");
    }
}
