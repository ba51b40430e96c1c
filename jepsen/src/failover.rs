//! `ledger-jepsen failover`: how long writes stop when the leader dies under load.
//!
//! Three nodes as in `run` (same topology, proxies and processes); `--clients` clients
//! (default 64) write transfers between `--accounts` accounts, each through its current
//! node and moving to another on trouble (see `client`: what a client behind a Service
//! does). Then, `--kills` times (default 5): wait until every node is ready and the load
//! has run `--calm-secs`, SIGKILL the leader, wait until throughput is back (at most
//! `--recover-secs`), restart the node, and wait for every node to be ready again.
//!
//! For each kill, from the history (ok transfer completions, on the history's clock):
//! - `recovered_ms`: from the kill to the first instant T at which the ok transfers
//!   completed after the kill in the [`RATE_WINDOW_MS`] ending at T reach half of the
//!   pre-kill rate (the ok transfers per second over the [`PRE_KILL_MS`] before the kill);
//! - `gap_ms`, the write gap: the longest interval between consecutive ok transfers from
//!   the last one before the kill until T. Answers the dead leader had already sent arrive
//!   just after the kill, so the interval that strictly contains the kill instant
//!   (`gap_at_kill_ms`, also reported) is often a few ms, followed by the real outage;
//! - `new_leader_ms`: when the cluster monitor (200 ms polls) first saw a leader of a newer
//!   term than any before the kill.
//!
//! Elections during calm: rises of the highest term any node reports (`cluster.jsonl`)
//! while no kill is being handled (from every node ready until the next kill, and after
//! the last restart), under the full load. There should be none.
//!
//! Afterwards the final state is read and the acknowledged transfers are checked
//! (`transfers-final`, `replicas-identical`, `idempotency`). The last line of the output is
//! `failover_gap_ms_max=N`. Bounded: every wait has a deadline, and the clients stop at
//! `--max-secs` whatever happens.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::json;
use tokio::sync::watch;

use crate::availability::median;
use crate::checker;
use crate::client::{self, ClientContext, Setup, Workloads};
use crate::db::NODES;
use crate::history::{self, pairs, Function, OpType, Recorder};
use crate::monitor::{self, Monitor};
use crate::nemesis;
use crate::report;
use crate::run::{self, Cluster};

/// The pre-kill rate is measured over this long before the kill.
pub const PRE_KILL_MS: u64 = 3_000;
/// Throughput counts as back when this long a window holds half the pre-kill rate.
pub const RATE_WINDOW_MS: u64 = 200;
/// How often the controller looks at the ok count while waiting for recovery.
const WATCH_MS: u64 = 50;
/// Kept after recovery before the node is restarted, so the measurement sees steady load.
const AFTER_RECOVERY_MS: u64 = 1_000;
/// Longest wait for every node to be ready (after a restart).
const READY_MS_MAX: u64 = 60_000;

pub struct FailoverOptions {
    pub clients: usize,
    pub kills: usize,
    pub calm_secs: u64,
    pub recover_secs: u64,
    pub accounts: usize,
    pub max_secs: u64,
    pub out: PathBuf,
    pub ledger_bin: PathBuf,
    pub network: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Kill {
    pub index: usize,
    pub node: usize,
    pub at_s: f64,
    pub pre_kill_writes_per_second: f64,
    /// The interval with no ok transfer that strictly contains the kill instant.
    pub gap_at_kill_ms: f64,
    /// The write gap: the longest interval with no ok transfer from the last one before
    /// the kill until throughput was back (at least `gap_at_kill_ms`).
    pub gap_ms: f64,
    pub recovered_ms: Option<f64>,
    pub new_leader_ms: Option<f64>,
    pub new_leader: Option<u64>,
    /// Unsuccessful transfers completed between the kill and recovery, by error.
    pub errors: std::collections::BTreeMap<String, usize>,
}

/// A calm stretch: every node ready, no kill being handled.
#[derive(Debug, Clone, Copy)]
struct Calm {
    start_ns: u64,
    end_ns: u64,
}

pub async fn failover(options: FailoverOptions) -> anyhow::Result<bool> {
    anyhow::ensure!(
        options.clients >= 1 && options.kills >= 1 && options.accounts >= 2,
        "need at least 1 client, 1 kill and 2 accounts"
    );
    std::fs::create_dir_all(&options.out)?;
    let cluster = Cluster::start(&options.ledger_bin, &options.network).await?;
    let interrupted = run::stop_on_signal();
    let outcome = measure(&options, &cluster, interrupted).await;
    cluster.shut_down(&options.out).await;
    outcome
}

async fn wait_or_stop(duration: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::time::timeout(duration, stop.wait_for(|s| *s))
        .await
        .is_ok()
}

async fn measure(
    options: &FailoverOptions,
    cluster: &Cluster,
    mut interrupted: watch::Receiver<bool>,
) -> anyhow::Result<bool> {
    let http = client::http_client()?;
    let urls = &cluster.urls;
    run::wait_all_ready(&http, urls)
        .await
        .context("cluster never became ready")?;
    let setup = Arc::new(Setup {
        accounts: (0..options.accounts).map(|n| format!("acct-{n}")).collect(),
        history_accounts: Vec::new(),
        initial_balance: Decimal::from(1_000_000),
    });
    run::create_accounts(&http, urls, &setup).await?;
    println!(
        "failover: {} clients writing transfers through all {NODES} nodes, {} kills of the leader",
        options.clients, options.kills
    );

    let recorder = Recorder::new();
    let started_unix_ms = run::unix_ms();
    let (monitor_stop, monitor_stopped) = watch::channel(false);
    let monitor = Monitor::start(
        http.clone(),
        urls.to_vec(),
        recorder.clone(),
        monitor_stopped,
    );
    let (clients_stop, clients_stopped) = watch::channel(false);
    let context = Arc::new(ClientContext {
        http: http.clone(),
        urls: urls.to_vec(),
        recorder: recorder.clone(),
        setup: setup.clone(),
        workloads: Workloads {
            bank: false,
            history: false,
            idempotency: false,
        },
        deadline: Instant::now() + Duration::from_secs(options.max_secs),
        ops_max: usize::MAX,
        stop: clients_stopped,
    });
    let clients: Vec<_> = (0..options.clients)
        .map(|p| tokio::spawn(client::run(p, context.clone())))
        .collect();

    let mut kills: Vec<(usize, u64)> = Vec::new();
    let mut calms: Vec<Calm> = Vec::new();
    let mut problem: Option<anyhow::Error> = None;
    let mut calm_start = recorder.now_ns();
    for index in 0..options.kills {
        if wait_or_stop(Duration::from_secs(options.calm_secs), &mut interrupted).await {
            break;
        }
        if Instant::now() >= context.deadline {
            problem = Some(anyhow::anyhow!("--max-secs reached after {index} kills"));
            break;
        }
        let Some(leader) = nemesis::find_leader(&http, &*cluster.db.lock().await).await else {
            problem = Some(anyhow::anyhow!("no leader before kill {index}"));
            break;
        };
        let what = json!({"fault": "kill-leader"});
        recorder.record(
            "nemesis",
            OpType::Invoke,
            Function::Start,
            what.clone(),
            None,
            None,
        );
        let kill_ns = recorder.now_ns();
        calms.push(Calm {
            start_ns: calm_start,
            end_ns: kill_ns,
        });
        let ok_before = recorder.ok_count();
        cluster.db.lock().await.kill(leader);
        cluster.net.node_down(leader);
        recorder.record(
            "nemesis",
            OpType::Info,
            Function::Start,
            json!({"fault": "kill-leader", "detail": {"node": leader, "signal": "SIGKILL"}}),
            None,
            None,
        );
        kills.push((leader, kill_ns));
        // The pre-kill rate, from the ok count: enough to know when to move on; the
        // report recomputes everything from the history.
        let pre_rate = ok_rate_before(&recorder, kill_ns);
        let recovery_deadline = Instant::now() + Duration::from_secs(options.recover_secs);
        let mut last = (Instant::now(), ok_before);
        loop {
            if wait_or_stop(Duration::from_millis(WATCH_MS), &mut interrupted).await {
                break;
            }
            let now = (Instant::now(), recorder.ok_count());
            if now.0.duration_since(last.0) >= Duration::from_millis(RATE_WINDOW_MS) {
                let rate = (now.1 - last.1) as f64 / now.0.duration_since(last.0).as_secs_f64();
                if rate >= pre_rate / 2.0 {
                    break;
                }
                last = now;
            }
            if Instant::now() >= recovery_deadline {
                println!(
                    "kill {index}: throughput not back within {} s",
                    options.recover_secs
                );
                break;
            }
        }
        if wait_or_stop(Duration::from_millis(AFTER_RECOVERY_MS), &mut interrupted).await {
            break;
        }
        recorder.record(
            "nemesis",
            OpType::Invoke,
            Function::Stop,
            what.clone(),
            None,
            None,
        );
        cluster.net.node_up(leader);
        cluster.db.lock().await.start(leader)?;
        recorder.record("nemesis", OpType::Info, Function::Stop, what, None, None);
        let ready = tokio::time::timeout(
            Duration::from_millis(READY_MS_MAX),
            run::wait_all_ready(&http, urls),
        )
        .await;
        if !matches!(ready, Ok(Ok(()))) {
            problem = Some(anyhow::anyhow!("node {leader} not ready after its restart"));
            break;
        }
        calm_start = recorder.now_ns();
    }
    // The last calm stretch: after the last restart, one more calm period of load.
    if problem.is_none() && !*interrupted.borrow() {
        wait_or_stop(Duration::from_secs(options.calm_secs), &mut interrupted).await;
        calms.push(Calm {
            start_ns: calm_start,
            end_ns: recorder.now_ns(),
        });
    }
    let _ = clients_stop.send(true);
    for client in clients {
        client.await?;
    }
    let _ = monitor_stop.send(true);
    if *interrupted.borrow() {
        anyhow::bail!("interrupted: nodes stopped, nothing measured");
    }
    let history = recorder.ops();
    let samples = monitor.samples();
    let measured = analyse(&history, &samples, &kills);
    let calm_elections: Vec<monitor::TermChange> = monitor::term_changes(&samples)
        .into_iter()
        .filter(|t| {
            calms
                .iter()
                .any(|c| t.time_ns >= c.start_ns && t.time_ns < c.end_ns)
        })
        .collect();
    let calm_seconds: f64 = calms
        .iter()
        .map(|c| (c.end_ns - c.start_ns) as f64 / 1e9)
        .sum();

    // The acknowledged transfers survived: read the final state and check them.
    nemesis::heal_all(&cluster.db, &cluster.net).await?;
    run::wait_all_ready(&http, urls).await?;
    let last = run::final_state(&http, urls, &cluster.db, &setup).await?;
    let checks = vec![
        checker::transfers_final(&history, &last),
        checker::replicas_identical(&last),
        checker::idempotency(&history, &setup, &last),
    ];
    let valid = checks.iter().all(|c| c.valid);

    // Campaigns the nodes logged, on the history's clock; those in calm should not exist.
    let campaigns: Vec<(usize, u64)> = log_times(cluster.data.path(), "pre-vote won")
        .into_iter()
        .filter_map(|(node, ms)| {
            let ns = ms.checked_sub(started_unix_ms)? * 1_000_000;
            Some((node, ns))
        })
        .collect();
    let calm_campaigns = campaigns
        .iter()
        .filter(|(_, t)| calms.iter().any(|c| *t >= c.start_ns && *t < c.end_ns))
        .count();
    let text = summary(
        options,
        &history,
        &measured,
        &calm_elections,
        calm_seconds,
        &checks,
        (campaigns.len(), calm_campaigns),
    );
    let out = &options.out;
    std::fs::write(out.join("history.jsonl"), history::to_jsonl(&history))?;
    std::fs::write(out.join("cluster.jsonl"), monitor::to_jsonl(&samples))?;
    std::fs::write(out.join("timeline.svg"), report::timeline_svg(&history))?;
    std::fs::write(
        out.join("failover.json"),
        serde_json::to_string_pretty(&json!({
            "clients": options.clients,
            "startedAtUnixMs": started_unix_ms,
            "kills": measured,
            "calmSeconds": calm_seconds,
            "calmElections": calm_elections,
            "campaignsLogged": campaigns.len(),
            "campaignsLoggedDuringCalm": calm_campaigns,
            "checks": checks,
            "valid": valid,
        }))?,
    )?;
    std::fs::write(out.join("summary.txt"), &text)?;
    println!("run directory: {}", out.display());
    print!("{text}");
    if let Some(problem) = problem {
        return Err(problem);
    }
    Ok(valid)
}

/// ok transfers per second over the [`PRE_KILL_MS`] before `kill_ns`.
fn ok_rate_before(recorder: &Recorder, kill_ns: u64) -> f64 {
    let from = kill_ns.saturating_sub(PRE_KILL_MS * 1_000_000);
    let ops = recorder.ops();
    let count = ops
        .iter()
        .rev()
        .take_while(|op| op.time_ns >= from)
        .filter(|op| op.kind == OpType::Ok && op.time_ns < kill_ns)
        .count();
    count as f64 / (PRE_KILL_MS as f64 / 1e3)
}

fn analyse(
    history: &[history::Op],
    samples: &[monitor::Sample],
    kills: &[(usize, u64)],
) -> Vec<Kill> {
    let done: Vec<(&history::Op, &history::Op)> = pairs(history)
        .into_iter()
        .filter(|(i, _)| i.f == Function::Transfer)
        .collect();
    let mut ok: Vec<u64> = done
        .iter()
        .filter(|(_, c)| c.kind == OpType::Ok)
        .map(|(_, c)| c.time_ns)
        .collect();
    ok.sort_unstable();
    let window = RATE_WINDOW_MS * 1_000_000;
    kills
        .iter()
        .enumerate()
        .map(|(index, &(node, kill))| {
            let pre_from = kill.saturating_sub(PRE_KILL_MS * 1_000_000);
            let pre = ok.partition_point(|t| *t < kill) - ok.partition_point(|t| *t < pre_from);
            let pre_rate = pre as f64 / (PRE_KILL_MS as f64 / 1e3);
            let need = (pre_rate * RATE_WINDOW_MS as f64 / 1e3 / 2.0)
                .ceil()
                .max(1.0) as usize;
            let first_after = ok.partition_point(|t| *t <= kill);
            let before = first_after.checked_sub(1).map(|i| ok[i]).unwrap_or(0);
            // The first ok completion T after the kill with `need` completions in
            // (T - window, T], counting only completions after the kill.
            let recovered = (first_after..ok.len()).find(|&i| {
                let t = ok[i];
                let from = ok.partition_point(|x| *x + window <= t).max(first_after);
                i + 1 - from >= need
            });
            let recovered_at = recovered.map(|i| ok[i]);
            let end = recovered_at.unwrap_or_else(|| ok.last().copied().unwrap_or(kill));
            let mut points = vec![before];
            points.extend(ok[first_after..].iter().take_while(|t| **t <= end));
            let gap_at_kill = points
                .get(1)
                .map_or(end.saturating_sub(before), |next| next - before);
            let gap = points
                .windows(2)
                .map(|w| w[1] - w[0])
                .max()
                .unwrap_or(gap_at_kill);
            // The first leader of a newer term than any seen before the kill (the restarted
            // node itself, when the others never elected one).
            let term_before = samples
                .iter()
                .filter(|s| s.time_ns <= kill)
                .filter_map(|s| s.term)
                .max();
            let new_leader = samples.iter().find(|s| {
                s.time_ns > kill && s.leader.is_some() && s.term.is_some() && s.term > term_before
            });
            let mut errors = std::collections::BTreeMap::new();
            for (_, c) in done
                .iter()
                .filter(|(_, c)| c.kind != OpType::Ok && c.time_ns >= kill && c.time_ns <= end)
            {
                let kind = c.error.as_deref().unwrap_or("?");
                let kind = if kind.starts_with(|ch: char| ch.is_ascii_digit()) {
                    kind.split(':').next().unwrap_or(kind).to_owned()
                } else {
                    kind.split(':').next().unwrap_or("?").to_owned()
                };
                *errors.entry(kind).or_default() += 1;
            }
            let ms = |ns: u64| (ns as f64 / 1e6 * 10.0).round() / 10.0;
            Kill {
                index,
                node,
                at_s: ms(kill) / 1e3,
                pre_kill_writes_per_second: pre_rate,
                gap_at_kill_ms: ms(gap_at_kill),
                gap_ms: ms(gap),
                recovered_ms: recovered_at.map(|t| ms(t - kill)),
                new_leader_ms: new_leader.map(|s| ms(s.time_ns - kill)),
                new_leader: new_leader.and_then(|s| s.leader),
                errors,
            }
        })
        .collect()
}

fn summary(
    options: &FailoverOptions,
    history: &[history::Op],
    kills: &[Kill],
    calm_elections: &[monitor::TermChange],
    calm_seconds: f64,
    checks: &[checker::CheckResult],
    (campaigns, calm_campaigns): (usize, usize),
) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    let transfers = pairs(history)
        .iter()
        .filter(|(i, _)| i.f == Function::Transfer)
        .count();
    let _ = writeln!(
        text,
        "failover: {} clients, {} kills of the leader (SIGKILL), {transfers} transfers; client timeout {} ms, \
         connect timeout {} ms, backoff {}-{} ms",
        options.clients,
        kills.len(),
        client::REQUEST_TIMEOUT_MS,
        client::CONNECT_TIMEOUT_MS,
        client::BACKOFF_MS,
        client::BACKOFF_MS_MAX
    );
    for kill in kills {
        let errors: Vec<String> = kill
            .errors
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(
            text,
            "  kill {} of node {} at {:.1} s: pre-kill {:.0} writes/s, write gap {:.0} ms (strictly containing the kill: {:.0} ms), \
             back to half rate after {} ms, new leader {} seen after {} ms; errors: {}",
            kill.index,
            kill.node,
            kill.at_s,
            kill.pre_kill_writes_per_second,
            kill.gap_ms,
            kill.gap_at_kill_ms,
            kill.recovered_ms.map_or("-".into(), |v| format!("{v:.0}")),
            kill.new_leader.map_or("-".into(), |v| v.to_string()),
            kill.new_leader_ms.map_or("-".into(), |v| format!("{v:.0}")),
            if errors.is_empty() { "none".into() } else { errors.join(", ") }
        );
    }
    let gaps: Vec<f64> = kills.iter().map(|k| k.gap_ms).collect();
    let recovered: Vec<f64> = kills.iter().filter_map(|k| k.recovered_ms).collect();
    let stats = |values: &[f64]| {
        if values.is_empty() {
            return "-".to_owned();
        }
        format!(
            "min {:.0} median {:.0} max {:.0}",
            values.iter().copied().fold(f64::INFINITY, f64::min),
            median(values).unwrap_or(0.0),
            values.iter().copied().fold(0.0, f64::max)
        )
    };
    let _ = writeln!(text, "write gap ms: {}", stats(&gaps));
    let _ = writeln!(text, "back to half rate ms: {}", stats(&recovered));
    let _ = writeln!(
        text,
        "elections during calm under load: {} in {calm_seconds:.0} s{}",
        calm_elections.len(),
        calm_elections
            .iter()
            .map(|t| format!(
                "; term {} -> {} seen on node {} at {:.1} s",
                t.from,
                t.to,
                t.node,
                t.time_ns as f64 / 1e9
            ))
            .collect::<String>()
    );
    let _ = writeln!(
        text,
        "campaigns after a won pre-vote (node logs): {campaigns} in all, {calm_campaigns} during calm"
    );
    for check in checks {
        let _ = writeln!(
            text,
            "  {:<20} {} ({} checked)",
            check.name,
            if check.valid { "valid" } else { "INVALID" },
            check.checked
        );
    }
    let _ = writeln!(text, "calm_elections={}", calm_elections.len());
    let _ = writeln!(
        text,
        "failover_gap_ms_max={:.0}",
        gaps.iter().copied().fold(0.0, f64::max)
    );
    text
}

/// Wall-clock times (unix ms) of the node log lines containing `needle`, with their node.
/// The nodes log in text form, each line starting with an RFC 3339 UTC timestamp.
pub fn log_times(dir: &Path, needle: &str) -> Vec<(usize, u64)> {
    let mut times = Vec::new();
    for node in 0..NODES {
        let Ok(log) = std::fs::read_to_string(dir.join(format!("node-{node}.log"))) else {
            continue;
        };
        for line in log.lines().filter(|l| l.contains(needle)) {
            if let Some(ms) = rfc3339_unix_ms(strip_ansi(line).trim_start()) {
                times.push((node, ms));
            }
        }
    }
    times.sort_by_key(|(_, ms)| *ms);
    times
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... letter
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `2026-11-25T10:00:00.123456Z ...` to unix ms.
fn rfc3339_unix_ms(text: &str) -> Option<u64> {
    let stamp = text.get(..20)?;
    let number = |range: std::ops::Range<usize>| stamp.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if stamp.as_bytes()[4] != b'-' || stamp.as_bytes()[10] != b'T' {
        return None;
    }
    let fraction: String = text[19..]
        .strip_prefix('.')
        .map(|f| f.chars().take_while(char::is_ascii_digit).collect())
        .unwrap_or_default();
    let millis = format!("{fraction:0<3}").get(..3)?.parse::<i64>().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    u64::try_from(seconds * 1_000 + millis).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transfer(ops: &mut Vec<history::Op>, at_us: u64, kind: OpType) {
        for (time_ns, kind) in [
            ((at_us - 500) * 1_000, OpType::Invoke),
            (at_us * 1_000, kind),
        ] {
            ops.push(history::Op {
                index: ops.len() as u64,
                time_ns,
                process: "0".into(),
                kind,
                f: Function::Transfer,
                value: json!({}),
                node: Some(0),
                error: None,
            });
        }
    }

    /// 1,000 ok transfers a second; the leader dies at 10 s; three answers already in
    /// flight arrive just after; nothing until 11.2 s; then the same rate again.
    #[test]
    fn the_write_gap_spans_the_outage_not_the_answers_in_flight() {
        let mut ops = Vec::new();
        for ms in 7_000..10_000 {
            transfer(&mut ops, ms * 1_000, OpType::Ok);
        }
        for us in [10_000_500, 10_001_000, 10_001_500] {
            transfer(&mut ops, us, OpType::Ok);
        }
        for ms in 11_200..13_000 {
            transfer(&mut ops, ms * 1_000, OpType::Ok);
        }
        let kills = analyse(&ops, &[], &[(1, 10_000_000_000)]);
        let kill = &kills[0];
        assert_eq!(kill.pre_kill_writes_per_second, 1_000.0);
        assert_eq!(kill.gap_at_kill_ms, 1.5);
        assert_eq!(kill.gap_ms, 1_198.5);
        // 100 answers after the kill within 200 ms (half the pre-kill rate): the 100th at 11.299 s.
        assert_eq!(kill.recovered_ms, Some(1_299.0));
    }

    #[test]
    fn log_timestamps() {
        assert_eq!(rfc3339_unix_ms("1970-01-01T00:00:01.5Z x"), Some(1_500));
        assert_eq!(
            rfc3339_unix_ms("2024-01-31T10:00:00.123456Z  INFO raft::elector: pre-vote won"),
            Some(1_706_695_200_123)
        );
        assert_eq!(
            strip_ansi("\u{1b}[2m2024-01-31T10:00:00.1Z\u{1b}[0m INFO"),
            "2024-01-31T10:00:00.1Z INFO"
        );
    }
}
