//! Starting a replica: open the node's RocksDB, build the stores, start openraft, the gRPC
//! server and the batcher, and form the cluster from a static member list.
//!
//! Exactly one node initialises membership, once: the member with the lowest id, only when
//! its own storage is fresh, and only once every configured peer has answered that it is
//! fresh too (an unreachable peer might be an initialised one), unless `bootstrap_force`
//! says to go ahead without the unreachable ones. It draws the cluster id then (see
//! `identity`). A restarted cluster finds its membership in the log and never
//! re-initialises.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use storage::keys;
use storage::reader::LedgerReader;
use storage::state_machine::StateMachineStore;
use storage::{LedgerNode, NodeId};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use crate::elector::{self, ContactClock, ElectionTimers};
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::log_store::LogStore;
use crate::network::{call, Method, NetworkFactory, Peers, FRAME_BYTES_MAX};
use crate::pb::raft_service_server::RaftServiceServer;
use crate::proposer::{Proposer, ProposerLimits};
use crate::protocol::StatusReply;
use crate::replica::{LeaderlessClock, Replica, ReplicaTimeouts};
use crate::service::RaftGrpc;
use crate::Raft;

/// How long the initialising node asks each peer whether it is initialised already.
const PEER_STATUS_TIMEOUT_MS: u64 = 1_000;
/// Pause between two surveys of the peers while some are unreachable.
const BOOTSTRAP_RETRY_MS: u64 = 500;

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
    /// Bootstrap even though some peers cannot be reached (they must then be fresh).
    pub bootstrap_force: bool,
    /// Where the state machine hands changed accounts after apply (the read cache's
    /// publisher), if anywhere.
    pub account_changes: Option<storage::changes::ChangeSink>,
    /// A learner: not one of `members` (the voters); it never bootstraps or votes, and
    /// joins through the membership API.
    pub learner: bool,
}

/// Starts the replica and its gRPC server on `rpc_listener`; the server stops when
/// `shutdown` completes.
pub async fn start(
    config: ReplicaConfig,
    rpc_listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Arc<Replica>> {
    assert!(
        config.members.contains_key(&config.id) != config.learner,
        "a voter is one of its members, a learner is not"
    );
    std::fs::create_dir_all(&config.data_dir).map_err(|e| Error::Storage(e.to_string()))?;
    // The database and the current snapshot file live side by side under the data dir.
    let db = storage::db::open(&config.data_dir.join("rocksdb"))?;
    let fresh = storage_is_fresh(&db)?;
    let identity = Arc::new(Identity::load(db.clone(), fresh)?);
    let metrics = Arc::new(crate::metrics::RaftMetrics::new());
    let log_store =
        LogStore::new(db.clone()).with_sync_histogram(metrics.log_sync_duration_seconds.clone());
    let committed_index = log_store.committed_index();
    let election_timers = ElectionTimers {
        lease_ms: config.raft.election_timeout_max,
        heartbeat_ms: config.raft.heartbeat_interval,
        jitter_ms: config
            .raft
            .election_timeout_max
            .saturating_sub(config.raft.election_timeout_min),
    };
    let mut state_machine = StateMachineStore::open(db.clone(), config.data_dir.join("snapshots"))?;
    if let Some(sink) = config.account_changes.clone() {
        state_machine.set_change_sink(sink);
    }
    let stats = state_machine.stats();
    let peers = Peers::new(config.rpc_source_ip, identity.clone());
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
        log_store.clone(),
        state_machine,
    )
    .await
    .map_err(|e| Error::Fatal(e.to_string()))?;
    // Elections are started by the pre-voting elector, never by openraft's own timer.
    raft.runtime_config().elect(false);
    let proposer = Proposer::start(raft.clone(), config.limits, metrics.clone());
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
        contact: ContactClock::default(),
        election_timers,
        log_store,
        stepping_down: Default::default(),
        metrics,
    });
    tokio::spawn(elector::run(replica.clone(), election_timers));
    exit_on_fatal(&raft);
    serve_grpc(replica.clone(), rpc_listener, shutdown);
    if fresh {
        tokio::spawn(rejoin_when_caught_up(replica.clone()));
        let lowest = *config.members.keys().next().expect("at least one member");
        if config.id == lowest && !config.learner {
            let members = config.members.clone();
            let force = config.bootstrap_force;
            let bootstrapper = replica.clone();
            tokio::spawn(async move {
                if let Err(error) = bootstrap_when_ready(&bootstrapper, &members, force).await {
                    tracing::error!(%error, "bootstrap failed");
                    std::process::exit(70);
                }
            });
        }
    }
    Ok(replica)
}

/// No vote, no log entry, no applied state: a node that never took part in a cluster, or
/// one that lost its disk.
fn storage_is_fresh(db: &rocksdb::DB) -> Result<bool> {
    use storage::keys::{CF_LOG, CF_RAFT, CF_STATE};
    let vote: Option<storage::types::Vote> = storage::db::get(db, CF_RAFT, keys::RAFT_VOTE)?;
    let applied: Option<Option<storage::types::LogId>> =
        storage::db::get(db, CF_STATE, keys::META_APPLIED)?;
    let has_log = db
        .iterator_cf(storage::db::cf(db, CF_LOG), rocksdb::IteratorMode::Start)
        .next()
        .is_some();
    Ok(vote.is_none() && applied.flatten().is_none() && !has_log)
}

/// Leaves rejoin mode once this node follows a leader and has applied all that leader had
/// committed: from then on its vote is a vote it will remember.
async fn rejoin_when_caught_up(replica: Arc<Replica>) {
    let mut metrics = replica.raft.metrics();
    loop {
        let caught_up = {
            let m = metrics.borrow_and_update();
            let applied = m.last_applied.map_or(0, |id| id.index);
            m.current_leader.is_some_and(|leader| leader != replica.id)
                && replica.peers().identity().cluster_id().is_some()
                && applied >= replica.committed_index()
                && m.last_applied.is_some()
        };
        if caught_up || !replica.peers().identity().rejoining() {
            replica.peers().identity().caught_up();
            return;
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// Ends the process when openraft stops for good (a storage error, a panicked task): a node
/// that keeps its ports open without a working core is a zombie that answers probes and
/// fails every request. Exiting lets the supervisor restart it, or an operator see why.
fn exit_on_fatal(raft: &Raft) {
    let mut metrics = raft.metrics();
    tokio::spawn(async move {
        loop {
            match &metrics.borrow_and_update().running_state {
                Ok(()) => {}
                // A clean shutdown: the process is ending anyway.
                Err(openraft::error::Fatal::Stopped) => return,
                Err(fatal) => {
                    tracing::error!(%fatal, "raft stopped for good; exiting");
                    std::process::exit(70);
                }
            }
            if metrics.changed().await.is_err() {
                // The core dropped its metrics sender: it ended. A clean shutdown ends
                // the process soon anyway; anything else is fatal.
                return;
            }
        }
    });
}

fn serve_grpc(
    replica: Arc<Replica>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let service = RaftServiceServer::new(RaftGrpc::new(replica))
        .max_decoding_message_size(FRAME_BYTES_MAX)
        .max_encoding_message_size(FRAME_BYTES_MAX);
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

/// What the bootstrapping node learned from its peers.
enum Survey {
    /// Every peer answered and none is initialised: a new cluster may form.
    AllFresh,
    /// This peer is initialised already: there is a cluster; join it, never make another.
    Initialized(NodeId),
    /// These peers did not answer; one of them might be initialised.
    Unreachable(Vec<NodeId>),
}

async fn survey(replica: &Replica, members: &BTreeMap<NodeId, LedgerNode>) -> Survey {
    let timeout = Duration::from_millis(PEER_STATUS_TIMEOUT_MS);
    let mut unreachable = Vec::new();
    for (id, node) in members.iter().filter(|(id, _)| **id != replica.id) {
        let Ok(channel) = replica.peers().channel(*id, &node.rpc_addr) else {
            unreachable.push(*id);
            continue;
        };
        let identity = replica.peers().identity();
        let status: Result<StatusReply, _> =
            call(channel, identity, Method::Status, &(), timeout).await;
        match status {
            Ok(status) if status.initialized || status.cluster_id.is_some() => {
                return Survey::Initialized(*id)
            }
            Ok(_) => {}
            Err(_) => unreachable.push(*id),
        }
    }
    if unreachable.is_empty() {
        Survey::AllFresh
    } else {
        Survey::Unreachable(unreachable)
    }
}

/// The lowest member, on fresh storage: waits until every peer has answered that it is
/// fresh (or `force`), then initialises the membership under a new cluster id.
async fn bootstrap_when_ready(
    replica: &Replica,
    members: &BTreeMap<NodeId, LedgerNode>,
    force: bool,
) -> Result<()> {
    let mut surveys: u64 = 0;
    loop {
        match survey(replica, members).await {
            Survey::AllFresh => break,
            Survey::Initialized(peer) => {
                tracing::warn!(
                    peer,
                    "storage is fresh but a peer is initialised: joining, not initialising"
                );
                return Ok(());
            }
            Survey::Unreachable(peers) if force => {
                tracing::warn!(?peers, "bootstrap_force: initialising without these peers");
                break;
            }
            Survey::Unreachable(peers) => {
                if surveys % 20 == 0 {
                    tracing::info!(
                        ?peers,
                        "waiting for every peer before bootstrapping a new cluster \
                         (set bootstrap_force to go ahead without them)"
                    );
                }
                surveys += 1;
                tokio::time::sleep(Duration::from_millis(BOOTSTRAP_RETRY_MS)).await;
            }
        }
    }
    let identity = replica.peers().identity();
    // A crash between storing the id and initialising leaves the id: reuse it.
    let cluster_id = identity.cluster_id().unwrap_or_else(Identity::generate);
    identity.adopt(&cluster_id)?;
    tracing::info!(%cluster_id, members = ?members.keys().collect::<Vec<_>>(), "initialising the cluster");
    match replica.raft.initialize(members.clone()).await {
        Ok(())
        | Err(openraft::error::RaftError::APIError(
            openraft::error::InitializeError::NotAllowed(_),
        )) => {}
        Err(error) => return Err(Error::Fatal(error.to_string())),
    }
    // The bootstrapper never voted before (and `initialize` campaigned already).
    identity.caught_up();
    Ok(())
}
