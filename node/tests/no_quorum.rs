//! With no quorum, writes and linearizable reads are refused with 503 and `Retry-After`
//! (nothing half-done: resending later is safe); local reads still answer. When a quorum
//! returns, the same resend succeeds exactly once.

mod common;

use common::Cluster;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_quorum_requests_get_503_with_retry_after() {
    let mut cluster = Cluster::start(&[("LEDGER_BATCH__WRITE_TIMEOUT_MS", "1500")]).await;
    let leader = cluster.leader().await;
    cluster.create_account(leader, "a", "10").await;
    cluster.create_account(leader, "b", "0").await;
    let survivor = cluster.follower_of(leader);
    let other = (0..3).find(|i| *i != leader && *i != survivor).unwrap();
    cluster.kill(leader);
    cluster.kill(other);

    let body = json!({"transactionId": "nq-1", "sourceAccountId": "a", "destinationAccountId": "b", "amount": 1});
    let response = cluster
        .http
        .post(cluster.url(survivor, "/api/v1/transactions/process"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert!(response.headers().get("retry-after").is_some());
    let answer: serde_json::Value = response.json().await.unwrap();
    assert!(
        answer["code"].is_string() && answer["message"].is_string(),
        "{answer}"
    );

    let response = cluster
        .http
        .get(cluster.url(survivor, "/api/v1/accounts/a"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    let (status, _) = cluster
        .get(survivor, "/api/v1/accounts/a?consistency=local")
        .await
        .unwrap();
    assert_eq!(status, 200);
    // Once its election timeout passes, the survivor knows it has no leader: not ready.
    let deadline =
        std::time::Instant::now() + std::time::Duration::from_millis(common::WAIT_MS_MAX);
    while cluster.get(survivor, "/health/ready").await.unwrap().0 != 503 {
        assert!(
            std::time::Instant::now() < deadline,
            "still ready without a quorum"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // A quorum again: the resend is applied exactly once.
    cluster.spawn(other);
    cluster.wait_ready(survivor).await;
    let deadline =
        std::time::Instant::now() + std::time::Duration::from_millis(common::WAIT_MS_MAX);
    loop {
        let (status, _, answer) = cluster
            .post(survivor, "/api/v1/transactions/process", &body)
            .await
            .unwrap();
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "{answer}");
        assert!(std::time::Instant::now() < deadline);
    }
    let balances = cluster.balances(survivor, &["a".into(), "b".into()]).await;
    assert_eq!(balances, vec![9.into(), 1.into()]);
}
