//! Transfers sent through followers reach the leader in one hop and say who served them;
//! hostile input is refused with 400 and writes nothing.

mod common;

use common::{decimal, Cluster};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_through_followers_are_served_by_the_leader() {
    let cluster = Cluster::start(&[]).await;
    let leader = cluster.leader().await;
    let follower = cluster.follower_of(leader);

    cluster.create_account(follower, "alice", "100.0000").await;
    cluster.create_account(follower, "bob", "0").await;

    let body = json!({"transactionId": "tx-1", "sourceAccountId": "alice",
                      "destinationAccountId": "bob", "amount": "40.5", "timestamp": "2024-01-31T10:00:00"});
    let (status, served_by, answer) = cluster
        .post(follower, "/api/v1/transactions/process", &body)
        .await
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["message"], "Transaction accepted");
    assert_eq!(answer["status"], "COMPLETED");
    assert_eq!(served_by, Some(leader as u64), "forwarded to the leader");

    // The same request again: the original outcome, applied once.
    let (status, _, again) = cluster
        .post(follower, "/api/v1/transactions/process", &body)
        .await
        .unwrap();
    assert_eq!((status, &again["status"]), (200, &json!("COMPLETED")));

    // A linearizable read through a follower sees the write at once.
    let (status, account) = cluster.get(follower, "/api/v1/accounts/bob").await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(decimal(&account["balance"]), "40.5".parse().unwrap());
    let (_, alice) = cluster
        .get(follower, "/api/v1/accounts/alice")
        .await
        .unwrap();
    assert_eq!(decimal(&alice["balance"]), "59.5".parse().unwrap());

    // Every follower agrees once it has applied, and says it served the local read itself.
    let response = cluster
        .http
        .get(cluster.url(
            follower,
            "/api/v1/transactions/tx-1/status?consistency=local",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["x-served-by"].to_str().unwrap(),
        follower.to_string()
    );

    // Business failure: 422 with the seed's message, recorded as FAILED.
    let overdraft = json!({"transactionId": "tx-2", "sourceAccountId": "bob",
                           "destinationAccountId": "alice", "amount": 1000});
    let (status, _, answer) = cluster
        .post(follower, "/api/v1/transactions/process", &overdraft)
        .await
        .unwrap();
    assert_eq!(status, 422);
    assert_eq!(
        answer["message"],
        "Error processing transaction: Insufficient funds"
    );
    assert_eq!(answer["status"], "FAILED");
    let (_, status_body) = cluster
        .get(leader, "/api/v1/transactions/tx-2/status")
        .await
        .unwrap();
    assert_eq!(status_body["status"], "FAILED");
    assert_eq!(status_body["reason"], "INSUFFICIENT_FUNDS");

    // Same id, different body: 409, nothing applied.
    let altered = json!({"transactionId": "tx-1", "sourceAccountId": "alice",
                         "destinationAccountId": "bob", "amount": "40.6", "timestamp": "2024-01-31T10:00:00"});
    let (status, _, answer) = cluster
        .post(follower, "/api/v1/transactions/process", &altered)
        .await
        .unwrap();
    assert_eq!(
        (status, answer["code"].as_str()),
        (409, Some("IDEMPOTENCY_CONFLICT"))
    );

    let balances = cluster
        .balances(follower, &["alice".into(), "bob".into()])
        .await;
    assert_eq!(
        balances,
        vec!["59.5".parse().unwrap(), "40.5".parse().unwrap()]
    );
    cluster.assert_replicas_identical().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_refused_and_writes_nothing() {
    let cluster = Cluster::start(&[]).await;
    let leader = cluster.leader().await;
    let follower = cluster.follower_of(leader);
    cluster.create_account(leader, "a", "10").await;
    cluster.create_account(leader, "b", "10").await;
    let log_index = |info: serde_json::Value| info["lastLogIndex"].as_u64();
    let before = log_index(cluster.cluster_info(leader).await.unwrap());

    let transfer = |amount: serde_json::Value| json!({"transactionId": "t", "sourceAccountId": "a", "destinationAccountId": "b", "amount": amount});
    let cases = vec![
        ("/api/v1/transactions/process", transfer(json!(0)), "amount"),
        (
            "/api/v1/transactions/process",
            transfer(json!(-5)),
            "amount",
        ),
        (
            "/api/v1/transactions/process",
            transfer(json!("1.00001")),
            "amount",
        ),
        (
            "/api/v1/transactions/process",
            transfer(json!("1e400")),
            "amount",
        ),
        (
            "/api/v1/transactions/process",
            transfer(json!("ten")),
            "amount",
        ),
        (
            "/api/v1/transactions/process",
            json!({"transactionId": "t", "sourceAccountId": "a", "destinationAccountId": "a", "amount": 1}),
            "destinationAccountId",
        ),
        (
            "/api/v1/transactions/process",
            json!({"sourceAccountId": "a", "destinationAccountId": "b", "amount": 1}),
            "transactionId",
        ),
        (
            "/api/v1/transactions/process",
            json!({"transactionId": "t", "sourceAccountId": "a", "destinationAccountId": "b", "amount": 1, "extra": true}),
            "extra",
        ),
        (
            "/api/v1/transactions/process",
            json!({"transactionId": "t", "sourceAccountId": "a", "destinationAccountId": "b", "amount": 1, "timestamp": "yesterday"}),
            "timestamp",
        ),
        (
            "/api/v1/transactions/process",
            json!({"transactionId": "bad id!", "sourceAccountId": "a", "destinationAccountId": "b", "amount": 1}),
            "transactionId",
        ),
        (
            "/api/v1/accounts",
            json!({"accountId": "c", "balance": -1}),
            "balance",
        ),
        (
            "/api/v1/accounts",
            json!({"accountId": "c", "balance": "1000000000000000"}),
            "balance",
        ),
        ("/api/v1/accounts", json!({"accountId": "c"}), "balance"),
        (
            "/api/v1/accounts",
            json!({"accountId": "c", "balance": 1, "currency": "dollars"}),
            "currency",
        ),
        (
            "/api/v1/accounts",
            json!({"accountId": "x".repeat(51), "balance": 1}),
            "accountId",
        ),
    ];
    for (path, body, field) in cases {
        for node in [leader, follower] {
            let (status, _, answer) = cluster.post(node, path, &body).await.unwrap();
            assert_eq!(status, 400, "{body} -> {answer}");
            assert!(
                answer["message"].as_str().unwrap().contains(field),
                "{body} -> {answer}"
            );
            assert!(answer["code"].is_string());
        }
    }
    for raw in ["{", "[]", "null", "{\"accountId\": \"c\", \"balance\": 1,}"] {
        let response = cluster
            .http
            .post(cluster.url(follower, "/api/v1/accounts"))
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{raw}");
    }
    let oversized = format!(
        "{{\"accountId\": \"c\", \"balance\": 1, \"pad\": \"{}\"}}",
        "x".repeat(100_000)
    );
    let response = cluster
        .http
        .post(cluster.url(follower, "/api/v1/accounts"))
        .body(oversized)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);

    assert_eq!(
        log_index(cluster.cluster_info(leader).await.unwrap()),
        before,
        "nothing was proposed"
    );
    let (status, _) = cluster.get(follower, "/api/v1/accounts/c").await.unwrap();
    assert_eq!(status, 404);
}
