//! Every mutation is safe to resend, and reads that decide "does this exist" decide it at
//! the index they read: against a real three-node cluster, through followers.

mod common;

use common::Cluster;
use serde_json::{json, Value};

/// POST with an `Idempotency-Key`: (status, replayed?, body).
async fn post_keyed(
    cluster: &Cluster,
    index: usize,
    path: &str,
    key: &str,
    body: &Value,
) -> (u16, bool, Value) {
    let response = cluster
        .http
        .post(cluster.url(index, path))
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .expect("reachable");
    answer(response).await
}

async fn delete_keyed(
    cluster: &Cluster,
    index: usize,
    path: &str,
    key: &str,
) -> (u16, bool, Value) {
    let response = cluster
        .http
        .delete(cluster.url(index, path))
        .header("idempotency-key", key)
        .send()
        .await
        .expect("reachable");
    answer(response).await
}

async fn answer(response: reqwest::Response) -> (u16, bool, Value) {
    let status = response.status().as_u16();
    let replayed = response.headers().get("x-idempotent-replay").is_some();
    (
        status,
        replayed,
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_deletes_and_transfers_are_safe_to_resend_with_an_idempotency_key() {
    let cluster = Cluster::start(&[]).await;
    let leader = cluster.leader().await;
    let follower = cluster.follower_of(leader);
    let accounts = "/api/v1/accounts";

    // Create, resent through another node: the original 201, applied once.
    let alice = json!({"accountId": "alice", "balance": "100"});
    let first = post_keyed(&cluster, follower, accounts, "create-alice", &alice).await;
    assert_eq!((first.0, first.1), (201, false), "{}", first.2);
    let again = post_keyed(&cluster, leader, accounts, "create-alice", &alice).await;
    assert_eq!((again.0, again.1), (201, true), "{}", again.2);
    assert_eq!(again.2, first.2);
    // Without the key, the same create is what it always was: the id exists.
    let (status, _, body) = cluster.post(leader, accounts, &alice).await.unwrap();
    assert_eq!(
        (status, body["code"].clone()),
        (409, json!("ACCOUNT_EXISTS"))
    );
    // Same key, different body: refused, nothing written.
    let other = json!({"accountId": "mallory", "balance": "1000000"});
    let conflict = post_keyed(&cluster, follower, accounts, "create-alice", &other).await;
    assert_eq!(conflict.0, 409, "{}", conflict.2);
    assert_eq!(conflict.2["code"], json!("IDEMPOTENCY_CONFLICT"));
    let (status, _) = cluster
        .get(leader, "/api/v1/accounts/mallory")
        .await
        .unwrap();
    assert_eq!(status, 404);

    // A failed create is remembered as failed, too.
    let exists = post_keyed(&cluster, leader, accounts, "create-alice-2", &alice).await;
    assert_eq!(exists.0, 409);
    let exists_again = post_keyed(&cluster, follower, accounts, "create-alice-2", &alice).await;
    assert_eq!((exists_again.0, exists_again.1), (409, true));

    // Delete, resent: "deleted" again rather than "not found".
    cluster.create_account(leader, "empty", "0").await;
    let deleted = delete_keyed(&cluster, follower, "/api/v1/accounts/empty", "del-empty").await;
    assert_eq!((deleted.0, deleted.1), (200, false), "{}", deleted.2);
    let deleted_again = delete_keyed(&cluster, leader, "/api/v1/accounts/empty", "del-empty").await;
    assert_eq!((deleted_again.0, deleted_again.1), (200, true));
    assert_eq!(deleted_again.2, deleted.2);

    // A transfer with a key: replayed; the key on another transfer: refused.
    cluster.create_account(leader, "bob", "0").await;
    let transfer = json!({"transactionId": "t1", "sourceAccountId": "alice",
        "destinationAccountId": "bob", "amount": "10"});
    let path = "/api/v1/transactions/process";
    let sent = post_keyed(&cluster, follower, path, "pay-1", &transfer).await;
    assert_eq!((sent.0, sent.1), (200, false), "{}", sent.2);
    let resent = post_keyed(&cluster, leader, path, "pay-1", &transfer).await;
    assert_eq!((resent.0, resent.1), (200, true));
    let mut another = transfer.clone();
    another["transactionId"] = json!("t2");
    let refused = post_keyed(&cluster, leader, path, "pay-1", &another).await;
    assert_eq!(refused.0, 409);
    assert_eq!(refused.2["code"], json!("IDEMPOTENCY_CONFLICT"));

    // A malformed key is a 400 that writes nothing.
    let bad = post_keyed(&cluster, leader, path, "has space", &another).await;
    assert_eq!(bad.0, 400, "{}", bad.2);
    let (status, _) = cluster
        .get(leader, "/api/v1/transactions/t2/status")
        .await
        .unwrap();
    assert_eq!(status, 404);

    let balances = cluster
        .balances(leader, &["alice".to_owned(), "bob".to_owned()])
        .await;
    assert_eq!(balances, vec![90.into(), 10.into()]);
    cluster.assert_replicas_identical().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_existence_is_decided_at_the_read_index() {
    let cluster = Cluster::start(&[]).await;
    let leader = cluster.leader().await;
    cluster.create_account(leader, "rich", "1000").await;

    // Create-then-read through followers: never a stale 404.
    for n in 0..150 {
        let writer = n % 3;
        let reader = (n + 1) % 3;
        let id = format!("h{n}");
        cluster.create_account(writer, &id, "0").await;
        let (status, body) = cluster
            .get(reader, &format!("/api/v1/accounts/{id}/transactions"))
            .await
            .unwrap();
        assert_eq!(status, 200, "read of {id} just created: {body}");
    }

    // Transfers naming an id that does not exist leave no history under it...
    let transfer = |id: &str, from: &str, to: &str| {
        json!({"transactionId": id, "sourceAccountId": from,
            "destinationAccountId": to, "amount": "1"})
    };
    let path = "/api/v1/transactions/process";
    let (status, _, _) = cluster
        .post(leader, path, &transfer("g1", "rich", "ghost"))
        .await
        .unwrap();
    assert_eq!(status, 422);
    let (status, _, _) = cluster
        .post(leader, path, &transfer("g2", "ghost", "rich"))
        .await
        .unwrap();
    assert_eq!(status, 422);
    // ...so it is unknown, paged or not,
    for query in ["", "?before=5", "?limit=1"] {
        let (status, body) = cluster
            .get(
                leader,
                &format!("/api/v1/accounts/ghost/transactions{query}"),
            )
            .await
            .unwrap();
        assert_eq!(status, 404, "{query}: {body}");
    }
    // ...and once created, its history starts empty.
    cluster.create_account(leader, "ghost", "0").await;
    let (status, body) = cluster
        .get(leader, "/api/v1/accounts/ghost/transactions")
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["transactions"], json!([]), "{body}");
    // The account that does exist keeps both failed attempts in its history.
    let (_, body) = cluster
        .get(leader, "/api/v1/accounts/rich/transactions")
        .await
        .unwrap();
    assert_eq!(body["transactions"].as_array().unwrap().len(), 2, "{body}");
}

async fn raw_post(cluster: &Cluster, index: usize, path: &str, body: &'static str) -> (u16, Value) {
    let response = cluster
        .http
        .post(cluster.url(index, path))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (
        status,
        response.json::<Value>().await.unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn money_and_timestamps_are_exact_or_refused_end_to_end() {
    let cluster = Cluster::start(&[]).await;
    let leader = cluster.leader().await;
    let accounts = "/api/v1/accounts";
    let raw = |body: &'static str| raw_post(&cluster, leader, accounts, body);
    // Would round to 1.0000 through a 28-digit decimal: refused.
    let (status, body) =
        raw(r#"{"accountId": "r1", "balance": 0.99999999999999999999999999999e0}"#).await;
    assert_eq!(status, 400, "{body}");
    // Exactly 1 and exactly 0, however written: accepted as such.
    let (status, body) =
        raw(r#"{"accountId": "r2", "balance": 1.000000000000000000000000000000}"#).await;
    assert_eq!(
        (status, body["balance"].to_string()),
        (201, "1.0000".to_owned())
    );
    let (status, body) = raw(r#"{"accountId": "r3", "balance": 0e99}"#).await;
    assert_eq!(
        (status, body["balance"].to_string()),
        (201, "0.0000".to_owned())
    );
    for text in [
        "1_000", "1_", "+12.5", " 12.5 ", "5.", ".5", "0x10", "1e", "NaN",
    ] {
        let body = json!({"accountId": "r4", "balance": text});
        let (status, _, answer) = cluster.post(leader, accounts, &body).await.unwrap();
        assert_eq!(status, 400, "{text:?} accepted: {answer}");
    }
    // Duplicate keys: refused, not "last one wins".
    let (status, body) = raw(r#"{"accountId": "x y", "accountId": "ok", "balance": 1}"#).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = cluster.get(leader, "/api/v1/accounts/ok").await.unwrap();
    assert_eq!(status, 404);

    cluster.create_account(leader, "src", "10").await;
    let path = "/api/v1/transactions/process";
    let timestamped = |id: &str, timestamp: &str| {
        json!({"transactionId": id, "sourceAccountId": "src",
            "destinationAccountId": "r2", "amount": "1", "timestamp": timestamp})
    };
    for (n, bad) in [
        "2024-01-31T10:00:60",
        "2024-1-3T1:0:0",
        " 2024-01-31T10:00:00",
        "2024-01-31 10:00:00",
        "2024-01-31T10:00:00.1234567891",
        "9999-12-31T23:00:00-23:00",
    ]
    .iter()
    .enumerate()
    {
        let (status, _, answer) = cluster
            .post(leader, path, &timestamped(&format!("ts{n}"), bad))
            .await
            .unwrap();
        assert_eq!(status, 400, "{bad:?} accepted: {answer}");
    }
    // A sub-nanosecond difference is a different body, never the same one.
    let (status, _, _) = cluster
        .post(
            leader,
            path,
            &timestamped("tsok", "2024-01-31T10:00:00.123456789"),
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    let (status, _, _) = cluster
        .post(
            leader,
            path,
            &timestamped("tsok", "2024-01-31T10:00:00.123456788"),
        )
        .await
        .unwrap();
    assert_eq!(status, 409);
    let (_, balances) = cluster.get(leader, "/api/v1/accounts/src").await.unwrap();
    assert_eq!(balances["balance"].to_string(), "9.0000");
}
