//! Building and running one node from its configuration (zero2prod's `Application`): bind
//! both listeners, start the replica and the REST server (with its HTTP limits, see
//! `api::http`), run until `shutdown` fires.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use raft::bootstrap::ReplicaConfig;
use raft::proposer::ProposerLimits;
use raft::replica::ReplicaTimeouts;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::NodeConfig;

pub struct Application {
    pub replica: Arc<raft::Replica>,
    api_listener: TcpListener,
    config: NodeConfig,
    stop: watch::Sender<bool>,
    cache: Option<Arc<cache::Cache>>,
}

impl Application {
    pub async fn build(config: NodeConfig) -> anyhow::Result<Application> {
        let id = config.id()?;
        let api_listener = TcpListener::bind(config.api_listen)
            .await
            .with_context(|| format!("binding the API on {}", config.api_listen))?;
        let rpc_listener = TcpListener::bind(config.rpc_listen)
            .await
            .with_context(|| format!("binding Raft gRPC on {}", config.rpc_listen))?;
        let (stop, stopped) = watch::channel(false);
        // Opened before the replica: its state machine hands changes to the cache.
        let opened = cache::Cache::open(&config.cache)?;
        let replica_config = ReplicaConfig {
            id,
            data_dir: config.data_dir.clone(),
            members: config.members()?,
            raft: config.openraft(),
            limits: ProposerLimits {
                batch_count_max: config.batch.count_max,
                batch_wait_us_max: config.batch.wait_us_max,
                batches_in_flight_max: config.batch.in_flight_max,
                queue_count_max: config.batch.queue_count_max,
            },
            timeouts: ReplicaTimeouts {
                write_timeout_ms: config.batch.write_timeout_ms,
                leader_wait_ms: config.batch.leader_wait_ms,
                // A quorum silent for a whole election timeout has likely elected another leader.
                quorum_silence_ms_max: config.raft.election_timeout_max_ms,
            },
            rpc_source_ip: config.rpc_source_ip,
            bootstrap_force: config.bootstrap_force,
            learner: config.role == crate::config::Role::Learner,
            account_changes: opened.as_ref().map(|opened| opened.sink.clone()),
        };
        let replica =
            raft::bootstrap::start(replica_config, rpc_listener, wait_for(stopped)).await?;
        let cache = opened.map(|opened| {
            cache::publisher::spawn(opened.cache.clone(), opened.changes, replica.clone());
            opened.cache
        });
        Ok(Application {
            replica,
            api_listener,
            config,
            stop,
            cache,
        })
    }

    pub fn api_addr(&self) -> SocketAddr {
        self.api_listener.local_addr().expect("bound")
    }

    /// Serves until `shutdown` completes, then stops Raft cleanly.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let limits = self.config.http.limits();
        let state = api::AppState::new(self.replica.clone(), limits).with_cache(self.cache.clone());
        let router = api::router(state);
        tracing::info!(api = %self.api_addr(), rpc = %self.config.rpc_listen, node = self.replica.id, "serving");
        // A planned stop of the leader hands leadership over first, while this node still
        // serves (and forwards): writes pause for about one lease, not one election.
        let replica = self.replica.clone();
        let learner = match (self.config.role, self.config.advertised()?) {
            (crate::config::Role::Learner, Some(node)) => {
                let registration = Registration::new(&self.config, replica.id, node)?;
                tokio::spawn(registration.clone().join());
                Some(registration)
            }
            _ => None,
        };
        let shutdown = async move {
            shutdown.await;
            if let Some(registration) = learner {
                // A learner leaves when stopped: a scaled-down reader must not linger as a
                // member the leader keeps replicating to.
                registration.leave().await;
            }
            match replica.step_down().await {
                Ok(Some(leader)) if leader != replica.id => {
                    tracing::info!(leader, "handed leadership over before stopping")
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "could not hand leadership over"),
            }
        };
        api::http::serve(self.api_listener, router, limits, shutdown).await;
        let _ = self.stop.send(true);
        self.replica.raft.shutdown().await.ok();
        tracing::info!(node = self.replica.id, "stopped");
        Ok(())
    }
}

async fn wait_for(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Completes on SIGINT or SIGTERM.
pub async fn signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

/// A learner's membership, kept through the voters' REST API: join at start (retrying
/// until a voter accepts), leave at stop (bounded).
#[derive(Clone)]
struct Registration {
    id: u64,
    node: storage::LedgerNode,
    voters: Vec<String>,
    http: reqwest::Client,
}

/// How long one join or leave request may take (a join waits for the catch-up).
const REGISTRATION_TIMEOUT_MS: u64 = 130_000;
const LEAVE_TIMEOUT_MS: u64 = 5_000;
const JOIN_RETRY_MS: u64 = 1_000;

impl Registration {
    fn new(
        config: &NodeConfig,
        id: u64,
        node: storage::LedgerNode,
    ) -> anyhow::Result<Registration> {
        let voters = config
            .members()?
            .values()
            .map(|member| format!("http://{}", member.api_addr))
            .collect();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_millis(REGISTRATION_TIMEOUT_MS))
            .build()?;
        Ok(Registration {
            id,
            node,
            voters,
            http,
        })
    }

    async fn join(self) {
        let body = serde_json::json!({"nodeId": self.id, "rpcAddr": self.node.rpc_addr,
            "apiAddr": self.node.api_addr, "voter": false});
        for attempt in 0u64.. {
            let voter = &self.voters[attempt as usize % self.voters.len()];
            let url = format!("{voter}/api/v1/cluster/members");
            match self.http.post(&url).json(&body).send().await {
                Ok(response) if response.status().is_success() => {
                    tracing::info!(via = %voter, "joined the cluster as a learner");
                    return;
                }
                Ok(response) => {
                    tracing::warn!(via = %voter, status = %response.status(), "join refused; retrying")
                }
                Err(error) => tracing::warn!(via = %voter, %error, "join failed; retrying"),
            }
            tokio::time::sleep(std::time::Duration::from_millis(JOIN_RETRY_MS)).await;
        }
    }

    async fn leave(&self) {
        for voter in &self.voters {
            let url = format!("{voter}/api/v1/cluster/members/{}", self.id);
            let request = self
                .http
                .delete(&url)
                .timeout(std::time::Duration::from_millis(LEAVE_TIMEOUT_MS));
            if let Ok(response) = request.send().await {
                if response.status().is_success() {
                    tracing::info!(via = %voter, "left the cluster");
                    return;
                }
            }
        }
        tracing::warn!("could not leave the cluster; remove this learner by hand");
    }
}
