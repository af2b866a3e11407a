//! A hand-written SVG chart of a run: arrivals per second, queue depth and replicas over time,
//! one line per policy, sharing the time axis.

use std::fmt::Write as _;

use super::report::{fmt_ms, Report};

const WIDTH: f64 = 1000.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 96.0;
const PANEL_H: f64 = 160.0;
const GAP: f64 = 46.0;
const BOTTOM: f64 = 56.0;

const COLORS: [&str; 8] = [
    "#d62728", "#ff7f0e", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];
const DASHES: [&str; 4] = ["", "6 3", "", "2 2"];

struct Panel<'a> {
    title: String,
    series: Vec<(usize, &'a [u64])>,
    /// Filled area (arrivals) instead of lines.
    area: bool,
}

/// Renders the chart of a report as an SVG document.
pub fn render(report: &Report) -> String {
    let bucket_s = report.bucket_ms as f64 / 1000.0;
    let buckets = report
        .runs
        .iter()
        .map(|(_, o)| o.series.ready.len())
        .chain(std::iter::once(report.arrivals.len()))
        .max()
        .unwrap_or(1)
        .max(1);
    let span_s = buckets as f64 * bucket_s;

    let arrivals: Vec<u64> = report.arrivals.clone();
    let ready: Vec<Vec<u64>> = report
        .runs
        .iter()
        .map(|(_, o)| o.series.ready.clone())
        .collect();
    let replicas: Vec<Vec<u64>> = report
        .runs
        .iter()
        .map(|(_, o)| o.series.replicas.iter().map(|&r| u64::from(r)).collect())
        .collect();
    let per = fmt_ms(report.bucket_ms);
    let panels = [
        Panel {
            title: format!("tasks arriving per second (mean over {per})"),
            series: vec![(usize::MAX, arrivals.as_slice())],
            area: true,
        },
        Panel {
            title: format!("queue depth: ready tasks (max over {per})"),
            series: ready
                .iter()
                .enumerate()
                .map(|(i, v)| (i, v.as_slice()))
                .collect(),
            area: false,
        },
        Panel {
            title: format!("replicas set by KEDA / HPA (max over {per})"),
            series: replicas
                .iter()
                .enumerate()
                .map(|(i, v)| (i, v.as_slice()))
                .collect(),
            area: false,
        },
    ];

    let height = TOP + 3.0 * PANEL_H + 2.0 * GAP + BOTTOM;
    let plot_w = WIDTH - LEFT - RIGHT;
    let x_of = |i: usize| LEFT + plot_w * (i as f64 * bucket_s) / span_s;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="Helvetica, Arial, sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="white"/>"#
    );
    let w = &report.workload;
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{}: {} tasks over {}</text>"#,
        esc(&report.trace_name),
        super::report::fmt_int(report.trace_tasks),
        super::report::fmt_clock(report.trace_end_ms)
    );
    let _ = writeln!(
        s,
        r##"<text x="{LEFT}" y="40" fill="#444">workers: concurrency {}, {}, start-up {}, shutdown grace {}</text>"##,
        w.concurrency,
        esc(&report.duration_source()),
        fmt_ms(w.startup_delay_ms),
        fmt_ms(w.shutdown_grace_ms)
    );
    // Legend.
    let mut lx = LEFT;
    for (i, (p, _)) in report.runs.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let dash = DASHES[i % DASHES.len()];
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="60" x2="{}" y2="60" stroke="{color}" stroke-width="2.5"{}/>"#,
            lx + 24.0,
            dash_attr(dash)
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="64">{}</text>"#,
            lx + 30.0,
            esc(&p.name)
        );
        lx += 40.0 + 7.0 * p.name.len() as f64;
    }

    for (k, panel) in panels.iter().enumerate() {
        let top = TOP + k as f64 * (PANEL_H + GAP);
        let bottom = top + PANEL_H;
        let scale = if panel.area {
            1000.0 / report.bucket_ms as f64
        } else {
            1.0
        };
        let max = panel
            .series
            .iter()
            .flat_map(|(_, v)| v.iter())
            .map(|&v| v as f64 * scale)
            .fold(0.0, f64::max);
        let (y_max, step) = nice_axis(max);
        let y_of = |v: f64| bottom - PANEL_H * (v / y_max).min(1.0);

        let _ = writeln!(
            s,
            r#"<text x="{LEFT}" y="{}" font-weight="bold">{}</text>"#,
            top - 8.0,
            esc(&panel.title)
        );
        // Horizontal grid and y labels.
        let mut v = 0.0;
        while v <= y_max + step / 2.0 {
            let y = y_of(v);
            let _ = writeln!(
                s,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e5e5e5"/>"##,
                WIDTH - RIGHT
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT - 6.0,
                y + 4.0,
                fmt_tick(v)
            );
            v += step;
        }
        // Vertical grid and time labels.
        let t_step = time_step(span_s);
        let mut t = 0.0;
        while t <= span_s + 1e-9 {
            let x = LEFT + plot_w * t / span_s;
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="#f0f0f0"/>"##
            );
            let _ = writeln!(
                s,
                r##"<text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#444">{}</text>"##,
                bottom + 15.0,
                fmt_time(t, span_s)
            );
            t += t_step;
        }
        let _ = writeln!(
            s,
            r##"<rect x="{LEFT}" y="{top:.1}" width="{plot_w:.1}" height="{PANEL_H}" fill="none" stroke="#999"/>"##
        );

        for &(idx, values) in &panel.series {
            let points = step_points(values, scale, &x_of, &y_of, bottom);
            if panel.area {
                let _ = writeln!(
                    s,
                    r##"<polygon points="{points}" fill="#9e9e9e" fill-opacity="0.6" stroke="#616161" stroke-width="0.8"/>"##
                );
            } else {
                let color = COLORS[idx % COLORS.len()];
                let dash = DASHES[idx % DASHES.len()];
                let _ = writeln!(
                    s,
                    r#"<polyline points="{points}" fill="none" stroke="{color}" stroke-width="1.6" stroke-opacity="0.9" stroke-linejoin="round"{}/>"#,
                    dash_attr(dash)
                );
            }
        }
    }
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#444">time since the start of the trace ({})</text>"##,
        LEFT + plot_w / 2.0,
        height - 14.0,
        if span_s >= 3600.0 { "h:mm" } else { "m:ss" }
    );
    s.push_str("</svg>\n");
    s
}

fn dash_attr(dash: &str) -> String {
    if dash.is_empty() {
        String::new()
    } else {
        format!(r#" stroke-dasharray="{dash}""#)
    }
}

/// A step line through the bucket values: flat across each bucket, vertical between them;
/// closed down to the axis at both ends (an area when filled).
fn step_points(
    values: &[u64],
    scale: f64,
    x_of: &dyn Fn(usize) -> f64,
    y_of: &dyn Fn(f64) -> f64,
    bottom: f64,
) -> String {
    let mut pts: Vec<(f64, f64)> = Vec::with_capacity(values.len() / 2 + 4);
    pts.push((x_of(0), bottom));
    let mut prev: Option<u64> = None;
    for (i, &v) in values.iter().enumerate() {
        if prev != Some(v) {
            let x = x_of(i);
            if let Some(p) = prev {
                pts.push((x, y_of(p as f64 * scale)));
            }
            pts.push((x, y_of(v as f64 * scale)));
            prev = Some(v);
        }
    }
    let end = x_of(values.len());
    if let Some(p) = prev {
        pts.push((end, y_of(p as f64 * scale)));
    }
    pts.push((end, bottom));
    let mut out = String::with_capacity(pts.len() * 14);
    for (i, (x, y)) in pts.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{x:.1},{y:.1}");
    }
    out
}

/// A round axis maximum at or above `max`, and the tick step (4 or 5 ticks).
fn nice_axis(max: f64) -> (f64, f64) {
    if max <= 0.0 {
        return (1.0, 1.0);
    }
    let raw = max / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let step = if step < 1.0 && max >= 1.0 { 1.0 } else { step };
    ((max / step).ceil().max(1.0) * step, step)
}

fn fmt_tick(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{}k", super::policy::trim_float(v / 1000.0))
    } else {
        super::policy::trim_float(v)
    }
}

fn time_step(span_s: f64) -> f64 {
    const STEPS: [f64; 16] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
        10800.0, 21600.0,
    ];
    STEPS
        .iter()
        .copied()
        .find(|s| span_s / s <= 12.0)
        .unwrap_or(43200.0)
}

fn fmt_time(t: f64, span_s: f64) -> String {
    let t = t.round() as u64;
    if span_s >= 3600.0 {
        format!("{}:{:02}", t / 3600, (t % 3600) / 60)
    } else {
        format!("{}:{:02}", t / 60, t % 60)
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_axes() {
        assert_eq!(nice_axis(0.0), (1.0, 1.0));
        assert_eq!(nice_axis(3.0), (3.0, 1.0));
        assert_eq!(nice_axis(37.0), (40.0, 10.0));
        assert_eq!(nice_axis(1234.0), (1500.0, 500.0));
        assert_eq!(nice_axis(100.0), (100.0, 25.0));
        assert_eq!(time_step(3600.0), 300.0);
        assert_eq!(time_step(86_400.0), 7200.0);
        assert_eq!(fmt_time(5400.0, 86_400.0), "1:30");
        assert_eq!(fmt_time(90.0, 600.0), "1:30");
    }
}
