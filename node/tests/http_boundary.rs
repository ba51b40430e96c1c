//! The HTTP boundary against a real three-node cluster: every refusal is the JSON error body
//! with a stable code, nothing refused is written, limits shed load instead of queueing it,
//! and no malformed, oversized or slow request wedges a node. Malformed requests go over raw
//! TCP; every read has a deadline, and no sleep stands in for readiness.

mod common;

use std::time::{Duration, Instant};

use common::Cluster;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a refusal that must come at once may take (a loaded 2-core machine included).
const PROMPT_MS: u64 = 5_000;
/// Settings of the boundary cluster: short deadlines so that timeouts are tested quickly.
const REQUEST_TIMEOUT_MS: u64 = 4_500;
const HEADER_READ_TIMEOUT_MS: u64 = 1_000;
const CONNECTIONS_MAX: usize = 8;

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn text(&self) -> String {
        format!(
            "{} {:?} {}",
            self.status,
            self.headers,
            String::from_utf8_lossy(&self.body)
        )
    }

    /// The one error shape: this status, a JSON body with this `code` and a message.
    fn assert_error(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "{}", self.text());
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "not JSON: {}",
            self.text()
        );
        let body = self.json();
        assert_eq!(body["code"], json!(code), "{}", self.text());
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            self.text()
        );
        body
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Reads one HTTP/1.1 answer: the head, then `content-length` bytes (or up to EOF).
async fn read_answer(stream: &mut (impl AsyncReadExt + Unpin)) -> Answer {
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            break end;
        }
        let read = stream.read_buf(&mut buffer).await.expect("read");
        assert!(
            read > 0,
            "closed before an answer: {:?}",
            String::from_utf8_lossy(&buffer)
        );
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .map(|(_, value)| value.parse::<usize>().expect("a length"));
    let body_start = head_end + 4;
    match length {
        Some(length) => {
            while buffer.len() < body_start + length {
                let read = stream.read_buf(&mut buffer).await.expect("read");
                assert!(read > 0, "closed mid-body");
            }
            buffer.truncate(body_start + length);
        }
        None => while stream.read_buf(&mut buffer).await.expect("read") > 0 {},
    }
    Answer {
        status,
        headers,
        body: buffer.split_off(body_start),
    }
}

async fn read_answer_within(stream: &mut (impl AsyncReadExt + Unpin), ms: u64) -> Answer {
    tokio::time::timeout(Duration::from_millis(ms), read_answer(stream))
        .await
        .unwrap_or_else(|_| panic!("no answer within {ms} ms"))
}

async fn connect(cluster: &Cluster, index: usize) -> TcpStream {
    TcpStream::connect(("127.0.0.1", cluster.nodes[index].api_port))
        .await
        .expect("connect")
}

/// Sends `request` on a new connection and reads the answer promptly.
async fn exchange(cluster: &Cluster, request: &[u8]) -> Answer {
    let mut stream = connect(cluster, 0).await;
    stream.write_all(request).await.expect("write");
    read_answer_within(&mut stream, PROMPT_MS).await
}

fn get(target: &str, extra_headers: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nhost: ledger\r\nconnection: close\r\n{extra_headers}\r\n")
        .into_bytes()
}

fn post(target: &str, content_type: Option<&str>, body: &str) -> Vec<u8> {
    let content_type = content_type
        .map(|value| format!("content-type: {value}\r\n"))
        .unwrap_or_default();
    format!(
        "POST {target} HTTP/1.1\r\nhost: ledger\r\nconnection: close\r\n{content_type}\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn create_body(id: &str, balance: &str) -> String {
    json!({"accountId": id, "balance": balance}).to_string()
}

async fn assert_absent(cluster: &Cluster, id: &str) {
    let (status, body) = cluster
        .get(0, &format!("/api/v1/accounts/{id}"))
        .await
        .expect("reachable");
    assert_eq!(
        status, 404,
        "account {id} was written by a refused request: {body}"
    );
}

#[tokio::test]
async fn boundary_refusals_are_json_and_write_nothing() {
    let cluster = Cluster::start(&[
        ("LEDGER_BATCH__WRITE_TIMEOUT_MS", "2000"),
        ("LEDGER_BATCH__LEADER_WAIT_MS", "1000"),
        (
            "LEDGER_HTTP__REQUEST_TIMEOUT_MS",
            &REQUEST_TIMEOUT_MS.to_string(),
        ),
        (
            "LEDGER_HTTP__HEADER_READ_TIMEOUT_MS",
            &HEADER_READ_TIMEOUT_MS.to_string(),
        ),
        ("LEDGER_HTTP__CONNECTIONS_MAX", &CONNECTIONS_MAX.to_string()),
    ])
    .await;
    cluster.create_account(0, "alice", "100").await;
    let before = cluster.audit(0).await;

    path_and_query_refusals(&cluster).await;
    wrong_methods_are_405_with_allow(&cluster).await;
    oversized_heads_are_414_and_431(&cluster).await;
    announced_oversized_body_is_413_at_once(&cluster).await;
    non_json_bodies_are_415(&cluster).await;
    let accepted = json_media_types_are_accepted(&cluster).await;
    slow_body_is_cut_by_the_request_timeout(&cluster).await;
    slow_head_is_cut_by_the_header_read_timeout(&cluster).await;
    connections_beyond_the_limit_wait_for_a_slot(&cluster).await;
    audit_is_single_flight_and_rate_limited(&cluster).await;

    let after = cluster.audit(0).await;
    assert_eq!(after["recordedTotal"], before["recordedTotal"], "{after}");
    assert_eq!(
        after["accounts"].as_u64().unwrap(),
        before["accounts"].as_u64().unwrap() + accepted,
        "only the accepted creations were written: {before} then {after}"
    );
    for refused in ["big", "form", "plain", "latin", "dribble"] {
        assert_absent(&cluster, refused).await;
    }
    cluster.assert_replicas_identical().await;
}

async fn path_and_query_refusals(cluster: &Cluster) {
    exchange(cluster, &get("/api/v1/accounts/%FF", ""))
        .await
        .assert_error(400, "INVALID_PATH");
    exchange(cluster, &get("/api/v1/accounts/alice?consistency=%FF", ""))
        .await
        .assert_error(400, "INVALID_QUERY");
    // A repeated parameter would otherwise be read as the last one, silently.
    exchange(
        cluster,
        &get(
            "/api/v1/accounts/alice?consistency=local&consistency=linearizable",
            "",
        ),
    )
    .await
    .assert_error(400, "INVALID_QUERY");
    exchange(cluster, &get("/no/such/route", ""))
        .await
        .assert_error(404, "ROUTE_NOT_FOUND");
}

async fn wrong_methods_are_405_with_allow(cluster: &Cluster) {
    for (request, allowed) in [
        (
            "PUT /api/v1/accounts HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
            "POST",
        ),
        (
            "DELETE /api/v1/transactions/process HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
            "POST",
        ),
        (
            "POST /api/v1/accounts/alice HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
            "DELETE",
        ),
        (
            "PATCH /health/live HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
            "GET",
        ),
    ] {
        let answer = exchange(cluster, request.as_bytes()).await;
        let body = answer.assert_error(405, "METHOD_NOT_ALLOWED");
        let method = request.split(' ').next().unwrap();
        assert!(
            body["message"].as_str().unwrap().contains(method),
            "{body}"
        );
        let allow = answer.header("allow").unwrap_or_default();
        assert!(allow.contains(allowed), "Allow {allow:?}: {}", answer.text());
    }
}

async fn oversized_heads_are_414_and_431(cluster: &Cluster) {
    let long_id = "a".repeat(10 * 1024);
    exchange(cluster, &get(&format!("/api/v1/accounts/{long_id}"), ""))
        .await
        .assert_error(414, "URI_TOO_LONG");
    let big_header = format!("x-filler: {}\r\n", "a".repeat(20 * 1024));
    exchange(cluster, &get("/health/live", &big_header))
        .await
        .assert_error(431, "HEADERS_TOO_LARGE");
    let many_headers: String = (0..150).map(|i| format!("x-h{i}: v\r\n")).collect();
    exchange(cluster, &get("/health/live", &many_headers))
        .await
        .assert_error(431, "HEADERS_TOO_LARGE");
    // Beyond hyper's own buffer: hyper answers (431, no JSON) or closes; the node lives on.
    let huge_header = format!("x-filler: {}\r\n", "a".repeat(1024 * 1024));
    let mut stream = connect(cluster, 0).await;
    let _ = stream.write_all(&get("/health/live", &huge_header)).await;
    let mut buffer = Vec::new();
    let _ = tokio::time::timeout(
        Duration::from_millis(PROMPT_MS),
        stream.read_to_end(&mut buffer),
    )
    .await
    .expect("hyper answers or closes at once");
    let head = String::from_utf8_lossy(&buffer);
    assert!(
        buffer.is_empty() || head.starts_with("HTTP/1.1 431"),
        "{head}"
    );
    let live = exchange(cluster, &get("/health/live", "")).await;
    assert_eq!(live.status, 200, "{}", live.text());
}

async fn announced_oversized_body_is_413_at_once(cluster: &Cluster) {
    // Announces 10 MB and sends none of it: the answer must not wait for the body.
    let mut stream = connect(cluster, 0).await;
    let head = "POST /api/v1/accounts HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                content-length: 10000000\r\n\r\n";
    stream.write_all(head.as_bytes()).await.expect("write");
    let started = Instant::now();
    read_answer_within(&mut stream, PROMPT_MS)
        .await
        .assert_error(413, "BODY_TOO_LARGE");
    assert!(started.elapsed() < Duration::from_millis(PROMPT_MS));
    // Also with a body that is sent whole, and with a form type (the size is told first).
    let body = format!(
        "{{\"accountId\": \"big\", \"balance\": \"1\", \"pad\": \"{}\"}}",
        " ".repeat(70 * 1024)
    );
    exchange(
        cluster,
        &post("/api/v1/accounts", Some("application/json"), &body),
    )
    .await
    .assert_error(413, "BODY_TOO_LARGE");
}

async fn non_json_bodies_are_415(cluster: &Cluster) {
    for (id, content_type) in [
        ("form", "application/x-www-form-urlencoded"),
        ("plain", "text/plain"),
        ("latin", "application/json; charset=latin1"),
    ] {
        let answer = exchange(
            cluster,
            &post(
                "/api/v1/accounts",
                Some(content_type),
                &create_body(id, "5"),
            ),
        )
        .await;
        let body = answer.assert_error(415, "UNSUPPORTED_MEDIA_TYPE");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("application/json"),
            "the refusal names what is expected: {body}"
        );
    }
}

/// Creates three empty accounts through the accepted spellings; returns how many.
async fn json_media_types_are_accepted(cluster: &Cluster) -> u64 {
    let cases = [
        ("charset", Some("application/json; charset=UTF-8")),
        ("suffix", Some("application/vnd.ledger+json")),
        ("untyped", None),
    ];
    for (id, content_type) in cases {
        let answer = exchange(
            cluster,
            &post("/api/v1/accounts", content_type, &create_body(id, "0")),
        )
        .await;
        assert_eq!(answer.status, 201, "{content_type:?}: {}", answer.text());
    }
    cases.len() as u64
}

async fn slow_body_is_cut_by_the_request_timeout(cluster: &Cluster) {
    let stream = connect(cluster, 0).await;
    let (mut reader, mut writer) = stream.into_split();
    let body = create_body("dribble", "5");
    let head = format!(
        "POST /api/v1/accounts HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n",
        body.len() + 1_000
    );
    writer.write_all(head.as_bytes()).await.expect("write");
    writer.write_all(body.as_bytes()).await.expect("write");
    let started = Instant::now();
    // One padding byte every 250 ms: the body would take over four minutes to arrive.
    let dribble = tokio::spawn(async move {
        for _ in 0..1_000 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if writer.write_all(b" ").await.is_err() {
                break;
            }
        }
    });
    let answer = read_answer_within(&mut reader, REQUEST_TIMEOUT_MS + 10_000).await;
    dribble.abort();
    answer.assert_error(503, "OUTCOME_UNKNOWN");
    assert!(answer.header("retry-after").is_some(), "{}", answer.text());
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(REQUEST_TIMEOUT_MS - 500),
        "cut after {elapsed:?}, before the request timeout"
    );
}

async fn slow_head_is_cut_by_the_header_read_timeout(cluster: &Cluster) {
    let mut stream = connect(cluster, 0).await;
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nhost: x\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(
        Duration::from_millis(HEADER_READ_TIMEOUT_MS + PROMPT_MS),
        stream.read_to_end(&mut rest),
    )
    .await
    .expect("the connection is closed after the header read timeout");
    assert!(read.is_err() || rest.is_empty(), "answered: {rest:?}");
    assert!(started.elapsed() >= Duration::from_millis(HEADER_READ_TIMEOUT_MS / 2));
}

/// With every slot held by a connection that sends nothing, a new connection is served only
/// once the header read timeout frees a slot, and then it is.
async fn connections_beyond_the_limit_wait_for_a_slot(cluster: &Cluster) {
    let mut holders = Vec::new();
    for _ in 0..CONNECTIONS_MAX {
        holders.push(connect(cluster, 0).await);
    }
    let started = Instant::now();
    let mut probe = connect(cluster, 0).await;
    probe
        .write_all(&get("/health/live", ""))
        .await
        .expect("write");
    let answer = read_answer_within(&mut probe, HEADER_READ_TIMEOUT_MS + 10_000).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(HEADER_READ_TIMEOUT_MS * 7 / 10),
        "served after {waited:?}: the connection limit did not hold it back"
    );
    for mut holder in holders {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(
            Duration::from_millis(HEADER_READ_TIMEOUT_MS + PROMPT_MS),
            holder.read_to_end(&mut rest),
        )
        .await
        .expect("an idle connection is closed");
        assert!(read.is_err() || rest.is_empty(), "answered: {rest:?}");
    }
}

async fn audit_is_single_flight_and_rate_limited(cluster: &Cluster) {
    // `Cluster::audit` waits for a granted scan; the next one right after is refused.
    cluster.audit(0).await;
    let answer = exchange(cluster, &get("/api/v1/admin/audit", "")).await;
    answer.assert_error(429, "RATE_LIMITED");
    let retry_after: u64 = answer
        .header("retry-after")
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After: {}", answer.text()));
    assert!((1..=2).contains(&retry_after), "{}", answer.text());
    // Once the interval has passed (the server said how long), concurrent scans: one runs.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let answers = futures::future::join_all((0..5).map(|_| {
        exchange(
            cluster,
            b"GET /api/v1/admin/audit HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        )
    }))
    .await;
    let granted = answers.iter().filter(|a| a.status == 200).count();
    for answer in answers.iter().filter(|a| a.status != 200) {
        answer.assert_error(429, "RATE_LIMITED");
    }
    assert_eq!(granted, 1, "exactly one of five concurrent scans runs");
}

#[tokio::test]
async fn overload_is_shed_with_503_and_nothing_else() {
    let cluster = Cluster::start(&[("LEDGER_HTTP__CONCURRENCY_MAX", "2")]).await;
    cluster.create_account(0, "src", "1000000").await;
    cluster.create_account(0, "dst", "0").await;
    let transfers = (0..200).map(|i| {
        let cluster = &cluster;
        async move {
            let id = format!("load-{i}");
            let body = json!({
                "transactionId": id, "sourceAccountId": "src",
                "destinationAccountId": "dst", "amount": "1",
            });
            let answer = cluster
                .http
                .post(cluster.url(0, "/api/v1/transactions/process"))
                .json(&body)
                .send()
                .await;
            let outcome = match answer {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry_after = response.headers().contains_key("retry-after");
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    (status, retry_after, body)
                }
                Err(error) => (0, false, json!(error.to_string())),
            };
            (id, outcome)
        }
    });
    // Probes sent while the work routes shed load are not counted against the limit.
    let probes = (0..20).map(|i| {
        let path = if i % 2 == 0 {
            "/health/live"
        } else {
            "/health/ready"
        };
        cluster.get(0, path)
    });
    let (results, probes) = tokio::join!(
        futures::future::join_all(transfers),
        futures::future::join_all(probes)
    );
    for probe in &probes {
        assert!(
            matches!(probe, Some((200, _))),
            "probe under load: {probe:?}"
        );
    }
    let mut applied = Vec::new();
    let mut shed = Vec::new();
    let mut other = Vec::new();
    for (id, (status, retry_after, body)) in results {
        match status {
            200 => applied.push(id),
            503 if body["code"] == json!("OVERLOADED") && retry_after => shed.push(id),
            _ => other.push((id, status, body)),
        }
    }
    assert!(other.is_empty(), "failures other than shedding: {other:?}");
    assert!(
        !shed.is_empty(),
        "200 concurrent requests, 2 slots: some must be shed"
    );
    assert!(!applied.is_empty(), "some requests must get through");
    for id in &shed {
        let (status, body) = cluster
            .get(0, &format!("/api/v1/transactions/{id}/status"))
            .await
            .expect("reachable");
        assert_eq!(status, 404, "shed transfer {id} was applied: {body}");
    }
    let (status, dst) = cluster
        .get(0, "/api/v1/accounts/dst")
        .await
        .expect("reachable");
    assert_eq!(status, 200, "{dst}");
    assert_eq!(
        common::decimal(&dst["balance"]),
        rust_decimal::Decimal::from(applied.len()),
        "exactly the acknowledged transfers were applied: {dst}"
    );
    cluster.assert_replicas_identical().await;
}
