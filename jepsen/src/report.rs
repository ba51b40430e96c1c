//! A run's outputs: the text summary and a Jepsen-style performance timeline (SVG):
//! throughput per second and every operation's latency, fault windows shaded.

use std::fmt::Write as _;

use crate::availability::Availability;
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
    availability: Option<&Availability>,
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
    if let Some(availability) = availability {
        text.push_str(&crate::availability::text(availability));
    }
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

/// Each fault kind's colour and short code (the legend explains the codes).
fn fault_style(name: &str) -> (&'static str, &'static str) {
    match name {
        "kill" => ("#e15759", "K"),
        "kill-leader" => ("#ff9da7", "KL"),
        "pause" => ("#f28e2b", "P"),
        "partition-leader" => ("#4e79a7", "PL"),
        "partition-random" => ("#76b7b2", "PR"),
        "partition-ring" => ("#59a14f", "PG"),
        "loss" => ("#edc948", "L"),
        "delay" => ("#b07aa1", "D"),
        "clock-skew" => ("#9c755f", "C"),
        "hostile-frames" => ("#bab0ac", "H"),
        _ => ("#f4b183", "?"),
    }
}

/// Approximate width of `text` at the SVG's 11 px sans-serif.
fn text_width(text: &str) -> f64 {
    text.chars().count() as f64 * 6.5 + 4.0
}

/// Puts each label on the first row where it does not overlap the previous one; None if
/// more than `rows_max` rows would be needed.
fn stagger(labels: &[(f64, String)], rows_max: usize) -> Option<Vec<usize>> {
    let mut row_ends: Vec<f64> = Vec::new();
    let mut rows = Vec::new();
    for (x, text) in labels {
        let row = match row_ends.iter().position(|end| *end <= *x) {
            Some(row) => row,
            None if row_ends.len() < rows_max => {
                row_ends.push(f64::MIN);
                row_ends.len() - 1
            }
            None => return None,
        };
        row_ends[row] = x + text_width(text);
        rows.push(row);
    }
    Some(rows)
}

/// Pixels per second of the timeline, and its width bounds.
const PX_PER_S: f64 = 3.0;
const WIDTH_MAX: f64 = 3000.0;
const LABEL_ROW: f64 = 12.0;
/// Most latency dots of each kind (ok, unsuccessful) in the timeline.
const DOTS_MAX: usize = 40_000;
/// Rows of full fault names tried before falling back to short codes.
const NAME_ROWS_MAX: usize = 4;
const CODE_ROWS_MAX: usize = 10;

pub fn timeline_svg(history: &[Op]) -> String {
    let end_s = history
        .last()
        .map_or(1.0, |op| op.time_ns as f64 / 1e9)
        .max(1.0);
    let width = (2.0 * MARGIN + end_s * PX_PER_S).clamp(WIDTH, WIDTH_MAX);
    let x = |t: f64| MARGIN + t / end_s * (width - 2.0 * MARGIN);
    let windows = fault_windows(history, end_s);
    // Labels: full names staggered over a few rows, or short codes (see the legend) over
    // as many rows as they need, so that no two overlap.
    let names: Vec<(f64, String)> = windows
        .iter()
        .map(|(start, _, name)| (x(*start), name.clone()))
        .collect();
    let codes: Vec<(f64, String)> = windows
        .iter()
        .map(|(start, _, name)| (x(*start), fault_style(name).1.to_owned()))
        .collect();
    let (labels, rows) = match stagger(&names, NAME_ROWS_MAX) {
        Some(rows) => (names, Some(rows)),
        None => {
            let rows = stagger(&codes, CODE_ROWS_MAX);
            (codes, rows)
        }
    };
    let row_count = rows
        .as_ref()
        .map_or(0, |r| r.iter().max().map_or(0, |m| m + 1));
    let band = row_count as f64 * LABEL_ROW;
    let top = MARGIN + band;
    // Room below the plots for two lines of legend.
    let height = top + 2.0 * PLOT_HEIGHT + 2.0 * MARGIN + 44.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let mut kinds: Vec<&str> = Vec::new();
    for (n, (start, stop, name)) in windows.iter().enumerate() {
        let (colour, _) = fault_style(name);
        if !kinds.contains(&name.as_str()) {
            kinds.push(name);
        }
        let _ = writeln!(
            svg,
            r##"<rect x="{:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{colour}" fill-opacity="0.3"><title>{name} {start:.1}-{stop:.1} s</title></rect>"##,
            x(*start),
            (x(*stop) - x(*start)).max(1.0),
            2.0 * PLOT_HEIGHT + MARGIN,
        );
        if let Some(rows) = &rows {
            let y = MARGIN - 4.0 + rows[n] as f64 * LABEL_ROW;
            let _ = writeln!(
                svg,
                r##"<line x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{top:.1}" stroke="{colour}" stroke-opacity="0.6"/><text x="{2:.1}" y="{y:.1}">{3}</text>"##,
                x(*start),
                y - 9.0,
                x(*start) + 2.0,
                labels[n].1
            );
        }
    }
    let x_of = |t: f64| x(t);
    throughput_plot(&mut svg, history, end_s, top, width, &x_of);
    latency_plot(&mut svg, history, top, width, &x_of);
    // The legend: every fault kind in the run, its colour and code.
    let mut at = MARGIN;
    let mut y = height - 26.0;
    for kind in kinds {
        let (colour, code) = fault_style(kind);
        let label = format!("{code} {kind}");
        if at + 13.0 + text_width(&label) > width - MARGIN {
            at = MARGIN;
            y += 14.0;
        }
        let _ = writeln!(
            svg,
            r##"<rect x="{at:.1}" y="{:.1}" width="10" height="10" fill="{colour}" fill-opacity="0.6"/><text x="{:.1}" y="{y:.1}">{label}</text>"##,
            y - 9.0,
            at + 13.0
        );
        at += 13.0 + text_width(&label) + 8.0;
    }
    let _ = writeln!(svg, "</svg>");
    svg
}

fn throughput_plot(
    svg: &mut String,
    history: &[Op],
    end_s: f64,
    top: f64,
    width: f64,
    x: &dyn Fn(f64) -> f64,
) {
    let seconds = end_s.ceil() as usize + 1;
    let mut ok = vec![0usize; seconds];
    for (_, completion) in pairs(history) {
        if completion.kind == OpType::Ok && completion.f != Function::HostileFrame {
            ok[(completion.time_ns / 1_000_000_000) as usize] += 1;
        }
    }
    let peak = ok.iter().copied().max().unwrap_or(1).max(1) as f64;
    let bottom = top + PLOT_HEIGHT;
    for (second, count) in ok.iter().enumerate() {
        let bar = *count as f64 / peak * (PLOT_HEIGHT - 20.0);
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
        top + 12.0
    );
    let _ = writeln!(
        svg,
        r#"<line x1="{MARGIN}" y1="{bottom}" x2="{:.1}" y2="{bottom}" stroke="black"/>"#,
        width - MARGIN
    );
    time_axis(svg, end_s, bottom, x);
}

fn latency_plot(svg: &mut String, history: &[Op], top: f64, width: f64, x: &dyn Fn(f64) -> f64) {
    let top = top + MARGIN + PLOT_HEIGHT;
    let bottom = top + PLOT_HEIGHT;
    // Log scale from 0.1 ms to 10 s.
    let y = |ms: f64| bottom - ((ms.max(0.1)).log10() + 1.0) / 6.0 * PLOT_HEIGHT;
    let ops: Vec<_> = pairs(history)
        .into_iter()
        .filter(|(i, _)| i.process != "nemesis" && i.f != Function::HostileFrame)
        .collect();
    // A long run has millions of operations: draw every k-th ok one and at most
    // DOTS_MAX unsuccessful ones, so the file stays a few MB.
    let ok_total = ops.iter().filter(|(_, c)| c.kind == OpType::Ok).count();
    let stride = ok_total.div_ceil(DOTS_MAX).max(1);
    let other_stride = (ops.len() - ok_total).div_ceil(DOTS_MAX).max(1);
    let (mut ok_seen, mut other_seen) = (0usize, 0usize);
    for (invoke, completion) in ops {
        let seen = if completion.kind == OpType::Ok {
            &mut ok_seen
        } else {
            &mut other_seen
        };
        *seen += 1;
        let every = if completion.kind == OpType::Ok {
            stride
        } else {
            other_stride
        };
        if (*seen - 1) % every != 0 {
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
            width - MARGIN,
            y(ms),
            y(ms) + 4.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{MARGIN}" y="{:.1}">latency (log scale) by invocation time: ok green (every {stride}.), fail red, info yellow (every {other_stride}.)</text>"#,
        top - 4.0
    );
}

/// Second marks under a plot, at least 60 px apart.
fn time_axis(svg: &mut String, end_s: f64, y: f64, x: &dyn Fn(f64) -> f64) {
    let px_per_s = x(1.0) - x(0.0);
    let step = [1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0]
        .into_iter()
        .find(|step| step * px_per_s >= 60.0)
        .unwrap_or(1200.0);
    let mut t = 0.0;
    while t <= end_s {
        let _ = writeln!(
            svg,
            r##"<line x1="{0:.1}" y1="{y:.1}" x2="{0:.1}" y2="{1:.1}" stroke="black"/><text x="{0:.1}" y="{2:.1}" text-anchor="middle">{t} s</text>"##,
            x(t),
            y + 4.0,
            y + 15.0
        );
        t += step;
    }
}
