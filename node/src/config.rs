//! Typed, layered configuration: defaults, then an optional TOML file, then `LEDGER_*`
//! environment variables (nested keys with `__`, e.g. `LEDGER_RAFT__HEARTBEAT_INTERVAL_MS`).
//! Everything is validated at boot, before any port is bound or file is opened.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use storage::LedgerNode;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's id; when absent, the number after the last '-' of the hostname
    /// (a StatefulSet's `ledger-2` is node 2).
    pub node_id: Option<u64>,
    pub data_dir: PathBuf,
    /// Where the REST API listens.
    pub api_listen: SocketAddr,
    /// Where the Raft gRPC service listens.
    pub rpc_listen: SocketAddr,
    /// Source address of connections to peers; unset lets the OS choose. Fault tests give
    /// each node its own loopback address so iptables can cut links between nodes.
    pub rpc_source_ip: Option<std::net::IpAddr>,
    /// Every voter, this node included: `ID=RPC_HOST:PORT/API_HOST:PORT`, comma-separated.
    /// Host names are resolved when connecting (stable StatefulSet DNS names work).
    pub peers: String,
    pub raft: RaftSettings,
    pub batch: BatchSettings,
    pub http: HttpSettings,
    /// `text` or `json`.
    pub log_format: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftSettings {
    pub heartbeat_interval_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many applied entries.
    pub snapshot_logs_since_last: u64,
    /// Entries kept in the log behind the last snapshot, for slow followers.
    pub logs_kept_after_snapshot: u64,
    /// Most entries in one AppendEntries message. Each entry is a batch of up to
    /// `batch.count_max` commands, and openraft allows one heartbeat interval per message.
    pub replication_entries_max: u64,
}

impl Default for RaftSettings {
    fn default() -> RaftSettings {
        RaftSettings {
            // openraft gives each AppendEntries one heartbeat interval to complete: it must
            // cover a synced append of a full message on a busy follower.
            heartbeat_interval_ms: 250,
            election_timeout_min_ms: 1_000,
            election_timeout_max_ms: 2_000,
            snapshot_logs_since_last: 10_000,
            logs_kept_after_snapshot: 1_000,
            replication_entries_max: 32,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchSettings {
    pub count_max: usize,
    pub wait_us_max: u64,
    pub in_flight_max: usize,
    pub queue_count_max: usize,
    pub write_timeout_ms: u64,
    pub leader_wait_ms: u64,
}

impl Default for BatchSettings {
    fn default() -> BatchSettings {
        BatchSettings {
            count_max: 1_024,
            wait_us_max: 100,
            in_flight_max: 8,
            queue_count_max: 16_384,
            write_timeout_ms: 5_000,
            leader_wait_ms: 2_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    pub body_bytes_max: usize,
    pub query_accounts_max: usize,
}

impl Default for HttpSettings {
    fn default() -> HttpSettings {
        let limits = api::ApiLimits::default();
        HttpSettings {
            body_bytes_max: limits.body_bytes_max,
            query_accounts_max: limits.query_accounts_max,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration: {0}")]
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(message.into())
}

impl Default for NodeConfig {
    /// One node alone on loopback: what the layers on top start from.
    fn default() -> NodeConfig {
        NodeConfig {
            node_id: None,
            data_dir: PathBuf::from("data"),
            api_listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            rpc_listen: SocketAddr::from(([127, 0, 0, 1], 8180)),
            rpc_source_ip: None,
            peers: "0=127.0.0.1:8180/127.0.0.1:8080".into(),
            raft: RaftSettings::default(),
            batch: BatchSettings::default(),
            http: HttpSettings::default(),
            log_format: "text".into(),
        }
    }
}

impl NodeConfig {
    pub fn load(file: Option<&Path>) -> Result<NodeConfig, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(NodeConfig::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(invalid(format!(
                    "config file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        let config: NodeConfig = figment
            .merge(
                // LEDGER_LOG (log filter) and LEDGER_CONFIG (file path) are not config keys.
                Env::prefixed("LEDGER_")
                    .filter(|key| key != "log" && key != "config")
                    .split("__"),
            )
            .extract()
            .map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let members = self.members()?;
        let id = self.id()?;
        if !members.contains_key(&id) {
            return Err(invalid(format!(
                "node_id {id} is not among peers {}",
                self.peers
            )));
        }
        let raft = &self.raft;
        if raft.heartbeat_interval_ms == 0
            || raft.heartbeat_interval_ms * 2 > raft.election_timeout_min_ms
        {
            return Err(invalid("raft.heartbeat_interval_ms must be positive and at most half of election_timeout_min_ms"));
        }
        if raft.election_timeout_min_ms >= raft.election_timeout_max_ms {
            return Err(invalid(
                "raft.election_timeout_min_ms must be below election_timeout_max_ms",
            ));
        }
        if raft.replication_entries_max == 0 {
            return Err(invalid("raft.replication_entries_max must be positive"));
        }
        if raft.snapshot_logs_since_last == 0 {
            return Err(invalid("raft.snapshot_logs_since_last must be positive"));
        }
        let batch = &self.batch;
        if batch.count_max == 0
            || batch.in_flight_max == 0
            || batch.queue_count_max < batch.count_max
        {
            return Err(invalid("batch.count_max and batch.in_flight_max must be positive, queue_count_max >= count_max"));
        }
        if batch.write_timeout_ms == 0 || batch.leader_wait_ms == 0 {
            return Err(invalid(
                "batch.write_timeout_ms and batch.leader_wait_ms must be positive",
            ));
        }
        if self.http.body_bytes_max < 256 || self.http.query_accounts_max == 0 {
            return Err(invalid(
                "http.body_bytes_max must be at least 256 and query_accounts_max positive",
            ));
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(invalid("log_format must be text or json"));
        }
        Ok(())
    }

    pub fn id(&self) -> Result<u64, ConfigError> {
        if let Some(id) = self.node_id {
            return Ok(id);
        }
        let hostname = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .unwrap_or_default();
        let ordinal = hostname.trim().rsplit('-').next().unwrap_or_default();
        ordinal.parse().map_err(|_| {
            invalid(format!(
                "node_id is not set and hostname '{}' ends in no -N ordinal",
                hostname.trim()
            ))
        })
    }

    /// Parses `peers` into the member map.
    pub fn members(&self) -> Result<BTreeMap<u64, LedgerNode>, ConfigError> {
        let mut members = BTreeMap::new();
        for spec in self
            .peers
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let bad = || {
                invalid(format!(
                    "peer '{spec}' is not ID=RPC_HOST:PORT/API_HOST:PORT"
                ))
            };
            let (id, addresses) = spec.split_once('=').ok_or_else(bad)?;
            let (rpc_addr, api_addr) = addresses.split_once('/').ok_or_else(bad)?;
            let id: u64 = id.trim().parse().map_err(|_| bad())?;
            for addr in [rpc_addr, api_addr] {
                if addr
                    .rsplit_once(':')
                    .and_then(|(_, port)| port.parse::<u16>().ok())
                    .is_none()
                {
                    return Err(bad());
                }
            }
            let node = LedgerNode {
                rpc_addr: rpc_addr.to_owned(),
                api_addr: api_addr.to_owned(),
            };
            if members.insert(id, node).is_some() {
                return Err(invalid(format!("peer id {id} appears twice")));
            }
        }
        if members.is_empty() {
            return Err(invalid("peers must name at least one node"));
        }
        Ok(members)
    }

    pub fn openraft(&self) -> openraft::Config {
        openraft::Config {
            cluster_name: "ledger".into(),
            heartbeat_interval: self.raft.heartbeat_interval_ms,
            election_timeout_min: self.raft.election_timeout_min_ms,
            election_timeout_max: self.raft.election_timeout_max_ms,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(
                self.raft.snapshot_logs_since_last,
            ),
            max_in_snapshot_log_to_keep: self.raft.logs_kept_after_snapshot,
            max_payload_entries: self.raft.replication_entries_max,
            ..Default::default()
        }
    }
}
