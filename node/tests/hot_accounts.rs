//! 1,000 concurrent transfers on three hot accounts, sent through all nodes: the total is
//! conserved, no balance goes negative, every balance reconciles with the transfers that
//! completed, and the replicas end identical.

mod common;

use std::sync::Arc;

use common::{decimal, Cluster};
use futures::stream::{self, StreamExt};
use rust_decimal::Decimal;
use serde_json::json;

const TRANSFERS: usize = 1_000;
const IN_FLIGHT_MAX: usize = 64;
const ACCOUNTS: [&str; 3] = ["hot-0", "hot-1", "hot-2"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_accounts_conserve_the_total_under_concurrency() {
    let cluster = Arc::new(Cluster::start(&[]).await);
    for (n, id) in ACCOUNTS.iter().enumerate() {
        cluster.create_account(n % 3, id, "1000").await;
    }
    let results = stream::iter(0..TRANSFERS)
        .map(|n| {
            let cluster = cluster.clone();
            async move {
                // Deterministic but varied: every ordered pair, amounts 1..=97 with cents.
                let source = n % 3;
                let destination = (source + 1 + (n / 3) % 2) % 3;
                let amount = Decimal::new(((n * 7919) % 9700 + 100) as i64, 2);
                let body = json!({"transactionId": format!("hot-{n}"), "sourceAccountId": ACCOUNTS[source],
                                  "destinationAccountId": ACCOUNTS[destination], "amount": amount.to_string()});
                let (status, _, answer) = cluster.post(n % 3, "/api/v1/transactions/process", &body).await.expect("reachable");
                (source, destination, amount, status, answer)
            }
        })
        .buffer_unordered(IN_FLIGHT_MAX)
        .collect::<Vec<_>>()
        .await;

    let mut expected = [Decimal::from(1000); 3];
    let (mut completed, mut failed) = (0, 0);
    for (source, destination, amount, status, answer) in &results {
        match status {
            200 => {
                assert_eq!(answer["status"], "COMPLETED");
                expected[*source] -= amount;
                expected[*destination] += amount;
                completed += 1;
            }
            422 => {
                assert_eq!(answer["status"], "FAILED", "{answer}");
                failed += 1;
            }
            other => panic!("unexpected {other}: {answer}"),
        }
    }
    assert_eq!(completed + failed, TRANSFERS);
    assert!(
        completed > TRANSFERS / 2,
        "most transfers fit the balances: {completed}"
    );

    let ids: Vec<String> = ACCOUNTS.iter().map(|s| s.to_string()).collect();
    for node in 0..3 {
        let balances = cluster.balances(node, &ids).await;
        assert_eq!(
            balances.iter().copied().sum::<Decimal>(),
            Decimal::from(3000)
        );
        assert!(balances.iter().all(|b| *b >= Decimal::ZERO), "{balances:?}");
        assert_eq!(
            balances,
            expected.to_vec(),
            "balances reconcile with completed transfers"
        );
    }
    for (n, _) in ACCOUNTS.iter().enumerate() {
        let (_, history) = cluster
            .get(
                n,
                &format!("/api/v1/accounts/{}/transactions?limit=1000", ACCOUNTS[n]),
            )
            .await
            .unwrap();
        let listed = history["transactions"].as_array().unwrap();
        // Newest first, strictly by commit sequence.
        let sequences: Vec<u64> = listed
            .iter()
            .map(|t| t["sequence"].as_u64().unwrap())
            .collect();
        assert!(sequences.windows(2).all(|w| w[0] > w[1]));
        let _ = decimal(&listed[0]["amount"]);
    }
    cluster.assert_replicas_identical().await;
}
