//! The SVG chart: for each measured cost, its cost per unit (per article,
//! per account, or per request) at each size relative to the smallest
//! size, against the size on a log scale. A flat line at 1.0 is a cost
//! linear in the data (or, per request, constant); a rising one grows
//! faster than the data.

use std::fmt::Write;

/// One curve: a cost per unit at each size.
pub(crate) struct Series {
    pub(crate) name: &'static str,
    pub(crate) colour: &'static str,
    pub(crate) per_unit: Vec<(usize, f64)>,
}

impl Series {
    /// The cost `f` gives each point, per unit of `size(point)` when
    /// `per_size` (else as is: a per-request cost); points without a
    /// figure are left out.
    pub(crate) fn of<P>(
        name: &'static str,
        colour: &'static str,
        points: &[P],
        size: impl Fn(&P) -> usize,
        per_size: bool,
        f: impl Fn(&P) -> Option<f64>,
    ) -> Series {
        Series {
            name,
            colour,
            per_unit: points
                .iter()
                .filter_map(|p| {
                    let n = size(p);
                    let v = f(p)?;
                    Some((n, if per_size { v / n as f64 } else { v }))
                })
                .collect(),
        }
    }

    /// Each point relative to the first: `(size, ratio)`.
    pub(crate) fn relative(&self) -> Vec<(usize, f64)> {
        let base = self.per_unit.first().map_or(0.0, |p| p.1);
        if base <= 0.0 {
            return Vec::new();
        }
        self.per_unit.iter().map(|&(n, v)| (n, v / base)).collect()
    }
}

/// One panel: a title, the unit of its x axis, its curves.
pub(crate) struct Panel {
    pub(crate) title: String,
    pub(crate) unit: &'static str,
    pub(crate) series: Vec<Series>,
}

const W: f64 = 720.0;
const H: f64 = 340.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 250.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 44.0;

/// One panel's SVG elements, drawn `y0` pixels down.
fn panel(p: &Panel, y0: f64) -> String {
    let curves: Vec<(&Series, Vec<(usize, f64)>)> =
        p.series.iter().map(|s| (s, s.relative())).collect();
    let sizes: Vec<usize> = {
        let mut v: Vec<usize> = curves
            .iter()
            .flat_map(|(_, r)| r.iter().map(|q| q.0))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let lg = |n: usize| (n.max(1) as f64).log10();
    let (x0, x1) = (
        sizes.first().map_or(0.0, |&n| lg(n)),
        sizes.last().map_or(1.0, |&n| lg(n)),
    );
    let y_max = curves
        .iter()
        .flat_map(|(_, r)| r.iter().map(|q| q.1))
        .fold(2.0_f64, f64::max)
        .ceil();
    let step = (y_max / 8.0).ceil().max(1.0);
    let px = |x: f64| {
        let span = if x1 > x0 { x1 - x0 } else { 1.0 };
        LEFT + (x - x0) / span * (W - LEFT - RIGHT)
    };
    let py = |y: f64| y0 + H - BOTTOM - y / y_max * (H - TOP - BOTTOM);
    let (bottom, right) = (y0 + H - BOTTOM, W - RIGHT);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<text x=\"{LEFT}\" y=\"{:.1}\" font-weight=\"bold\">{}</text>",
        y0 + 20.0,
        p.title
    );
    let _ = writeln!(
        out,
        "<line x1=\"{LEFT}\" y1=\"{bottom:.1}\" x2=\"{right}\" y2=\"{bottom:.1}\" stroke=\"black\"/>\n<line x1=\"{LEFT}\" y1=\"{:.1}\" x2=\"{LEFT}\" y2=\"{bottom:.1}\" stroke=\"black\"/>",
        y0 + TOP
    );
    let _ = writeln!(
        out,
        "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{right}\" y2=\"{y:.1}\" stroke=\"#999\" stroke-dasharray=\"4 4\"/>",
        y = py(1.0)
    );
    let mut t = 0.0;
    while t <= y_max {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{t:.1}</text>",
            LEFT - 6.0,
            py(t) + 4.0
        );
        t += step;
    }
    for &n in &sizes {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{n}</text>",
            px(lg(n)),
            bottom + 16.0
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{} (log scale)</text>",
        (LEFT + right) / 2.0,
        bottom + 34.0,
        p.unit
    );
    for (i, (s, rel)) in curves.iter().enumerate() {
        let pts: Vec<String> = rel
            .iter()
            .map(|&(n, y)| format!("{:.1},{:.1}", px(lg(n)), py(y)))
            .collect();
        let _ = writeln!(
            out,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>",
            s.colour,
            pts.join(" ")
        );
        for &(n, y) in rel {
            let _ = writeln!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\"/>",
                px(lg(n)),
                py(y),
                s.colour
            );
        }
        let ly = y0 + TOP + 18.0 * i as f64 + 6.0;
        let last = rel
            .last()
            .map_or(String::new(), |q| format!(" ({:.2})", q.1));
        let _ = writeln!(
            out,
            "<line x1=\"{:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{}\" stroke-width=\"2\"/><text x=\"{:.1}\" y=\"{:.1}\">{}{last}</text>",
            right + 10.0,
            right + 30.0,
            s.colour,
            right + 36.0,
            ly + 4.0,
            s.name
        );
    }
    out
}

/// The chart: the panels stacked.
pub(crate) fn svg(panels: &[Panel]) -> String {
    let height = H * panels.len() as f64;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    for (i, p) in panels.iter().enumerate() {
        out.push_str(&panel(p, H * i as f64));
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct P {
        n: usize,
        secs: f64,
        p99: Option<f64>,
    }

    #[test]
    fn per_unit_costs_relative_to_the_smallest_size() {
        // Linear from 1k to 10k, then 3x per unit at 100k; p99 flat.
        let points = [
            P {
                n: 1000,
                secs: 1.0,
                p99: Some(2.0),
            },
            P {
                n: 10_000,
                secs: 10.0,
                p99: None,
            },
            P {
                n: 100_000,
                secs: 300.0,
                p99: Some(2.0),
            },
        ];
        let secs = Series::of("s", "#000", &points, |p| p.n, true, |p| Some(p.secs));
        assert_eq!(
            secs.relative(),
            [(1000, 1.0), (10_000, 1.0), (100_000, 3.0)]
        );
        let p99 = Series::of("p99", "#111", &points, |p| p.n, false, |p| p.p99);
        assert_eq!(p99.relative(), [(1000, 1.0), (100_000, 1.0)]);
        let zero = Series::of("z", "#222", &points, |p| p.n, true, |_| Some(0.0));
        assert!(zero.relative().is_empty());
        let chart = svg(&[
            Panel {
                title: "Per article".into(),
                unit: "articles",
                series: vec![secs, p99],
            },
            Panel {
                title: "Per account".into(),
                unit: "accounts",
                series: vec![zero],
            },
        ]);
        assert!(chart.starts_with("<svg") && chart.trim_end().ends_with("</svg>"));
        assert_eq!(chart.matches("<polyline").count(), 3);
        assert_eq!(chart.matches("<circle").count(), 5);
        for label in [
            "1000",
            "10000",
            "100000",
            "Per article",
            "accounts (log scale)",
            "s (3.00)",
            "p99 (1.00)",
        ] {
            assert!(chart.contains(label), "{label}");
        }
        // The growth shows: the 3.0 tick is drawn.
        assert!(chart.contains(">3.0</text>"));
    }
}
