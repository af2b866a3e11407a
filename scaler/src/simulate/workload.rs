//! The workers' side: how long tasks run, how many run at once, how long a pod takes to start.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use flowforge_core::config::parse_duration;

/// How long a task runs when its trace row gives no `duration_ms`.
///
/// Random durations are a pure function of `(seed, task number)`, so every policy sees the same
/// task run for the same time, and the same inputs always give the same results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DurationModel {
    /// Every task takes this long: `2s`.
    Constant { ms: u64 },
    /// Exponentially distributed with this mean: `exp:2s`.
    Exponential { mean_ms: u64 },
    /// Uniform between the bounds: `uniform:1s..3s`.
    Uniform { min_ms: u64, max_ms: u64 },
}

impl DurationModel {
    /// Parses `2s`, `exp:2s` or `uniform:500ms..5s` (durations as in `--help`: 500ms, 30s, 2m).
    pub fn parse(s: &str) -> Result<DurationModel, String> {
        let s = s.trim();
        let ms = |d: &str| -> Result<u64, String> {
            parse_duration(d.trim()).map(|d| d.as_millis().min(u128::from(u64::MAX)) as u64)
        };
        if let Some(mean) = s.strip_prefix("exp:") {
            let mean_ms = ms(mean)?;
            if mean_ms == 0 {
                return Err("exp: the mean must be above 0".into());
            }
            return Ok(DurationModel::Exponential { mean_ms });
        }
        if let Some(range) = s.strip_prefix("uniform:") {
            let (lo, hi) = range.split_once("..").ok_or_else(|| {
                format!("expected uniform:MIN..MAX (e.g. uniform:1s..3s), got {s:?}")
            })?;
            let (min_ms, max_ms) = (ms(lo)?, ms(hi)?);
            if min_ms > max_ms {
                return Err(format!("uniform: {lo} is above {hi}"));
            }
            return Ok(DurationModel::Uniform { min_ms, max_ms });
        }
        if s.contains(':') {
            return Err(format!(
                "unknown task duration {s:?}: expected 2s, exp:2s or uniform:1s..3s"
            ));
        }
        Ok(DurationModel::Constant { ms: ms(s)? })
    }

    /// The constant duration, if every task of the model takes the same time.
    pub fn constant_ms(&self) -> Option<u64> {
        match self {
            DurationModel::Constant { ms } => Some(*ms),
            _ => None,
        }
    }

    /// Duration of task number `index` (0-based, in arrival order).
    pub fn sample_ms(&self, seed: u64, index: u64) -> u64 {
        match *self {
            DurationModel::Constant { ms } => ms,
            DurationModel::Exponential { mean_ms } => {
                let u = unit(seed, index);
                // Inverse CDF; 1 − u is in (0, 1], so the logarithm is finite.
                (-(mean_ms as f64) * (1.0 - u).ln()).round() as u64
            }
            DurationModel::Uniform { min_ms, max_ms } => {
                let u = unit(seed, index);
                min_ms + ((max_ms - min_ms) as f64 * u).round() as u64
            }
        }
    }

    /// Mean duration (for reports).
    pub fn mean_ms(&self) -> f64 {
        match *self {
            DurationModel::Constant { ms } => ms as f64,
            DurationModel::Exponential { mean_ms } => mean_ms as f64,
            DurationModel::Uniform { min_ms, max_ms } => (min_ms + max_ms) as f64 / 2.0,
        }
    }
}

impl FromStr for DurationModel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DurationModel::parse(s)
    }
}

impl fmt::Display for DurationModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use super::report::fmt_ms as d;
        match *self {
            DurationModel::Constant { ms } => write!(f, "{}", d(ms)),
            DurationModel::Exponential { mean_ms } => write!(f, "exp:{}", d(mean_ms)),
            DurationModel::Uniform { min_ms, max_ms } => {
                write!(f, "uniform:{}..{}", d(min_ms), d(max_ms))
            }
        }
    }
}

/// SplitMix64's output function: a well-mixed 64-bit hash of its input.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A number in [0, 1) determined by `(seed, index)`.
pub fn unit(seed: u64, index: u64) -> f64 {
    let h = mix64(mix64(seed) ^ index);
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Everything about the workers and the SLO that all policies share.
#[derive(Debug, Clone, Serialize)]
pub struct Workload {
    /// Tasks one worker runs at once (`FLOWFORGE_CONCURRENCY`).
    pub concurrency: u32,
    pub task_duration: DurationModel,
    /// From the pod's creation to its first claim.
    pub startup_delay_ms: u64,
    /// `FLOWFORGE_SHUTDOWN_GRACE`: how long a terminated worker lets in-flight tasks run.
    pub shutdown_grace_ms: u64,
    /// A task meets the wait SLO when it starts within this long of becoming ready.
    pub slo_wait_ms: u64,
    pub seed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms_and_rejects_others() {
        assert_eq!(
            DurationModel::parse("2s").unwrap(),
            DurationModel::Constant { ms: 2000 }
        );
        assert_eq!(
            DurationModel::parse("exp:250ms").unwrap(),
            DurationModel::Exponential { mean_ms: 250 }
        );
        assert_eq!(
            DurationModel::parse("uniform:1s..3s").unwrap(),
            DurationModel::Uniform {
                min_ms: 1000,
                max_ms: 3000
            }
        );
        for bad in [
            "",
            "fast",
            "exp:0s",
            "uniform:3s..1s",
            "uniform:1s",
            "gamma:2s",
        ] {
            assert!(DurationModel::parse(bad).is_err(), "{bad:?}");
        }
        for s in ["2s", "exp:250ms", "uniform:1s..3s"] {
            assert_eq!(DurationModel::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn samples_are_deterministic_and_have_the_right_mean() {
        let exp = DurationModel::Exponential { mean_ms: 2000 };
        let n = 200_000u64;
        let total: u64 = (0..n).map(|i| exp.sample_ms(7, i)).sum();
        let mean = total as f64 / n as f64;
        assert!((mean - 2000.0).abs() < 30.0, "mean {mean}");
        assert_eq!(exp.sample_ms(7, 12345), exp.sample_ms(7, 12345));
        assert_ne!(
            (0..10).map(|i| exp.sample_ms(7, i)).collect::<Vec<_>>(),
            (0..10).map(|i| exp.sample_ms(8, i)).collect::<Vec<_>>()
        );
        let uni = DurationModel::Uniform {
            min_ms: 100,
            max_ms: 300,
        };
        assert!((0..10_000).all(|i| (100..=300).contains(&uni.sample_ms(1, i))));
    }
}
