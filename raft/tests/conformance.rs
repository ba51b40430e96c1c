//! openraft's storage conformance suite against our RocksDB log store and state machine,
//! sharing one database as they do in a node.

use openraft::testing::{StoreBuilder, Suite};
use raft::log_store::LogStore;
use storage::state_machine::StateMachineStore;
use storage::types::RaftStorageError;
use storage::TypeConfig;
use tempfile::TempDir;

struct RocksBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for RocksBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), RaftStorageError> {
        let dir = TempDir::new().expect("temp dir");
        let db = storage::db::open(&dir.path().join("rocksdb")).expect("open rocksdb");
        let state_machine = StateMachineStore::open(db.clone(), dir.path().join("snapshots"))
            .expect("open state machine");
        Ok((dir, LogStore::new(db), state_machine))
    }
}

#[test]
fn rocksdb_stores_pass_openraft_conformance_suite() {
    Suite::test_all(RocksBuilder).expect("conformance suite");
}
