//! Arrival traces: when tasks become ready, how many, and optionally how long each runs.
//!
//! The format is CSV, one row per arrival group:
//!
//! ```text
//! # comments start with '#', anywhere on a line; blank lines are ignored
//! t_seconds,count,duration_ms,spread_s     <- optional header (a prefix of these names)
//! 0,25                                     <- 25 tasks ready at t = 0 s
//! 12.5,3,1500                              <- 3 tasks at 12.5 s that run 1.5 s each
//! 60,600,,30                               <- 600 tasks spread evenly over [60 s, 90 s)
//! 3600,0                                   <- nothing arrives; marks the end of the trace
//! ```
//!
//! Rows are in time order (equal times are fine). `duration_ms` left empty means "use
//! `--task-duration`"; `spread_s` left empty or 0 means all `count` tasks arrive at `t_seconds`.

use std::fmt;
use std::path::Path;

/// Longest trace accepted: 31 days (times past this are almost certainly a unit mistake).
const MAX_TIME_MS: u64 = 31 * 24 * 3_600_000;
/// Most tasks accepted in one trace.
const MAX_TASKS: u64 = 100_000_000;
const COLUMNS: [&str; 4] = ["t_seconds", "count", "duration_ms", "spread_s"];

/// A trace that failed to load: which line, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceError {
    #[error("{source_name}: cannot read: {message}")]
    Read {
        source_name: String,
        message: String,
    },
    #[error("{source_name}:{line}: {message}")]
    Line {
        source_name: String,
        line: usize,
        message: String,
    },
    #[error("{source_name}: {message}")]
    Whole {
        source_name: String,
        message: String,
    },
}

impl TraceError {
    /// The 1-based line the error is on, if it is about one line.
    pub fn line(&self) -> Option<usize> {
        match self {
            TraceError::Line { line, .. } => Some(*line),
            _ => None,
        }
    }
}

/// One row of a trace, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub at_ms: u64,
    pub count: u32,
    pub duration_ms: Option<u64>,
    pub spread_ms: u64,
    /// 1-based line in the source.
    pub line: usize,
}

/// Tasks that become ready at the same millisecond with the same duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    pub at_ms: u64,
    pub count: u32,
    /// `None`: drawn from the `--task-duration` model.
    pub duration_ms: Option<u64>,
}

/// A parsed trace, with its rows expanded into time-ordered arrivals.
#[derive(Debug, Clone)]
pub struct Trace {
    /// File name (or another label) shown in reports.
    pub name: String,
    pub rows: Vec<Row>,
    /// Arrivals in time order; spread rows are expanded into one arrival per millisecond used.
    pub arrivals: Vec<Arrival>,
    pub tasks: u64,
    /// The last moment the trace covers: its last row, or the end of the last spread.
    pub end_ms: u64,
}

impl Trace {
    /// Reads and parses a trace file.
    pub fn load(path: &Path) -> Result<Trace, TraceError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        let text = std::fs::read_to_string(path).map_err(|e| TraceError::Read {
            source_name: path.display().to_string(),
            message: e.to_string(),
        })?;
        Trace::parse(&name, &text).map_err(|e| match e {
            // Errors name the path as given, so an editor can jump to it.
            TraceError::Line { line, message, .. } => TraceError::Line {
                source_name: path.display().to_string(),
                line,
                message,
            },
            TraceError::Whole { message, .. } => TraceError::Whole {
                source_name: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parses trace text; `name` labels errors and reports.
    pub fn parse(name: &str, text: &str) -> Result<Trace, TraceError> {
        let line_err = |line: usize, message: String| TraceError::Line {
            source_name: name.to_owned(),
            line,
            message,
        };
        let mut rows: Vec<Row> = Vec::new();
        let mut seen_data = false;
        let mut tasks: u64 = 0;
        for (idx, raw) in text.lines().enumerate() {
            let line = idx + 1;
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let fields: Vec<&str> = content.split(',').map(str::trim).collect();
            if !seen_data && looks_like_header(&fields) {
                check_header(&fields).map_err(|m| line_err(line, m))?;
                seen_data = true;
                continue;
            }
            seen_data = true;
            let row = parse_row(&fields, line).map_err(|m| line_err(line, m))?;
            if let Some(prev) = rows.last() {
                if row.at_ms < prev.at_ms {
                    return Err(line_err(
                        line,
                        format!(
                            "time {} s goes back from {} s on line {}: rows must be in time order",
                            fmt_seconds(row.at_ms),
                            fmt_seconds(prev.at_ms),
                            prev.line
                        ),
                    ));
                }
            }
            tasks += u64::from(row.count);
            if tasks > MAX_TASKS {
                return Err(line_err(
                    line,
                    format!("more than {MAX_TASKS} tasks in one trace"),
                ));
            }
            rows.push(row);
        }
        if tasks == 0 {
            return Err(TraceError::Whole {
                source_name: name.to_owned(),
                message: "no arrivals: expected rows `t_seconds,count[,duration_ms[,spread_s]]` \
                          with at least one count above 0"
                    .into(),
            });
        }
        let arrivals = expand(&rows);
        let end_ms = rows
            .iter()
            .map(|r| r.at_ms + r.spread_ms)
            .max()
            .unwrap_or(0);
        Ok(Trace {
            name: name.to_owned(),
            rows,
            arrivals,
            tasks,
            end_ms,
        })
    }
}

fn looks_like_header(fields: &[&str]) -> bool {
    fields
        .first()
        .is_some_and(|f| f.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
}

fn check_header(fields: &[&str]) -> Result<(), String> {
    let expected = "t_seconds,count[,duration_ms[,spread_s]]";
    if fields.len() < 2 || fields.len() > COLUMNS.len() {
        return Err(format!(
            "header has {} columns; expected {expected}",
            fields.len()
        ));
    }
    for (got, want) in fields.iter().zip(COLUMNS) {
        if !got.eq_ignore_ascii_case(want) {
            return Err(format!(
                "unknown header column {got:?} where {want:?} belongs; expected {expected}"
            ));
        }
    }
    Ok(())
}

fn parse_row(fields: &[&str], line: usize) -> Result<Row, String> {
    if fields.len() < 2 || fields.len() > 4 {
        return Err(format!(
            "expected 2 to 4 comma-separated fields `t_seconds,count[,duration_ms[,spread_s]]`, \
             found {}",
            fields.len()
        ));
    }
    let at_ms = parse_seconds(fields[0], "t_seconds")?;
    let count: u32 = fields[1].parse().map_err(|_| {
        format!(
            "count {:?} is not a whole number of tasks (0 to {})",
            fields[1],
            u32::MAX
        )
    })?;
    let duration_ms = match fields.get(2) {
        None | Some(&"") => None,
        Some(s) => {
            let v: f64 = s
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| {
                    format!("duration_ms {s:?} is not a number of milliseconds (0 or more)")
                })?;
            if v > MAX_TIME_MS as f64 {
                return Err(format!("duration_ms {s} is longer than 31 days"));
            }
            Some(v.round() as u64)
        }
    };
    let spread_ms = match fields.get(3) {
        None | Some(&"") => 0,
        Some(s) => parse_seconds(s, "spread_s")?,
    };
    Ok(Row {
        at_ms,
        count,
        duration_ms,
        spread_ms,
        line,
    })
}

fn parse_seconds(s: &str, what: &str) -> Result<u64, String> {
    let v: f64 = s
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("{what} {s:?} is not a number of seconds (0 or more)"))?;
    let ms = (v * 1000.0).round();
    if ms > MAX_TIME_MS as f64 {
        return Err(format!("{what} {s} is past 31 days"));
    }
    Ok(ms as u64)
}

/// Expands rows into arrivals ordered by time (a spread row may overlap later rows).
fn expand(rows: &[Row]) -> Vec<Arrival> {
    let mut out: Vec<Arrival> = Vec::with_capacity(rows.len());
    for r in rows {
        if r.count == 0 {
            continue;
        }
        if r.spread_ms == 0 {
            out.push(Arrival {
                at_ms: r.at_ms,
                count: r.count,
                duration_ms: r.duration_ms,
            });
            continue;
        }
        // Task i of n arrives at t + floor(i * spread / n): evenly spaced, first one at t.
        let n = u64::from(r.count);
        let mut i = 0u64;
        while i < n {
            let at = r.at_ms + i * r.spread_ms / n;
            let mut j = i + 1;
            while j < n && r.at_ms + j * r.spread_ms / n == at {
                j += 1;
            }
            out.push(Arrival {
                at_ms: at,
                count: (j - i) as u32,
                duration_ms: r.duration_ms,
            });
            i = j;
        }
    }
    // Stable: rows at the same time keep their file order.
    out.sort_by_key(|a| a.at_ms);
    let mut merged: Vec<Arrival> = Vec::with_capacity(out.len());
    for a in out {
        match merged.last_mut() {
            Some(last)
                if last.at_ms == a.at_ms
                    && last.duration_ms == a.duration_ms
                    && last.count.checked_add(a.count).is_some() =>
            {
                last.count += a.count;
            }
            _ => merged.push(a),
        }
    }
    merged
}

/// `12.5` for 12,500 ms; `3` for 3,000 ms.
pub(crate) fn fmt_seconds(ms: u64) -> String {
    if ms % 1000 == 0 {
        format!("{}", ms / 1000)
    } else {
        let s = format!("{}.{:03}", ms / 1000, ms % 1000);
        s.trim_end_matches('0').to_owned()
    }
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} tasks over {}",
            self.name,
            self.tasks,
            super::report::fmt_clock(self.end_ms)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Trace, TraceError> {
        Trace::parse("t.csv", text)
    }

    #[test]
    fn parses_rows_comments_header_and_optional_columns() {
        let t = parse(
            "# a comment\n\
             t_seconds,count,duration_ms\n\
             \n\
             0,2\n\
             1.5, 3 ,250   # trailing comment\n\
             10,0\n",
        )
        .unwrap();
        assert_eq!(t.tasks, 5);
        assert_eq!(t.end_ms, 10_000);
        assert_eq!(
            t.arrivals,
            vec![
                Arrival {
                    at_ms: 0,
                    count: 2,
                    duration_ms: None
                },
                Arrival {
                    at_ms: 1500,
                    count: 3,
                    duration_ms: Some(250)
                },
            ]
        );
        assert_eq!(t.rows[1].line, 5);
    }

    #[test]
    fn spread_rows_arrive_evenly_and_merge_with_later_rows_in_time_order() {
        let t = parse("0,4,,2\n1,1\n").unwrap();
        let times: Vec<(u64, u32)> = t.arrivals.iter().map(|a| (a.at_ms, a.count)).collect();
        // 4 tasks over 2 s: at 0, 0.5, 1.0, 1.5 s; the row at 1 s joins the one at 1.0 s.
        assert_eq!(times, vec![(0, 1), (500, 1), (1000, 2), (1500, 1)]);
        assert_eq!(t.end_ms, 2000);
    }

    #[test]
    fn same_time_rows_with_different_durations_stay_apart() {
        let t = parse("5,1,100\n5,1,200\n5,2,100\n").unwrap();
        assert_eq!(t.arrivals.len(), 3);
        assert_eq!(t.tasks, 4);
    }

    #[test]
    fn errors_name_the_line() {
        let cases: &[(&str, usize, &str)] = &[
            ("0,1\n1,x\n", 2, "count \"x\" is not a whole number"),
            ("0,1\n\n# c\n-1,1\n", 4, "t_seconds \"-1\" is not a number"),
            ("5,1\n4,1\n", 2, "goes back from 5 s on line 1"),
            ("0,1,2,3,4\n", 1, "expected 2 to 4"),
            ("0\n", 1, "expected 2 to 4"),
            ("0,1.5\n", 1, "count \"1.5\""),
            ("0,1,abc\n", 1, "duration_ms \"abc\""),
            ("0,1,,-2\n", 1, "spread_s \"-2\""),
            ("time,count\n0,1\n", 1, "unknown header column \"time\""),
            ("0,1\nt_seconds,count\n", 2, "t_seconds \"t_seconds\""),
            ("99999999,1\n", 1, "past 31 days"),
            ("0,1\n1,NaN\n", 2, "count \"NaN\""),
            ("inf,1\n", 1, "unknown header column \"inf\""),
        ];
        for (text, line, needle) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.line(), Some(*line), "{text:?}: {err}");
            let msg = err.to_string();
            assert!(msg.starts_with(&format!("t.csv:{line}: ")), "{msg}");
            assert!(msg.contains(needle), "{text:?}: {msg:?} lacks {needle:?}");
        }
    }

    #[test]
    fn a_trace_without_tasks_is_refused() {
        for text in ["", "# only a comment\n", "t_seconds,count\n0,0\n"] {
            let err = parse(text).unwrap_err();
            assert!(err.to_string().contains("no arrivals"), "{err}");
            assert_eq!(err.line(), None);
        }
    }

    #[test]
    fn load_reports_the_path_and_a_missing_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let path = dir.join("bad.csv");
        std::fs::write(&path, "0,1\n1,1,1,1,1\n").unwrap();
        let err = Trace::load(&path).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}:2: ", path.display())), "{err}");
        let missing = Trace::load(&dir.join("missing.csv")).unwrap_err();
        assert!(missing.to_string().contains("cannot read"), "{missing}");
    }
}
