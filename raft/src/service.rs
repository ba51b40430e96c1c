//! The gRPC server side: hands Raft messages to openraft and forwarded client requests to
//! the local [`Replica`].

use std::sync::Arc;

use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use serde::de::DeserializeOwned;
use serde::Serialize;
use storage::{NodeId, TypeConfig};
use tonic::{Request, Response, Status};

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

#[tonic::async_trait]
impl RaftService for RaftGrpc {
    async fn append_entries(&self, request: Request<Frame>) -> Result<Response<Frame>, Status> {
        let request: AppendEntriesRequest<TypeConfig> = decode(request)?;
        encode(&self.replica.raft.append_entries(request).await)
    }

    async fn vote(&self, request: Request<Frame>) -> Result<Response<Frame>, Status> {
        let request: VoteRequest<NodeId> = decode(request)?;
        encode(&self.replica.raft.vote(request).await)
    }

    async fn install_snapshot(&self, request: Request<Frame>) -> Result<Response<Frame>, Status> {
        let request: InstallSnapshotRequest<TypeConfig> = decode(request)?;
        encode(&self.replica.raft.install_snapshot(request).await)
    }

    async fn forward(&self, request: Request<Frame>) -> Result<Response<Frame>, Status> {
        let request: ForwardRequest = decode(request)?;
        encode(&self.replica.serve_forwarded(request).await)
    }

    async fn status(&self, _request: Request<Frame>) -> Result<Response<Frame>, Status> {
        encode(&self.replica.status().await)
    }
}
