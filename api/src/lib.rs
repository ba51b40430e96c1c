//! `api` is the REST face of a replica: the seed-compatible routes, input parsing, response
//! bodies, and the one mapping of errors to HTTP. It declares what it needs from the
//! cluster through [`raft::Replica`] and never touches storage directly for writes.

pub mod dto;
pub mod error;
pub mod input;
pub mod routes;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

/// Limits of the HTTP layer.
#[derive(Debug, Clone, Copy)]
pub struct ApiLimits {
    pub body_bytes_max: usize,
    pub query_accounts_max: usize,
}

impl Default for ApiLimits {
    fn default() -> ApiLimits {
        ApiLimits {
            body_bytes_max: 64 * 1024,
            query_accounts_max: 1_000,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub replica: Arc<raft::Replica>,
    pub limits: ApiLimits,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/accounts", post(routes::create_account))
        .route("/api/v1/accounts/query", post(routes::query_accounts))
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
        .route("/api/v1/admin/audit", get(routes::audit))
        .route("/health/live", get(routes::live))
        .route("/health/ready", get(routes::ready))
        .fallback(routes::not_found)
        .with_state(state)
}
