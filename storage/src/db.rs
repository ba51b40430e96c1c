//! Opening the node's single RocksDB and small typed helpers over it.

use std::path::Path;
use std::sync::Arc;

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, Options, DB};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::keys;

/// Opens (or creates) the node's database with every column family in `keys`.
pub fn open(path: &Path) -> Result<Arc<DB>> {
    let mut options = Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    // Why: the log and the state share one WAL; keep the WAL write path simple and ordered.
    options.set_max_background_jobs(2);
    let families = keys::COLUMN_FAMILIES
        .iter()
        .map(|name| ColumnFamilyDescriptor::new(*name, Options::default()));
    let db = DB::open_cf_descriptors(&options, path, families)?;
    Ok(Arc::new(db))
}

pub fn cf<'a>(db: &'a DB, name: &str) -> &'a ColumnFamily {
    db.cf_handle(name)
        .unwrap_or_else(|| panic!("column family {name} is opened with the database"))
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("ledger types always serialize")
}

pub fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| Error::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        source,
    })
}

/// Reads and decodes one value of a column family.
pub fn get<T: DeserializeOwned>(db: &DB, family: &str, key: &[u8]) -> Result<Option<T>> {
    match db.get_pinned_cf(cf(db, family), key)? {
        Some(bytes) => decode(key, &bytes).map(Some),
        None => Ok(None),
    }
}
