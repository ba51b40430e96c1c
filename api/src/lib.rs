//! `api` is the REST face of a replica: the seed-compatible routes, input parsing, response
//! bodies, and the one mapping of errors to HTTP. It declares what it needs from the
//! cluster through [`raft::Replica`] and never touches storage directly for writes.
//! [`http`] holds the boundary in front of the routes: limits, refusals, and serving.

pub mod dto;
pub mod error;
pub mod gate;
pub mod http;
pub mod input;
pub mod json;
pub mod members;
pub mod metrics;
pub mod routes;
pub mod timestamp;

use std::sync::Arc;

use axum::routing::{delete, get, post};
use axum::Router;

/// The one route that is a POST but only reads: a timeout there changed nothing.
pub const QUERY_ACCOUNTS_PATH: &str = "/api/v1/accounts/query";

/// Limits of the HTTP layer (configured in `[http]`, see `node/src/config.rs`).
#[derive(Debug, Clone, Copy)]
pub struct ApiLimits {
    pub body_bytes_max: usize,
    pub query_accounts_max: usize,
    /// The longest a request may take, body included, before it is answered 503.
    pub request_timeout_ms: u64,
    /// The longest a connection may take to send a request head (idle keep-alive included).
    pub header_read_timeout_ms: u64,
    /// Requests in flight at once (health probes excepted); beyond it, 503 `OVERLOADED`.
    pub concurrency_max: usize,
    /// Open connections at once; beyond it, new connections wait in the accept queue.
    pub connections_max: usize,
    /// The least time between the end of one audit scan and the start of the next.
    pub audit_interval_ms_min: u64,
}

impl Default for ApiLimits {
    fn default() -> ApiLimits {
        ApiLimits {
            body_bytes_max: 64 * 1024,
            query_accounts_max: 1_000,
            // Above the replica's own write deadline (write_timeout_ms + leader_wait_ms =
            // 7 s by default), so a write still being decided is answered by the replica.
            request_timeout_ms: 10_000,
            header_read_timeout_ms: 10_000,
            concurrency_max: 1_024,
            connections_max: 4_096,
            audit_interval_ms_min: 1_000,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub replica: Arc<raft::Replica>,
    pub limits: ApiLimits,
    /// Single-flight and rate limit of the full-state audit scan.
    pub audit_gate: Arc<gate::ScanGate>,
    /// The Redis account-read cache behind `consistency=cached`, when configured.
    pub cache: Option<Arc<cache::Cache>>,
    /// This node's HTTP (and process) metrics, served with the replica's at `/metrics`.
    pub metrics: Arc<metrics::HttpMetrics>,
}

impl AppState {
    pub fn new(replica: Arc<raft::Replica>, limits: ApiLimits) -> AppState {
        AppState {
            replica,
            limits,
            audit_gate: gate::ScanGate::new("audit scan", limits.audit_interval_ms_min),
            cache: None,
            metrics: Arc::new(metrics::HttpMetrics::new()),
        }
    }

    pub fn with_cache(mut self, cache: Option<Arc<cache::Cache>>) -> AppState {
        self.cache = cache;
        self
    }
}

/// Every route with the HTTP boundary in front (see [`http::layered`]).
pub fn router(state: AppState) -> Router {
    let limits = state.limits;
    let metrics = state.metrics.clone();
    // Outermost: every answer is timed, refusals of the boundary included.
    http::layered(api_routes(state.clone()), health_routes(state), limits).layer(
        axum::middleware::from_fn_with_state(metrics, metrics::track),
    )
}

/// The routes that do work, and the fallback.
fn api_routes(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/accounts", post(routes::create_account))
        .route(QUERY_ACCOUNTS_PATH, post(routes::query_accounts))
        .route(
            "/api/v1/accounts/{account_id}",
            get(routes::get_account).delete(routes::delete_account),
        )
        .route(
            "/api/v1/accounts/{account_id}/transactions",
            get(routes::account_history),
        )
        .route(
            "/api/v1/transactions/process",
            post(routes::process_transaction),
        )
        .route(
            "/api/v1/transactions/{transaction_id}/status",
            get(routes::transaction_status),
        )
        .route("/api/v1/cluster", get(routes::cluster))
        .route(
            "/api/v1/cluster/members",
            get(members::list).post(members::add),
        )
        .route("/api/v1/cluster/members/{node_id}", delete(members::remove))
        .route("/api/v1/cluster/step-down", post(members::step_down))
        .route("/api/v1/admin/audit", get(routes::audit))
        .route("/api/v1/admin/cache", get(routes::cache_stats))
        .fallback(routes::not_found)
        .with_state(state)
}

/// Probes and `/metrics`: cheap, and kept answerable when the work routes shed load.
fn health_routes(state: AppState) -> Router {
    Router::new()
        .route("/health/live", get(routes::live))
        .route("/health/ready", get(routes::ready))
        .route("/metrics", get(metrics::scrape))
        .with_state(state)
}
