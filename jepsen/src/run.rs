//! One test run: set up the cluster and the accounts, run clients and the nemesis together,
//! heal everything, read the final state quietly from every node, check, and write the
//! run directory. Faults, processes and iptables rules are cleaned up on every exit path,
//! Ctrl-C included.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio::sync::{watch, Mutex};

use crate::availability::{self, Availability};
use crate::checker::{self, CheckResult, Committed, FinalState};
use crate::client::{self, ClientContext, Setup, Workloads};
use crate::db::{Db, NODES};
use crate::history::{self, Recorder};
use crate::monitor::{self, Monitor};
use crate::nemesis::{self, Fault, Schedule};
use crate::net::Net;
use crate::report;
use crate::topology::{self, Topology};

/// Longest wait for the cluster to become ready or quiescent.
const SETTLE_MS_MAX: u64 = 60_000;
const POLL_MS: u64 = 100;
const INITIAL_BALANCE: i64 = 1_000;
/// Accounts whose lists the history workload reads.
const HISTORY_ACCOUNTS: usize = 4;

pub struct RunOptions {
    pub duration_secs: u64,
    pub clients: usize,
    pub nemeses: Vec<Fault>,
    pub fault_secs: u64,
    pub calm_secs: u64,
    pub accounts: usize,
    pub out: PathBuf,
    pub ledger_bin: PathBuf,
    pub ops_per_client: usize,
    /// `auto` (namespaces when possible), `namespaces` or `loopback`.
    pub network: String,
    /// When set, the `availability` check: every window of a guarded fault keeps at least
    /// this share of the calm throughput (see `availability`). Off by default.
    pub availability_min: Option<f64>,
}

pub fn parse_nemeses(text: &str) -> anyhow::Result<Vec<Fault>> {
    match text {
        "all" => Ok(nemesis::ALL.to_vec()),
        "none" => Ok(Vec::new()),
        list => list
            .split(',')
            .map(|name| name.trim().parse().map_err(anyhow::Error::msg))
            .collect(),
    }
}

pub fn default_out_dir() -> PathBuf {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    PathBuf::from("jepsen-runs").join(now.as_secs().to_string())
}

pub fn default_ledger_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("ledger")))
        .unwrap_or_else(|| "ledger".into())
}

async fn deadline_poll<F, Fut, T>(what: &str, mut attempt: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_millis(SETTLE_MS_MAX);
    loop {
        if let Some(value) = attempt().await {
            return Ok(value);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
    }
}

pub(crate) async fn get_json(http: &reqwest::Client, url: String) -> Option<Value> {
    let response = http
        .get(url)
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

pub(crate) async fn post_json(
    http: &reqwest::Client,
    url: String,
    body: &Value,
) -> Option<(u16, Value)> {
    let response = http
        .post(url)
        .json(body)
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.ok()?))
}

pub(crate) async fn wait_all_ready(http: &reqwest::Client, urls: &[String]) -> anyhow::Result<()> {
    for url in urls {
        deadline_poll(&format!("{url} ready"), || async {
            get_json(http, format!("{url}/health/ready")).await
        })
        .await?;
    }
    Ok(())
}

pub(crate) async fn create_accounts(
    http: &reqwest::Client,
    urls: &[String],
    setup: &Setup,
) -> anyhow::Result<()> {
    for account in &setup.accounts {
        let body = json!({"accountId": account, "balance": setup.initial_balance.to_string()});
        deadline_poll(&format!("account {account}"), || async {
            let (status, _) =
                post_json(http, format!("{}/api/v1/accounts", urls[0]), &body).await?;
            // 409: an earlier attempt whose answer was lost already created it.
            matches!(status, 201 | 409).then_some(())
        })
        .await?;
    }
    Ok(())
}

/// Three nodes, their network and the proxies: what `run` and `failover` share. The
/// temporary directory holds the nodes' data and logs until `shut_down`.
pub(crate) struct Cluster {
    // Dropped in this order on an early exit: the nodes, the rules, the namespaces, the data.
    pub db: Arc<Mutex<Db>>,
    pub net: Arc<Net>,
    pub topology: Arc<Topology>,
    pub data: tempfile::TempDir,
    pub urls: Vec<String>,
}

impl Cluster {
    pub async fn start(ledger_bin: &Path, network: &str) -> anyhow::Result<Cluster> {
        anyhow::ensure!(
            ledger_bin.exists(),
            "ledger binary {} not found (build it first)",
            ledger_bin.display()
        );
        let data = tempfile::Builder::new()
            .prefix("ledger-jepsen-")
            .tempdir()?;
        let topology = Arc::new(match network {
            "namespaces" => Topology::namespaces()?,
            "loopback" => Topology::loopback(),
            "auto" if topology::namespaces_available() => {
                Topology::namespaces().unwrap_or_else(|error| {
                    eprintln!("network namespaces unavailable ({error:#}); using loopback");
                    Topology::loopback()
                })
            }
            "auto" => Topology::loopback(),
            other => bail!("--network {other}: expected auto, namespaces or loopback"),
        });
        println!("network: {:?}", topology.mode);
        let mut db = Db::new(ledger_bin, data.path(), topology.clone())?;
        for node in 0..NODES {
            db.start(node)?;
        }
        let urls: Vec<String> = (0..NODES).map(|n| db.api_url(n)).collect();
        let db = Arc::new(Mutex::new(db));
        let net = Arc::new(Net::start(&*db.lock().await).await?);
        Ok(Cluster {
            data,
            topology,
            db,
            net,
            urls,
        })
    }

    /// Every exit path: heal, stop the nodes, remove our iptables chain and namespaces,
    /// keep the logs in `out`.
    pub async fn shut_down(self, out: &Path) {
        let _ = nemesis::heal_all(&self.db, &self.net).await;
        self.db.lock().await.stop_all();
        self.net.teardown();
        // The namespaces go last, once no process of ours runs in them.
        self.topology.teardown();
        copy_logs(self.data.path(), out);
    }
}

/// A channel that turns true on Ctrl-C or SIGTERM.
pub(crate) fn stop_on_signal() -> watch::Receiver<bool> {
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        crate::run::interrupted().await;
        let _ = stop_tx.send(true);
    });
    stop
}

pub async fn run(options: RunOptions) -> anyhow::Result<bool> {
    anyhow::ensure!(
        options.accounts >= 2 && options.clients >= 1,
        "need at least 2 accounts and 1 client"
    );
    std::fs::create_dir_all(&options.out)?;
    let cluster = Cluster::start(&options.ledger_bin, &options.network).await?;
    let stop = stop_on_signal();
    let outcome = test(
        &options,
        &cluster.urls,
        cluster.db.clone(),
        cluster.net.clone(),
        stop,
    )
    .await;
    cluster.shut_down(&options.out).await;
    outcome
}

pub(crate) async fn interrupted() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

pub(crate) fn copy_logs(data: &Path, out: &Path) {
    for node in 0..NODES {
        let log = data.join(format!("node-{node}.log"));
        let _ = std::fs::copy(&log, out.join(format!("node-{node}.log")));
    }
}

async fn test(
    options: &RunOptions,
    urls: &[String],
    db: Arc<Mutex<Db>>,
    net: Arc<Net>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<bool> {
    let http = client::http_client()?;
    wait_all_ready(&http, urls)
        .await
        .context("cluster never became ready")?;
    let setup = Arc::new(Setup {
        accounts: (0..options.accounts)
            .map(|n| format!("acct-{n}"))
            .chain((0..HISTORY_ACCOUNTS).map(|n| format!("hist-{n}")))
            .collect(),
        history_accounts: (0..HISTORY_ACCOUNTS).map(|n| format!("hist-{n}")).collect(),
        initial_balance: Decimal::from(INITIAL_BALANCE),
    });
    create_accounts(&http, urls, &setup).await?;

    let recorder = Recorder::new();
    let started = Instant::now();
    let started_unix_ms = unix_ms();
    let (monitor_stop, monitor_stopped) = watch::channel(false);
    let monitor = Monitor::start(
        http.clone(),
        urls.to_vec(),
        recorder.clone(),
        monitor_stopped,
    );
    let deadline = started + Duration::from_secs(options.duration_secs);
    let context = Arc::new(ClientContext {
        http: http.clone(),
        urls: urls.to_vec(),
        recorder: recorder.clone(),
        setup: setup.clone(),
        workloads: Workloads {
            bank: true,
            history: true,
            idempotency: true,
        },
        deadline,
        ops_max: options.ops_per_client,
        stop: stop.clone(),
    });
    let clients: Vec<_> = (0..options.clients)
        .map(|p| tokio::spawn(client::run(p, context.clone())))
        .collect();
    let schedule = Schedule {
        faults: options.nemeses.clone(),
        quiet: Duration::from_secs(options.calm_secs),
        hold: Duration::from_secs(options.fault_secs),
        deadline,
        accounts: setup.accounts.clone(),
    };
    let executed = if schedule.faults.is_empty() {
        Vec::new()
    } else {
        nemesis::run(
            schedule,
            http.clone(),
            db.clone(),
            net.clone(),
            recorder.clone(),
            stop.clone(),
        )
        .await?
    };
    for client in clients {
        client.await?;
    }
    let _ = monitor_stop.send(true);
    if *stop.borrow() {
        bail!("interrupted: faults healed, nodes stopped, nothing checked");
    }
    nemesis::heal_all(&db, &net).await?;
    wait_all_ready(&http, urls)
        .await
        .context("cluster did not recover after healing")?;
    let last = final_state(&http, urls, &db, &setup).await?;
    let history = recorder.ops();
    let samples = monitor.samples();
    let mut results = checker::check_all(&history, &setup, &last);
    let availability = availability::analyse(&history, &samples, NODES);
    if let Some(minimum) = options.availability_min {
        results.push(availability::check(&availability, minimum));
    }
    std::fs::write(
        options.out.join("cluster.jsonl"),
        monitor::to_jsonl(&samples),
    )?;
    write_outputs(
        &options.out,
        &history,
        &setup,
        &last,
        &results,
        &executed,
        &availability,
        (started.elapsed().as_secs_f64(), started_unix_ms),
    )
}

pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

fn write_outputs(
    out: &Path,
    history: &[history::Op],
    setup: &Setup,
    last: &FinalState,
    results: &[CheckResult],
    executed: &[&str],
    availability: &Availability,
    (duration_s, started_unix_ms): (f64, u64),
) -> anyhow::Result<bool> {
    let valid = results.iter().all(|r| r.valid);
    std::fs::write(out.join("history.jsonl"), history::to_jsonl(history))?;
    std::fs::write(out.join("history.edn"), history::to_edn(history))?;
    let (list_append, _) = checker::list_append_history(history);
    std::fs::write(
        out.join("history.list-append.edn"),
        history::to_elle_edn(&list_append),
    )?;
    std::fs::write(out.join("setup.json"), serde_json::to_string_pretty(setup)?)?;
    std::fs::write(out.join("final.json"), serde_json::to_string_pretty(last)?)?;
    // startedAtUnixMs: the history's time 0 on the wall clock, to line it up with node logs.
    let verdict = json!({"valid": valid, "checks": results, "nemeses": executed, "durationSeconds": duration_s,
                         "startedAtUnixMs": started_unix_ms, "availability": availability});
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&verdict)?,
    )?;
    let summary = report::summary(history, results, executed, duration_s, Some(availability));
    std::fs::write(out.join("summary.txt"), &summary)?;
    std::fs::write(out.join("timeline.svg"), report::timeline_svg(history))?;
    println!("run directory: {}", out.display());
    print!("{summary}");
    Ok(valid)
}

/// Re-checks a run directory.
pub fn recheck(dir: &Path) -> anyhow::Result<bool> {
    let history = history::from_jsonl(&std::fs::read_to_string(dir.join("history.jsonl"))?)?;
    let setup: Setup = serde_json::from_str(&std::fs::read_to_string(dir.join("setup.json"))?)?;
    let last: FinalState = serde_json::from_str(&std::fs::read_to_string(dir.join("final.json"))?)?;
    let results = checker::check_all(&history, &setup, &last);
    let samples = std::fs::read_to_string(dir.join("cluster.jsonl"))
        .ok()
        .map(|text| monitor::from_jsonl(&text))
        .transpose()?
        .unwrap_or_default();
    let availability = availability::analyse(&history, &samples, NODES);
    print!(
        "{}",
        report::summary(&history, &results, &[], 0.0, Some(&availability))
    );
    Ok(results.iter().all(|r| r.valid))
}

fn balances_of(answer: &Value) -> BTreeMap<String, Decimal> {
    answer["accounts"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|a| {
                    Some((
                        a["accountId"].as_str()?.to_owned(),
                        a["balance"].to_string().parse().ok()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) async fn final_state(
    http: &reqwest::Client,
    urls: &[String],
    db: &Mutex<Db>,
    setup: &Setup,
) -> anyhow::Result<FinalState> {
    let leader = deadline_poll("a leader", || async {
        nemesis::find_leader(http, &*db.lock().await).await
    })
    .await?;
    let leader_url = &urls[leader];
    let query = json!({"accountIds": setup.accounts});
    let balances = deadline_poll("final balances", || async {
        let (status, answer) =
            post_json(http, format!("{leader_url}/api/v1/accounts/query"), &query).await?;
        (status == 200).then(|| balances_of(&answer))
    })
    .await?;
    let mut committed = BTreeMap::new();
    let mut duplicate_history_entries = Vec::new();
    for account in &setup.accounts {
        let mut seen = HashSet::new();
        let mut before: Option<u64> = None;
        loop {
            let cursor = before.map(|b| format!("&before={b}")).unwrap_or_default();
            let url =
                format!("{leader_url}/api/v1/accounts/{account}/transactions?limit=1000{cursor}");
            let page = deadline_poll("history page", || get_json(http, url.clone())).await?;
            for transfer in page["transactions"].as_array().into_iter().flatten() {
                let id = transfer["transactionId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if !seen.insert(id.clone()) {
                    duplicate_history_entries.push((account.clone(), id.clone()));
                }
                committed.insert(id, committed_of(transfer)?);
            }
            before = page["nextBefore"].as_u64();
            if before.is_none() {
                break;
            }
        }
    }
    let audits = deadline_poll("replicas at one applied index", || async {
        let mut audits = Vec::new();
        for url in urls {
            audits.push(get_json(http, format!("{url}/api/v1/admin/audit")).await?);
        }
        audits
            .windows(2)
            .all(|w| w[0]["appliedIndex"] == w[1]["appliedIndex"])
            .then_some(audits)
    })
    .await?;
    let mut balances_by_node = Vec::new();
    for url in urls {
        let (_, answer) = post_json(
            http,
            format!("{url}/api/v1/accounts/query?consistency=local"),
            &query,
        )
        .await
        .context("final local read")?;
        balances_by_node.push(balances_of(&answer));
    }
    Ok(FinalState {
        balances,
        balances_by_node,
        committed,
        duplicate_history_entries,
        audits,
    })
}

fn committed_of(transfer: &Value) -> anyhow::Result<Committed> {
    let text = |field: &str| {
        transfer[field]
            .as_str()
            .map(str::to_owned)
            .context("history entry field")
    };
    Ok(Committed {
        from: text("sourceAccountId")?,
        to: text("destinationAccountId")?,
        amount: transfer["amount"].to_string().parse()?,
        status: text("status")?,
        log_index: transfer["logIndex"].as_u64().context("logIndex")?,
        sequence: transfer["sequence"].as_u64().context("sequence")?,
    })
}
