//! Normal and Student-t quantiles, for the small-sample calibration of bootstrap intervals.

/// Standard normal CDF via erfc (W. J. Cody's rational approximation is overkill here; the
/// Abramowitz–Stegun 7.1.26 form is accurate to 1.5e-7, far below what the gate resolves).
pub fn normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erfc = poly * (-z * z).exp();
    if x >= 0.0 {
        1.0 - erfc / 2.0
    } else {
        erfc / 2.0
    }
}

/// ln Γ(x), Lanczos approximation (g = 7, n = 9), x > 0.
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Keeps a continued fraction's denominators off zero (Lentz's method).
const TINY: f64 = 1e-300;

fn off_zero(v: f64) -> f64 {
    if v.abs() < TINY {
        TINY
    } else {
        v
    }
}

/// One term `aa` of the continued fraction in Lentz's method: the new `d` and `c`, whose
/// product multiplies the running value.
fn lentz_step(aa: f64, d: f64, c: f64) -> (f64, f64) {
    (1.0 / off_zero(1.0 + aa * d), off_zero(1.0 + aa / c))
}

/// Continued fraction of the regularized incomplete beta (Numerical Recipes `betacf`).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 / off_zero(1.0 - qab * x / qap);
    let mut h = d;
    for m in 1..300 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        (d, c) = lentz_step(m * (b - m) * x / ((qam + m2) * (a + m2)), d, c);
        h *= d * c;
        (d, c) = lentz_step(-(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)), d, c);
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-12 {
            break;
        }
    }
    h
}

/// Regularized incomplete beta I_x(a, b).
fn inc_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_cf(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_cf(b, a, 1.0 - x) / b
    }
}

/// Student-t CDF with `df` degrees of freedom (df > 0, may be fractional).
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    let x = df / (df + t * t);
    let tail = 0.5 * inc_beta(df / 2.0, 0.5, x);
    if t >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// Inverts a monotone CDF on [0, 1000] by bisection.
fn invert(p: f64, cdf: impl Fn(f64) -> f64) -> f64 {
    let (mut lo, mut hi) = (0.0_f64, 1_000.0_f64);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if cdf(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Upper quantile of the standard normal for p in (0.5, 1).
pub fn normal_quantile(p: f64) -> f64 {
    invert(p, normal_cdf)
}

/// Upper quantile of Student's t for p in (0.5, 1).
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    invert(p, |t| student_t_cdf(t, df))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_tables() {
        assert!((normal_quantile(0.975) - 1.959_964).abs() < 1e-4);
        // Student-t 97.5 % quantiles from standard tables.
        for (df, t) in [
            (1.0, 12.706),
            (2.0, 4.303),
            (4.0, 2.776),
            (8.0, 2.306),
            (30.0, 2.042),
        ] {
            let q = student_t_quantile(0.975, df);
            assert!((q - t).abs() < 2e-3, "df {df}: {q} vs {t}");
        }
    }

    /// The hand-written quantiles against statrs over the confidence levels and (fractional,
    /// Welch–Satterthwaite) degrees of freedom the bootstrap calibration uses.
    #[test]
    fn quantiles_match_statrs() {
        use statrs::distribution::{ContinuousCDF, Normal, StudentsT};
        let normal = Normal::new(0.0, 1.0).unwrap_or_else(|e| panic!("{e}"));
        for p in [0.75, 0.9, 0.95, 0.975, 0.99, 0.995, 0.9995] {
            let (ours, reference) = (normal_quantile(p), normal.inverse_cdf(p));
            // The normal CDF is Abramowitz–Stegun 7.1.26 (1.5e-7 in probability), which in the
            // far tail moves the quantile by up to ~1e-4; the gate resolves far coarser.
            assert!(
                (ours - reference).abs() < 1e-4,
                "z({p}): {ours} vs {reference}"
            );
            for df in [1.0, 1.5, 2.0, 2.7, 4.0, 7.3, 12.0, 30.0, 100.0, 400.0] {
                let t = StudentsT::new(0.0, 1.0, df).unwrap_or_else(|e| panic!("{e}"));
                let (ours, reference) = (student_t_quantile(p, df), t.inverse_cdf(p));
                assert!(
                    (ours - reference).abs() <= 1e-6 * reference.abs().max(1.0),
                    "t({p}, df {df}): {ours} vs {reference}"
                );
            }
        }
    }
}
