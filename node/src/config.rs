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
    /// Check that this node's own `peers` entry names its listen ports (and IPs, where both
    /// are literal): a typo there makes a node that others cannot reach. Turn off only when
    /// peers reach this node through a proxy or a port mapping (the Jepsen harness does).
    pub verify_own_peer_entry: bool,
    /// The lowest member bootstraps a new cluster only once every peer has answered that it
    /// is fresh (an unreachable peer might hold a cluster already). `true` bootstraps
    /// without the unreachable ones: only for a first start where some peers cannot come.
    pub bootstrap_force: bool,
    /// `voter` (one of `peers`) or `learner`: a read replica that is not in `peers`, joins
    /// through the membership API at start (as a learner: it never votes), serves local
    /// and cached reads, forwards the rest, and leaves the membership when stopped. The
    /// tier a HorizontalPodAutoscaler may scale (see the Helm chart's `readers`).
    pub role: Role,
    /// Added to the hostname's ordinal when `node_id` is absent, so a second StatefulSet
    /// (the readers) gets ids apart from the voters'.
    pub node_id_base: u64,
    /// How others reach this node, `RPC_HOST:PORT/API_HOST:PORT`: required for a learner
    /// (a voter's is its `peers` entry).
    pub advertise: Option<String>,
    pub raft: RaftSettings,
    pub batch: BatchSettings,
    pub http: HttpSettings,
    /// The Redis account-read cache (`consistency=cached`); no `url`, no cache.
    pub cache: cache::CacheSettings,
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
    /// How long a leader waits for one InstallSnapshot RPC: a chunk written and synced by
    /// the follower, and for the last chunk the whole snapshot verified and installed.
    pub install_snapshot_timeout_ms: u64,
    /// Snapshot bytes per InstallSnapshot RPC. A chunk travels as a JSON array of numbers
    /// (3.3 characters per byte measured, at most 4), so it stays far below the frame limit.
    pub snapshot_chunk_bytes: u64,
}

impl Default for RaftSettings {
    fn default() -> RaftSettings {
        RaftSettings {
            // openraft gives each AppendEntries one heartbeat interval to complete: it must
            // cover a synced append of a full message on a busy follower.
            heartbeat_interval_ms: 250,
            // A dead leader is replaced after about max + heartbeat + a jitter of up to
            // max - min (see `raft::elector`): 1.05-1.35 s. Spurious elections are kept away
            // by the pre-vote, not by long timeouts.
            election_timeout_min_ms: 500,
            election_timeout_max_ms: 800,
            snapshot_logs_since_last: 10_000,
            logs_kept_after_snapshot: 1_000,
            replication_entries_max: 32,
            // Measured on 2 cores: a 1 MiB chunk costs ~20 ms to encode, ~11 ms to decode
            // and ~9 ms to write and sync; verifying and installing 1.2 M accounts (192 MB)
            // on the last chunk, 1.4 s. 30 s covers the last chunk of a state of some GB on
            // a busy follower; a timed-out last chunk still installs, and the leader's
            // next round is then answered without writing (see `raft::service`).
            install_snapshot_timeout_ms: 30_000,
            // 1 MiB: ~3.3 MiB of JSON per frame, decoded in ~11 ms (4 MiB took ~70 ms of a
            // worker thread), at ~25 MB/s of snapshot per follower.
            snapshot_chunk_bytes: 1024 * 1024,
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
    /// The longest a request may take, body included; then 503 (`OUTCOME_UNKNOWN` for a
    /// write, `TIMEOUT` for a read). Must exceed `batch.write_timeout_ms +
    /// batch.leader_wait_ms` by a second, so a write still being decided is answered by the
    /// replica (which knows more) rather than cut here.
    pub request_timeout_ms: u64,
    /// The longest a connection may take to send a request head; also how long an idle
    /// keep-alive connection is kept.
    pub header_read_timeout_ms: u64,
    /// Requests in flight at once, health probes excepted; beyond it, 503 `OVERLOADED`.
    pub concurrency_max: usize,
    /// Open connections at once; beyond it, accepting pauses until one closes.
    pub connections_max: usize,
    /// The least time between two audit scans of this node; sooner is 429 `RATE_LIMITED`.
    pub audit_interval_ms_min: u64,
}

impl Default for HttpSettings {
    fn default() -> HttpSettings {
        let limits = api::ApiLimits::default();
        HttpSettings {
            body_bytes_max: limits.body_bytes_max,
            query_accounts_max: limits.query_accounts_max,
            request_timeout_ms: limits.request_timeout_ms,
            header_read_timeout_ms: limits.header_read_timeout_ms,
            concurrency_max: limits.concurrency_max,
            connections_max: limits.connections_max,
            audit_interval_ms_min: limits.audit_interval_ms_min,
        }
    }
}

impl HttpSettings {
    pub fn limits(&self) -> api::ApiLimits {
        api::ApiLimits {
            body_bytes_max: self.body_bytes_max,
            query_accounts_max: self.query_accounts_max,
            request_timeout_ms: self.request_timeout_ms,
            header_read_timeout_ms: self.header_read_timeout_ms,
            concurrency_max: self.concurrency_max,
            connections_max: self.connections_max,
            audit_interval_ms_min: self.audit_interval_ms_min,
        }
    }
}

/// How much more than the replica's own write deadline the HTTP request timeout must allow.
const REQUEST_TIMEOUT_MARGIN_MS: u64 = 1_000;

/// Sane bounds of every setting: a value outside them is a typo or a unit mistake, and
/// bounding them all keeps every sum and product below in range.
mod bounds {
    pub const MS_MAX: u64 = 3_600_000;
    pub const HEARTBEAT_INTERVAL_MS_MAX: u64 = 10_000;
    pub const ELECTION_TIMEOUT_MS_MAX: u64 = 120_000;
    pub const LOG_ENTRIES_MAX: u64 = 1_000_000_000;
    pub const REPLICATION_ENTRIES_MAX: u64 = 4_096;
    pub const INSTALL_SNAPSHOT_TIMEOUT_MS_MIN: u64 = 100;
    pub const INSTALL_SNAPSHOT_TIMEOUT_MS_MAX: u64 = 600_000;
    pub const SNAPSHOT_CHUNK_BYTES_MIN: u64 = 1_024;
    /// A chunk's JSON (at most 4 characters a byte) with a 2x margin under the frame limit.
    pub const SNAPSHOT_CHUNK_BYTES_MAX: u64 = (raft::network::FRAME_BYTES_MAX / 8) as u64;
    pub const BATCH_COUNT_MAX: usize = 65_536;
    pub const BATCH_WAIT_US_MAX: u64 = 1_000_000;
    pub const BATCHES_IN_FLIGHT_MAX: usize = 1_024;
    pub const QUEUE_COUNT_MAX: usize = 1_048_576;
    pub const WRITE_TIMEOUT_MS_MAX: u64 = 600_000;
    pub const BODY_BYTES_MIN: usize = 256;
    pub const BODY_BYTES_MAX: usize = 16 * 1024 * 1024;
    pub const QUERY_ACCOUNTS_MAX: usize = 100_000;
    pub const HEADER_READ_TIMEOUT_MS_MIN: u64 = 100;
    pub const HEADER_READ_TIMEOUT_MS_MAX: u64 = 600_000;
    pub const CONCURRENCY_MAX: usize = 65_536;
    pub const CONNECTIONS_MAX: usize = 65_536;
}

/// `name = value` must lie within `[min, max]`.
fn within<T: PartialOrd + std::fmt::Display>(
    name: &str,
    value: T,
    min: T,
    max: T,
) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(invalid(format!(
            "{name} = {value} is out of range: it must be {min} to {max}"
        )));
    }
    Ok(())
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
            verify_own_peer_entry: true,
            bootstrap_force: false,
            role: Role::Voter,
            node_id_base: 0,
            advertise: None,
            raft: RaftSettings::default(),
            batch: BatchSettings::default(),
            http: HttpSettings::default(),
            cache: cache::CacheSettings::default(),
            log_format: "text".into(),
        }
    }
}

/// `LEDGER_REDIS_URL`, the usual name of a Redis endpoint's variable, is `cache.url`.
const REDIS_URL_KEY: &str = "redis_url";

fn redis_url_alias() -> Env {
    Env::prefixed("LEDGER_")
        .only(&[REDIS_URL_KEY])
        .map(|_| "cache.url".into())
}

/// A variable Kubernetes injects for a Service named `ledger` (service links), lower-cased
/// and without the prefix: `port`, `port_8080_tcp...`, `service_host`, `service_port...`.
fn is_kubernetes_service_link(key: &str) -> bool {
    key == "port" || key.starts_with("port_") || key.starts_with("service_")
}

/// Whether this node votes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Voter,
    Learner,
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
                // LEDGER_LOG (log filter) and LEDGER_CONFIG (file path) are not config keys,
                // nor are the variables Kubernetes adds for a Service named `ledger`
                // (LEDGER_PORT, LEDGER_PORT_8080_TCP_ADDR, LEDGER_SERVICE_HOST, ...).
                Env::prefixed("LEDGER_")
                    .filter(|key| {
                        key != "log"
                            && key != "config"
                            && key != REDIS_URL_KEY
                            && !is_kubernetes_service_link(&key.as_str().to_ascii_lowercase())
                    })
                    .split("__"),
            )
            .merge(redis_url_alias())
            .extract()
            .map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.cache
            .validate()
            .map_err(|error| invalid(error.to_string()))?;
        let members = self.members()?;
        let id = self.id()?;
        match self.role {
            Role::Voter => {
                let Some(own) = members.get(&id) else {
                    return Err(invalid(format!(
                        "node_id {id} is not among peers {}",
                        self.peers
                    )));
                };
                if self.verify_own_peer_entry {
                    self.check_own_peer_entry(id, own)?;
                }
            }
            Role::Learner => {
                if members.contains_key(&id) {
                    return Err(invalid(format!(
                        "node_id {id} is a voter in peers; a learner joins the voters named there"
                    )));
                }
                let own = self.advertised()?.ok_or_else(|| {
                    invalid("a learner needs advertise = \"RPC_HOST:PORT/API_HOST:PORT\"")
                })?;
                if self.verify_own_peer_entry {
                    self.check_own_peer_entry(id, &own)?;
                }
            }
        }
        self.validate_raft()?;
        self.validate_batch()?;
        self.validate_http()?;
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(invalid("log_format must be text or json"));
        }
        Ok(())
    }

    fn validate_raft(&self) -> Result<(), ConfigError> {
        use bounds::*;
        let raft = &self.raft;
        within(
            "raft.heartbeat_interval_ms",
            raft.heartbeat_interval_ms,
            1,
            HEARTBEAT_INTERVAL_MS_MAX,
        )?;
        within(
            "raft.election_timeout_min_ms",
            raft.election_timeout_min_ms,
            1,
            ELECTION_TIMEOUT_MS_MAX,
        )?;
        within(
            "raft.election_timeout_max_ms",
            raft.election_timeout_max_ms,
            1,
            ELECTION_TIMEOUT_MS_MAX,
        )?;
        if raft.heartbeat_interval_ms.saturating_mul(2) > raft.election_timeout_min_ms {
            return Err(invalid(
                "raft.heartbeat_interval_ms must be at most half of election_timeout_min_ms",
            ));
        }
        if raft.election_timeout_min_ms >= raft.election_timeout_max_ms {
            return Err(invalid(
                "raft.election_timeout_min_ms must be below election_timeout_max_ms",
            ));
        }
        within(
            "raft.snapshot_logs_since_last",
            raft.snapshot_logs_since_last,
            1,
            LOG_ENTRIES_MAX,
        )?;
        within(
            "raft.logs_kept_after_snapshot",
            raft.logs_kept_after_snapshot,
            0,
            LOG_ENTRIES_MAX,
        )?;
        within(
            "raft.replication_entries_max",
            raft.replication_entries_max,
            1,
            REPLICATION_ENTRIES_MAX,
        )?;
        within(
            "raft.install_snapshot_timeout_ms",
            raft.install_snapshot_timeout_ms,
            INSTALL_SNAPSHOT_TIMEOUT_MS_MIN,
            INSTALL_SNAPSHOT_TIMEOUT_MS_MAX,
        )?;
        within(
            "raft.snapshot_chunk_bytes",
            raft.snapshot_chunk_bytes,
            SNAPSHOT_CHUNK_BYTES_MIN,
            SNAPSHOT_CHUNK_BYTES_MAX,
        )
    }

    fn validate_batch(&self) -> Result<(), ConfigError> {
        use bounds::*;
        let batch = &self.batch;
        within("batch.count_max", batch.count_max, 1, BATCH_COUNT_MAX)?;
        within("batch.wait_us_max", batch.wait_us_max, 0, BATCH_WAIT_US_MAX)?;
        within(
            "batch.in_flight_max",
            batch.in_flight_max,
            1,
            BATCHES_IN_FLIGHT_MAX,
        )?;
        within(
            "batch.queue_count_max",
            batch.queue_count_max,
            batch.count_max,
            QUEUE_COUNT_MAX,
        )?;
        within(
            "batch.write_timeout_ms",
            batch.write_timeout_ms,
            1,
            WRITE_TIMEOUT_MS_MAX,
        )?;
        within(
            "batch.leader_wait_ms",
            batch.leader_wait_ms,
            1,
            WRITE_TIMEOUT_MS_MAX,
        )
    }

    fn validate_http(&self) -> Result<(), ConfigError> {
        use bounds::*;
        let http = &self.http;
        within(
            "http.body_bytes_max",
            http.body_bytes_max,
            BODY_BYTES_MIN,
            BODY_BYTES_MAX,
        )?;
        within(
            "http.query_accounts_max",
            http.query_accounts_max,
            1,
            QUERY_ACCOUNTS_MAX,
        )?;
        let write_deadline_ms = self
            .batch
            .write_timeout_ms
            .saturating_add(self.batch.leader_wait_ms)
            .saturating_add(REQUEST_TIMEOUT_MARGIN_MS);
        if http.request_timeout_ms <= write_deadline_ms {
            return Err(invalid(format!(
                "http.request_timeout_ms = {} must exceed batch.write_timeout_ms + \
                 batch.leader_wait_ms + {REQUEST_TIMEOUT_MARGIN_MS} = {write_deadline_ms}, so a \
                 write still being decided is answered by the replica rather than cut",
                http.request_timeout_ms
            )));
        }
        within(
            "http.request_timeout_ms",
            http.request_timeout_ms,
            1,
            MS_MAX,
        )?;
        within(
            "http.header_read_timeout_ms",
            http.header_read_timeout_ms,
            HEADER_READ_TIMEOUT_MS_MIN,
            HEADER_READ_TIMEOUT_MS_MAX,
        )?;
        within(
            "http.concurrency_max",
            http.concurrency_max,
            1,
            CONCURRENCY_MAX,
        )?;
        within(
            "http.connections_max",
            http.connections_max,
            1,
            CONNECTIONS_MAX,
        )?;
        within(
            "http.audit_interval_ms_min",
            http.audit_interval_ms_min,
            0,
            MS_MAX,
        )
    }

    /// This node's `peers` entry must be where it listens: the same ports, and the same IP
    /// when the entry names an IP and the listen address is not a wildcard.
    fn check_own_peer_entry(&self, id: u64, own: &LedgerNode) -> Result<(), ConfigError> {
        let check = |what: &str, advertised: &str, key: &str, listen: SocketAddr| {
            advertised_problem(advertised, listen).map_or(Ok(()), |problem| {
                Err(invalid(format!(
                    "peers gives node {id} (this node) the {what} address {advertised}, but \
                     {key} is {listen}: {problem}. Peers must name where this node listens \
                     (set verify_own_peer_entry = false if peers reach it through a proxy or \
                     a port mapping)"
                )))
            })
        };
        check("Raft RPC", &own.rpc_addr, "rpc_listen", self.rpc_listen)?;
        check("API", &own.api_addr, "api_listen", self.api_listen)
    }

    /// How others reach this node, from `advertise`.
    pub fn advertised(&self) -> Result<Option<LedgerNode>, ConfigError> {
        let Some(text) = &self.advertise else {
            return Ok(None);
        };
        let (rpc_addr, api_addr) = text
            .split_once('/')
            .ok_or_else(|| invalid("advertise must be RPC_HOST:PORT/API_HOST:PORT"))?;
        for addr in [rpc_addr, api_addr] {
            if addr
                .rsplit_once(':')
                .and_then(|(_, port)| port.parse::<u16>().ok())
                .is_none()
            {
                return Err(invalid("advertise must be RPC_HOST:PORT/API_HOST:PORT"));
            }
        }
        Ok(Some(LedgerNode {
            rpc_addr: rpc_addr.to_owned(),
            api_addr: api_addr.to_owned(),
        }))
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
        let ordinal: u64 = ordinal.parse().map_err(|_| {
            invalid(format!(
                "node_id is not set and hostname '{}' ends in no -N ordinal",
                hostname.trim()
            ))
        })?;
        self.node_id_base
            .checked_add(ordinal)
            .ok_or_else(|| invalid("node_id_base + ordinal overflows"))
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
            install_snapshot_timeout: self.raft.install_snapshot_timeout_ms,
            snapshot_max_chunk_size: self.raft.snapshot_chunk_bytes,
            ..Default::default()
        }
    }
}

/// Why `advertised` (`HOST:PORT`, HOST a name, an IPv4 or a bracketed IPv6 literal) cannot
/// be the address `listen` serves, if it cannot.
fn advertised_problem(advertised: &str, listen: SocketAddr) -> Option<String> {
    let Some((host, port)) = advertised.rsplit_once(':') else {
        return Some("it has no port".into());
    };
    match port.parse::<u16>() {
        Ok(port) if port == listen.port() => {}
        Ok(port) => return Some(format!("port {port} is not {}", listen.port())),
        Err(_) => return Some(format!("'{port}' is not a port")),
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) if !listen.ip().is_unspecified() && ip != listen.ip() => {
            Some(format!("IP {ip} is not {}", listen.ip()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> NodeConfig {
        NodeConfig {
            node_id: Some(0),
            ..NodeConfig::default()
        }
    }

    fn refused(config: &NodeConfig, mentions: &str) {
        match config.validate() {
            Err(ConfigError::Invalid(message)) => {
                assert!(message.contains(mentions), "'{message}' lacks '{mentions}'")
            }
            other => panic!("expected a refusal mentioning {mentions}, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        config().validate().unwrap();
    }

    #[test]
    fn heartbeat_overflow_is_an_error_not_a_panic() {
        let mut config = config();
        config.raft.heartbeat_interval_ms = u64::MAX;
        refused(&config, "raft.heartbeat_interval_ms");
        config.raft.heartbeat_interval_ms = u64::MAX / 2 + 1;
        config.raft.election_timeout_min_ms = u64::MAX;
        refused(&config, "raft.");
        let mut config = self::config();
        config.raft.heartbeat_interval_ms = 600;
        refused(&config, "at most half of election_timeout_min_ms");
    }

    #[test]
    fn every_value_has_a_maximum() {
        let cases: [(&str, fn(&mut NodeConfig)); 16] = [
            ("raft.election_timeout_max_ms", |c| {
                c.raft.election_timeout_max_ms = u64::MAX
            }),
            ("raft.snapshot_logs_since_last", |c| {
                c.raft.snapshot_logs_since_last = u64::MAX
            }),
            ("raft.logs_kept_after_snapshot", |c| {
                c.raft.logs_kept_after_snapshot = u64::MAX
            }),
            ("raft.replication_entries_max", |c| {
                c.raft.replication_entries_max = u64::MAX
            }),
            ("batch.count_max", |c| c.batch.count_max = usize::MAX),
            ("batch.wait_us_max", |c| c.batch.wait_us_max = u64::MAX),
            ("batch.in_flight_max", |c| {
                c.batch.in_flight_max = usize::MAX
            }),
            ("batch.queue_count_max", |c| {
                c.batch.queue_count_max = usize::MAX
            }),
            ("batch.write_timeout_ms", |c| {
                c.batch.write_timeout_ms = u64::MAX
            }),
            ("batch.leader_wait_ms", |c| {
                c.batch.leader_wait_ms = u64::MAX
            }),
            ("http.body_bytes_max", |c| {
                c.http.body_bytes_max = usize::MAX
            }),
            ("http.query_accounts_max", |c| {
                c.http.query_accounts_max = usize::MAX
            }),
            ("http.request_timeout_ms", |c| {
                c.http.request_timeout_ms = u64::MAX
            }),
            ("http.header_read_timeout_ms", |c| {
                c.http.header_read_timeout_ms = u64::MAX
            }),
            ("http.concurrency_max", |c| {
                c.http.concurrency_max = usize::MAX
            }),
            ("http.connections_max", |c| {
                c.http.connections_max = usize::MAX
            }),
        ];
        for (key, set) in cases {
            let mut config = config();
            set(&mut config);
            refused(&config, key);
        }
        let mut config = config();
        config.http.audit_interval_ms_min = u64::MAX;
        refused(&config, "http.audit_interval_ms_min");
    }

    #[test]
    fn snapshot_chunks_and_their_timeout_are_bounded() {
        let cases: [(&str, fn(&mut NodeConfig)); 4] = [
            ("raft.install_snapshot_timeout_ms", |c| {
                c.raft.install_snapshot_timeout_ms = 99
            }),
            ("raft.install_snapshot_timeout_ms", |c| {
                c.raft.install_snapshot_timeout_ms = u64::MAX
            }),
            ("raft.snapshot_chunk_bytes", |c| {
                c.raft.snapshot_chunk_bytes = 0
            }),
            ("raft.snapshot_chunk_bytes", |c| {
                c.raft.snapshot_chunk_bytes = 8 * 1024 * 1024 + 1
            }),
        ];
        for (key, set) in cases {
            let mut config = config();
            set(&mut config);
            refused(&config, key);
        }
        let raft = config().openraft();
        assert_eq!(raft.install_snapshot_timeout, 30_000);
        assert_eq!(raft.snapshot_max_chunk_size, 1024 * 1024);
        // A chunk at the bound, as JSON at 4 characters a byte, fits a frame twice over.
        assert!(bounds::SNAPSHOT_CHUNK_BYTES_MAX * 4 * 2 <= raft::network::FRAME_BYTES_MAX as u64);
    }

    #[test]
    fn zero_where_zero_makes_no_sense() {
        let cases: [(&str, fn(&mut NodeConfig)); 6] = [
            ("raft.heartbeat_interval_ms", |c| {
                c.raft.heartbeat_interval_ms = 0
            }),
            ("batch.count_max", |c| c.batch.count_max = 0),
            ("batch.write_timeout_ms", |c| c.batch.write_timeout_ms = 0),
            ("http.concurrency_max", |c| c.http.concurrency_max = 0),
            ("http.connections_max", |c| c.http.connections_max = 0),
            ("http.header_read_timeout_ms", |c| {
                c.http.header_read_timeout_ms = 0
            }),
        ];
        for (key, set) in cases {
            let mut config = config();
            set(&mut config);
            refused(&config, key);
        }
    }

    #[test]
    fn request_timeout_exceeds_the_write_deadline() {
        let mut config = config();
        // 5000 + 2000 + 1000 by default.
        config.http.request_timeout_ms = 8_000;
        refused(&config, "must exceed batch.write_timeout_ms");
        config.http.request_timeout_ms = 8_001;
        config.validate().unwrap();
        config.batch.write_timeout_ms = 7_001;
        refused(&config, "must exceed batch.write_timeout_ms");
        // Huge values are refused, never summed into an overflow.
        config.batch.write_timeout_ms = u64::MAX;
        config.batch.leader_wait_ms = u64::MAX;
        refused(&config, "batch.write_timeout_ms");
    }

    #[test]
    fn own_peer_entry_ports_must_match_the_listeners() {
        let mut config = config();
        config.peers = "0=127.0.0.1:9999/127.0.0.1:8080,1=127.0.0.1:1/127.0.0.1:2".into();
        refused(
            &config,
            "rpc_listen is 127.0.0.1:8180: port 9999 is not 8180",
        );
        config.peers = "0=127.0.0.1:8180/127.0.0.1:9999".into();
        refused(
            &config,
            "api_listen is 127.0.0.1:8080: port 9999 is not 8080",
        );
        // Other nodes' entries are theirs to check.
        config.peers = "0=127.0.0.1:8180/127.0.0.1:8080,1=127.0.0.1:1/127.0.0.1:2".into();
        config.validate().unwrap();
    }

    #[test]
    fn own_peer_entry_ip_must_match_unless_a_name_or_a_wildcard() {
        let mut config = config();
        config.peers = "0=127.0.0.2:8180/127.0.0.1:8080".into();
        refused(&config, "IP 127.0.0.2 is not 127.0.0.1");
        config.rpc_listen = "0.0.0.0:8180".parse().unwrap();
        config.validate().unwrap();
        config.peers = "0=ledger-0.ledger:8180/localhost:8080".into();
        config.rpc_listen = "127.0.0.1:8180".parse().unwrap();
        config.validate().unwrap();
        config.peers = "0=[::1]:8180/127.0.0.1:8080".into();
        refused(&config, "IP ::1 is not 127.0.0.1");
        config.rpc_listen = "[::1]:8180".parse().unwrap();
        config.validate().unwrap();
        config.rpc_listen = "[::]:8180".parse().unwrap();
        config.validate().unwrap();
    }

    #[test]
    fn cache_settings_are_validated_at_boot() {
        let mut config = config();
        config.cache.url = Some("http://127.0.0.1:6379".into());
        refused(&config, "cache.url");
        config.cache.url = Some("rediss://user:pw@127.0.0.1:6380".into());
        config.validate().unwrap();
        config.cache.timeout_ms = 0;
        refused(&config, "cache.timeout_ms");
    }

    #[test]
    fn ledger_redis_url_sets_the_cache_url() {
        // The only test that touches the environment (load reads LEDGER_*).
        std::env::set_var("LEDGER_NODE_ID", "0");
        std::env::set_var("LEDGER_REDIS_URL", "redis://127.0.0.1:6399/2");
        let loaded = NodeConfig::load(None);
        std::env::remove_var("LEDGER_REDIS_URL");
        std::env::remove_var("LEDGER_NODE_ID");
        let loaded = loaded.unwrap();
        assert_eq!(
            loaded.cache.url.as_deref(),
            Some("redis://127.0.0.1:6399/2")
        );
        assert_eq!(loaded.cache.key_prefix, "ledger:");
    }

    #[test]
    fn own_peer_entry_check_can_be_turned_off_for_proxies() {
        let mut config = config();
        config.peers = "0=10.9.9.9:7000/127.0.0.1:8080".into();
        refused(&config, "verify_own_peer_entry = false");
        config.verify_own_peer_entry = false;
        config.validate().unwrap();
    }
}
