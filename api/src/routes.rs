//! The HTTP handlers: parse, ask the replica, shape the answer. Every answer from the
//! cluster says which node served it (`x-served-by`) and, for reads, the applied log index
//! it reflects (`x-applied-index`). Account reads also say where the value came from
//! (`x-served-from: cache|local|leader`); `consistency=cached` ones add what the Redis
//! lookup found (`x-cache`) and, for a cached value, its age (`x-cache-age-ms`).

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use raft::protocol::{ReadReply, ReadRequest, ReadValue};
use raft::{Consistency, Served};
use serde_json::{json, Value};
use storage::domain::{
    AccountId, Command, IdempotencyKey, Outcome, TransactionId, TransferRequest,
};

use crate::dto;
use crate::error::ApiError;
use crate::input::{path_id, read_body, Fields};
use crate::AppState;

/// Default and largest page of an account's history.
const HISTORY_PAGE_DEFAULT: usize = 50;

type Params = Query<HashMap<String, String>>;

fn reply(status: StatusCode, body: Value, served_by: u64, applied_index: Option<u64>) -> Response {
    let mut response = (status, Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert("x-served-by", HeaderValue::from(served_by));
    if let Some(index) = applied_index {
        headers.insert("x-applied-index", HeaderValue::from(index));
    }
    response
}

/// How a read may be served: through Raft, or (account reads only) from the Redis cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadMode {
    Raft(Consistency),
    Cached,
}

fn read_mode(params: &HashMap<String, String>) -> Result<ReadMode, ApiError> {
    match params.get("consistency").map(String::as_str) {
        None | Some("linearizable") => Ok(ReadMode::Raft(Consistency::Linearizable)),
        Some("local") => Ok(ReadMode::Raft(Consistency::Local)),
        Some("cached") => Ok(ReadMode::Cached),
        Some(other) => Err(ApiError::invalid_field(
            "consistency",
            format!("'{other}' is not one of linearizable, local, cached"),
        )),
    }
}

/// The consistency of a read the cache does not hold (transfers, history).
fn consistency(params: &HashMap<String, String>) -> Result<Consistency, ApiError> {
    match read_mode(params)? {
        ReadMode::Raft(consistency) => Ok(consistency),
        ReadMode::Cached => Err(ApiError::invalid_field(
            "consistency",
            "cached is only for account reads (GET /api/v1/accounts/{id}, \
             POST /api/v1/accounts/query); use linearizable or local",
        )),
    }
}

/// `maxStalenessMs`: the oldest cached value a `consistency=cached` reader accepts.
fn max_staleness_ms(
    params: &HashMap<String, String>,
    mode: ReadMode,
) -> Result<Option<u64>, ApiError> {
    let max = number_param(params, "maxStalenessMs")?;
    if max.is_some() && mode != ReadMode::Cached {
        return Err(ApiError::invalid_field(
            "maxStalenessMs",
            "applies to consistency=cached only",
        ));
    }
    Ok(max)
}

/// Accounts read in the requested mode, with where they came from.
async fn read_accounts(
    state: &AppState,
    ids: &[AccountId],
    params: &HashMap<String, String>,
) -> Result<cache::AccountsRead, ApiError> {
    let mode = read_mode(params)?;
    let max_staleness_ms = max_staleness_ms(params, mode)?;
    let consistency = match mode {
        ReadMode::Cached => {
            let cache = state.cache.as_ref();
            let read = cache::read_accounts(cache, &state.replica, ids, max_staleness_ms);
            return Ok(read.await?);
        }
        ReadMode::Raft(consistency) => consistency,
    };
    let served = state
        .replica
        .read(ReadRequest::Accounts(ids.to_vec()), consistency)
        .await?;
    let ReadValue::Accounts(accounts) = served.value.value else {
        return Err(ApiError::Internal("unexpected read answer".into()));
    };
    Ok(cache::AccountsRead {
        accounts,
        applied_index: served.value.applied_index,
        served_by: served.served_by,
        source: match consistency {
            Consistency::Linearizable => cache::Source::Leader,
            Consistency::Local => cache::Source::Local,
        },
        lookup: cache::Lookup::Disabled,
        age_ms: None,
    })
}

/// An account read's answer: `reply`, plus where it came from.
fn accounts_reply(
    status: StatusCode,
    body: Value,
    read: &cache::AccountsRead,
    cached: bool,
) -> Response {
    let mut response = reply(status, body, read.served_by, Some(read.applied_index));
    mark_source(response.headers_mut(), read, cached);
    response
}

fn mark_source(headers: &mut HeaderMap, read: &cache::AccountsRead, cached: bool) {
    headers.insert(
        "x-served-from",
        HeaderValue::from_static(read.source.as_str()),
    );
    if cached {
        headers.insert("x-cache", HeaderValue::from_static(read.lookup.as_str()));
    }
    if let Some(age_ms) = read.age_ms {
        headers.insert("x-cache-age-ms", HeaderValue::from(age_ms));
    }
}

async fn read(
    state: &AppState,
    request: ReadRequest,
    params: &HashMap<String, String>,
) -> Result<Served<ReadReply>, ApiError> {
    Ok(state.replica.read(request, consistency(params)?).await?)
}

/// The optional `Idempotency-Key` header of a mutating call.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY_HEADER) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::invalid_field(IDEMPOTENCY_KEY_HEADER, "must be visible ASCII"))?;
    IdempotencyKey::parse(text)
        .map(Some)
        .map_err(|e| ApiError::invalid_field(IDEMPOTENCY_KEY_HEADER, e))
}

pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// A written outcome, unwrapped from an idempotent replay: (outcome, replayed).
fn settle(outcome: Outcome) -> Result<(Outcome, bool), ApiError> {
    match outcome {
        Outcome::Replay { original } => Ok((*original, true)),
        Outcome::IdempotencyConflict { key } => Err(ApiError::conflict(
            "IDEMPOTENCY_CONFLICT",
            format!("Idempotency-Key {key} was already used with a different request"),
        )),
        other => Ok((other, false)),
    }
}

/// Marks an answer that repeats an earlier outcome rather than applying anything now.
fn mark_replay(mut response: Response, replayed: bool) -> Response {
    if replayed {
        response
            .headers_mut()
            .insert("x-idempotent-replay", HeaderValue::from_static("true"));
    }
    response
}

/// The same marking for an error answer (a replayed 409 or 404).
fn mark_replay_error(error: ApiError, replayed: bool) -> Response {
    mark_replay(error.into_response(), replayed)
}

pub async fn create_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(body, state.limits.body_bytes_max).await?;
    let fields = Fields::parse(&bytes, &["accountId", "balance", "accountType", "currency"])?;
    let command = Command::CreateAccount {
        account_id: fields.account_id("accountId")?,
        balance: fields.amount("balance")?,
        account_type: fields.account_type("accountType")?,
        currency: fields.currency("currency")?,
        idempotency_key: idempotency_key(&headers)?,
    };
    let served = state.replica.write(command).await?;
    let (outcome, replayed) = settle(served.value)?;
    Ok(match outcome {
        Outcome::AccountCreated { account } => mark_replay(
            reply(
                StatusCode::CREATED,
                dto::account(&account),
                served.served_by,
                None,
            ),
            replayed,
        ),
        Outcome::AccountExists { account_id } => mark_replay_error(
            ApiError::conflict(
                "ACCOUNT_EXISTS",
                format!("account {account_id} already exists (or existed: ids are never reused)"),
            ),
            replayed,
        ),
        other => return Err(ApiError::Internal(format!("unexpected outcome {other:?}"))),
    })
}

pub async fn get_account(
    State(state): State<AppState>,
    Path(account_id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let id = path_id("accountId", &account_id, AccountId::parse)?;
    let mut read = read_accounts(&state, std::slice::from_ref(&id), &params).await?;
    let cached = read_mode(&params)? == ReadMode::Cached;
    match read.accounts.pop().flatten() {
        Some(account) => Ok(accounts_reply(
            StatusCode::OK,
            dto::account(&account),
            &read,
            cached,
        )),
        None => {
            let error = ApiError::not_found("ACCOUNT_NOT_FOUND", format!("account {id} not found"));
            let mut response = error.into_response();
            mark_source(response.headers_mut(), &read, cached);
            Ok(response)
        }
    }
}

pub async fn query_accounts(
    State(state): State<AppState>,
    Query(params): Params,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(body, state.limits.body_bytes_max).await?;
    let fields = Fields::parse(&bytes, &["accountIds"])?;
    let ids = fields.account_ids("accountIds", state.limits.query_accounts_max)?;
    let read = read_accounts(&state, &ids, &params).await?;
    let accounts = &read.accounts;
    let missing: Vec<AccountId> = ids
        .iter()
        .zip(accounts)
        .filter(|(_, account)| account.is_none())
        .map(|(id, _)| id.clone())
        .collect();
    let found: Vec<Value> = accounts.iter().flatten().map(dto::account).collect();
    let body = json!({
        "appliedIndex": read.applied_index,
        "accounts": found,
        "missing": dto::missing(&missing),
    });
    let cached = read_mode(&params)? == ReadMode::Cached;
    Ok(accounts_reply(StatusCode::OK, body, &read, cached))
}

pub async fn delete_account(
    State(state): State<AppState>,
    Path(account_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = path_id("accountId", &account_id, AccountId::parse)?;
    let served = state
        .replica
        .write(Command::DeleteAccount {
            account_id: id.clone(),
            idempotency_key: idempotency_key(&headers)?,
        })
        .await?;
    let (outcome, replayed) = settle(served.value)?;
    let answer = match outcome {
        Outcome::AccountDeleted { .. } => Ok(reply(
            StatusCode::OK,
            json!({"message": "Account deleted successfully."}),
            served.served_by,
            None,
        )),
        Outcome::AccountNotFound { .. } => Err(ApiError::not_found(
            "ACCOUNT_NOT_FOUND",
            format!("account {id} not found"),
        )),
        Outcome::AccountNotEmpty { account } => Err(ApiError::Conflict {
            code: "ACCOUNT_NOT_EMPTY",
            message: format!(
                "account {id} holds {}; transfer the balance out before deleting it",
                account.balance
            ),
            extra: serde_json::Map::from_iter([(
                "balance".to_owned(),
                dto::exact_number(account.balance.value()),
            )]),
        }),
        other => return Err(ApiError::Internal(format!("unexpected outcome {other:?}"))),
    };
    Ok(match answer {
        Ok(response) => mark_replay(response, replayed),
        Err(error) => mark_replay_error(error, replayed),
    })
}

fn transfer_request(fields: &Fields) -> Result<TransferRequest, ApiError> {
    TransferRequest::new(
        fields.transaction_id("transactionId")?,
        fields.account_id("sourceAccountId")?,
        fields.account_id("destinationAccountId")?,
        fields.amount("amount")?,
        fields.timestamp("timestamp")?,
    )
    .map_err(|invalid| ApiError::invalid_field(invalid.field, invalid.problem))
}

pub async fn process_transaction(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(body, state.limits.body_bytes_max).await?;
    let fields = Fields::parse(
        &bytes,
        &[
            "transactionId",
            "sourceAccountId",
            "destinationAccountId",
            "amount",
            "timestamp",
        ],
    )?;
    let request = transfer_request(&fields)?;
    let command = Command::Transfer {
        request,
        idempotency_key: idempotency_key(&headers)?,
    };
    let served = state.replica.write(command).await?;
    let (outcome, replayed) = settle(served.value)?;
    match outcome {
        Outcome::Transfer {
            transfer,
            duplicate,
        } => {
            let duplicate = duplicate || replayed;
            let status = match transfer.status {
                storage::domain::TransferStatus::Completed => StatusCode::OK,
                storage::domain::TransferStatus::Failed => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let mut response = reply(
                status,
                dto::process_result(&transfer),
                served.served_by,
                None,
            );
            if duplicate {
                response
                    .headers_mut()
                    .insert("x-idempotent-replay", HeaderValue::from_static("true"));
            }
            Ok(response)
        }
        Outcome::TransferConflict { existing } => Err(ApiError::Conflict {
            code: "IDEMPOTENCY_CONFLICT",
            message: format!(
                "transactionId {} was already used with a different body",
                existing.request.transaction_id()
            ),
            extra: serde_json::Map::from_iter([("existing".to_owned(), dto::transfer(&existing))]),
        }),
        other => Err(ApiError::Internal(format!("unexpected outcome {other:?}"))),
    }
}

pub async fn transaction_status(
    State(state): State<AppState>,
    Path(transaction_id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let id = path_id("transactionId", &transaction_id, TransactionId::parse)?;
    let served = read(&state, ReadRequest::Transfer(id.clone()), &params).await?;
    let ReadValue::Transfer(transfer) = served.value.value else {
        return Err(ApiError::Internal("unexpected read answer".into()));
    };
    let transfer = transfer.ok_or_else(|| {
        ApiError::not_found(
            "TRANSACTION_NOT_FOUND",
            format!("transaction {id} not found"),
        )
    })?;
    Ok(reply(
        StatusCode::OK,
        dto::transfer(&transfer),
        served.served_by,
        Some(served.value.applied_index),
    ))
}

fn number_param(params: &HashMap<String, String>, name: &str) -> Result<Option<u64>, ApiError> {
    params
        .get(name)
        .map(|text| {
            text.parse::<u64>()
                .map_err(|_| ApiError::invalid_field(name, "must be a non-negative integer"))
        })
        .transpose()
}

pub async fn account_history(
    State(state): State<AppState>,
    Path(account_id): Path<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let id = path_id("accountId", &account_id, AccountId::parse)?;
    let limit = number_param(&params, "limit")?.map_or(HISTORY_PAGE_DEFAULT, |n| n as usize);
    if limit == 0 || limit > storage::reader::HISTORY_PAGE_MAX {
        return Err(ApiError::invalid_field(
            "limit",
            format!("must be 1 to {}", storage::reader::HISTORY_PAGE_MAX),
        ));
    }
    let before = number_param(&params, "before")?;
    let request = ReadRequest::History {
        account_id: id.clone(),
        before,
        limit,
    };
    let served = read(&state, request, &params).await?;
    let ReadValue::History(page) = served.value.value else {
        return Err(ApiError::Internal("unexpected read answer".into()));
    };
    // Decided at the same index as the page, by whoever served it.
    let Some(page) = page else {
        return Err(ApiError::not_found(
            "ACCOUNT_NOT_FOUND",
            format!("account {id} not found"),
        ));
    };
    let body = json!({
        "accountId": id.as_str(),
        "transactions": page.transfers.iter().map(dto::transfer).collect::<Vec<_>>(),
        "nextBefore": page.next_before,
        "appliedIndex": served.value.applied_index,
    });
    Ok(reply(
        StatusCode::OK,
        body,
        served.served_by,
        Some(served.value.applied_index),
    ))
}

pub async fn cluster(State(state): State<AppState>) -> Response {
    let replica = &state.replica;
    let metrics = replica.raft.metrics().borrow().clone();
    let members: Vec<dto::Member> = metrics
        .membership_config
        .membership()
        .nodes()
        .map(|(id, node)| dto::Member {
            node_id: *id,
            rpc_addr: node.rpc_addr.clone(),
            api_addr: node.api_addr.clone(),
        })
        .collect();
    let stats = replica.stats();
    let body = json!({
        "nodeId": replica.id,
        "clusterId": replica.peers().identity().cluster_id(),
        "rejoining": replica.peers().identity().rejoining(),
        "leaderId": replica.current_leader(),
        "state": format!("{:?}", metrics.state),
        "term": metrics.current_term,
        "appliedIndex": metrics.last_applied.map(|id| id.index),
        "committedIndex": replica.committed_index(),
        "lastLogIndex": metrics.last_log_index,
        "snapshotIndex": metrics.snapshot.map(|id| id.index),
        "purgedIndex": metrics.purged.map(|id| id.index),
        "snapshotsBuilt": stats.snapshots_built.load(std::sync::atomic::Ordering::Relaxed),
        "snapshotsInstalled": stats.snapshots_installed.load(std::sync::atomic::Ordering::Relaxed),
        "members": members,
    });
    reply(
        StatusCode::OK,
        body,
        replica.id,
        metrics.last_applied.map(|id| id.index),
    )
}

/// This node's own applied state, scanned whole: conservation, no negative balance, and a
/// digest that equals other replicas' at the same applied index. Costs a full scan.
pub async fn audit(State(state): State<AppState>) -> Result<Response, ApiError> {
    // Single-flight and rate-limited (429 otherwise): the turn is held by the scan itself, so
    // a request abandoned mid-scan (timeout, closed connection) still blocks a second scan.
    let turn = state.audit_gate.enter()?;
    let reader = state.replica.reader.clone();
    let audit = tokio::task::spawn_blocking(move || {
        let audit = reader.audit();
        drop(turn);
        audit
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    let body = json!({
        "nodeId": state.replica.id,
        "appliedIndex": audit.applied_index,
        "accounts": audit.accounts,
        "sumOfBalances": dto::exact_number(audit.sum_of_balances),
        "recordedTotal": dto::exact_number(audit.recorded_total),
        "conserved": audit.sum_of_balances == audit.recorded_total,
        "digest": format!("{:016x}", audit.digest),
    });
    Ok(reply(
        StatusCode::OK,
        body,
        state.replica.id,
        Some(audit.applied_index),
    ))
}

/// The read cache's counters and breaker state on this node.
pub async fn cache_stats(State(state): State<AppState>) -> Response {
    let body = match &state.cache {
        Some(cache) => cache.stats_json(),
        None => cache::disabled_stats_json(),
    };
    reply(StatusCode::OK, body, state.replica.id, None)
}

/// Live: openraft's core and state machine are running. When they stop for good the
/// process exits (see `raft::bootstrap`); until it does, this says so.
pub async fn live(State(state): State<AppState>) -> Response {
    match state.replica.fatal() {
        None => Json(json!({"status": "live"})).into_response(),
        Some(fatal) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "dead", "code": "RAFT_STOPPED", "message": fatal})),
        )
            .into_response(),
    }
}

/// How far apply may trail the committed index on a ready node (entries, each a batch).
const READY_LAG_ENTRIES_MAX: u64 = 64;

/// Ready: knows a leader and has applied (nearly) everything it was told is committed.
pub async fn ready(State(state): State<AppState>) -> Response {
    let replica = &state.replica;
    let metrics = replica.raft.metrics().borrow().clone();
    let applied = metrics.last_applied.map_or(0, |id| id.index);
    let committed = replica.committed_index();
    let leader = replica.current_leader();
    let problem = match leader {
        None => Some("no known leader".to_owned()),
        // Under load the committed index runs a few entries ahead of apply at any moment:
        // that is working, not lagging. A node further behind (catching up) is not ready.
        Some(_) if committed.saturating_sub(applied) > READY_LAG_ENTRIES_MAX => {
            Some(format!("applied {applied} of {committed} committed"))
        }
        Some(_) => None,
    };
    let body = json!({
        "status": if problem.is_none() { "ready" } else { "not ready" },
        "reason": problem,
        "leaderId": leader,
        "appliedIndex": applied,
        "committedIndex": committed,
    });
    let status = if problem.is_none() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("ROUTE_NOT_FOUND", "no such route")
}
