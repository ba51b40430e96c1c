//! `ledger dev` forms a three-node cluster, stops cleanly on Ctrl-C (SIGINT), and the next
//! run resumes the same cluster with its data instead of initialising a new one.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

const WAIT_MS_MAX: u64 = 60_000;

/// A base port whose eight neighbours this test needs are free right now.
fn free_base_port() -> u16 {
    for _ in 0..100 {
        let base = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if base > 60_000 {
            continue;
        }
        let all_free = (0..3)
            .flat_map(|i| [base + i, base + 100 + i])
            .all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok());
        if all_free {
            return base;
        }
    }
    panic!("no free port range");
}

fn start(dir: &std::path::Path, base: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(["dev", "--data-dir"])
        .arg(dir)
        .args(["--base-port", &base.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

async fn wait_ready(http: &reqwest::Client, base: u16) {
    let deadline = Instant::now() + Duration::from_millis(WAIT_MS_MAX);
    for port in base..base + 3 {
        loop {
            let url = format!("http://127.0.0.1:{port}/health/ready");
            if http
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            assert!(Instant::now() < deadline, "dev cluster not ready on {port}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn interrupt_and_wait(child: Child) -> String {
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "ledger dev exits cleanly: {:?}",
        output.status
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_cluster_stops_on_ctrl_c_and_resumes_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let base = free_base_port();
    let http = reqwest::Client::new();

    let first = start(dir.path(), base);
    wait_ready(&http, base).await;
    let account = json!({"accountId": "kept", "balance": "12.5"});
    let response = http
        .post(format!("http://127.0.0.1:{}/api/v1/accounts", base + 1))
        .json(&account)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let stdout = interrupt_and_wait(first);
    assert!(stdout.contains("forming a new"), "{stdout}");
    assert!(stdout.contains("stopped"), "{stdout}");

    let second = start(dir.path(), base);
    wait_ready(&http, base).await;
    let response = http
        .get(format!(
            "http://127.0.0.1:{}/api/v1/accounts/kept",
            base + 2
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["balance"].to_string(), "12.5000");
    let stdout = interrupt_and_wait(second);
    assert!(stdout.contains("resuming"), "{stdout}");
}
