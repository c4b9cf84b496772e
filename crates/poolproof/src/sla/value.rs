//! Units of SLA values and their formatting for reports.

use crate::scenario::{Metric, Threshold};
use serde::{Deserialize, Serialize};

/// The unit of an SLA's threshold and measured value (the scenario's canonical units).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Milliseconds,
    /// A fraction shown as a percentage (0.01 = 1 %).
    Fraction,
    RequestsPerSecond,
    /// A 0–100 score.
    Score,
    Count,
    /// A figure per request (sessions opened per request).
    PerRequest,
    /// A multiple (x3).
    Multiple,
}

impl Unit {
    pub fn of(metric: Metric, threshold: &Threshold) -> Unit {
        match threshold {
            Threshold::Duration(_) => Unit::Milliseconds,
            Threshold::Percent(_) => Unit::Fraction,
            Threshold::Ratio(_) => Unit::Multiple,
            Threshold::Number(_) => match metric {
                Metric::Throughput | Metric::OfferedRate | Metric::MaxSustainedRate => {
                    Unit::RequestsPerSecond
                }
                Metric::HealthScore => Unit::Score,
                Metric::DbSessionsOpenedPerRequest => Unit::PerRequest,
                _ => Unit::Count,
            },
        }
    }
}

/// Three significant digits, no exponent, trailing zeros trimmed: how every report and
/// comparison table prints a value.
pub fn sig3(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let mag = v.abs().log10().floor() as i32;
    let decimals = (2 - mag).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A value in its unit, as reports show it: `2.31 ms`, `0.52 %`, `412 rps`, `87`, `x3.1`.
pub fn format_value(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Milliseconds => format!("{} ms", sig3(v)),
        Unit::Fraction => format!("{} %", sig3(v * 100.0)),
        Unit::RequestsPerSecond => format!("{} rps", sig3(v)),
        Unit::Score => sig3(v),
        Unit::Count => format!("{}", v.round() as i64),
        Unit::PerRequest => format!("{} per request", sig3(v)),
        Unit::Multiple => format!("x{}", sig3(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_significant_digits() {
        assert_eq!(sig3(2.3149), "2.31");
        assert_eq!(sig3(0.0004123), "0.000412");
        assert_eq!(sig3(1234.6), "1235");
        assert_eq!(sig3(20.0), "20");
        assert_eq!(sig3(0.0), "0");
        assert_eq!(format_value(0.0052, Unit::Fraction), "0.52 %");
        assert_eq!(format_value(3.1249, Unit::Multiple), "x3.12");
        assert_eq!(format_value(2.0, Unit::Count), "2");
    }
}
