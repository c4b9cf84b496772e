//! Time-series charts as inline SVG, drawn by hand (no JavaScript, no CDN, no fonts to
//! load): lines with gaps, shaded fault bands, vertical alert marks, threshold lines,
//! linear or log10 y axis with "nice" ticks, and a legend.

use std::fmt::Write as _;

use crate::report::xml::escape;

/// One line: points `(x, y)`; `None` y values break the line (no data that second).
#[derive(Debug, Clone)]
pub struct Line {
    pub name: String,
    pub color: &'static str,
    pub points: Vec<(f64, Option<f64>)>,
    pub dashed: bool,
}

/// A shaded span of x, e.g. a fault.
#[derive(Debug, Clone)]
pub struct Band {
    pub start: f64,
    pub end: f64,
    pub label: String,
    pub color: &'static str,
}

/// A vertical marker at x, e.g. an alert delivery.
#[derive(Debug, Clone)]
pub struct Mark {
    pub x: f64,
    pub label: String,
    pub color: &'static str,
}

/// A horizontal reference line, e.g. an SLA threshold.
#[derive(Debug, Clone)]
pub struct HLine {
    pub y: f64,
    pub label: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Linear,
    /// log10; values ≤ 0 are not drawn.
    Log,
}

#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    /// Unit shown on the y axis, e.g. `ms`, `rps`, `%`.
    pub unit: String,
    pub width: f64,
    pub height: f64,
    pub scale: Scale,
    /// Fixed y range (e.g. 0–100 for scores); otherwise from the data (from 0 on linear).
    pub y_range: Option<(f64, f64)>,
    /// Fixed x range; otherwise from the data, bands and marks.
    pub x_range: Option<(f64, f64)>,
    pub lines: Vec<Line>,
    pub bands: Vec<Band>,
    pub marks: Vec<Mark>,
    pub hlines: Vec<HLine>,
    /// Written after each x tick: `s` (seconds from the start of load) by default.
    pub x_suffix: &'static str,
    /// Smallest step between x ticks (1 for run numbers, which have no halves).
    pub x_min_step: f64,
}

const LEFT: f64 = 62.0;
const RIGHT: f64 = 14.0;
const TOP: f64 = 42.0;
const BOTTOM: f64 = 34.0;

impl Chart {
    pub fn new(title: impl Into<String>, unit: impl Into<String>) -> Self {
        Chart {
            title: title.into(),
            unit: unit.into(),
            width: 720.0,
            height: 260.0,
            scale: Scale::Linear,
            y_range: None,
            x_range: None,
            lines: Vec::new(),
            bands: Vec::new(),
            marks: Vec::new(),
            hlines: Vec::new(),
            x_suffix: "s",
            x_min_step: 0.0,
        }
    }

    fn drawable(&self, y: f64) -> bool {
        y.is_finite() && (self.scale == Scale::Linear || y > 0.0)
    }

    fn x_extent(&self) -> (f64, f64) {
        if let Some(r) = self.x_range {
            return r;
        }
        let xs = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.0))
            .chain(self.bands.iter().flat_map(|b| [b.start, b.end]))
            .chain(self.marks.iter().map(|m| m.x))
            .filter(|x| x.is_finite());
        let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x), b.max(x))
        });
        if lo.is_finite() && hi > lo {
            (lo, hi)
        } else if lo.is_finite() {
            (lo - 1.0, lo + 1.0)
        } else {
            (0.0, 1.0)
        }
    }

    fn y_extent(&self) -> (f64, f64) {
        if let Some(r) = self.y_range {
            return r;
        }
        let ys = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().filter_map(|p| p.1))
            .chain(self.hlines.iter().map(|h| h.y))
            .filter(|y| self.drawable(*y));
        let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
            (a.min(y), b.max(y))
        });
        match self.scale {
            Scale::Linear => {
                let hi = if hi.is_finite() && hi > 0.0 { hi } else { 1.0 };
                let lo = if lo.is_finite() { lo.min(0.0) } else { 0.0 };
                let step = nice_step((hi - lo) / 5.0);
                (lo, (hi / step).ceil() * step)
            }
            Scale::Log => {
                if !lo.is_finite() {
                    return (1.0, 10.0);
                }
                let lo = 10f64.powf(lo.log10().floor());
                let hi = 10f64.powf(hi.log10().ceil()).max(lo * 10.0);
                (lo, hi)
            }
        }
    }

    fn ticks(&self, (lo, hi): (f64, f64)) -> Vec<f64> {
        match self.scale {
            Scale::Linear => {
                let step = nice_step((hi - lo) / 5.0);
                let mut v = (lo / step).ceil() * step;
                let mut out = Vec::new();
                while v <= hi + step * 1e-9 && out.len() < 20 {
                    out.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
                    v += step;
                }
                out
            }
            Scale::Log => {
                let mut out = Vec::new();
                let mut v = lo;
                while v <= hi * 1.000001 && out.len() < 20 {
                    out.push(v);
                    v *= 10.0;
                }
                out
            }
        }
    }

    /// The chart as a standalone `<svg>` element.
    pub fn render(&self) -> String {
        let (x0, x1) = self.x_extent();
        let (y0, y1) = self.y_extent();
        let pw = self.width - LEFT - RIGHT;
        let ph = self.height - TOP - BOTTOM;
        let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
        let fy = |y: f64| match self.scale {
            Scale::Linear => (y - y0) / (y1 - y0),
            Scale::Log => (y.log10() - y0.log10()) / (y1.log10() - y0.log10()),
        };
        let sy = |y: f64| TOP + ph - fy(y).clamp(-0.02, 1.02) * ph;

        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{t}" font-family="system-ui,sans-serif" font-size="11">"#,
            w = self.width,
            h = self.height,
            t = escape(&self.title)
        );
        let _ = write!(
            s,
            r##"<rect x="0" y="0" width="{}" height="{}" fill="#fff"/><text x="{LEFT}" y="16" font-size="13" font-weight="600">{}</text>"##,
            self.width,
            self.height,
            escape(&self.title)
        );
        // Bands under everything else.
        for b in &self.bands {
            let (a, z) = (sx(b.start.max(x0)), sx(b.end.min(x1)));
            if z > a {
                let _ = write!(
                    s,
                    r#"<rect class="band" x="{a:.1}" y="{TOP}" width="{:.1}" height="{ph:.1}" fill="{}" fill-opacity="0.18"><title>{}</title></rect><text x="{:.1}" y="{:.1}" fill="{}" font-size="10">{}</text>"#,
                    z - a,
                    b.color,
                    escape(&b.label),
                    a + 3.0,
                    TOP + 11.0,
                    b.color,
                    escape(&b.label)
                );
            }
        }
        // Grid and y ticks.
        for t in self.ticks((y0, y1)) {
            let y = sy(t);
            let _ = write!(
                s,
                r##"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#e3e3e3"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{}</text>"##,
                LEFT + pw,
                LEFT - 6.0,
                y + 3.5,
                fmt_num(t)
            );
        }
        let _ = write!(
            s,
            r##"<text x="12" y="{:.1}" fill="#555" transform="rotate(-90 12 {:.1})" text-anchor="middle">{}</text>"##,
            TOP + ph / 2.0,
            TOP + ph / 2.0,
            escape(&self.unit)
        );
        // x ticks (seconds from the start of load, unless `x_suffix` says otherwise).
        let step = nice_step((x1 - x0) / 8.0).max(self.x_min_step);
        let mut t = (x0 / step).ceil() * step;
        while t <= x1 + 1e-9 {
            let x = sx(t);
            let _ = write!(
                s,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="#999"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}{}</text>"##,
                TOP + ph,
                TOP + ph + 4.0,
                TOP + ph + 16.0,
                fmt_num(t),
                self.x_suffix
            );
            t += step;
        }
        let _ = write!(
            s,
            r##"<rect x="{LEFT}" y="{TOP}" width="{pw:.1}" height="{ph:.1}" fill="none" stroke="#999"/>"##
        );
        for h in &self.hlines {
            if self.drawable(h.y) {
                let y = sy(h.y);
                let _ = write!(
                    s,
                    r##"<line class="threshold" x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#b00" stroke-dasharray="6 3"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#b00" font-size="10">{}</text>"##,
                    LEFT + pw,
                    LEFT + pw - 4.0,
                    y - 3.0,
                    escape(&h.label)
                );
            }
        }
        for l in &self.lines {
            let mut d = String::new();
            let mut pen_down = false;
            for &(x, y) in &l.points {
                match y.filter(|y| self.drawable(*y)) {
                    Some(y) if x.is_finite() => {
                        let _ = write!(
                            d,
                            "{}{:.1},{:.1} ",
                            if pen_down { "L" } else { "M" },
                            sx(x),
                            sy(y)
                        );
                        pen_down = true;
                    }
                    _ => pen_down = false,
                }
            }
            if !d.is_empty() {
                let _ = write!(
                    s,
                    r#"<path class="series" d="{}" fill="none" stroke="{}" stroke-width="1.6"{}><title>{}</title></path>"#,
                    d.trim_end(),
                    l.color,
                    if l.dashed {
                        r#" stroke-dasharray="4 3""#
                    } else {
                        ""
                    },
                    escape(&l.name)
                );
            }
        }
        for m in &self.marks {
            if m.x >= x0 && m.x <= x1 {
                let x = sx(m.x);
                let _ = write!(
                    s,
                    r#"<line class="mark" x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{:.1}" stroke="{}" stroke-width="1.5"><title>{}</title></line><path d="M{x:.1},{:.1} l-4,-7 h8 z" fill="{}"><title>{}</title></path>"#,
                    TOP + ph,
                    m.color,
                    escape(&m.label),
                    TOP,
                    m.color,
                    escape(&m.label)
                );
            }
        }
        // Legend, one row along the top right.
        let mut lx = LEFT + pw;
        let entries: Vec<(&str, &str)> = self
            .lines
            .iter()
            .map(|l| (l.name.as_str(), l.color))
            .collect();
        for (name, color) in entries.iter().rev() {
            let w = 18.0 + 6.2 * name.chars().count() as f64;
            lx -= w + 10.0;
            let _ = write!(
                s,
                r#"<rect x="{lx:.1}" y="24" width="12" height="4" fill="{color}"/><text x="{:.1}" y="30">{}</text>"#,
                lx + 16.0,
                escape(name)
            );
        }
        s.push_str("</svg>");
        s
    }
}

/// 1, 2 or 5 × 10^k, the smallest not below `raw`.
pub fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    let f = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    f * p
}

/// Short numbers for axes: 1500 → 1.5k, 0.25 → 0.25.
pub fn fmt_num(v: f64) -> String {
    // -0.0 (from rounding a tick) prints as 0.
    let v = if v == 0.0 { 0.0 } else { v };
    let a = v.abs();
    let s = if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    s.replace(".0k", "k").replace(".0M", "M")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(svg: &str) -> Vec<&str> {
        svg.split(r#"<path class="series" d=""#)
            .skip(1)
            .map(|p| &p[..p.find('"').unwrap_or(0)])
            .collect()
    }

    #[test]
    fn nice_steps_and_numbers() {
        assert_eq!(nice_step(0.13), 0.2);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(100.0), 100.0);
        assert_eq!(nice_step(f64::NAN), 1.0);
        assert_eq!(fmt_num(1500.0), "1.5k");
        assert_eq!(fmt_num(2000.0), "2k");
        assert_eq!(fmt_num(25000.0), "25k");
        assert_eq!(fmt_num(0.25), "0.25");
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(-0.0), "0");
    }

    #[test]
    fn gaps_split_the_line_and_points_stay_in_the_plot_area() {
        let mut c = Chart::new("p95", "ms");
        c.lines.push(Line {
            name: "p95".into(),
            color: "#1f77b4",
            points: vec![
                (0.0, Some(1.0)),
                (1.0, Some(3.0)),
                (2.0, None),
                (3.0, Some(2.0)),
                (4.0, Some(4.0)),
            ],
            dashed: false,
        });
        let svg = c.render();
        let p = paths(&svg);
        assert_eq!(p.len(), 1);
        assert_eq!(
            p[0].matches('M').count(),
            2,
            "a gap starts a new subpath: {}",
            p[0]
        );
        assert_eq!(p[0].matches('L').count(), 2);
        for pt in p[0].split(['M', 'L']).filter(|s| !s.trim().is_empty()) {
            let (x, y) = pt.trim().split_once(',').unwrap();
            let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
            assert!((LEFT..=c.width - RIGHT).contains(&x), "{x}");
            assert!((TOP..=c.height - BOTTOM).contains(&y), "{y}");
        }
        // Highest value at the top of a 0..4 axis, lowest near the bottom.
        assert!(p[0].ends_with(&format!("{:.1}", TOP)), "{}", p[0]);
    }

    #[test]
    fn bands_marks_thresholds_and_escaping() {
        let mut c = Chart::new("latency <p95> & co", "ms");
        c.x_range = Some((0.0, 30.0));
        c.lines.push(Line {
            name: "a".into(),
            color: "#000",
            points: vec![(0.0, Some(5.0)), (30.0, Some(5.0))],
            dashed: true,
        });
        c.bands.push(Band {
            start: 10.0,
            end: 15.0,
            label: "db_latency".into(),
            color: "#d62728",
        });
        c.marks.push(Mark {
            x: 12.5,
            label: "slack: firing".into(),
            color: "#2ca02c",
        });
        c.marks.push(Mark {
            x: 99.0,
            label: "outside".into(),
            color: "#2ca02c",
        });
        c.hlines.push(HLine {
            y: 2000.0,
            label: "SLA 2000 ms".into(),
        });
        let svg = c.render();
        assert!(svg.contains("latency &lt;p95&gt; &amp; co"));
        assert!(!svg.contains("<p95>"));
        let pw = c.width - LEFT - RIGHT;
        let band_x = LEFT + 10.0 / 30.0 * pw;
        assert!(
            svg.contains(&format!(r#"<rect class="band" x="{band_x:.1}""#)),
            "{svg}"
        );
        assert_eq!(
            svg.matches(r#"class="mark""#).count(),
            1,
            "marks outside the range are dropped"
        );
        assert!(svg.contains(&format!(r#"x1="{:.1}""#, LEFT + 12.5 / 30.0 * pw)));
        assert!(svg.contains(r#"class="threshold""#));
        assert!(svg.contains("stroke-dasharray=\"4 3\""));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }

    #[test]
    fn log_scale_ticks_at_powers_of_ten_and_skips_non_positive_values() {
        let mut c = Chart::new("p95", "ms");
        c.scale = Scale::Log;
        c.lines.push(Line {
            name: "p95".into(),
            color: "#000",
            points: vec![(0.0, Some(2.0)), (1.0, Some(0.0)), (2.0, Some(2600.0))],
            dashed: false,
        });
        assert_eq!(c.y_extent(), (1.0, 10000.0));
        assert_eq!(
            c.ticks(c.y_extent()),
            vec![1.0, 10.0, 100.0, 1000.0, 10000.0]
        );
        let svg = c.render();
        assert_eq!(
            paths(&svg)[0].matches('M').count(),
            2,
            "zero is a gap on a log axis"
        );
    }
}
