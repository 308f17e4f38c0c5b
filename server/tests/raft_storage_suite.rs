//! TESTPLAN WAL-11: openraft's storage conformance suite against the real WAL-backed log store
//! and the real engine-backed state machine (including snapshot build, transfer and install).

use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use unmogrowp_server::raft::snapshot::SnapshotStore;
use unmogrowp_server::raft::state_machine::EventStateMachine;
use unmogrowp_server::raft::{LogStore, NodeId, TypeConfig};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, EventStateMachine, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, EventStateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let log =
            LogStore::open(dir.path().join("log"), wal::WalOptions::default()).expect("open log");
        let engine =
            engine::Engine::open(dir.path().join("table"), engine::EngineConfig::default())
                .expect("open engine");
        let auth = auth::AuthStore::open(&dir.path().join("auth"), Default::default())
            .expect("open auth store");
        let snapshots = SnapshotStore::open(dir.path().join("snapshots"))?;
        let sm = EventStateMachine::open(engine, auth, snapshots)?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() -> Result<(), StorageError<NodeId>> {
    Suite::test_all(Builder)
}
