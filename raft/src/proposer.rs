//! The leader's batcher: concurrent proposals are grouped into one Raft entry, so one fsync
//! and one replication round serve many commands.
//!
//! A proposal waits in a bounded queue. The batcher takes the first one, waits for one of
//! `batches_in_flight_max` slots, then drains whatever else is queued, up to
//! `batch_count_max` commands or `batch_wait_us_max` of extra waiting. While earlier batches
//! are being synced and replicated, later proposals pile up and leave together: batches grow
//! with load on their own. Nothing here logs at info level or touches anything but the
//! channel and openraft.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openraft::error::{ClientWriteError, RaftError};
use storage::domain::{Batch, Command, Outcome};
use storage::NodeId;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::error::Error;
use crate::metrics::RaftMetrics;
use crate::Raft;

#[derive(Debug, Clone, Copy)]
pub struct ProposerLimits {
    pub batch_count_max: usize,
    pub batch_wait_us_max: u64,
    pub batches_in_flight_max: usize,
    pub queue_count_max: usize,
}

struct Proposal {
    command: Command,
    /// When it entered the queue: its wait in the batcher is measured from here.
    queued_at: Instant,
    reply: oneshot::Sender<Result<Outcome, Error>>,
}

#[derive(Clone)]
pub struct Proposer {
    queue: mpsc::Sender<Proposal>,
}

impl Proposer {
    pub fn start(raft: Raft, limits: ProposerLimits, metrics: Arc<RaftMetrics>) -> Proposer {
        assert!(limits.batch_count_max >= 1);
        // A larger batch could not be decoded by the followers (nor read back from disk).
        assert!(limits.batch_count_max <= storage::domain::BATCH_COMMANDS_MAX);
        assert!(limits.batches_in_flight_max >= 1);
        assert!(limits.queue_count_max >= limits.batch_count_max);
        let (queue, receiver) = mpsc::channel(limits.queue_count_max);
        tokio::spawn(run(raft, limits, receiver, metrics));
        Proposer { queue }
    }

    /// Proposes one command and waits for its outcome once committed and applied.
    pub async fn propose(&self, command: Command) -> Result<Outcome, Error> {
        let (reply, outcome) = oneshot::channel();
        self.queue
            .try_send(Proposal {
                command,
                queued_at: Instant::now(),
                reply,
            })
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => Error::Overloaded,
                mpsc::error::TrySendError::Closed(_) => Error::Fatal("proposer stopped".into()),
            })?;
        outcome
            .await
            .map_err(|_| Error::OutcomeUnknown("proposer dropped the request".into()))?
    }
}

async fn run(
    raft: Raft,
    limits: ProposerLimits,
    mut receiver: mpsc::Receiver<Proposal>,
    metrics: Arc<RaftMetrics>,
) {
    let slots = Arc::new(Semaphore::new(limits.batches_in_flight_max));
    while let Some(first) = receiver.recv().await {
        let slot = slots.clone().acquire_owned().await.expect("never closed");
        let mut proposals = vec![first];
        collect(&mut receiver, &mut proposals, limits).await;
        let raft = raft.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            write_batch(&raft, proposals, &metrics).await;
            drop(slot);
        });
    }
}

async fn collect(
    receiver: &mut mpsc::Receiver<Proposal>,
    proposals: &mut Vec<Proposal>,
    limits: ProposerLimits,
) {
    while proposals.len() < limits.batch_count_max {
        match receiver.try_recv() {
            Ok(proposal) => proposals.push(proposal),
            Err(_) => break,
        }
    }
    let deadline = Instant::now() + Duration::from_micros(limits.batch_wait_us_max);
    while proposals.len() < limits.batch_count_max {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(left, receiver.recv()).await {
            Ok(Some(proposal)) => proposals.push(proposal),
            _ => break,
        }
    }
    assert!(proposals.len() <= limits.batch_count_max);
}

fn now_ms() -> u64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).expect("milliseconds fit u64 until year 584 million")
}

async fn write_batch(raft: &Raft, proposals: Vec<Proposal>, metrics: &RaftMetrics) {
    let proposed_at = Instant::now();
    let (commands, replies): (Vec<Command>, Vec<_>) = proposals
        .into_iter()
        .map(|p| {
            let waited = proposed_at.saturating_duration_since(p.queued_at);
            metrics.batch_wait_seconds.observe(waited.as_secs_f64());
            (p.command, p.reply)
        })
        .unzip();
    let count = commands.len();
    metrics.batch_commands.observe(count as f64);
    let batch = Batch {
        proposed_at_ms: now_ms(),
        commands,
    };
    match raft.client_write(batch).await {
        Ok(response) => {
            let outcomes = response.data.outcomes;
            // One outcome per command, in order: the state machine's contract.
            assert_eq!(outcomes.len(), count);
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(error) => {
            let error = classify(error);
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

fn classify(error: RaftError<NodeId, ClientWriteError<NodeId, storage::LedgerNode>>) -> Error {
    match error {
        // Refused before it entered the log: nothing will be applied.
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward))
            if forward.leader_id.is_some() =>
        {
            Error::NotLeader {
                leader: forward.leader_id,
            }
        }
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => Error::NoLeader,
        RaftError::APIError(other) => Error::OutcomeUnknown(other.to_string()),
        RaftError::Fatal(fatal) => Error::OutcomeUnknown(fatal.to_string()),
    }
}
