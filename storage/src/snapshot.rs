//! Snapshot data: every key and value of the `state` column family, read from one RocksDB
//! snapshot (so it is consistent without stopping apply), framed as
//! `magic | (u32 key length, key, u32 value length, value)* | u64 pair count`.
//!
//! The values inside are the same evolvable JSON as on disk; the frame itself is versioned by
//! its magic. The trailing count catches truncation.

use crate::error::{Error, Result};

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
}
