//! Membership routes (admin): list members, add a node (learner, then voter once caught
//! up), remove one, and hand leadership over before a planned stop. Changes are forwarded
//! to the leader like writes.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use raft::membership::{MembershipChange, MembershipView};
use serde_json::{json, Value};
use storage::LedgerNode;

use crate::error::ApiError;
use crate::input::{read_body, Fields};
use crate::AppState;

fn view(view: &MembershipView, served_by: u64) -> Response {
    let mut response = (StatusCode::OK, Json(json!(view))).into_response();
    response
        .headers_mut()
        .insert("x-served-by", served_by.into());
    response
}

pub async fn list(State(state): State<AppState>) -> Response {
    view(&state.replica.membership(), state.replica.id)
}

/// `host:port`, checked as far as a name can be without resolving it.
fn address(fields: &Fields, field: &str) -> Result<String, ApiError> {
    let text = fields.required_str(field)?;
    let port_ok = text
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if !port_ok || text.len() > 255 || text.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(ApiError::invalid_field(field, "must be host:port"));
    }
    Ok(text.to_owned())
}

pub async fn add(State(state): State<AppState>, body: Body) -> Result<Response, ApiError> {
    let bytes = read_body(body, state.limits.body_bytes_max).await?;
    let fields = Fields::parse(&bytes, &["nodeId", "rpcAddr", "apiAddr", "voter"])?;
    let node_id = match fields.required("nodeId")? {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| ApiError::invalid_field("nodeId", "must be a non-negative integer"))?,
        _ => {
            return Err(ApiError::invalid_field(
                "nodeId",
                "must be a non-negative integer",
            ))
        }
    };
    let voter = match fields.required("voter") {
        Err(_) => true,
        Ok(Value::Bool(voter)) => *voter,
        Ok(_) => return Err(ApiError::invalid_field("voter", "must be true or false")),
    };
    let change = MembershipChange::Add {
        node_id,
        node: LedgerNode {
            rpc_addr: address(&fields, "rpcAddr")?,
            api_addr: address(&fields, "apiAddr")?,
        },
        voter,
    };
    let served = state.replica.change_membership(change).await?;
    Ok(view(&served.value, served.served_by))
}

pub async fn remove(
    State(state): State<AppState>,
    Path(node_id): Path<String>,
) -> Result<Response, ApiError> {
    let node_id: u64 = node_id
        .parse()
        .map_err(|_| ApiError::invalid_field("nodeId", "must be a non-negative integer"))?;
    let served = state
        .replica
        .change_membership(MembershipChange::Remove { node_id })
        .await?;
    Ok(view(&served.value, served.served_by))
}

/// On the leader: hands over and answers with the new leader; elsewhere: nothing to do.
pub async fn step_down(State(state): State<AppState>) -> Result<Response, ApiError> {
    let leader = state.replica.step_down().await?;
    Ok(Json(json!({"nodeId": state.replica.id, "leaderId": leader})).into_response())
}
