//! Clients and workloads. Each client is one Jepsen process: it invokes one operation at a
//! time and records how it ended.
//!
//! - bank: transfers between random accounts of a fixed set, and reads of every account at
//!   once through the consistent multi-account read;
//! - history: one account's transaction list (for the per-account, Elle-style check);
//! - idempotency: resends of an earlier transactionId, with the same or an altered body.
//!
//! Outcome rules: `fail` only where the server guarantees nothing was applied (400, 409 for a
//! fresh id, 503 `NO_LEADER`/`OVERLOADED`, connection refused); everything uncertain,
//! timeouts first, is `info`.
//!
//! Routing, as a client behind a load balancer (a Kubernetes Service) sees it: each client
//! has a current node and sends every operation there, until the node gives trouble (a
//! timeout, a refused or reset connection, any 5xx, 503 `NO_LEADER`/`OVERLOADED`/
//! `OUTCOME_UNKNOWN` included). Then its next operation goes to another node, chosen at
//! random among the others. Nothing is resent: the next operation is a new one, with a new
//! transaction id, in the history like any other. After trouble a client waits a backoff
//! with full jitter ([`BACKOFF_MS`] doubling up to [`BACKOFF_MS_MAX`]), so a leaderless
//! cluster is not hammered by tight retry loops; one answer ends the backoff.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::history::{Function, OpType, Recorder};

/// Longest a client waits for one answer (one request: one page of a history read) before
/// recording `info` (`fail` for reads, which change nothing) and moving to another node. It
/// bounds how long a client sits on a paused, cut-off or overloaded node. Calm answers take
/// a few ms; a 40 ms link delay adds at most four one-way trips (forward, replicate, ack,
/// answer: 160 ms) and TCP recovers a lost segment in about 200-400 ms.
pub const REQUEST_TIMEOUT_MS: u64 = 1_000;
/// Longest wait for a TCP connection (a refused one fails at once).
pub const CONNECT_TIMEOUT_MS: u64 = 300;
/// Share of transfers (percent) between history accounts rather than bank accounts.
pub const HISTORY_TRANSFER_PERCENT: u8 = 5;
/// Most pages one history read follows before giving up on reading the whole list.
pub const HISTORY_PAGES_MAX: usize = 10;
/// Backoff after an operation that did not succeed: a random pause of up to
/// `BACKOFF_MS * 2^(n-1)` after the n-th such operation in a row, at most `BACKOFF_MS_MAX`.
pub const BACKOFF_MS: u64 = 20;
pub const BACKOFF_MS_MAX: u64 = 160;

/// The harness's HTTP client: bounded connect and request timeouts, pooled connections.
pub fn http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
        .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS))
        .build()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Setup {
    /// Every account; the bank's total is over all of them.
    pub accounts: Vec<String>,
    /// The accounts whose transaction lists are read: a few, with few transfers each, so a
    /// read can return the whole list (what the list-append check needs).
    #[serde(default)]
    pub history_accounts: Vec<String>,
    pub initial_balance: Decimal,
}

impl Setup {
    pub fn total(&self) -> Decimal {
        self.initial_balance * Decimal::from(self.accounts.len())
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Workloads {
    pub bank: bool,
    pub history: bool,
    pub idempotency: bool,
}

pub struct ClientContext {
    pub http: reqwest::Client,
    pub urls: Vec<String>,
    pub recorder: Recorder,
    pub setup: Arc<Setup>,
    pub workloads: Workloads,
    pub deadline: Instant,
    pub ops_max: usize,
    pub stop: tokio::sync::watch::Receiver<bool>,
}

pub enum Answer {
    Ok(u16, Value),
    /// Nothing was applied. `unavailable`: the node could not serve it (refused
    /// connection, 503): the client moves to another node.
    Fail {
        error: String,
        unavailable: bool,
    },
    /// The outcome is unknown (timeout, reset, 5xx, 503 `OUTCOME_UNKNOWN`): the client
    /// moves to another node.
    Info(String),
}

impl Answer {
    /// Whether the node gave trouble, so that the next operation goes elsewhere.
    pub fn node_trouble(&self) -> bool {
        match self {
            Answer::Ok(..) => false,
            Answer::Fail { unavailable, .. } => *unavailable,
            Answer::Info(_) => true,
        }
    }
}

fn error_code(body: &Value) -> String {
    body["code"].as_str().unwrap_or("UNKNOWN").to_owned()
}

/// A transport error in a few words: what the analysis groups by.
fn transport_error(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else if error.is_request() {
        "request"
    } else if error.is_body() || error.is_decode() {
        "body"
    } else {
        "transport"
    };
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    let mut root = error.to_string();
    while let Some(inner) = source {
        root = inner.to_string();
        source = inner.source();
    }
    format!("{kind}: {root}")
}

/// Sends one request and classifies the answer by the rules above.
pub async fn send(request: reqwest::RequestBuilder, ok_statuses: &[u16]) -> Answer {
    let response = match request
        .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS))
        .send()
        .await
    {
        Ok(response) => response,
        // A connect timeout may have reached a node that accepted and then stalled, but no
        // request was written on a connection that was never established.
        Err(error) if error.is_connect() => {
            return Answer::Fail {
                error: transport_error(&error),
                unavailable: true,
            }
        }
        Err(error) => return Answer::Info(transport_error(&error)),
    };
    let status = response.status().as_u16();
    let body: Value = match response.json().await {
        Ok(body) => body,
        Err(error) => {
            return Answer::Info(format!(
                "{status}: unreadable body: {}",
                transport_error(&error)
            ))
        }
    };
    if ok_statuses.contains(&status) {
        return Answer::Ok(status, body);
    }
    match (status, error_code(&body).as_str()) {
        (400 | 404 | 409, code) => Answer::Fail {
            error: format!("{status} {code}"),
            unavailable: false,
        },
        (503, code @ ("NO_LEADER" | "OVERLOADED")) => Answer::Fail {
            error: format!("503 {code}"),
            unavailable: true,
        },
        (_, code) => Answer::Info(format!("{status} {code}")),
    }
}

struct Client {
    process: String,
    context: Arc<ClientContext>,
    /// This client's acknowledged transfers: (request body, acknowledged status).
    acknowledged: Vec<(Value, String)>,
    next_id: usize,
    last_ok: bool,
    /// The node this client sends to, as if its connection went through a Service.
    current: usize,
    /// The last operation's node gave trouble: the next one goes elsewhere.
    trouble: bool,
    /// Operations in a row that did not succeed (the backoff grows with it).
    unsuccessful: u32,
}

impl Client {
    fn record(
        &mut self,
        kind: OpType,
        f: Function,
        value: Value,
        node: usize,
        error: Option<String>,
    ) {
        if kind != OpType::Invoke {
            self.last_ok = kind == OpType::Ok;
        }
        self.context
            .recorder
            .record(&self.process, kind, f, value, Some(node), error);
    }

    fn node(&self) -> (usize, String) {
        (self.current, self.context.urls[self.current].clone())
    }

    /// Notes whether the node gave trouble with this answer.
    fn note(&mut self, answer: &Answer) {
        self.trouble = answer.node_trouble();
    }

    /// After trouble: a random node other than the current one.
    fn move_on(&mut self) {
        let nodes = self.context.urls.len();
        if nodes > 1 {
            self.current = (self.current + 1 + fastrand::usize(..nodes - 1)) % nodes;
        }
    }

    /// Full-jitter exponential backoff after an unsuccessful operation.
    fn backoff(&self) -> Duration {
        let shift = self.unsuccessful.saturating_sub(1).min(16);
        let ceiling = (BACKOFF_MS << shift).min(BACKOFF_MS_MAX);
        Duration::from_millis(fastrand::u64(1..=ceiling))
    }

    async fn transfer(&mut self) {
        let setup = &self.context.setup;
        let accounts: Vec<String> = if !setup.history_accounts.is_empty()
            && fastrand::u8(..100) < HISTORY_TRANSFER_PERCENT
        {
            setup.history_accounts.clone()
        } else {
            setup
                .accounts
                .iter()
                .filter(|a| !setup.history_accounts.contains(a))
                .cloned()
                .collect()
        };
        let from = fastrand::usize(..accounts.len());
        let to = (from + 1 + fastrand::usize(..accounts.len() - 1)) % accounts.len();
        let amount = Decimal::new(fastrand::i64(1..=5_000), 2);
        let id = format!("t{}-{}", self.process, self.next_id);
        self.next_id += 1;
        let body = json!({"transactionId": id, "sourceAccountId": accounts[from],
                          "destinationAccountId": accounts[to], "amount": amount.to_string()});
        let (node, url) = self.node();
        self.record(OpType::Invoke, Function::Transfer, body.clone(), node, None);
        let request = self
            .context
            .http
            .post(format!("{url}/api/v1/transactions/process"))
            .json(&body);
        let answer = send(request, &[200, 422]).await;
        self.note(&answer);
        match answer {
            Answer::Ok(_, answer) => {
                let status = answer["status"].as_str().unwrap_or("?").to_owned();
                let mut value = body.clone();
                value["status"] = json!(status);
                value["logIndex"] = answer["logIndex"].clone();
                self.record(OpType::Ok, Function::Transfer, value, node, None);
                if self.context.workloads.idempotency {
                    self.acknowledged.push((body, status));
                }
            }
            Answer::Fail { error, .. } => {
                self.record(OpType::Fail, Function::Transfer, body, node, Some(error))
            }
            Answer::Info(error) => {
                self.record(OpType::Info, Function::Transfer, body, node, Some(error))
            }
        }
    }

    async fn read(&mut self) {
        let (node, url) = self.node();
        let ids = self.context.setup.accounts.clone();
        self.record(OpType::Invoke, Function::Read, Value::Null, node, None);
        let request = self
            .context
            .http
            .post(format!("{url}/api/v1/accounts/query"))
            .json(&json!({"accountIds": ids}));
        let answer = send(request, &[200]).await;
        self.note(&answer);
        match answer {
            Answer::Ok(_, answer) => {
                let balances: serde_json::Map<String, Value> = answer["accounts"]
                    .as_array()
                    .map(|accounts| {
                        accounts
                            .iter()
                            .map(|a| {
                                (
                                    a["accountId"].as_str().unwrap_or("?").to_owned(),
                                    json!(a["balance"].to_string()),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let value = json!({"appliedIndex": answer["appliedIndex"], "balances": balances, "missing": answer["missing"]});
                self.record(OpType::Ok, Function::Read, value, node, None);
            }
            Answer::Fail { error, .. } | Answer::Info(error) => {
                // A read changes nothing: whatever happened to it, it did not happen.
                self.record(OpType::Fail, Function::Read, Value::Null, node, Some(error));
            }
        }
    }

    async fn history(&mut self) {
        let accounts = self.context.setup.history_accounts.clone();
        let account = accounts[fastrand::usize(..accounts.len())].clone();
        let (node, url) = self.node();
        self.record(
            OpType::Invoke,
            Function::History,
            json!({"account": account}),
            node,
            None,
        );
        let list = self.read_whole_list(&url, &account).await;
        self.trouble = matches!(list, Err((_, true)));
        match list {
            Ok((applied_index, ids, complete)) => {
                let value = json!({"account": account, "appliedIndex": applied_index, "ids": ids, "complete": complete});
                self.record(OpType::Ok, Function::History, value, node, None);
            }
            Err((error, _)) => self.record(
                OpType::Fail,
                Function::History,
                json!({"account": account}),
                node,
                Some(error),
            ),
        }
    }

    /// The account's list, newest first: the first page fixes the applied index, older
    /// pages only add entries that can no longer change (lists are append-only), so the
    /// whole is the list at that index. An error says whether the node gave trouble.
    async fn read_whole_list(
        &self,
        url: &str,
        account: &str,
    ) -> Result<(Value, Vec<Value>, bool), (String, bool)> {
        let mut ids = Vec::new();
        let mut applied_index = Value::Null;
        let mut before: Option<u64> = None;
        for _ in 0..HISTORY_PAGES_MAX {
            let cursor = before.map(|b| format!("&before={b}")).unwrap_or_default();
            let request = self.context.http.get(format!(
                "{url}/api/v1/accounts/{account}/transactions?limit=1000{cursor}"
            ));
            let answer = send(request, &[200]).await;
            let trouble = answer.node_trouble();
            let page = match answer {
                Answer::Ok(_, page) => page,
                Answer::Fail { error, .. } | Answer::Info(error) => return Err((error, trouble)),
            };
            if applied_index.is_null() {
                applied_index = page["appliedIndex"].clone();
            }
            ids.extend(
                page["transactions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| t["transactionId"].clone()),
            );
            before = page["nextBefore"].as_u64();
            if before.is_none() {
                return Ok((applied_index, ids, true));
            }
        }
        Ok((applied_index, ids, false))
    }

    async fn resend(&mut self) {
        let (mut body, original) =
            self.acknowledged[fastrand::usize(..self.acknowledged.len())].clone();
        let altered = fastrand::u8(..10) < 3;
        if altered {
            let amount: Decimal = body["amount"].as_str().unwrap().parse().unwrap();
            body["amount"] = json!((amount + Decimal::ONE).to_string());
        }
        let (node, url) = self.node();
        let invoke = json!({"request": body, "altered": altered, "originalStatus": original});
        self.record(OpType::Invoke, Function::Resend, invoke.clone(), node, None);
        let request = self
            .context
            .http
            .post(format!("{url}/api/v1/transactions/process"))
            .json(&body);
        let answer = send(request, &[200, 409, 422]).await;
        self.note(&answer);
        let mut value = invoke;
        match answer {
            Answer::Ok(409, answer) => {
                value["conflict"] = json!(answer["code"] == "IDEMPOTENCY_CONFLICT");
                self.record(OpType::Ok, Function::Resend, value, node, None);
            }
            Answer::Ok(_, answer) => {
                value["conflict"] = json!(false);
                value["status"] = answer["status"].clone();
                self.record(OpType::Ok, Function::Resend, value, node, None);
            }
            Answer::Fail { error, .. } => {
                self.record(OpType::Fail, Function::Resend, value, node, Some(error))
            }
            Answer::Info(error) => {
                self.record(OpType::Info, Function::Resend, value, node, Some(error))
            }
        }
    }

    async fn step(&mut self) -> bool {
        let workloads = self.context.workloads;
        let roll = fastrand::u8(..100);
        if workloads.idempotency && roll < 15 && !self.acknowledged.is_empty() {
            self.resend().await
        } else if workloads.history && roll < 25 && !self.context.setup.history_accounts.is_empty()
        {
            self.history().await
        } else if workloads.bank && roll < 50 {
            self.read().await
        } else {
            self.transfer().await
        }
        self.last_ok
    }
}

/// Runs one client until the deadline, its operation budget, or a stop request.
pub async fn run(process: usize, context: Arc<ClientContext>) {
    let mut client = Client {
        process: process.to_string(),
        context: context.clone(),
        acknowledged: Vec::new(),
        next_id: 0,
        last_ok: false,
        // Spread evenly at first, as a Service spreads new connections.
        current: process % context.urls.len(),
        trouble: false,
        unsuccessful: 0,
    };
    for _ in 0..context.ops_max {
        if Instant::now() >= context.deadline || *context.stop.borrow() {
            break;
        }
        let ok = client.step().await;
        if client.trouble {
            client.move_on();
        }
        if ok {
            client.unsuccessful = 0;
        } else {
            client.unsuccessful += 1;
            let pause = client
                .backoff()
                .min(context.deadline.saturating_duration_since(Instant::now()));
            tokio::time::sleep(pause).await;
        }
    }
}
