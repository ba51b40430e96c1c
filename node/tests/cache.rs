//! The Redis account-read cache against a real `redis-server` and three real `ledger node`s:
//! cached values never go backwards (concurrent transfers, a leader kill), Redis killed or
//! paused costs no failed read and stays within the fallback bound, Redis restarted empty
//! refills, and a deleted account leaves no entry behind.
//!
//! Each test starts its own redis-server on a free port with a private directory and no
//! persistence, and kills it by PID on drop. One runs it with TLS and a password (certificates
//! made with openssl, trusted through `SSL_CERT_FILE`), as ElastiCache is run. The tests run one at a time (each is a whole
//! cluster on a 2-core machine, and one asserts per-request latency bounds).

mod common;

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{decimal, Cluster, WAIT_MS_MAX};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tempfile::TempDir;

/// The cache's Redis call timeout in these tests (the default).
const TIMEOUT_MS: u64 = 50;
const TOMBSTONE_TTL_MS: u64 = 2_000;
const BREAKER_COOLDOWN_MS: u64 = 500;
/// A read with Redis failing may take its normal time plus the timeout; this is the
/// correctness bound on the fallback, not a performance target.
const FALLBACK_READ_MS_MAX: u64 = TIMEOUT_MS + 1_000;
const POLL_MS: u64 = 50;

static SERIAL: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private redis-server: its own port and directory, no persistence.
struct Redis {
    port: u16,
    dir: TempDir,
    process: Option<Child>,
    /// TLS on `port` (no plain port) with this password: `rediss://` and AUTH.
    tls_password: Option<String>,
}

impl Redis {
    async fn start() -> Redis {
        Redis::start_with(None).await
    }

    async fn start_with(tls_password: Option<&str>) -> Redis {
        let mut redis = Redis {
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            process: None,
            tls_password: tls_password.map(str::to_owned),
        };
        if redis.tls_password.is_some() {
            make_certificates(redis.dir.path());
        }
        redis.spawn().await;
        redis
    }

    fn args(&self) -> Vec<String> {
        let port = self.port.to_string();
        let Some(password) = &self.tls_password else {
            return vec!["--port".into(), port];
        };
        let file = |name: &str| self.dir.path().join(name).display().to_string();
        vec![
            "--port".into(),
            "0".into(),
            "--tls-port".into(),
            port,
            "--tls-cert-file".into(),
            file("server.pem"),
            "--tls-key-file".into(),
            file("server.key"),
            "--tls-ca-cert-file".into(),
            file("ca.pem"),
            "--tls-auth-clients".into(),
            "no".into(),
            "--requirepass".into(),
            password.clone(),
        ]
    }

    /// Starts (again) on the same port, empty.
    async fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("redis.log")).unwrap();
        let child = Command::new("redis-server")
            .args(self.args())
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("redis-server is installed (scripts/setup.sh installs it)");
        self.process = Some(child);
        let deadline = Instant::now() + Duration::from_millis(WAIT_MS_MAX);
        while self.ping().await.is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
        }
    }

    fn url(&self) -> String {
        match &self.tls_password {
            None => format!("redis://127.0.0.1:{}", self.port),
            Some(password) => format!("rediss://:{password}@127.0.0.1:{}", self.port),
        }
    }

    fn ca_file(&self) -> String {
        self.dir.path().join("ca.pem").display().to_string()
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.process.as_ref().expect("running").id() as i32)
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGCONT);
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn pause(&self) {
        kill(self.pid(), Signal::SIGSTOP).unwrap();
    }

    fn resume(&self) {
        kill(self.pid(), Signal::SIGCONT).unwrap();
    }

    async fn connection(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(self.url())?;
        client.get_multiplexed_async_connection().await
    }

    async fn ping(&self) -> redis::RedisResult<String> {
        if self.tls_password.is_some() {
            return self.ping_tls();
        }
        let mut connection = self.connection().await?;
        redis::cmd("PING").query_async(&mut connection).await
    }

    /// Through redis-cli, which checks the certificate against the test CA itself.
    fn ping_tls(&self) -> redis::RedisResult<String> {
        let output = Command::new("redis-cli")
            .args(["--tls", "--cacert", &self.ca_file(), "--no-auth-warning"])
            .args(["-a", self.tls_password.as_deref().unwrap()])
            .args(["-p", &self.port.to_string(), "ping"])
            .output()?;
        let answer = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        match answer.as_str() {
            "PONG" => Ok(answer),
            _ => Err(std::io::Error::other(answer).into()),
        }
    }

    /// The raw value under `key`.
    async fn value(&self, key: &str) -> Option<String> {
        let mut connection = self.connection().await.unwrap();
        redis::cmd("GET")
            .arg(key)
            .query_async(&mut connection)
            .await
            .unwrap()
    }
}

/// A CA and a server certificate for 127.0.0.1 under `dir`, made with openssl.
fn make_certificates(dir: &std::path::Path) {
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl is installed");
        assert!(status.success(), "openssl {args:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=ledger-test-ca",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn cache_env(redis: &Redis) -> Vec<(String, String)> {
    vec![
        ("LEDGER_REDIS_URL".into(), redis.url()),
        ("LEDGER_CACHE__TIMEOUT_MS".into(), TIMEOUT_MS.to_string()),
        (
            "LEDGER_CACHE__TOMBSTONE_TTL_MS".into(),
            TOMBSTONE_TTL_MS.to_string(),
        ),
        (
            "LEDGER_CACHE__BREAKER_COOLDOWN_MS".into(),
            BREAKER_COOLDOWN_MS.to_string(),
        ),
    ]
}

async fn cluster_with(redis: &Redis) -> Cluster {
    let env = cache_env(redis);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Cluster::start(&env).await
}

/// One account read and what its headers said.
#[derive(Debug, Clone)]
struct Read {
    status: u16,
    served_from: String,
    cache: String,
    applied_index: u64,
    version: u64,
    balance: Option<Decimal>,
    elapsed: Duration,
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// GET an account through `base` with `query`; `None` when the node is unreachable.
async fn get_account(http: &reqwest::Client, base: &str, id: &str, query: &str) -> Option<Read> {
    let started = Instant::now();
    let response = http
        .get(format!("{base}/api/v1/accounts/{id}?{query}"))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    let served_from = header(&response, "x-served-from");
    let cache = header(&response, "x-cache");
    let applied_index = header(&response, "x-applied-index").parse().unwrap_or(0);
    let body: Value = response.json().await.unwrap_or(Value::Null);
    Some(Read {
        status,
        served_from,
        cache,
        applied_index,
        version: body["version"].as_u64().unwrap_or(0),
        balance: body.get("balance").map(decimal),
        elapsed: started.elapsed(),
    })
}

fn bases(cluster: &Cluster) -> Vec<String> {
    (0..cluster.nodes.len())
        .map(|i| cluster.url(i, ""))
        .collect()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

async fn create_accounts(cluster: &Cluster, ids: &[String], balance: &str) {
    let leader = cluster.leader().await;
    for id in ids {
        cluster.create_account(leader, id, balance).await;
    }
}

/// Transfers between random accounts through random nodes until `stop`; returns how many
/// were answered 200.
async fn transfer_until(
    bases: Vec<String>,
    ids: Vec<String>,
    worker: usize,
    stop: Arc<AtomicBool>,
) -> usize {
    let http = client();
    let mut done = 0;
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let from = fastrand_index(worker * 7919 + n, ids.len());
        let to = (from + 1 + fastrand_index(n, ids.len() - 1)) % ids.len();
        let body = json!({
            "transactionId": format!("t-{worker}-{n}"),
            "sourceAccountId": ids[from],
            "destinationAccountId": ids[to],
            "amount": format!("{}.25", 1 + n % 5),
        });
        let base = &bases[(worker + n) % bases.len()];
        let answer = http
            .post(format!("{base}/api/v1/transactions/process"))
            .json(&body)
            .send()
            .await;
        if matches!(answer, Ok(ref r) if r.status().as_u16() == 200) {
            done += 1;
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    done
}

/// A cheap deterministic spread (no rand dependency in node's tests).
fn fastrand_index(seed: usize, len: usize) -> usize {
    let mut x = seed as u64 ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x % len as u64) as usize
}

/// What one poller saw of one account last.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    /// The cache version (`x-applied-index` of a read served from the cache).
    cache_version: u64,
    /// The account's own change counter, whatever served it.
    version: u64,
}

/// Every other read bounds staleness to 1 ms: it falls back to local state (or the leader)
/// and populates the cache, racing the leader's publisher on the same keys.
fn poll_query(n: usize) -> &'static str {
    match n % 2 {
        0 => "consistency=cached",
        _ => "consistency=cached&maxStalenessMs=1",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_values_never_go_backwards_through_transfers_and_a_leader_kill() {
    let _serial = one_at_a_time();
    let redis = Redis::start().await;
    let mut cluster = cluster_with(&redis).await;
    let ids: Vec<String> = (0..4).map(|n| format!("mono-{n}")).collect();
    create_accounts(&cluster, &ids, "100000").await;
    let stop = Arc::new(AtomicBool::new(false));
    let bases = bases(&cluster);
    let transfers: Vec<_> = (0..3)
        .map(|w| tokio::spawn(transfer_until(bases.clone(), ids.clone(), w, stop.clone())))
        .collect();
    // Every balance ever seen at each account version, across all pollers and nodes.
    let balances: Arc<Mutex<HashMap<(String, u64), Decimal>>> = Arc::default();
    let from_cache = Arc::new(AtomicUsize::new(0));
    let pollers: Vec<_> = (0..3)
        .map(|p| {
            let (bases, ids, stop) = (bases.clone(), ids.clone(), stop.clone());
            let (balances, from_cache) = (balances.clone(), from_cache.clone());
            tokio::spawn(async move {
                let http = client();
                let mut seen: HashMap<String, Seen> = HashMap::new();
                let mut n = p;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let id = &ids[n % ids.len()];
                    let base = &bases[n % bases.len()];
                    let query = poll_query(n / ids.len());
                    let Some(read) = get_account(&http, base, id, query).await else {
                        continue; // that node is down
                    };
                    if read.status == 503 && query.contains("maxStalenessMs") {
                        continue; // a bounded read needed the leader during the election
                    }
                    assert_eq!(read.status, 200, "{read:?}");
                    let last = seen.entry(id.clone()).or_default();
                    assert!(
                        read.version >= last.version,
                        "{id} went back from {last:?} to {read:?} (via {base}, {query})"
                    );
                    last.version = read.version;
                    if read.served_from == "cache" {
                        from_cache.fetch_add(1, Ordering::Relaxed);
                        assert!(
                            read.applied_index >= last.cache_version,
                            "{id}'s cache version went back from {last:?} to {read:?} (via {base})"
                        );
                        last.cache_version = read.applied_index;
                    }
                    let balance = read.balance.unwrap();
                    let mut known = balances.lock().unwrap();
                    let at = known.entry((id.clone(), read.version)).or_insert(balance);
                    assert_eq!(
                        *at, balance,
                        "{id} version {} has two balances",
                        read.version
                    );
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let leader = cluster.leader().await;
    cluster.kill(leader);
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.spawn(leader);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for poller in pollers {
        poller.await.expect("a poller saw a value go backwards");
    }
    let mut transferred = 0;
    for transfer in transfers {
        transferred += transfer.await.unwrap();
    }
    assert!(
        transferred > 20,
        "only {transferred} transfers went through"
    );
    let cached = from_cache.load(Ordering::Relaxed);
    let versions = balances.lock().unwrap().len();
    println!(
        "{transferred} transfers, {cached} reads from the cache, {versions} account versions seen"
    );
    assert!(
        cached > 50,
        "only {cached} reads were served from the cache"
    );
    cluster.wait_all_ready().await;
    assert_cache_converges(&cluster, &ids).await;
}

/// Every node's cached read of every account ends up served from the cache at the
/// linearizable version: the new leader publishes.
async fn assert_cache_converges(cluster: &Cluster, ids: &[String]) {
    let http = client();
    let deadline = Instant::now() + Duration::from_millis(WAIT_MS_MAX);
    for id in ids {
        let truth = get_account(&http, &cluster.url(0, ""), id, "")
            .await
            .unwrap();
        assert_eq!(truth.served_from, "leader");
        for base in bases(cluster) {
            loop {
                let read = get_account(&http, &base, id, "consistency=cached")
                    .await
                    .unwrap();
                if read.served_from == "cache" && read.version == truth.version {
                    assert_eq!(read.balance, truth.balance);
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{id} never converged: {read:?} vs {truth:?}"
                );
                tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
            }
        }
    }
}

/// Polls a cached read of `id` through `base` until it is served from the cache.
async fn wait_served_from_cache(http: &reqwest::Client, base: &str, id: &str) -> Read {
    let deadline = Instant::now() + Duration::from_millis(WAIT_MS_MAX);
    loop {
        let read = get_account(http, base, id, "consistency=cached")
            .await
            .unwrap();
        assert_eq!(read.status, 200, "{read:?}");
        if read.served_from == "cache" {
            return read;
        }
        assert!(
            Instant::now() < deadline,
            "never served from the cache: {read:?}"
        );
        tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
    }
}

/// Cached reads by `workers` tasks until `stop`: (answered, failed, slowest).
async fn read_until(
    bases: Vec<String>,
    ids: Vec<String>,
    workers: usize,
    stop: Arc<AtomicBool>,
) -> (usize, Vec<String>, Duration) {
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let (bases, ids, stop) = (bases.clone(), ids.clone(), stop.clone());
            tokio::spawn(async move {
                let http = client();
                let (mut answered, mut failed, mut slowest) = (0, Vec::new(), Duration::ZERO);
                let mut n = w;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let base = &bases[n % bases.len()];
                    match get_account(&http, base, &ids[n % ids.len()], "consistency=cached").await
                    {
                        Some(read) if read.status == 200 => {
                            answered += 1;
                            slowest = slowest.max(read.elapsed);
                        }
                        other => failed.push(format!("{base}: {other:?}")),
                    }
                }
                (answered, failed, slowest)
            })
        })
        .collect();
    let (mut answered, mut failed, mut slowest) = (0, Vec::new(), Duration::ZERO);
    for task in tasks {
        let (a, f, s) = task.await.unwrap();
        answered += a;
        failed.extend(f);
        slowest = slowest.max(s);
    }
    (answered, failed, slowest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_load_fails_no_read_and_refills_after_a_restart() {
    let _serial = one_at_a_time();
    let mut redis = Redis::start().await;
    let cluster = cluster_with(&redis).await;
    let ids: Vec<String> = (0..5).map(|n| format!("kill-{n}")).collect();
    create_accounts(&cluster, &ids, "1000").await;
    let http = client();
    for base in bases(&cluster) {
        wait_served_from_cache(&http, &base, &ids[0]).await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let readers = tokio::spawn(read_until(bases(&cluster), ids.clone(), 4, stop.clone()));
    let writer = tokio::spawn(transfer_until(
        bases(&cluster),
        ids.clone(),
        0,
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let (answered, failed, _) = readers.await.unwrap();
    writer.await.unwrap();
    assert!(
        failed.is_empty(),
        "{} reads failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(answered > 100, "only {answered} reads");
    println!("{answered} cached reads answered, none failed, across a Redis kill");
    // Reads went on from local state, and said so.
    let read = get_account(&http, &cluster.url(1, ""), &ids[1], "consistency=cached")
        .await
        .unwrap();
    assert_eq!(
        (read.status, read.served_from.as_str()),
        (200, "local"),
        "{read:?}"
    );
    assert!(
        ["error", "breaker-open"].contains(&read.cache.as_str()),
        "{read:?}"
    );

    redis.spawn().await;
    assert_eq!(
        redis.value("ledger:acct:kill-1").await,
        None,
        "restarted empty"
    );
    for base in bases(&cluster) {
        for id in &ids {
            wait_served_from_cache(&http, &base, id).await;
        }
    }
    assert!(
        redis.value("ledger:acct:kill-1").await.is_some(),
        "refilled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_account_leaves_no_cache_entry_behind() {
    let _serial = one_at_a_time();
    let redis = Redis::start().await;
    let cluster = cluster_with(&redis).await;
    let leader = cluster.leader().await;
    cluster.create_account(leader, "gone", "0").await;
    let http = client();
    let key = "ledger:acct:gone";
    let read = wait_served_from_cache(&http, &cluster.url(2, ""), "gone").await;
    let value = redis.value(key).await.expect("cached");
    assert!(
        value.starts_with(&format!("{} ", read.applied_index)),
        "{value}"
    );
    assert!(value.contains("\"accountId\":\"gone\""), "{value}");

    let deleted = http
        .delete(cluster.url(leader, "/api/v1/accounts/gone"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 200);
    // A tombstone first (so no late, older write brings it back), holding no account.
    let deadline = Instant::now() + Duration::from_millis(WAIT_MS_MAX);
    loop {
        match redis.value(key).await {
            Some(value) if value.ends_with(" -") => break,
            None => break,
            Some(value) => {
                assert!(Instant::now() < deadline, "never deleted: {value}");
                tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
            }
        }
    }
    for base in bases(&cluster) {
        let read = get_account(&http, &base, "gone", "consistency=cached")
            .await
            .unwrap();
        assert_eq!(read.status, 404, "{read:?}");
    }
    // Then nothing at all once the tombstone's TTL passes; a cached read of the deleted id
    // (a miss now) does not bring it back.
    tokio::time::sleep(Duration::from_millis(TOMBSTONE_TTL_MS + 200)).await;
    assert_eq!(redis.value(key).await, None);
    let read = get_account(&http, &cluster.url(1, ""), "gone", "consistency=cached")
        .await
        .unwrap();
    assert_eq!(
        (read.status, read.cache.as_str()),
        (404, "miss"),
        "{read:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(redis.value(key).await, None);
}

async fn cache_stats(http: &reqwest::Client, base: &str) -> Value {
    http.get(format!("{base}/api/v1/admin/cache"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_redis_costs_at_most_the_timeout_and_opens_the_breaker() {
    let _serial = one_at_a_time();
    let redis = Redis::start().await;
    let cluster = cluster_with(&redis).await;
    let ids: Vec<String> = (0..3).map(|n| format!("pause-{n}")).collect();
    create_accounts(&cluster, &ids, "500").await;
    let http = client();
    for base in bases(&cluster) {
        wait_served_from_cache(&http, &base, &ids[0]).await;
    }
    redis.pause();
    let mut slowest = Duration::ZERO;
    for n in 0..60 {
        let base = cluster.url(n % 3, "");
        let read = get_account(&http, &base, &ids[n % ids.len()], "consistency=cached")
            .await
            .unwrap();
        assert_eq!(
            (read.status, read.served_from.as_str()),
            (200, "local"),
            "{read:?}"
        );
        assert!(
            read.elapsed <= Duration::from_millis(FALLBACK_READ_MS_MAX),
            "read {n} took {:?}",
            read.elapsed
        );
        slowest = slowest.max(read.elapsed);
    }
    for base in bases(&cluster) {
        let stats = cache_stats(&http, &base).await;
        assert!(stats["breakerOpened"].as_u64().unwrap() >= 1, "{stats}");
        assert!(stats["breakerRejections"].as_u64().unwrap() >= 1, "{stats}");
    }
    println!("slowest read with Redis paused: {slowest:?}");
    redis.resume();
    for base in bases(&cluster) {
        wait_served_from_cache(&http, &base, &ids[1]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staleness_bounds_headers_and_modes() {
    let _serial = one_at_a_time();
    let redis = Redis::start().await;
    let cluster = cluster_with(&redis).await;
    let leader = cluster.leader().await;
    cluster.create_account(leader, "fresh", "7.5").await;
    let http = client();
    let base = cluster.url(cluster.follower_of(leader), "");
    let hit = wait_served_from_cache(&http, &base, "fresh").await;
    assert_eq!(hit.cache, "hit");
    assert_eq!(hit.balance, Some(Decimal::new(75, 1)));
    // Older than asked for: this node's own state is at least as new, so it serves that
    // (and refreshes the entry, after which the cache serves it again).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let read = get_account(
        &http,
        &base,
        "fresh",
        "consistency=cached&maxStalenessMs=100",
    )
    .await
    .unwrap();
    assert_eq!(
        (read.served_from.as_str(), read.cache.as_str()),
        ("local", "stale")
    );
    assert!(read.applied_index >= hit.applied_index);
    let deadline = Instant::now() + Duration::from_millis(WAIT_MS_MAX);
    loop {
        let read = get_account(
            &http,
            &base,
            "fresh",
            "consistency=cached&maxStalenessMs=5000",
        )
        .await
        .unwrap();
        if read.served_from == "cache" {
            break;
        }
        assert!(Instant::now() < deadline, "never refreshed: {read:?}");
        tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
    }
    // Default and local reads say where they came from too.
    let read = get_account(&http, &base, "fresh", "").await.unwrap();
    assert_eq!(read.served_from, "leader");
    let read = get_account(&http, &base, "fresh", "consistency=local")
        .await
        .unwrap();
    assert_eq!(read.served_from, "local");
    // A query from the cache: every id found, the lowest version as its index.
    let answer = http
        .post(format!("{base}/api/v1/accounts/query?consistency=cached"))
        .json(&json!({"accountIds": ["fresh", "nobody"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(header(&answer, "x-cache"), "miss");
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["missing"], json!(["nobody"]));
    assert_eq!(
        redis.value("ledger:acct:nobody").await,
        None,
        "no negative entries"
    );
    // The cache holds accounts only; maxStalenessMs means nothing without it.
    for path in [
        "/api/v1/accounts/fresh/transactions?consistency=cached",
        "/api/v1/accounts/fresh?maxStalenessMs=10",
        "/api/v1/accounts/fresh?consistency=cached&maxStalenessMs=soon",
    ] {
        let answer = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(answer.status().as_u16(), 400, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_a_password_work_as_elasticache_needs() {
    let _serial = one_at_a_time();
    let redis = Redis::start_with(Some("s3cret")).await;
    let mut env = cache_env(&redis);
    env.push(("SSL_CERT_FILE".into(), redis.ca_file()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let cluster = Cluster::start(&env).await;
    let leader = cluster.leader().await;
    cluster.create_account(leader, "secure", "3").await;
    let http = client();
    for base in bases(&cluster) {
        let read = wait_served_from_cache(&http, &base, "secure").await;
        assert_eq!(read.balance, Some(Decimal::new(3, 0)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_configured_cached_reads_say_they_are_local() {
    let _serial = one_at_a_time();
    let cluster = Cluster::start(&[]).await;
    let leader = cluster.leader().await;
    cluster.create_account(leader, "plain", "1").await;
    let http = client();
    let read = get_account(
        &http,
        &cluster.url(leader, ""),
        "plain",
        "consistency=cached",
    )
    .await
    .unwrap();
    assert_eq!(
        (read.status, read.served_from.as_str(), read.cache.as_str()),
        (200, "local", "disabled")
    );
    let stats = cache_stats(&http, &cluster.url(leader, "")).await;
    assert_eq!(stats, json!({"enabled": false}));
}
