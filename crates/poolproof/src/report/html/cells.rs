//! How the page's tables write figures, and the colours of pass and fail, shared by the run's
//! sections and the regression-gate section so both read alike.

pub const ERR: &str = "#d62728";
pub const OK: &str = "#2ca02c";

/// Milliseconds with the decimals their size needs; "–" when not measured.
pub fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v < 1.0 => format!("{v:.3} ms"),
        Some(v) if v < 100.0 => format!("{v:.2} ms"),
        Some(v) => format!("{v:.0} ms"),
        None => "–".into(),
    }
}

pub fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{:.2} %", v * 100.0))
        .unwrap_or_else(|| "–".into())
}

pub fn rps(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "–".into())
}
