//! Starting a replica: open the node's RocksDB, build the stores, start openraft, the gRPC
//! server and the batcher, and form the cluster from a static member list.
//!
//! Exactly one node initialises membership, once: the member with the lowest id, and only
//! when its own storage is fresh and no reachable peer reports being initialised already. A
//! restarted cluster finds its membership in the log and never re-initialises.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use storage::reader::LedgerReader;
use storage::state_machine::StateMachineStore;
use storage::{LedgerNode, NodeId};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use crate::error::{Error, Result};
use crate::log_store::LogStore;
use crate::network::{call, Method, NetworkFactory, Peers};
use crate::pb::raft_service_server::RaftServiceServer;
use crate::proposer::{Proposer, ProposerLimits};
use crate::protocol::StatusReply;
use crate::replica::{LeaderlessClock, Replica, ReplicaTimeouts};
use crate::service::RaftGrpc;
use crate::Raft;

/// How long the initialising node asks each peer whether it is initialised already.
const PEER_STATUS_TIMEOUT_MS: u64 = 1_000;

pub struct ReplicaConfig {
    pub id: NodeId,
    pub data_dir: PathBuf,
    /// Every voter, this node included.
    pub members: BTreeMap<NodeId, LedgerNode>,
    pub raft: openraft::Config,
    pub limits: ProposerLimits,
    pub timeouts: ReplicaTimeouts,
    /// Source address for connections to peers (`None`: chosen by the OS).
    pub rpc_source_ip: Option<std::net::IpAddr>,
}

/// Starts the replica and its gRPC server on `rpc_listener`; the server stops when
/// `shutdown` completes.
pub async fn start(
    config: ReplicaConfig,
    rpc_listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Arc<Replica>> {
    assert!(
        config.members.contains_key(&config.id),
        "a node is one of its members"
    );
    std::fs::create_dir_all(&config.data_dir).map_err(|e| Error::Storage(e.to_string()))?;
    // The database and the current snapshot file live side by side under the data dir.
    let db = storage::db::open(&config.data_dir.join("rocksdb"))?;
    let log_store = LogStore::new(db.clone());
    let committed_index = log_store.committed_index();
    let state_machine = StateMachineStore::open(db.clone(), config.data_dir.join("snapshots"))?;
    let stats = state_machine.stats();
    let peers = Peers::new(config.rpc_source_ip);
    let raft_config = Arc::new(
        config
            .raft
            .validate()
            .map_err(|e| Error::Fatal(e.to_string()))?,
    );
    let raft = Raft::new(
        config.id,
        raft_config,
        NetworkFactory::new(peers.clone()),
        log_store,
        state_machine,
    )
    .await
    .map_err(|e| Error::Fatal(e.to_string()))?;
    let proposer = Proposer::start(raft.clone(), config.limits);
    let replica = Arc::new(Replica {
        id: config.id,
        raft: raft.clone(),
        reader: LedgerReader::new(db),
        proposer,
        peers,
        committed_index,
        stats,
        timeouts: config.timeouts,
        leaderless: LeaderlessClock::start(&raft),
    });
    serve_grpc(replica.clone(), rpc_listener, shutdown);
    initialize_once(&replica, &config.members).await?;
    Ok(replica)
}

fn serve_grpc(
    replica: Arc<Replica>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let service = RaftServiceServer::new(RaftGrpc::new(replica))
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX);
    // TCP_NODELAY on accepted connections too: a follower's small acknowledgements must not
    // wait ~40 ms on Nagle's algorithm (the builder's option only covers sockets it binds).
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, shutdown);
    tokio::spawn(async move {
        if let Err(error) = server.await {
            tracing::error!(%error, "raft gRPC server stopped");
        }
    });
}

async fn initialize_once(replica: &Replica, members: &BTreeMap<NodeId, LedgerNode>) -> Result<()> {
    let lowest = *members.keys().next().expect("at least one member");
    if replica.id != lowest
        || replica
            .raft
            .is_initialized()
            .await
            .map_err(|e| Error::Fatal(e.to_string()))?
    {
        return Ok(());
    }
    if let Some(peer) = initialized_peer(replica, members).await {
        tracing::warn!(
            peer,
            "storage is fresh but a peer is initialised: joining, not initialising"
        );
        return Ok(());
    }
    tracing::info!(members = ?members.keys().collect::<Vec<_>>(), "initialising the cluster");
    match replica.raft.initialize(members.clone()).await {
        Ok(()) => Ok(()),
        Err(openraft::error::RaftError::APIError(
            openraft::error::InitializeError::NotAllowed(_),
        )) => Ok(()),
        Err(error) => Err(Error::Fatal(error.to_string())),
    }
}

async fn initialized_peer(
    replica: &Replica,
    members: &BTreeMap<NodeId, LedgerNode>,
) -> Option<NodeId> {
    let timeout = Duration::from_millis(PEER_STATUS_TIMEOUT_MS);
    for (id, node) in members.iter().filter(|(id, _)| **id != replica.id) {
        let Ok(channel) = replica.peers().channel(*id, &node.rpc_addr) else {
            continue;
        };
        let status: Result<StatusReply, _> = call(channel, Method::Status, &(), timeout).await;
        if status.is_ok_and(|status| status.initialized) {
            return Some(*id);
        }
    }
    None
}
