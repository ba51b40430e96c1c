//! Snapshot data: every key and value of the `state` column family, read from one RocksDB
//! snapshot (so it is consistent without stopping apply), framed as
//! `magic | (u32 key length, key, u32 value length, value)* | u64 pair count`.
//!
//! The values inside are the same evolvable JSON as on disk; the frame itself is versioned by
//! its magic. The trailing count catches truncation.

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::types::{LogId, SnapshotMeta};

const MAGIC: &[u8; 8] = b"LDGSNP01";
/// No key or value of ours comes near this; a larger length means corrupt data.
const FIELD_BYTES_MAX: usize = 64 * 1024 * 1024;

#[derive(Default)]
pub struct SnapshotWriter {
    bytes: Vec<u8>,
    pairs: u64,
}

impl SnapshotWriter {
    pub fn new() -> SnapshotWriter {
        SnapshotWriter {
            bytes: MAGIC.to_vec(),
            pairs: 0,
        }
    }

    pub fn push(&mut self, key: &[u8], value: &[u8]) {
        assert!(key.len() <= FIELD_BYTES_MAX && value.len() <= FIELD_BYTES_MAX);
        for field in [key, value] {
            self.bytes
                .extend_from_slice(&u32::try_from(field.len()).expect("bounded").to_be_bytes());
            self.bytes.extend_from_slice(field);
        }
        self.pairs += 1;
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.bytes.extend_from_slice(&self.pairs.to_be_bytes());
        self.bytes
    }
}

/// Decodes snapshot data into its key/value pairs, refusing anything malformed.
pub fn decode(data: &[u8]) -> Result<Vec<(&[u8], &[u8])>> {
    let corrupt = |what: &str| Error::CorruptSnapshot(what.to_owned());
    let body = data
        .strip_prefix(MAGIC.as_slice())
        .ok_or_else(|| corrupt("bad magic"))?;
    if body.len() < 8 {
        return Err(corrupt("missing pair count"));
    }
    let (mut rest, count) = body.split_at(body.len() - 8);
    let count = u64::from_be_bytes(count.try_into().expect("8 bytes"));
    let mut pairs = Vec::new();
    while !rest.is_empty() {
        let (key, after_key) = take_field(rest).ok_or_else(|| corrupt("truncated key"))?;
        let (value, after_value) =
            take_field(after_key).ok_or_else(|| corrupt("truncated value"))?;
        pairs.push((key, value));
        rest = after_value;
    }
    if pairs.len() as u64 != count {
        return Err(corrupt("pair count does not match"));
    }
    Ok(pairs)
}

fn take_field(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let length = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    if length > FIELD_BYTES_MAX {
        return None;
    }
    let field = bytes.get(4..4 + length)?;
    Some((field, &bytes[4 + length..]))
}

/// The current snapshot, kept as one file beside the database rather than in it: a large
/// value written through RocksDB would pass through the WAL the Raft log shares and stall
/// log appends while it is synced.
pub struct SnapshotFile {
    path: PathBuf,
    /// The last log id of the snapshot on disk. Held while saving: a build that started
    /// before an install (or another build) finished must not replace a newer snapshot.
    current: Mutex<Option<LogId>>,
}

impl SnapshotFile {
    pub fn new(dir: PathBuf) -> Result<SnapshotFile> {
        fs::create_dir_all(&dir).map_err(io_error)?;
        let file = SnapshotFile {
            path: dir.join("current.snapshot"),
            current: Mutex::new(None),
        };
        let current = file.load()?.and_then(|(meta, _)| meta.last_log_id);
        *file.current.lock().expect("not poisoned") = current;
        Ok(file)
    }

    /// Writes `meta length | meta JSON | data` to a temporary file, syncs it, and renames
    /// it into place, so a crash leaves either the old snapshot or the new one. A snapshot
    /// older than the one on disk is dropped.
    pub fn save(&self, meta: &SnapshotMeta, data: &[u8]) -> Result<()> {
        let mut current = self.current.lock().expect("not poisoned");
        if meta.last_log_id < *current {
            return Ok(());
        }
        let last_log_id = meta.last_log_id;
        let meta = serde_json::to_vec(meta)?;
        let temporary = self.path.with_extension("tmp");
        let mut file = fs::File::create(&temporary).map_err(io_error)?;
        file.write_all(&u32::try_from(meta.len()).expect("small meta").to_be_bytes())
            .map_err(io_error)?;
        file.write_all(&meta).map_err(io_error)?;
        file.write_all(data).map_err(io_error)?;
        file.sync_all().map_err(io_error)?;
        fs::rename(&temporary, &self.path).map_err(io_error)?;
        let directory = self.path.parent().expect("a file has a directory");
        fs::File::open(directory)
            .and_then(|d| d.sync_all())
            .map_err(io_error)?;
        *current = last_log_id;
        Ok(())
    }

    pub fn load(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error(error)),
        };
        let corrupt = || Error::CorruptSnapshot("truncated snapshot file".into());
        let length = u32::from_be_bytes(
            bytes
                .get(..4)
                .ok_or_else(corrupt)?
                .try_into()
                .expect("4 bytes"),
        ) as usize;
        let meta = bytes.get(4..4 + length).ok_or_else(corrupt)?;
        let meta: SnapshotMeta = serde_json::from_slice(meta)?;
        let data = bytes[4 + length..].to_vec();
        decode(&data)?;
        Ok(Some((meta, data)))
    }
}

fn io_error(error: std::io::Error) -> Error {
    Error::Io(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation_is_detected() {
        let mut writer = SnapshotWriter::new();
        writer.push(b"a1", b"{\"x\":1}");
        writer.push(b"mapplied", b"");
        let data = writer.finish();
        let pairs = decode(&data).unwrap();
        assert_eq!(
            pairs,
            vec![
                (&b"a1"[..], &b"{\"x\":1}"[..]),
                (&b"mapplied"[..], &b""[..])
            ]
        );
        assert!(decode(&data[..data.len() - 3]).is_err());
        assert!(decode(&data[1..]).is_err());
    }

    #[test]
    fn snapshot_file_keeps_the_last_saved_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let file = SnapshotFile::new(dir.path().join("snapshots")).unwrap();
        assert!(file.load().unwrap().is_none());
        let meta = SnapshotMeta {
            snapshot_id: "s1".into(),
            ..Default::default()
        };
        let mut writer = SnapshotWriter::new();
        writer.push(b"k", b"v");
        let data = writer.finish();
        file.save(&meta, &data).unwrap();
        assert_eq!(file.load().unwrap(), Some((meta.clone(), data.clone())));
        // An older snapshot finishing late does not replace a newer one.
        let mut newer = meta.clone();
        newer.last_log_id = Some(openraft::LogId::new(
            openraft::CommittedLeaderId::new(1, 0),
            9,
        ));
        file.save(&newer, &data).unwrap();
        file.save(&meta, &data).unwrap();
        assert_eq!(file.load().unwrap().unwrap().0, newer);
        // A torn write is refused, never half-read.
        let path = dir.path().join("snapshots").join("current.snapshot");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 4]).unwrap();
        assert!(file.load().is_err());
    }
}
