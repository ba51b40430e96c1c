//! The gRPC server side: hands Raft messages to openraft and forwarded client requests to
//! the local [`Replica`].

use std::sync::Arc;

use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, VoteRequest,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use storage::{NodeId, TypeConfig};
use tonic::{Request, Response, Status};

use crate::identity::Identity;
use crate::pb::raft_service_server::RaftService;
use crate::pb::Frame;
use crate::protocol::ForwardRequest;
use crate::replica::Replica;

pub struct RaftGrpc {
    replica: Arc<Replica>,
}

impl RaftGrpc {
    pub fn new(replica: Arc<Replica>) -> RaftGrpc {
        RaftGrpc { replica }
    }
}

fn decode<T: DeserializeOwned>(request: Request<Frame>) -> Result<T, Status> {
    serde_json::from_slice(&request.into_inner().json)
        .map_err(|e| Status::invalid_argument(format!("bad request: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Result<Response<Frame>, Status> {
    let json = serde_json::to_vec(value).map_err(|e| Status::internal(e.to_string()))?;
    Ok(Response::new(Frame { json }))
}

/// What a node in rejoin mode (fresh storage, not yet caught up) answers a candidate that
/// asks for a vote it may already have given before it lost its disk.
const REJOINING: &str = "started on fresh storage: not voting until caught up with a leader";

#[tonic::async_trait]
impl RaftService for RaftGrpc {
    async fn append_entries(&self, request: Request<Frame>) -> Result<Response<Frame>, Status> {
        let adopt = self.identity().check(&request)?;
        let request: AppendEntriesRequest<TypeConfig> = decode(request)?;
        let answer = self.replica.raft.append_entries(request).await;
        let accepted = matches!(
            answer,
            Ok(AppendEntriesResponse::Success | AppendEntriesResponse::PartialSuccess(_))
        );
        self.adopt(adopt, accepted)?;
        encode(&answer)
    }

    async fn vote(&self, request: Request<Frame>) -> Result<Response<Frame>, Status> {
        self.identity().check(&request)?;
        let request: VoteRequest<NodeId> = decode(request)?;
        let past_bootstrap = request.last_log_id.is_some_and(|log_id| log_id.index > 0);
        if self.identity().rejoining() && past_bootstrap {
            return Err(Status::unavailable(REJOINING));
        }
        encode(&self.replica.raft.vote(request).await)
    }

    async fn install_snapshot(&self, request: Request<Frame>) -> Result<Response<Frame>, Status> {
        let adopt = self.identity().check(&request)?;
        let request: InstallSnapshotRequest<TypeConfig> = decode(request)?;
        let answer = self.replica.raft.install_snapshot(request).await;
        self.adopt(adopt, answer.is_ok())?;
        encode(&answer)
    }

    async fn forward(&self, request: Request<Frame>) -> Result<Response<Frame>, Status> {
        self.identity().check(&request)?;
        let request: ForwardRequest = decode(request)?;
        request.validate().map_err(Status::invalid_argument)?;
        encode(&self.replica.serve_forwarded(request).await)
    }

    async fn status(&self, _request: Request<Frame>) -> Result<Response<Frame>, Status> {
        encode(&self.replica.status().await)
    }
}

impl RaftGrpc {
    fn identity(&self) -> &Identity {
        self.replica.peers().identity()
    }

    /// A fresh node takes the cluster id of the first leader whose entries it accepted.
    #[allow(clippy::result_large_err)]
    fn adopt(&self, cluster_id: Option<String>, accepted: bool) -> Result<(), Status> {
        match cluster_id {
            Some(id) if accepted => self
                .identity()
                .adopt(&id)
                .map_err(|e| Status::internal(e.to_string())),
            _ => Ok(()),
        }
    }
}
