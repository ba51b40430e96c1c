//! The gRPC server side: hands Raft messages to openraft and forwarded client requests to
//! the local [`Replica`].
//!
//! **Snapshot chunks** are received here rather than by openraft's `Raft::install_snapshot`,
//! for three reasons. Each chunk is synced to its file before it is acknowledged, so the
//! last chunk (which carries the whole install within the leader's
//! `install_snapshot_timeout`) never waits on gigabytes of dirty pages. The whole stream is
//! verified (`SnapshotData::seal`) before openraft hears of it: openraft purges its log as
//! soon as it accepts a snapshot, and a storage error in its install is fatal, so a damaged
//! stream must be refused while nothing has changed; the leader is told and sends it again.
//! And each chunk runs to completion in its own task even if the leader stops waiting:
//! a write cut halfway would leave the file and the recorded offset disagreeing.

use std::io::SeekFrom;
use std::sync::Arc;

use openraft::error::{InstallSnapshotError, RaftError, SnapshotMismatch};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest,
};
use openraft::{Snapshot, SnapshotSegmentId};
use serde::de::DeserializeOwned;
use serde::Serialize;
use storage::snapshot::{SnapshotData, SNAPSHOT_BYTES_MAX};
use storage::{NodeId, TypeConfig};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::sync::Mutex;
use tonic::{Request, Response, Status};

use crate::elector::{self, PreVoteRequest};
use crate::identity::Identity;
use crate::pb::raft_service_server::RaftService;
use crate::pb::Frame;
use crate::protocol::ForwardRequest;
use crate::replica::Replica;

pub struct RaftGrpc {
    replica: Arc<Replica>,
    /// The snapshot being received, one at a time (the latest stream wins).
    receipt: Arc<Mutex<Option<Receipt>>>,
}

impl RaftGrpc {
    pub fn new(replica: Arc<Replica>) -> RaftGrpc {
        RaftGrpc {
            replica,
            receipt: Arc::default(),
        }
    }
}

/// A snapshot stream in progress: its id, how many bytes have landed, and its file.
struct Receipt {
    snapshot_id: String,
    received_bytes: u64,
    data: Box<SnapshotData>,
}

type InstallAnswer =
    Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>;

fn mismatch(id: &str, expect: u64, got: u64) -> InstallAnswer {
    let segment = |offset| SnapshotSegmentId {
        id: id.to_owned(),
        offset,
    };
    Err(RaftError::APIError(InstallSnapshotError::SnapshotMismatch(
        SnapshotMismatch {
            expect: segment(expect),
            got: segment(got),
        },
    )))
}

/// Handles one chunk: checks the sender's vote, writes and syncs the bytes, and on the last
/// chunk seals the snapshot and hands it to openraft. Returns the answer, and whether the
/// sender's vote was accepted (it is a current leader).
async fn receive_chunk(
    replica: Arc<Replica>,
    receipt: Arc<Mutex<Option<Receipt>>>,
    request: InstallSnapshotRequest<TypeConfig>,
) -> Result<(InstallAnswer, bool), Status> {
    let raft = &replica.raft;
    let vote = raft
        .with_raft_state(|state| state.vote_ref().clone())
        .await
        .map_err(|fatal| Status::unavailable(fatal.to_string()))?;
    if !(request.vote >= vote) {
        // A stale leader: it learns the newer vote from the answer and steps down.
        return Ok((Ok(InstallSnapshotResponse { vote }), false));
    }
    let _chunk = replica.peers().identity().snapshot_chunk();
    let id = request.meta.snapshot_id.clone();
    let length = request.data.len() as u64;
    let mut guard = receipt.lock().await;
    let applied = raft.metrics().borrow().last_applied;
    if request.meta.last_log_id <= applied {
        // Already at or past this snapshot: a last chunk the leader gave up on still
        // installed, and the leader sends it again. Answer at once and write nothing, as
        // openraft itself answers a snapshot it does not need.
        if guard.as_ref().is_some_and(|r| r.snapshot_id == id) {
            *guard = None;
        }
        return Ok((Ok(InstallSnapshotResponse { vote }), true));
    }
    if guard.as_ref().map(|r| &r.snapshot_id) != Some(&id) {
        if request.offset != 0 {
            return Ok((mismatch(&id, 0, request.offset), true));
        }
        let data = raft
            .begin_receiving_snapshot()
            .await
            .map_err(|error| Status::internal(error.to_string()))?;
        *guard = Some(Receipt {
            snapshot_id: id.clone(),
            received_bytes: 0,
            data,
        });
    }
    let current = guard.as_mut().expect("set above");
    if request.offset > current.received_bytes {
        // A gap would leave a hole in the file: ask for the stream from its start.
        return Ok((mismatch(&id, current.received_bytes, request.offset), true));
    }
    let end = request
        .offset
        .checked_add(length)
        .filter(|end| *end <= SNAPSHOT_BYTES_MAX);
    let Some(end) = end else {
        *guard = None;
        return Err(Status::invalid_argument(format!(
            "a snapshot may hold at most {SNAPSHOT_BYTES_MAX} bytes"
        )));
    };
    let written = async {
        if request.offset != current.received_bytes {
            // A chunk sent again after an answer was lost: rewind to it.
            current
                .data
                .seek(SeekFrom::Start(request.offset))
                .await
                .map_err(storage::Error::Io)?;
        }
        current
            .data
            .write_all(&request.data)
            .await
            .map_err(storage::Error::Io)?;
        current.data.sync_chunk().await
    }
    .await;
    if let Err(error) = written {
        *guard = None;
        return Err(Status::internal(format!(
            "writing a snapshot chunk: {error}"
        )));
    }
    current.received_bytes = end;
    if !request.done {
        return Ok((Ok(InstallSnapshotResponse { vote }), true));
    }
    let mut finished = guard.take().expect("set above");
    drop(guard);
    let sealed = async {
        finished.data.set_len(end).await?;
        finished.data.seal(&request.meta).await
    }
    .await;
    if let Err(error) = sealed {
        // Dropping the data removes the file: nothing but it was touched.
        tracing::error!(%error, snapshot_id = %id, "refused a snapshot");
        return Err(Status::data_loss(format!("snapshot {id} refused: {error}")));
    }
    let snapshot = Snapshot {
        meta: request.meta,
        snapshot: finished.data,
    };
    let answer = match raft.install_full_snapshot(request.vote, snapshot).await {
        Ok(response) => Ok(InstallSnapshotResponse {
            vote: response.vote,
        }),
        Err(fatal) => Err(RaftError::Fatal(fatal)),
    };
    Ok((answer, true))
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
        if accepted || matches!(answer, Ok(AppendEntriesResponse::Conflict)) {
            // A leader this node accepts as current: the elector stays quiet.
            self.replica.contact.touch();
        }
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
        // Its own task: runs to the end even if the leader stops waiting (see the module docs).
        let chunk = tokio::spawn(receive_chunk(
            self.replica.clone(),
            self.receipt.clone(),
            request,
        ));
        let (answer, current_leader) = chunk
            .await
            .map_err(|error| Status::internal(format!("snapshot chunk: {error}")))??;
        if current_leader {
            // A leader this node accepts as current: the elector stays quiet.
            self.replica.contact.touch();
        }
        self.adopt(adopt, current_leader && answer.is_ok())?;
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

    async fn pre_vote(&self, request: Request<Frame>) -> Result<Response<Frame>, Status> {
        self.identity().check(&request)?;
        let request: PreVoteRequest = decode(request)?;
        encode(&elector::answer(
            &self.replica,
            self.replica.election_timers,
            &request,
        ))
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
