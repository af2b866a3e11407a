//! Prometheus durations (`5m`, `1h`, `30d`, `1h30m`): parsed into whole seconds, written back in
//! the shortest form Prometheus reads.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// A duration in whole seconds, as Prometheus writes them in range selectors and `for:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(u64);

const UNITS: [(char, u64); 5] = [
    ('w', 7 * 86_400),
    ('d', 86_400),
    ('h', 3_600),
    ('m', 60),
    ('s', 1),
];

impl Duration {
    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs)
    }

    /// Whole seconds.
    pub const fn secs(self) -> u64 {
        self.0
    }

    /// Whole minutes, rounded down.
    pub const fn minutes(self) -> u64 {
        self.0 / 60
    }
}

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseDurationError(String);

impl fmt::Display for ParseDurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseDurationError {}

impl FromStr for Duration {
    type Err = ParseDurationError;

    /// Reads `<number><unit>` groups, units from largest to smallest, each at most once
    /// (`w`, `d`, `h`, `m`, `s`), e.g. `1h30m`. Zero is refused: no window or hold is zero.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            ParseDurationError(format!(
                "{text:?} is not a duration ({why}); write e.g. 5m, 1h, 30d"
            ))
        };
        if text.is_empty() {
            return Err(bad("empty"));
        }
        let mut total: u64 = 0;
        let mut rest = text;
        let mut smallest_so_far = u64::MAX;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(bad("expected a number"));
            }
            let number: u64 = rest[..digits]
                .parse()
                .map_err(|_| bad("number too large"))?;
            let unit = rest[digits..]
                .chars()
                .next()
                .ok_or_else(|| bad("missing unit"))?;
            let (_, secs) = UNITS
                .iter()
                .find(|(c, _)| *c == unit)
                .ok_or_else(|| bad("unknown unit: use w, d, h, m or s"))?;
            if *secs >= smallest_so_far {
                return Err(bad("units must go from largest to smallest, each once"));
            }
            smallest_so_far = *secs;
            total = number
                .checked_mul(*secs)
                .and_then(|s| total.checked_add(s))
                .ok_or_else(|| bad("too large"))?;
            rest = &rest[digits + unit.len_utf8()..];
        }
        if total == 0 {
            return Err(bad("zero"));
        }
        Ok(Self(total))
    }
}

impl fmt::Display for Duration {
    /// The shortest Prometheus form: `30d`, `1h30m`, `90s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.0;
        // Weeks are left out: `30d` reads better than `4w2d`.
        for (unit, secs) in UNITS.iter().skip(1) {
            if rest >= *secs {
                write!(f, "{}{unit}", rest / secs)?;
                rest %= secs;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> u64 {
        text.parse::<Duration>().unwrap().secs()
    }

    #[test]
    fn parses_every_unit_and_compounds() {
        assert_eq!(d("5m"), 300);
        assert_eq!(d("30m"), 1_800);
        assert_eq!(d("1h"), 3_600);
        assert_eq!(d("6h"), 21_600);
        assert_eq!(d("1d"), 86_400);
        assert_eq!(d("3d"), 259_200);
        assert_eq!(d("30d"), 2_592_000);
        assert_eq!(d("1w"), 604_800);
        assert_eq!(d("1h30m"), 5_400);
        assert_eq!(d("90s"), 90);
    }

    #[test]
    fn refuses_what_prometheus_would_not_read() {
        for bad in [
            "", "5", "m", "5x", "1m1h", "1h1h", "0m", "-1h", "1.5h", "5 m",
        ] {
            let err = bad.parse::<Duration>().unwrap_err().to_string();
            assert!(err.contains("is not a duration"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn writes_the_shortest_form_and_round_trips() {
        for (secs, text) in [
            (300, "5m"),
            (3_600, "1h"),
            (5_400, "1h30m"),
            (86_400, "1d"),
            (2_592_000, "30d"),
            (90, "1m30s"),
        ] {
            assert_eq!(Duration::from_secs(secs).to_string(), text);
            assert_eq!(d(text), secs);
        }
    }
}
