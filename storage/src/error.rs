//! The storage crate's one error type. Business rejections are not errors (see `domain`);
//! these are I/O failures and corrupt data.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("corrupt value under key {key:?}: {source}")]
    Corrupt {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("corrupt snapshot: {0}")]
    CorruptSnapshot(String),
    #[error("encoding: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("file: {0}")]
    Io(std::io::Error),
}
