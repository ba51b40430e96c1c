//! Node-to-node transport over tonic gRPC: openraft's `RaftNetwork` for replication and
//! votes, plus the calls used to forward client requests to the leader.
//!
//! Every connection sets TCP_NODELAY: without it each small replication message waits on
//! Nagle's algorithm and delayed ACKs (about 40 ms here), which caps a cluster at a few
//! hundred writes per second.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use storage::{LedgerNode, NodeId, TypeConfig};
use tonic::transport::{Channel, Endpoint};

use crate::identity::Identity;
use crate::pb::raft_service_client::RaftServiceClient;
use crate::pb::Frame;

/// How long to wait for a TCP connection to a peer.
pub const CONNECT_TIMEOUT_MS: u64 = 1_000;

/// Largest gRPC message either side sends or accepts. The largest legitimate one is an
/// AppendEntries of `replication_entries_max` full batches, or a snapshot chunk, both well
/// below it; anything larger is refused before it is decoded.
pub const FRAME_BYTES_MAX: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, Copy)]
pub enum Method {
    AppendEntries,
    Vote,
    InstallSnapshot,
    Forward,
    Status,
    PreVote,
}

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The request never left this node (bad address, connection refused).
    #[error("peer unreachable: {0}")]
    Unreachable(String),
    /// The request may have been delivered (timeout, reset, bad answer).
    #[error("call failed: {0}")]
    Failed(String),
}

/// One lazily connected, reconnecting channel per peer, shared by Raft and forwarding.
#[derive(Clone)]
pub struct Peers {
    channels: Arc<RwLock<HashMap<NodeId, (String, Channel)>>>,
    /// Source address of outgoing connections; lets fault tests tell nodes apart on loopback.
    source_ip: Option<IpAddr>,
    /// Stamps this node's cluster id on every call.
    identity: Arc<Identity>,
}

impl Peers {
    pub fn new(source_ip: Option<IpAddr>, identity: Arc<Identity>) -> Peers {
        Peers {
            channels: Arc::default(),
            source_ip,
            identity,
        }
    }

    pub fn identity(&self) -> &Arc<Identity> {
        &self.identity
    }

    pub fn channel(&self, id: NodeId, rpc_addr: &str) -> Result<Channel, CallError> {
        if let Some((addr, channel)) = self.channels.read().expect("not poisoned").get(&id) {
            if addr == rpc_addr {
                return Ok(channel.clone());
            }
        }
        let endpoint = Endpoint::from_shared(format!("http://{rpc_addr}"))
            .map_err(|e| CallError::Unreachable(format!("bad address {rpc_addr}: {e}")))?
            .tcp_nodelay(true)
            .local_address(self.source_ip)
            .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
            .http2_keep_alive_interval(Duration::from_secs(10));
        let channel = endpoint.connect_lazy();
        self.channels
            .write()
            .expect("not poisoned")
            .insert(id, (rpc_addr.to_owned(), channel.clone()));
        Ok(channel)
    }
}

/// Sends one JSON document to a peer, stamped with this node's cluster id, and decodes its
/// JSON answer.
pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
    channel: Channel,
    identity: &Identity,
    method: Method,
    request: &Req,
    timeout: Duration,
) -> Result<Resp, CallError> {
    let json = serde_json::to_vec(request).map_err(|e| CallError::Unreachable(e.to_string()))?;
    let mut request = tonic::Request::new(Frame { json });
    request.set_timeout(timeout);
    identity.stamp(&mut request);
    let mut client = RaftServiceClient::new(channel)
        .max_decoding_message_size(FRAME_BYTES_MAX)
        .max_encoding_message_size(FRAME_BYTES_MAX);
    let response = match method {
        Method::AppendEntries => client.append_entries(request).await,
        Method::Vote => client.vote(request).await,
        Method::InstallSnapshot => client.install_snapshot(request).await,
        Method::Forward => client.forward(request).await,
        Method::Status => client.status(request).await,
        Method::PreVote => client.pre_vote(request).await,
    };
    let frame = response.map_err(classify)?.into_inner();
    serde_json::from_slice(&frame.json).map_err(|e| CallError::Failed(format!("bad answer: {e}")))
}

/// Whether a failed call certainly never reached the peer. Decided from the error's
/// source chain, never from its text: only a refused connection (or a local address that
/// cannot be bound) proves nothing was sent. Anything else, a connect timeout included, may
/// have been delivered, and the caller must treat the outcome as unknown: mistaking a
/// delivered write for an undelivered one could apply it twice.
fn classify(status: tonic::Status) -> CallError {
    let text = status.to_string();
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&status);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::AddrNotAvailable
            ) {
                return CallError::Unreachable(text);
            }
        }
        source = error.source();
    }
    CallError::Failed(text)
}

pub struct NetworkFactory {
    peers: Peers,
}

impl NetworkFactory {
    pub fn new(peers: Peers) -> NetworkFactory {
        NetworkFactory { peers }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &LedgerNode) -> Connection {
        Connection {
            target,
            channel: self.peers.channel(target, &node.rpc_addr),
            identity: self.peers.identity.clone(),
            acknowledged_index: None,
        }
    }
}

pub struct Connection {
    target: NodeId,
    /// The highest index this follower acknowledged on this replication stream. A
    /// follower never loses an entry it acknowledged unless it lost its disk; openraft's
    /// progress tracking does not expect that (a matched index going backwards ends in an
    /// arithmetic overflow panic on the leader), so such an answer never reaches it.
    acknowledged_index: Option<u64>,
    channel: Result<Channel, CallError>,
    identity: Arc<Identity>,
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, LedgerNode, RaftError<NodeId, E>>>;

impl Connection {
    async fn send<Req, Resp, E>(
        &self,
        method: Method,
        request: &Req,
        option: &RPCOption,
    ) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let channel = match &self.channel {
            Ok(channel) => channel.clone(),
            Err(error) => {
                return Err(RPCError::Unreachable(Unreachable::new(
                    &CallError::Unreachable(error.to_string()),
                )))
            }
        };
        let answer: Result<Resp, RaftError<NodeId, E>> =
            call(channel, &self.identity, method, request, option.hard_ttl())
                .await
                .map_err(|error| match error {
                    CallError::Unreachable(_) => RPCError::Unreachable(Unreachable::new(&error)),
                    CallError::Failed(_) => RPCError::Network(NetworkError::new(&error)),
                })?;
        answer.map_err(|error| RPCError::RemoteError(RemoteError::new(self.target, error)))
    }
}

impl Connection {
    fn acknowledge(&mut self, index: Option<u64>) {
        if index > self.acknowledged_index {
            self.acknowledged_index = index;
        }
    }
}

/// A follower answered that it lacks an entry it had acknowledged: it lost its disk.
#[derive(Debug, thiserror::Error)]
#[error(
    "node {target} no longer holds entries it acknowledged (up to {acknowledged}): its storage \
     was lost or replaced. It cannot rejoin as the same member on this leader's stream; \
     remove and re-add it: `ledger cluster remove --id {target}` then `ledger cluster add \
     --id {target} --rpc HOST:PORT --api HOST:PORT`"
)]
struct LostLog {
    target: NodeId,
    acknowledged: u64,
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, openraft::error::Infallible> {
        let prev_index = request.prev_log_id.map(|id| id.index);
        let last_index = request
            .entries
            .last()
            .map(|e| e.log_id.index)
            .or(prev_index);
        let answer = self.send(Method::AppendEntries, &request, &option).await?;
        match &answer {
            AppendEntriesResponse::Success => self.acknowledge(last_index),
            AppendEntriesResponse::PartialSuccess(matched) => {
                self.acknowledge(matched.map(|id| id.index))
            }
            AppendEntriesResponse::Conflict
                if prev_index.is_some_and(|prev| Some(prev) <= self.acknowledged_index) =>
            {
                let lost = LostLog {
                    target: self.target,
                    acknowledged: self.acknowledged_index.unwrap_or_default(),
                };
                tracing::error!(%lost, "refusing a follower's answer");
                return Err(RPCError::Unreachable(Unreachable::new(&lost)));
            }
            _ => {}
        }
        Ok(answer)
    }

    async fn install_snapshot(
        &mut self,
        request: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.send(Method::InstallSnapshot, &request, &option).await
    }

    async fn vote(
        &mut self,
        request: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, openraft::error::Infallible> {
        self.send(Method::Vote, &request, &option).await
    }
}
