//! `jepsen`: a black-box consistency harness for ledger, in Jepsen's vocabulary. It runs
//! three real `ledger node` processes, drives concurrent clients over HTTP (`client`), injects
//! faults (`nemesis`, `net`, `db`), records a history (`history`) and checks it (`checker`),
//! then writes the history (JSONL and EDN), the verdicts, a summary and a timeline (`report`).
//! Alongside, it polls every node's view of the cluster (`monitor`) and reports how much
//! throughput each fault window kept (`availability`); `failover` measures how long writes
//! stop when the leader is killed under load. It talks to the ledger over HTTP, except the
//! `hostile-frames` nemesis (`hostile`), which sends malformed frames straight to the
//! nodes' peer gRPC ports.

pub mod availability;
pub mod checker;
pub mod client;
pub mod db;
pub mod failover;
pub mod history;
pub mod hostile;
pub mod monitor;
pub mod nemesis;
pub mod net;
pub mod report;
pub mod run;
pub mod topology;
