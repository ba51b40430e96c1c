//! Availability per fault window: how much of the calm throughput the clients kept while a
//! fault was on, where the time went, and what the nodes reported meanwhile.
//!
//! Definitions (all from the history, on its clock):
//! - A **fault window** runs from the nemesis's `invoke :start` (injection begins) to its
//!   `info :stop` (healing done). The **settle** time is the [`SETTLE_S`] after it.
//! - **Calm** is every instant from [`WARMUP_S`] after the first client operation to the
//!   last client invocation that is in no fault window and no settle time. Calm is cut into
//!   pieces of [`PIECE_S`] (a shorter rest of at least half that counts, with its length).
//! - A **rate** is ok client operations (transfers, reads, history reads, resends; never
//!   hostile frames) completed in an interval, per second. The **calm rate** is the median
//!   of the calm pieces' rates; a window's **ratio** is its rate over the calm rate. The
//!   same for ok transfers alone (`writeRatio`).
//! - The **local ratio** compares a window with the calm around it instead: the median rate
//!   of the calm pieces that end in the [`LOCAL_S`] before the window or start in the
//!   [`LOCAL_S`] after its settle time. On a shared machine whose speed drifts over a long
//!   run, it is the fairer figure; the optional check uses it.
//! - **Latency** (p50, p99, mean) is over ok client operations completed in the interval.
//!   With a fixed number of clients, each waiting for its answer (a closed loop), the
//!   throughput is at best clients / mean latency: `latencyBound` = mean latency in the
//!   local calm pieces / mean latency in the window is the local ratio that latency alone
//!   explains. A local ratio well below it means time went to failed or timed-out
//!   operations and backoff, not to slow answers.
//! - The **longest write gap** is the longest interval inside the window with no ok
//!   transfer completing (window start and end count as bounds).
//! - **Elections**: rises of the highest term any node reported (`cluster.jsonl`, see
//!   `monitor`) during the window or its settle time; **leader changes** likewise.
//!
//! None of this fails a run unless asked: `--availability-min R` adds the `availability`
//! check, which flags every window of a [`GUARDED`] fault with a ratio below R.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::checker::CheckResult;
use crate::history::{pairs, Function, Op, OpType};
use crate::monitor::{self, Sample};

/// Seconds after a heal still counted as disturbed (neither the window nor calm).
pub const SETTLE_S: f64 = 1.0;
/// Seconds at the start of the run left out of calm (connections, first elections).
pub const WARMUP_S: f64 = 1.0;
/// Length of the calm pieces whose median is the calm rate.
pub const PIECE_S: f64 = 1.0;
/// How far before and after a window its local calm reaches.
pub const LOCAL_S: f64 = 30.0;
/// The faults the optional `availability` check holds to its threshold.
pub const GUARDED: [&str; 6] = [
    "kill",
    "kill-leader",
    "pause",
    "partition-leader",
    "partition-random",
    "partition-ring",
];

const NS: f64 = 1e9;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    pub count: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Calm {
    pub definition: String,
    pub seconds: f64,
    pub pieces: usize,
    pub ok_per_second: f64,
    pub writes_per_second: f64,
    pub latency: Latency,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowReport {
    pub index: usize,
    pub fault: String,
    pub detail: Value,
    pub start_s: f64,
    pub end_s: f64,
    pub seconds: f64,
    pub ok_per_second: f64,
    pub ratio: Option<f64>,
    pub writes_per_second: f64,
    pub write_ratio: Option<f64>,
    /// The calm around the window: pieces, their median rate, and the window's ratio to it.
    pub local_calm_pieces: usize,
    pub local_calm_ok_per_second: f64,
    pub local_ratio: Option<f64>,
    pub longest_write_gap_ms: f64,
    pub latency: Latency,
    pub latency_bound: Option<f64>,
    pub fails: usize,
    pub infos: usize,
    /// Unsuccessful operations by error, e.g. `timeout`, `connect`, `503 NO_LEADER`.
    pub errors: BTreeMap<String, usize>,
    /// Requests sent to each node, and ok answers from each, in the window.
    pub requests_by_node: Vec<usize>,
    pub ok_by_node: Vec<usize>,
    /// Term rises during the window and its settle time.
    pub elections: usize,
    /// (ms after the window's start, new leader, term), window and settle time.
    pub leader_changes: Vec<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultSummary {
    pub windows: usize,
    pub ratio_min: Option<f64>,
    pub ratio_median: Option<f64>,
    pub local_ratio_min: Option<f64>,
    pub local_ratio_median: Option<f64>,
    pub write_ratio_min: Option<f64>,
    pub write_ratio_median: Option<f64>,
    pub longest_write_gap_ms_max: f64,
    pub p99_ms_median: f64,
    pub elections: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Availability {
    pub calm: Calm,
    pub windows: Vec<WindowReport>,
    pub by_fault: BTreeMap<String, FaultSummary>,
}

/// A fault window as the nemesis recorded it, in ns.
#[derive(Debug, Clone)]
pub struct Window {
    pub fault: String,
    pub detail: Value,
    pub start_ns: u64,
    pub end_ns: u64,
}

/// The fault windows, from `invoke :start` to `info :stop` (or the history's end).
pub fn windows(history: &[Op]) -> Vec<Window> {
    let mut windows = Vec::new();
    let mut open: Option<Window> = None;
    for op in history.iter().filter(|op| op.process == "nemesis") {
        match (op.f, op.kind) {
            (Function::Start, OpType::Invoke) => {
                open = Some(Window {
                    fault: op.value["fault"].as_str().unwrap_or("?").to_owned(),
                    detail: Value::Null,
                    start_ns: op.time_ns,
                    end_ns: op.time_ns,
                })
            }
            (Function::Start, _) => {
                if let Some(window) = open.as_mut() {
                    window.detail = op.value["detail"].clone();
                }
            }
            (Function::Stop, OpType::Info) => {
                if let Some(mut window) = open.take() {
                    window.end_ns = op.time_ns;
                    windows.push(window);
                }
            }
            _ => {}
        }
    }
    if let Some(mut window) = open {
        window.end_ns = history.last().map_or(window.start_ns, |op| op.time_ns);
        windows.push(window);
    }
    windows
}

/// One completed client operation.
struct Done<'a> {
    invoked: u64,
    completed: u64,
    kind: OpType,
    f: Function,
    node: Option<usize>,
    error: Option<&'a str>,
}

fn client_ops(history: &[Op]) -> Vec<Done<'_>> {
    let mut ops: Vec<Done> = pairs(history)
        .into_iter()
        .filter(|(i, _)| {
            i.process.parse::<u64>().is_ok()
                && matches!(
                    i.f,
                    Function::Transfer | Function::Read | Function::History | Function::Resend
                )
        })
        .map(|(i, c)| Done {
            invoked: i.time_ns,
            completed: c.time_ns,
            kind: c.kind,
            f: i.f,
            node: i.node,
            error: c.error.as_deref(),
        })
        .collect();
    ops.sort_by_key(|op| op.completed);
    ops
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    Some(if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    })
}

fn latency(mut ms: Vec<f64>) -> Latency {
    ms.sort_by(f64::total_cmp);
    let mean = if ms.is_empty() {
        0.0
    } else {
        ms.iter().sum::<f64>() / ms.len() as f64
    };
    Latency {
        p50_ms: round(percentile(&ms, 50.0)),
        p99_ms: round(percentile(&ms, 99.0)),
        mean_ms: round(mean),
        count: ms.len(),
    }
}

fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

/// Ok completions in [from, to).
fn count_in(sorted: &[u64], from: u64, to: u64) -> usize {
    sorted.partition_point(|t| *t < to) - sorted.partition_point(|t| *t < from)
}

/// Intervals minus the union of `holes`, all as [start, end) in ns.
fn subtract(span: (u64, u64), mut holes: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    holes.sort();
    let mut segments = Vec::new();
    let mut at = span.0;
    for (start, end) in holes {
        if start > at {
            segments.push((at, start.min(span.1)));
        }
        at = at.max(end);
        if at >= span.1 {
            break;
        }
    }
    if at < span.1 {
        segments.push((at, span.1));
    }
    segments.retain(|(a, b)| b > a);
    segments
}

/// Calm pieces: each calm segment cut into [`PIECE_S`], keeping a rest of at least half.
fn pieces(segments: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let piece = (PIECE_S * NS) as u64;
    let mut pieces = Vec::new();
    for &(start, end) in segments {
        let mut at = start;
        while at < end {
            let stop = (at + piece).min(end);
            if stop - at >= piece / 2 {
                pieces.push((at, stop));
            }
            at = stop;
        }
    }
    pieces
}

fn error_kind(error: Option<&str>) -> String {
    let Some(error) = error else {
        return "?".into();
    };
    if error.starts_with(|c: char| c.is_ascii_digit()) {
        // "503 NO_LEADER", "503: unreadable body: ..."
        let mut words = error.split([' ', ':']).filter(|w| !w.is_empty());
        let status = words.next().unwrap_or("?");
        return match words.next() {
            Some(code) if code.chars().all(|c| c.is_ascii_uppercase() || c == '_') => {
                format!("{status} {code}")
            }
            _ => format!("{status} other"),
        };
    }
    error.split(':').next().unwrap_or("?").trim().to_owned()
}

/// Computes the report. `samples` may be empty (no `cluster.jsonl`).
pub fn analyse(history: &[Op], samples: &[Sample], nodes: usize) -> Availability {
    let ops = client_ops(history);
    let windows = windows(history);
    let ok_times: Vec<u64> = ops
        .iter()
        .filter(|op| op.kind == OpType::Ok)
        .map(|op| op.completed)
        .collect();
    let write_times: Vec<u64> = ops
        .iter()
        .filter(|op| op.kind == OpType::Ok && op.f == Function::Transfer)
        .map(|op| op.completed)
        .collect();
    let first = ops.iter().map(|op| op.invoked).min().unwrap_or(0);
    let last = ops.iter().map(|op| op.invoked).max().unwrap_or(0);
    let settle = (SETTLE_S * NS) as u64;
    let holes: Vec<(u64, u64)> = windows
        .iter()
        .map(|w| (w.start_ns, w.end_ns + settle))
        .collect();
    let calm_segments = subtract((first + (WARMUP_S * NS) as u64, last), holes);
    let calm_pieces = pieces(&calm_segments);
    let rate =
        |times: &[u64], (a, b): (u64, u64)| count_in(times, a, b) as f64 / ((b - a) as f64 / NS);
    let calm_rates: Vec<f64> = calm_pieces.iter().map(|p| rate(&ok_times, *p)).collect();
    let calm_write_rates: Vec<f64> = calm_pieces.iter().map(|p| rate(&write_times, *p)).collect();
    let in_calm = |t: u64| {
        let i = calm_segments.partition_point(|(start, _)| *start <= t);
        i > 0 && t < calm_segments[i - 1].1
    };
    let calm_latency = latency(
        ops.iter()
            .filter(|op| op.kind == OpType::Ok && in_calm(op.completed))
            .map(|op| (op.completed - op.invoked) as f64 / 1e6)
            .collect(),
    );
    let calm = Calm {
        definition: format!(
            "outside every fault window (nemesis invoke :start to info :stop) and the {SETTLE_S} s after it, \
             from {WARMUP_S} s after the first client operation to the last invocation; rate = median over \
             {PIECE_S} s pieces of ok client operations completed"
        ),
        seconds: round(
            calm_segments
                .iter()
                .map(|(a, b)| (b - a) as f64 / NS)
                .sum(),
        ),
        pieces: calm_pieces.len(),
        ok_per_second: round(median(&calm_rates).unwrap_or(0.0)),
        writes_per_second: round(median(&calm_write_rates).unwrap_or(0.0)),
        latency: calm_latency,
    };
    let terms = monitor::term_changes(samples);
    let leaders = monitor::leader_changes(samples);
    let ratio_of = |value: f64, calm: f64| (calm > 0.0).then(|| round(value / calm));
    let reports: Vec<WindowReport> = windows
        .iter()
        .enumerate()
        .map(|(index, w)| {
            let span = (w.start_ns, w.end_ns.max(w.start_ns + 1));
            let seconds = (span.1 - span.0) as f64 / NS;
            let ok_per_second = rate(&ok_times, span);
            let writes_per_second = rate(&write_times, span);
            let done: Vec<&Done> = ops
                .iter()
                .filter(|op| op.completed >= span.0 && op.completed < span.1)
                .collect();
            let window_latency = latency(
                done.iter()
                    .filter(|op| op.kind == OpType::Ok)
                    .map(|op| (op.completed - op.invoked) as f64 / 1e6)
                    .collect(),
            );
            let reach = (LOCAL_S * NS) as u64;
            let local: Vec<(u64, u64)> = calm_pieces
                .iter()
                .copied()
                .filter(|&(start, end)| {
                    (end <= w.start_ns && end + reach > w.start_ns)
                        || (start >= w.end_ns && start < w.end_ns + settle + reach)
                })
                .collect();
            let local_rates: Vec<f64> = local.iter().map(|p| rate(&ok_times, *p)).collect();
            let local_rate = median(&local_rates).unwrap_or(0.0);
            let in_local = |t: u64| local.iter().any(|&(a, b)| t >= a && t < b);
            let local_latency = latency(
                ops.iter()
                    .filter(|op| op.kind == OpType::Ok && in_local(op.completed))
                    .map(|op| (op.completed - op.invoked) as f64 / 1e6)
                    .collect(),
            );
            let mut errors = BTreeMap::new();
            for op in done.iter().filter(|op| op.kind != OpType::Ok) {
                *errors.entry(error_kind(op.error)).or_default() += 1;
            }
            let mut requests_by_node = vec![0; nodes];
            let mut ok_by_node = vec![0; nodes];
            for op in ops
                .iter()
                .filter(|op| op.invoked >= span.0 && op.invoked < span.1)
            {
                if let Some(node) = op.node.filter(|n| *n < nodes) {
                    requests_by_node[node] += 1;
                }
            }
            for op in done.iter().filter(|op| op.kind == OpType::Ok) {
                if let Some(node) = op.node.filter(|n| *n < nodes) {
                    ok_by_node[node] += 1;
                }
            }
            let mut bounds = vec![span.0];
            bounds.extend(
                write_times[write_times.partition_point(|t| *t < span.0)
                    ..write_times.partition_point(|t| *t < span.1)]
                    .iter(),
            );
            bounds.push(span.1);
            let gap_ns = bounds.windows(2).map(|b| b[1] - b[0]).max().unwrap_or(0);
            let disturbed = (w.start_ns, w.end_ns + settle);
            let elections = terms
                .iter()
                .filter(|t| t.time_ns >= disturbed.0 && t.time_ns < disturbed.1)
                .count();
            let leader_changes = leaders
                .iter()
                .filter(|l| l.time_ns >= disturbed.0 && l.time_ns < disturbed.1)
                .map(|l| {
                    json!({"afterMs": round((l.time_ns - w.start_ns) as f64 / 1e6), "leader": l.leader, "term": l.term})
                })
                .collect();
            WindowReport {
                index,
                fault: w.fault.clone(),
                detail: w.detail.clone(),
                start_s: round(w.start_ns as f64 / NS),
                end_s: round(w.end_ns as f64 / NS),
                seconds: round(seconds),
                ok_per_second: round(ok_per_second),
                ratio: ratio_of(ok_per_second, calm.ok_per_second),
                writes_per_second: round(writes_per_second),
                write_ratio: ratio_of(writes_per_second, calm.writes_per_second),
                local_calm_pieces: local.len(),
                local_calm_ok_per_second: round(local_rate),
                local_ratio: ratio_of(ok_per_second, local_rate),
                longest_write_gap_ms: round(gap_ns as f64 / 1e6),
                latency_bound: (window_latency.mean_ms > 0.0 && local_latency.mean_ms > 0.0)
                    .then(|| round(local_latency.mean_ms / window_latency.mean_ms)),
                latency: window_latency,
                fails: done.iter().filter(|op| op.kind == OpType::Fail).count(),
                infos: done.iter().filter(|op| op.kind == OpType::Info).count(),
                errors,
                requests_by_node,
                ok_by_node,
                elections,
                leader_changes,
            }
        })
        .collect();
    let mut by_fault: BTreeMap<String, Vec<&WindowReport>> = BTreeMap::new();
    for report in &reports {
        by_fault
            .entry(report.fault.clone())
            .or_default()
            .push(report);
    }
    let by_fault = by_fault
        .into_iter()
        .map(|(fault, list)| {
            let ratios: Vec<f64> = list.iter().filter_map(|r| r.ratio).collect();
            let local_ratios: Vec<f64> = list.iter().filter_map(|r| r.local_ratio).collect();
            let write_ratios: Vec<f64> = list.iter().filter_map(|r| r.write_ratio).collect();
            let p99s: Vec<f64> = list.iter().map(|r| r.latency.p99_ms).collect();
            let summary = FaultSummary {
                windows: list.len(),
                ratio_min: ratios.iter().copied().reduce(f64::min),
                ratio_median: median(&ratios).map(round),
                local_ratio_min: local_ratios.iter().copied().reduce(f64::min),
                local_ratio_median: median(&local_ratios).map(round),
                write_ratio_min: write_ratios.iter().copied().reduce(f64::min),
                write_ratio_median: median(&write_ratios).map(round),
                longest_write_gap_ms_max: list
                    .iter()
                    .map(|r| r.longest_write_gap_ms)
                    .fold(0.0, f64::max),
                p99_ms_median: median(&p99s).unwrap_or(0.0),
                elections: list.iter().map(|r| r.elections).sum(),
            };
            (fault, summary)
        })
        .collect();
    Availability {
        calm,
        windows: reports,
        by_fault,
    }
}

/// The optional `availability` check: every window of a [`GUARDED`] fault keeps at least
/// `minimum` of the calm rate around it (the local ratio; the run-wide ratio where the
/// window has no calm around it).
pub fn check(availability: &Availability, minimum: f64) -> CheckResult {
    let mut anomalies = Vec::new();
    let mut checked = 0;
    for window in availability
        .windows
        .iter()
        .filter(|w| GUARDED.contains(&w.fault.as_str()))
    {
        checked += 1;
        let ratio = window.local_ratio.or(window.ratio);
        if ratio.is_none_or(|r| r < minimum) {
            anomalies.push(json!({"window": window.index, "fault": window.fault, "startS": window.start_s,
                                  "localRatio": window.local_ratio, "ratio": window.ratio, "minimum": minimum,
                                  "problem": "ok throughput in the window below the minimum share of calm"}));
        }
    }
    CheckResult {
        name: format!("availability (>= {minimum} of calm)"),
        valid: anomalies.is_empty(),
        checked,
        anomalies,
        details: None,
    }
}

fn show(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{v:.2}"))
}

/// The summary.txt section.
pub fn text(availability: &Availability) -> String {
    let mut text = String::new();
    let calm = &availability.calm;
    let _ = writeln!(
        text,
        "availability: ratio = ok ops/s in the fault window / calm median; local = the same against the \
         calm within {LOCAL_S} s around the window; lat_bd = the local ratio latency alone explains; calm = \
         outside fault windows and {SETTLE_S} s after each heal: {:.0} s in {} pieces, {:.1} ok/s, {:.1} writes/s, \
         latency p50 {:.1} ms p99 {:.1} ms mean {:.1} ms",
        calm.seconds,
        calm.pieces,
        calm.ok_per_second,
        calm.writes_per_second,
        calm.latency.p50_ms,
        calm.latency.p99_ms,
        calm.latency.mean_ms
    );
    let _ = writeln!(
        text,
        "  {:>3} {:<17} {:>7} {:>5} {:>6} {:>6} {:>6} {:>7} {:>7} {:>8} {:>6} {:>4}  errors",
        "#",
        "fault",
        "start_s",
        "secs",
        "ratio",
        "local",
        "writes",
        "gap_ms",
        "p50_ms",
        "p99_ms",
        "lat_bd",
        "elec"
    );
    for w in &availability.windows {
        let errors: Vec<String> = w.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(
            text,
            "  {:>3} {:<17} {:>7.1} {:>5.1} {:>6} {:>6} {:>6} {:>7.0} {:>7.1} {:>8.1} {:>6} {:>4}  {}",
            w.index,
            w.fault,
            w.start_s,
            w.seconds,
            show(w.ratio),
            show(w.local_ratio),
            show(w.write_ratio),
            w.longest_write_gap_ms,
            w.latency.p50_ms,
            w.latency.p99_ms,
            show(w.latency_bound),
            w.elections,
            errors.join(", ")
        );
    }
    let _ = writeln!(text, "  per fault:");
    for (fault, s) in &availability.by_fault {
        let _ = writeln!(
            text,
            "    {fault:<17} windows {:>2}  ratio min {} median {}  local min {} median {}  writes min {} median {}  \
             gap max {:.0} ms  p99 median {:.1} ms  elections {}",
            s.windows,
            show(s.ratio_min),
            show(s.ratio_median),
            show(s.local_ratio_min),
            show(s.local_ratio_median),
            show(s.write_ratio_min),
            show(s.write_ratio_median),
            s.longest_write_gap_ms_max,
            s.p99_ms_median,
            s.elections
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calm_is_what_the_windows_leave() {
        let s = 1_000_000_000;
        let segments = subtract((0, 20 * s), vec![(5 * s, 8 * s), (7 * s, 9 * s)]);
        assert_eq!(segments, vec![(0, 5 * s), (9 * s, 20 * s)]);
        let cut = pieces(&[(0, 2 * s + s / 2), (3 * s, 3 * s + s / 4)]);
        assert_eq!(cut, vec![(0, s), (s, 2 * s), (2 * s, 2 * s + s / 2)]);
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), Some(2.5));
        assert_eq!(error_kind(Some("503 NO_LEADER")), "503 NO_LEADER");
        assert_eq!(error_kind(Some("timeout: operation timed out")), "timeout");
        assert_eq!(error_kind(Some("503: unreadable body: x")), "503 other");
    }
}
