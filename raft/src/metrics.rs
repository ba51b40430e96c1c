//! This node's Raft metrics, in a Prometheus registry the node owns (no global state: the
//! tests run three nodes in one process).
//!
//! The write path only observes histograms and bumps counters (atomics, no locks, no I/O).
//! Gauges that mirror openraft's metrics and the state machine's counters are not kept up to
//! date on every change: [`crate::Replica::gather_metrics`] sets them at scrape time.

use std::sync::Mutex;

use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{
    exponential_buckets, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry,
};

pub struct RaftMetrics {
    registry: Registry,
    /// Commands per proposed batch.
    pub batch_commands: Histogram,
    /// Time a command waited in the batcher before its batch was proposed.
    pub batch_wait_seconds: Histogram,
    /// The synced RocksDB write of a log append.
    pub log_sync_duration_seconds: Histogram,
    /// Requests this node forwarded to the leader, by `kind` and `outcome`.
    pub forwarded_requests_total: IntCounterVec,
    /// Elections this node started after winning a pre-vote.
    pub elections_started_total: IntCounter,
    pub(crate) scraped: Scraped,
}

/// Set from openraft's metrics and the state machine's counters when scraped.
pub(crate) struct Scraped {
    /// One scrape at a time: counters are moved forward by differences.
    pub(crate) lock: Mutex<()>,
    pub(crate) term: IntGauge,
    pub(crate) last_log_index: IntGauge,
    pub(crate) applied_index: IntGauge,
    pub(crate) committed_index: IntGauge,
    pub(crate) leader_id: IntGauge,
    pub(crate) is_leader: IntGauge,
    pub(crate) snapshots_built_total: IntCounter,
    pub(crate) snapshots_installed_total: IntCounter,
}

fn histogram(name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).expect("valid histogram")
}

fn gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::new(name, help).expect("valid gauge")
}

fn counter(name: &str, help: &str) -> IntCounter {
    IntCounter::new(name, help).expect("valid counter")
}

/// Moves a counter up to `value` (a monotonic count kept elsewhere).
pub fn advance(counter: &IntCounter, value: u64) {
    counter.inc_by(value.saturating_sub(counter.get()));
}

impl RaftMetrics {
    pub fn new() -> RaftMetrics {
        let registry = Registry::new();
        // 1 µs .. ~16 s; 1 .. 4096 commands.
        let seconds = || exponential_buckets(0.000_001, 2.0, 25).expect("valid buckets");
        let metrics = RaftMetrics {
            batch_commands: histogram(
                "ledger_batch_commands",
                "Commands per batch proposed by the leader's batcher.",
                exponential_buckets(1.0, 2.0, 13).expect("valid buckets"),
            ),
            batch_wait_seconds: histogram(
                "ledger_batch_wait_seconds",
                "Time a command waited in the batcher before its batch was proposed.",
                seconds(),
            ),
            log_sync_duration_seconds: histogram(
                "ledger_log_sync_duration_seconds",
                "Duration of the synced RocksDB write of a Raft log append.",
                seconds(),
            ),
            forwarded_requests_total: IntCounterVec::new(
                Opts::new(
                    "ledger_forwarded_requests_total",
                    "Requests forwarded to the leader, by kind (write/read/membership) and outcome.",
                ),
                &["kind", "outcome"],
            )
            .expect("valid counter"),
            elections_started_total: counter(
                "ledger_elections_started_total",
                "Elections this node started after winning a pre-vote.",
            ),
            scraped: Scraped {
                lock: Mutex::new(()),
                term: gauge("ledger_raft_term", "Current Raft term."),
                last_log_index: gauge(
                    "ledger_raft_last_log_index",
                    "Index of the last entry in this node's log (-1: none).",
                ),
                applied_index: gauge(
                    "ledger_raft_applied_index",
                    "Last log index applied to the state machine (-1: none).",
                ),
                committed_index: gauge(
                    "ledger_raft_committed_index",
                    "Highest log index this node knows to be committed.",
                ),
                leader_id: gauge(
                    "ledger_raft_leader_id",
                    "Node id of the leader this node believes in (-1: none).",
                ),
                is_leader: gauge("ledger_raft_is_leader", "1 when this node is the leader."),
                snapshots_built_total: counter(
                    "ledger_snapshots_built_total",
                    "Snapshots this node built.",
                ),
                snapshots_installed_total: counter(
                    "ledger_snapshots_installed_total",
                    "Snapshots this node installed from a leader.",
                ),
            },
            registry,
        };
        let s = &metrics.scraped;
        let collectors: [Box<dyn Collector>; 13] = [
            Box::new(metrics.batch_commands.clone()),
            Box::new(metrics.batch_wait_seconds.clone()),
            Box::new(metrics.log_sync_duration_seconds.clone()),
            Box::new(metrics.forwarded_requests_total.clone()),
            Box::new(metrics.elections_started_total.clone()),
            Box::new(s.term.clone()),
            Box::new(s.last_log_index.clone()),
            Box::new(s.applied_index.clone()),
            Box::new(s.committed_index.clone()),
            Box::new(s.leader_id.clone()),
            Box::new(s.is_leader.clone()),
            Box::new(s.snapshots_built_total.clone()),
            Box::new(s.snapshots_installed_total.clone()),
        ];
        // Series exist from the start (at 0), so rates and alerts need no `absent()`.
        for kind in ["write", "read", "membership"] {
            metrics
                .forwarded_requests_total
                .with_label_values(&[kind, "ok"]);
        }
        for collector in collectors {
            metrics
                .registry
                .register(collector)
                .expect("metric names are unique");
        }
        metrics
    }

    pub(crate) fn gather(&self) -> Vec<MetricFamily> {
        self.registry.gather()
    }
}

impl Default for RaftMetrics {
    fn default() -> RaftMetrics {
        RaftMetrics::new()
    }
}
