//! A run's outputs: the text summary and a Jepsen-style performance timeline (SVG):
//! throughput per second and every operation's latency, fault windows shaded.

use std::fmt::Write as _;

use crate::checker::CheckResult;
use crate::history::{pairs, Function, Op, OpType};

const WIDTH: f64 = 1000.0;
const PLOT_HEIGHT: f64 = 220.0;
const MARGIN: f64 = 50.0;

pub fn summary(
    history: &[Op],
    results: &[CheckResult],
    nemeses: &[&str],
    duration_s: f64,
) -> String {
    let mut text = String::new();
    let completed = pairs(history);
    let count = |f: Function, kind: OpType| {
        completed
            .iter()
            .filter(|(i, c)| i.f == f && c.kind == kind)
            .count()
    };
    let _ = writeln!(
        text,
        "ledger-jepsen run: {duration_s:.1} s, {} operations",
        completed.len()
    );
    let _ = writeln!(
        text,
        "nemeses executed ({}): {}",
        nemeses.len(),
        nemeses.join(", ")
    );
    for f in [
        Function::Transfer,
        Function::Read,
        Function::History,
        Function::Resend,
    ] {
        let _ = writeln!(
            text,
            "  {:<9} ok {:>6}  fail {:>6}  info {:>6}",
            serde_json::to_value(f).unwrap().as_str().unwrap(),
            count(f, OpType::Ok),
            count(f, OpType::Fail),
            count(f, OpType::Info)
        );
    }
    let hostile = completed
        .iter()
        .filter(|(i, _)| i.f == Function::HostileFrame)
        .count();
    if hostile > 0 {
        let _ = writeln!(
            text,
            "  {:<9} ok {:>6}  fail {:>6}  info {:>6}  (ok is an anomaly where the frame must be refused)",
            "hostile",
            count(Function::HostileFrame, OpType::Ok),
            count(Function::HostileFrame, OpType::Fail),
            count(Function::HostileFrame, OpType::Info)
        );
    }
    let valid = results.iter().all(|r| r.valid);
    for result in results {
        let _ = writeln!(
            text,
            "  {:<20} {} ({} checked, {} anomalies shown)",
            result.name,
            if result.valid { "valid" } else { "INVALID" },
            result.checked,
            result.anomalies.len()
        );
    }
    hostile_codes(&mut text, results);
    let _ = writeln!(
        text,
        "{}",
        if valid {
            "Everything looks good."
        } else {
            "Anomalies found: see results.json."
        }
    );
    // The plain closing line CI reads: checks passed and failed.
    let passed = results.iter().filter(|r| r.valid).count();
    let _ = writeln!(
        text,
        "jepsen: {passed} passed, {} failed",
        results.len() - passed
    );
    text
}

/// The `hostile-frames` check's answer codes per frame kind, one line per kind.
fn hostile_codes(text: &mut String, results: &[CheckResult]) {
    let Some(codes) = results
        .iter()
        .find(|r| r.name == "hostile-frames")
        .and_then(|r| r.details.as_ref())
        .and_then(|d| d["codesByKind"].as_object())
        .filter(|codes| !codes.is_empty())
    else {
        return;
    };
    let _ = writeln!(text, "  hostile frames, answers by kind:");
    for (kind, counts) in codes {
        let counts: Vec<String> = counts
            .as_object()
            .into_iter()
            .flatten()
            .map(|(code, n)| format!("{code} {n}"))
            .collect();
        let _ = writeln!(text, "    {kind:<36} {}", counts.join(", "));
    }
}

/// Fault windows as (start, end) seconds, from the nemesis's records.
fn fault_windows(history: &[Op], end_s: f64) -> Vec<(f64, f64, String)> {
    let mut windows = Vec::new();
    let mut open: Option<(f64, String)> = None;
    for op in history
        .iter()
        .filter(|op| op.process == "nemesis" && op.kind == OpType::Info)
    {
        let at = op.time_ns as f64 / 1e9;
        let name = op.value["fault"].as_str().unwrap_or("?").to_owned();
        match op.f {
            Function::Start => open = Some((at, name)),
            Function::Stop => {
                if let Some((start, name)) = open.take() {
                    windows.push((start, at, name));
                }
            }
            _ => {}
        }
    }
    if let Some((start, name)) = open {
        windows.push((start, end_s, name));
    }
    windows
}

pub fn timeline_svg(history: &[Op]) -> String {
    let end_s = history
        .last()
        .map_or(1.0, |op| op.time_ns as f64 / 1e9)
        .max(1.0);
    let x = |t: f64| MARGIN + t / end_s * (WIDTH - 2.0 * MARGIN);
    let height = 2.0 * PLOT_HEIGHT + 3.0 * MARGIN;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (start, stop, name) in fault_windows(history, end_s) {
        let _ = writeln!(
            svg,
            r##"<rect x="{:.1}" y="{MARGIN}" width="{:.1}" height="{:.1}" fill="#f4b183" fill-opacity="0.35"/><text x="{:.1}" y="{:.1}">{name}</text>"##,
            x(start),
            (x(stop) - x(start)).max(1.0),
            2.0 * PLOT_HEIGHT + MARGIN,
            x(start) + 2.0,
            MARGIN - 4.0
        );
    }
    throughput_plot(&mut svg, history, end_s, &x);
    latency_plot(&mut svg, history, &x);
    let _ = writeln!(svg, "</svg>");
    svg
}

fn throughput_plot(svg: &mut String, history: &[Op], end_s: f64, x: &dyn Fn(f64) -> f64) {
    let seconds = end_s.ceil() as usize + 1;
    let mut ok = vec![0usize; seconds];
    for (_, completion) in pairs(history) {
        if completion.kind == OpType::Ok && completion.f != Function::HostileFrame {
            ok[(completion.time_ns / 1_000_000_000) as usize] += 1;
        }
    }
    let peak = ok.iter().copied().max().unwrap_or(1).max(1) as f64;
    let bottom = MARGIN + PLOT_HEIGHT;
    for (second, count) in ok.iter().enumerate() {
        let bar = *count as f64 / peak * (PLOT_HEIGHT - 10.0);
        let _ = writeln!(
            svg,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{bar:.1}" fill="#4472c4"/>"##,
            x(second as f64),
            bottom - bar,
            (x(1.0) - x(0.0)).max(1.0) * 0.9
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{MARGIN}" y="{:.1}">ok operations per second (peak {peak})</text>"#,
        MARGIN + 12.0
    );
    let _ = writeln!(
        svg,
        r#"<line x1="{MARGIN}" y1="{bottom}" x2="{:.1}" y2="{bottom}" stroke="black"/>"#,
        WIDTH - MARGIN
    );
}

fn latency_plot(svg: &mut String, history: &[Op], x: &dyn Fn(f64) -> f64) {
    let top = 2.0 * MARGIN + PLOT_HEIGHT;
    let bottom = top + PLOT_HEIGHT;
    // Log scale from 0.1 ms to 10 s.
    let y = |ms: f64| bottom - ((ms.max(0.1)).log10() + 1.0) / 6.0 * PLOT_HEIGHT;
    for (invoke, completion) in pairs(history) {
        if invoke.process == "nemesis" || invoke.f == Function::HostileFrame {
            continue;
        }
        let ms = (completion.time_ns - invoke.time_ns) as f64 / 1e6;
        let color = match completion.kind {
            OpType::Ok => "#2e7d32",
            OpType::Fail => "#c62828",
            _ => "#f9a825",
        };
        let _ = writeln!(
            svg,
            r#"<circle cx="{:.1}" cy="{:.1}" r="1.5" fill="{color}"/>"#,
            x(invoke.time_ns as f64 / 1e9),
            y(ms)
        );
    }
    for ms in [1.0, 10.0, 100.0, 1000.0] {
        let _ = writeln!(
            svg,
            r##"<line x1="{MARGIN}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#ccc"/><text x="4" y="{:.1}">{ms} ms</text>"##,
            y(ms),
            WIDTH - MARGIN,
            y(ms),
            y(ms) + 4.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{MARGIN}" y="{:.1}">latency (log scale): ok green, fail red, info yellow; time in seconds across</text>"#,
        top - 4.0
    );
}
