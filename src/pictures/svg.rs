//! Charts written as SVG, drawn from profiles alone: overlaid histograms of numbers read off the
//! quantile sketches, grouped bars of the most frequent strings and booleans, null ratios, and
//! lines of values over time (the daemon's score history and run counters).
//!
//! Geometry (`Histogram`, `Bars`) is computed apart from drawing so it can be checked against
//! known quantiles. Colours come from the page's CSS classes (`ref`, `cur`), so one chart fits
//! the light, dark and printed page.

use std::fmt::Write as _;

use super::markup::{Text, clip, coord, percent};
use crate::detect::stats::StepCdf;
use crate::format::format_number;
use crate::profile::{FeatureProfile, Kind, NumericSummary};

/// Equal-width bins of a numeric histogram.
pub const BINS: usize = 40;
/// Most categories drawn; the rest are pooled into "other".
pub const CATEGORIES: usize = 8;
/// The width of every chart's view box; charts scale to their container.
const WIDTH: f64 = 600.0;
const PLOT_LEFT: f64 = 10.0;
const PLOT_RIGHT: f64 = 590.0;
/// Room above the plot for the quantile labels: one row per side.
const PLOT_TOP: f64 = 26.0;
const PLOT_BASE: f64 = 136.0;
const HISTOGRAM_HEIGHT: f64 = 156.0;
/// The quantiles marked on a histogram.
pub const MARKED: [(f64, &str); 3] = [(0.05, "p5"), (0.5, "p50"), (0.95, "p95")];

/// One side's numbers over the histogram's bins.
#[derive(Debug, Clone, PartialEq)]
pub struct Spread {
    /// Share of the side's finite values in each bin; bin 0 includes its lower edge.
    pub shares: Vec<f64>,
    /// Shares below the first edge and above the last: outside the range shown.
    pub below: f64,
    pub above: f64,
    /// The values at `MARKED`'s ranks.
    pub marked: [f64; 3],
}

/// Both sides' numbers over shared bins, so their heights compare.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// `BINS + 1` increasing edges.
    pub edges: Vec<f64>,
    pub reference: Option<Spread>,
    pub current: Option<Spread>,
}

impl Histogram {
    /// Bins over the union of both sides' ranges, `None` when neither side has numbers. The
    /// range runs from the lower of the 0.5 % quantiles to the higher of the 99.5 % ones, so
    /// one outlier does not squash the picture, stretched to the exact min and max when they
    /// lie within a tenth of the range of it.
    pub fn of(
        reference: Option<&NumericSummary>,
        current: Option<&NumericSummary>,
    ) -> Option<Self> {
        let sides: Vec<&NumericSummary> = [reference, current]
            .into_iter()
            .flatten()
            .filter(|s| s.count() > 0)
            .collect();
        let (lo, hi) = shown_range(&sides)?;
        let edges: Vec<f64> = (0..=BINS)
            .map(|i| lo + (hi - lo) * i as f64 / BINS as f64)
            .collect();
        let spread = |s: Option<&NumericSummary>| {
            s.filter(|s| s.count() > 0).and_then(|s| spread(s, &edges))
        };
        Some(Histogram {
            reference: spread(reference),
            current: spread(current),
            edges,
        })
    }

    fn x(&self, value: f64) -> f64 {
        let (lo, hi) = (self.edges[0], self.edges[BINS]);
        PLOT_LEFT + (value - lo) / (hi - lo) * (PLOT_RIGHT - PLOT_LEFT)
    }

    /// The tallest bin of either side: both are drawn on one scale.
    fn peak(&self) -> f64 {
        [&self.reference, &self.current]
            .into_iter()
            .flatten()
            .flat_map(|s| s.shares.iter().copied())
            .fold(0.0, f64::max)
    }
}

fn shown_range(sides: &[&NumericSummary]) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    for s in sides {
        lo = lo.min(s.quantile(0.005)?);
        hi = hi.max(s.quantile(0.995)?);
        min = min.min(s.min()?);
        max = max.max(s.max()?);
    }
    let span = hi - lo;
    if min >= lo - 0.1 * span {
        lo = min;
    }
    if max <= hi + 0.1 * span {
        hi = max;
    }
    if hi <= lo {
        // One value: a window around it.
        let pad = if lo == 0.0 { 0.5 } else { lo.abs() * 0.05 };
        (lo, hi) = (lo - pad, lo + pad);
    }
    (lo.is_finite() && hi.is_finite()).then_some((lo, hi))
}

fn spread(s: &NumericSummary, edges: &[f64]) -> Option<Spread> {
    let (points, cumulative) = s.cdf_points().into_iter().unzip();
    let cdf = StepCdf::new(points, cumulative)?;
    let below = cdf.at(edges[0].next_down());
    let mut previous = below;
    let shares = edges[1..]
        .iter()
        .map(|&e| {
            let f = cdf.at(e).max(previous);
            let share = f - previous;
            previous = f;
            share
        })
        .collect();
    let mut marked = [0.0; 3];
    for (m, (rank, _)) in marked.iter_mut().zip(MARKED) {
        *m = s.quantile(rank)?;
    }
    Some(Spread {
        shares,
        below,
        above: (1.0 - previous).max(0.0),
        marked,
    })
}

/// Heights of the bins, in whole steps of the plot's height: a pixel each.
const HEIGHT_STEPS: f64 = PLOT_BASE - PLOT_TOP;

/// The outline of one side's bins as a path in bin units: x counts bins, y counts height
/// steps up from the base (`histogram_svg` scales it into the plot). Runs of equal height are
/// one segment, so the path stays short.
pub fn histogram_path(h: &Histogram, spread: &Spread) -> String {
    let peak = h.peak().max(f64::MIN_POSITIVE);
    let mut d = String::from("M0,0");
    let (mut height, mut run) = (0i64, 0usize);
    for &share in &spread.shares {
        let top = (share / peak * HEIGHT_STEPS).round() as i64;
        if top != height {
            if run > 0 {
                let _ = write!(d, "h{run}");
            }
            let _ = write!(d, "V{top}");
            (height, run) = (top, 0);
        }
        run += 1;
    }
    let _ = write!(d, "h{run}");
    if height != 0 {
        d.push_str("V0");
    }
    d.push('Z');
    d
}

/// "Nice" tick values (1, 2 or 5 times a power of ten apart), about `target` of them.
pub fn ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    let raw = (hi - lo) / target.max(1) as f64;
    if !(raw > 0.0 && raw.is_finite()) {
        return vec![lo];
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * magnitude);
    let (first, last) = ((lo / step).ceil(), (hi / step).floor());
    // Near the ends of f64 (subnormal ranges, a step that underflowed) rounding can make the
    // count of steps meaningless: then the range gets its lower end only.
    if !(step > 0.0 && first.is_finite() && last.is_finite())
        || last - first > (4 * target.max(1)) as f64
    {
        return vec![lo];
    }
    (first as i64..=last as i64)
        .map(|i| {
            let t = i as f64 * step;
            if t.abs() < step * 1e-9 { 0.0 } else { t }
        })
        .collect()
}

/// The histogram as one `<svg>`: reference and current outlines overlaid, their p5, p50 and
/// p95 marked (reference labels on the upper row, current on the lower), an axis of values.
pub fn histogram_svg(h: &Histogram, label: &str) -> String {
    let mut s = format!(
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HISTOGRAM_HEIGHT}" role="img" aria-label="{}"><g transform="translate({PLOT_LEFT} {PLOT_BASE}) scale({} -1)">"#,
        Text(label),
        coord((PLOT_RIGHT - PLOT_LEFT) / BINS as f64),
    );
    for (spread, class) in [(&h.reference, "ref"), (&h.current, "cur")] {
        if let Some(spread) = spread {
            let _ = write!(
                s,
                r#"<path class="{class}" d="{}"/>"#,
                histogram_path(h, spread)
            );
        }
    }
    s.push_str("</g>");
    for (row, (spread, class)) in [(&h.reference, "ref"), (&h.current, "cur")]
        .into_iter()
        .enumerate()
    {
        let Some(spread) = spread else { continue };
        let label_y = 10.0 + row as f64 * 11.0;
        let mut lines = String::new();
        let mut labels = String::new();
        let mut last_label = f64::NEG_INFINITY;
        for (&value, (_, name)) in spread.marked.iter().zip(MARKED) {
            let x = h.x(value);
            let _ = write!(
                lines,
                "M{},{}V{}",
                coord(x),
                coord(label_y + 2.0),
                coord(PLOT_BASE)
            );
            // Labels closer than this would overlap; the lines remain, and the figures under
            // the chart give the values.
            if x - last_label >= 24.0 {
                let _ = write!(labels, r#"<text x="{}">{name}</text>"#, coord(x));
                last_label = x;
            }
        }
        let _ = write!(
            s,
            r#"<path class="q {class}" d="{lines}"/><g class="ql {class}" transform="translate(0 {})">{labels}</g>"#,
            coord(label_y)
        );
    }
    let (lo, hi) = (h.edges[0], h.edges[BINS]);
    let ticks = ticks(lo, hi, 5);
    let mut marks = format!(
        "M{},{b}H{}",
        coord(PLOT_LEFT),
        coord(PLOT_RIGHT),
        b = coord(PLOT_BASE)
    );
    let mut labels = String::new();
    for &t in &ticks {
        let x = h.x(t);
        let _ = write!(marks, "M{},{}v4", coord(x), coord(PLOT_BASE));
        let anchor = if x < PLOT_LEFT + 20.0 {
            r#" text-anchor="start""#
        } else if x > PLOT_RIGHT - 20.0 {
            r#" text-anchor="end""#
        } else {
            ""
        };
        let _ = write!(
            labels,
            r#"<text x="{}"{anchor}>{}</text>"#,
            coord(x),
            Text(&format_number(t))
        );
    }
    let _ = write!(
        s,
        r#"<path class="axis" d="{marks}"/><g class="tick" transform="translate(0 {})">{labels}</g></svg>"#,
        coord(PLOT_BASE + 15.0)
    );
    s
}

/// One category and its share of each side's values (`None`: the side lacks the feature).
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    /// The pooled rest of the categories, drawn last.
    pub other: bool,
    pub reference: Option<f64>,
    pub current: Option<f64>,
}

/// Grouped bars of a string or boolean feature's most frequent values.
#[derive(Debug, Clone, PartialEq)]
pub struct Bars(pub Vec<Bar>);

impl Bars {
    /// The `CATEGORIES` values with the largest share on either side, then the rest as
    /// "other" when it is more than 0.05 % of either side.
    pub fn of(
        kind: Kind,
        reference: Option<&FeatureProfile>,
        current: Option<&FeatureProfile>,
    ) -> Bars {
        let shares = |f: Option<&FeatureProfile>| f.map(|f| category_shares(kind, f));
        let (r, c) = (shares(reference), shares(current));
        let mut labels: Vec<(&str, f64)> = Vec::new();
        for side in [&r, &c].into_iter().flatten() {
            for (label, share) in side {
                match labels.iter_mut().find(|(l, _)| l == label) {
                    Some(entry) => entry.1 = entry.1.max(*share),
                    None => labels.push((label, *share)),
                }
            }
        }
        labels.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        labels.truncate(CATEGORIES);
        let share_of = |side: &Option<Vec<(String, f64)>>, label: &str| {
            side.as_ref().map(|s| {
                s.iter()
                    .find(|(l, _)| l == label)
                    .map_or(0.0, |(_, share)| *share)
            })
        };
        let mut bars: Vec<Bar> = labels
            .iter()
            .map(|(label, _)| Bar {
                label: (*label).to_owned(),
                other: false,
                reference: share_of(&r, label),
                current: share_of(&c, label),
            })
            .collect();
        let rest = |side: Option<f64>, column: fn(&Bar) -> Option<f64>| {
            side.map(|total| (total - bars.iter().filter_map(column).sum::<f64>()).max(0.0))
        };
        let total = |side: &Option<Vec<(String, f64)>>| {
            side.as_ref().map(|s| if s.is_empty() { 0.0 } else { 1.0 })
        };
        let other = Bar {
            label: "other".to_owned(),
            other: true,
            reference: rest(total(&r), |b| b.reference),
            current: rest(total(&c), |b| b.current),
        };
        if [other.reference, other.current]
            .into_iter()
            .flatten()
            .any(|share| share > 0.0005)
        {
            bars.push(other);
        }
        Bars(bars)
    }
}

/// Shares of a feature's values: booleans from their exact counts, strings from the frequent
/// items (out of every string value, so the unlisted rest stays in "other").
fn category_shares(kind: Kind, f: &FeatureProfile) -> Vec<(String, f64)> {
    if kind == Kind::Boolean {
        let b = f.booleans();
        let total = (b.true_count + b.false_count) as f64;
        if total == 0.0 {
            return Vec::new();
        }
        return vec![
            ("true".to_owned(), b.true_count as f64 / total),
            ("false".to_owned(), b.false_count as f64 / total),
        ];
    }
    let strings = f.strings();
    let total = strings.count() as f64;
    if total == 0.0 {
        return Vec::new();
    }
    strings
        .frequent(crate::report::TOP_VALUES)
        .into_iter()
        .map(|v| (v.value, v.count as f64 / total))
        .collect()
}

const BAR_LABEL_RIGHT: f64 = 168.0;
const BAR_LEFT: f64 = 174.0;
const BAR_RIGHT: f64 = 548.0;
const BAR_THICKNESS: f64 = 9.0;
const BAR_ROW: f64 = 24.0;

/// A horizontal bar as a closed sub-path (one path draws all bars of a side).
fn bar(d: &mut String, y: f64, length: f64) {
    let _ = write!(
        d,
        "M{},{}h{}v{}H{}z",
        coord(BAR_LEFT),
        coord(y),
        coord(length),
        coord(BAR_THICKNESS),
        coord(BAR_LEFT)
    );
}

/// The bars as one `<svg>`: a row per category, reference above current, lengths on one scale
/// (the largest share spans the width), each labelled with its percentage.
pub fn bars_svg(bars: &Bars, label: &str) -> String {
    let height = bars.0.len() as f64 * BAR_ROW + 6.0;
    let peak = bars
        .0
        .iter()
        .flat_map(|b| [b.reference, b.current])
        .flatten()
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let mut s = format!(
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {}" role="img" aria-label="{}"><g class="cat">"#,
        coord(height),
        Text(label)
    );
    let mut paths = [String::new(), String::new()];
    let mut percents = String::new();
    for (i, b) in bars.0.iter().enumerate() {
        let top = 4.0 + i as f64 * BAR_ROW;
        let shown = clip(&b.label, 26);
        // The whole value as a tooltip, only when the label had to be cut.
        let title = if shown.len() < b.label.len() {
            format!("<title>{}</title>", Text(&b.label))
        } else {
            String::new()
        };
        let _ = write!(
            s,
            r#"<text{} x="{}" y="{}">{title}{}</text>"#,
            if b.other { r#" class="other""# } else { "" },
            coord(BAR_LABEL_RIGHT),
            coord(top + BAR_THICKNESS + 3.0),
            Text(&shown),
        );
        for (j, share) in [b.reference, b.current].into_iter().enumerate() {
            let Some(share) = share else { continue };
            let y = top + j as f64 * (BAR_THICKNESS + 1.0);
            let length = share / peak * (BAR_RIGHT - BAR_LEFT);
            bar(
                &mut paths[j],
                y,
                length.max(if share > 0.0 { 1.0 } else { 0.0 }),
            );
            let _ = write!(
                percents,
                r#"<text x="{}" y="{}">{}</text>"#,
                coord(BAR_LEFT + length + 4.0),
                coord(y + BAR_THICKNESS - 1.0),
                percent(share),
            );
        }
    }
    s.push_str("</g>");
    for (d, class) in paths.iter().zip(["ref", "cur"]) {
        if !d.is_empty() {
            let _ = write!(s, r#"<path class="bar {class}" d="{d}"/>"#);
        }
    }
    let _ = write!(s, r#"<g class="pct">{percents}</g></svg>"#);
    s
}

/// Null ratios side by side on a 0–100 % scale, so a small ratio looks small.
pub fn nulls_svg(reference: Option<f64>, current: Option<f64>) -> String {
    let mut s = format!(
        r#"<svg class="nulls" viewBox="0 0 {WIDTH} 30" role="img" aria-label="null ratios"><text class="cat" x="{}" y="19">nulls</text>"#,
        coord(BAR_LABEL_RIGHT)
    );
    let mut track = String::new();
    let mut parts = String::new();
    for (j, (ratio, class)) in [(reference, "ref"), (current, "cur")]
        .into_iter()
        .enumerate()
    {
        let Some(ratio) = ratio else { continue };
        let y = 4.0 + j as f64 * (BAR_THICKNESS + 2.0);
        let length = ratio.clamp(0.0, 1.0) * (BAR_RIGHT - BAR_LEFT);
        bar(&mut track, y, BAR_RIGHT - BAR_LEFT);
        let mut d = String::new();
        bar(&mut d, y, length.max(if ratio > 0.0 { 1.0 } else { 0.0 }));
        let _ = write!(
            parts,
            r#"<path class="bar {class}" d="{d}"/><text class="pct" x="{}" y="{}">{}</text>"#,
            coord(BAR_RIGHT + 4.0),
            coord(y + BAR_THICKNESS - 1.0),
            percent(ratio),
        );
    }
    let _ = write!(s, r#"<path class="track" d="{track}"/>{parts}</svg>"#);
    s
}

/// One point of a line over time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimePoint {
    pub at_ms: i64,
    /// `None` breaks the line (no score that time).
    pub value: Option<f64>,
    /// Drawn as a dot: a drifted score, an anomalous run.
    pub marked: bool,
    /// The range expected of the value, drawn as a bar behind it.
    pub band: Option<(f64, f64)>,
}

/// A line of values over time, with a limit (a threshold) and bands.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeLine {
    pub points: Vec<TimePoint>,
    pub limit: Option<f64>,
}

const LINE_HEIGHT: f64 = 132.0;
const LINE_LEFT: f64 = 48.0;
/// Room on the right for the last time label and a dot on the last point.
const LINE_RIGHT: f64 = 580.0;
const LINE_TOP: f64 = 8.0;
const LINE_BASE: f64 = 106.0;

impl TimeLine {
    /// The value axis: from 0 (or the lowest value when below it) to the highest of values,
    /// bands and limit, with room above.
    fn value_range(&self) -> (f64, f64) {
        let values = self.points.iter().flat_map(|p| {
            let band = p.band.map_or([None, None], |(lo, hi)| [Some(lo), Some(hi)]);
            [p.value, band[0], band[1]]
        });
        let (lo, hi) = values
            .flatten()
            .chain(self.limit)
            .filter(|v| v.is_finite())
            .fold((0.0f64, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        let hi = if hi > lo {
            hi + (hi - lo) * 0.08
        } else {
            lo + 1.0
        };
        (lo, hi)
    }

    fn time_range(&self) -> (i64, i64) {
        let first = self.points.first().map_or(0, |p| p.at_ms);
        let last = self.points.last().map_or(0, |p| p.at_ms);
        (first, last.max(first + 1))
    }
}

/// The line as one `<svg class="chart line">`: values over time (oldest left), the limit
/// dashed, marked points as dots, bands as bars; `data-points` tells how many points it
/// draws. `times` are the labels of the first and last point.
pub fn line_svg(line: &TimeLine, times: (&str, &str), label: &str) -> String {
    let (lo, hi) = line.value_range();
    let (t0, t1) = line.time_range();
    let x = |at: i64| LINE_LEFT + (at - t0) as f64 / (t1 - t0) as f64 * (LINE_RIGHT - LINE_LEFT);
    let y = |v: f64| LINE_BASE - (v - lo) / (hi - lo) * (LINE_BASE - LINE_TOP);
    let mut s = format!(
        r#"<svg class="chart line" viewBox="0 0 {WIDTH} {LINE_HEIGHT}" role="img" aria-label="{}" data-points="{}">"#,
        Text(label),
        line.points.len()
    );
    let mut grid = String::new();
    let mut labels = String::new();
    for t in ticks(lo, hi, 3) {
        let _ = write!(
            grid,
            "M{},{}H{}",
            coord(LINE_LEFT),
            coord(y(t)),
            coord(LINE_RIGHT)
        );
        let _ = write!(
            labels,
            r#"<text x="{}" y="{}">{}</text>"#,
            coord(LINE_LEFT - 6.0),
            coord(y(t) + 4.0),
            Text(&format_number(t))
        );
    }
    let _ = write!(
        s,
        r#"<path class="grid" d="{grid}"/><g class="yl">{labels}</g>"#
    );
    let mut bands = String::new();
    for p in &line.points {
        if let Some((low, high)) = p.band {
            let _ = write!(
                bands,
                "M{},{}V{}",
                coord(x(p.at_ms)),
                coord(y(low)),
                coord(y(high))
            );
        }
    }
    if !bands.is_empty() {
        let _ = write!(s, r#"<path class="band" d="{bands}"/>"#);
    }
    if let Some(limit) = line.limit {
        let _ = write!(
            s,
            r#"<path class="limit" d="M{},{l}H{}"/>"#,
            coord(LINE_LEFT),
            coord(LINE_RIGHT),
            l = coord(y(limit))
        );
    }
    s.push_str(&line_path(line, x, y));
    let _ = write!(
        s,
        r#"<path class="axis" d="M{},{b}H{}"/><g class="tick"><text x="{}" y="{t}" text-anchor="start">{}</text><text x="{}" y="{t}" text-anchor="end">{}</text></g></svg>"#,
        coord(LINE_LEFT),
        coord(LINE_RIGHT),
        coord(LINE_LEFT),
        Text(times.0),
        coord(LINE_RIGHT),
        Text(times.1),
        b = coord(LINE_BASE),
        t = coord(LINE_BASE + 16.0),
    );
    s
}

/// The line (broken where a value is missing) and its marked points.
fn line_path(line: &TimeLine, x: impl Fn(i64) -> f64, y: impl Fn(f64) -> f64) -> String {
    let (mut d, mut dots) = (String::new(), String::new());
    let mut drawing = false;
    for p in &line.points {
        let Some(v) = p.value.filter(|v| v.is_finite()) else {
            drawing = false;
            continue;
        };
        let (px, py) = (coord(x(p.at_ms)), coord(y(v)));
        let _ = write!(d, "{}{px},{py}", if drawing { "L" } else { "M" });
        drawing = true;
        if p.marked {
            let _ = write!(dots, "M{px},{py}m-3,0a3,3 0 1,0 6,0a3,3 0 1,0 -6,0");
        }
    }
    let mut s = format!(r#"<path class="value" d="{d}"/>"#);
    if !dots.is_empty() {
        let _ = write!(s, r#"<path class="hit" d="{dots}"/>"#);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{FeatureProfile, Value};

    fn numbers(values: impl IntoIterator<Item = f64>) -> FeatureProfile {
        let mut f = FeatureProfile::with_declared(None);
        for x in values {
            f.observe(Value::Number(x));
        }
        f
    }

    fn strings(counts: &[(&str, usize)]) -> FeatureProfile {
        let mut f = FeatureProfile::with_declared(None);
        for (value, n) in counts {
            for _ in 0..*n {
                f.observe(Value::Str(value));
            }
        }
        f
    }

    #[test]
    fn two_values_make_two_bars_at_the_edges() {
        let f = numbers((0..100).map(|i| if i < 50 { 0.0 } else { 10.0 }));
        let h = Histogram::of(Some(f.numeric()), None).unwrap();
        assert_eq!((h.edges[0], h.edges[BINS]), (0.0, 10.0));
        let r = h.reference.as_ref().unwrap();
        assert_eq!((r.shares[0], r.shares[BINS - 1]), (0.5, 0.5));
        assert_eq!(r.shares[1..BINS - 1].iter().sum::<f64>(), 0.0);
        assert_eq!((r.below, r.above), (0.0, 0.0));
        assert_eq!(r.marked, [0.0, 0.0, 10.0]);
        // In bin units: the peak is the plot's full height (110 steps).
        assert_eq!(histogram_path(&h, r), "M0,0V110h1V0h38V110h1V0Z");
        assert!(histogram_svg(&h, "t").contains(r#"translate(10 136) scale(14.5 -1)"#));
        assert!(h.current.is_none());
    }

    #[test]
    fn uniform_values_fill_every_bin_and_quantiles_sit_where_they_are() {
        // 400 values: the KLL sketch still holds them all, so ranks are exact.
        let f = numbers((0..400).map(f64::from));
        let h = Histogram::of(Some(f.numeric()), Some(f.numeric())).unwrap();
        assert_eq!((h.edges[0], h.edges[BINS]), (0.0, 399.0));
        let r = h.reference.as_ref().unwrap();
        for (i, share) in r.shares.iter().enumerate() {
            let values = (share * 400.0).round();
            assert!((9.0..=11.0).contains(&values), "bin {i} holds {values}");
        }
        assert!((r.shares.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(r.marked, [19.0, 199.0, 379.0]);
        // p50 at 10 + 199 / 399 × 580 = 299.27.
        let svg = histogram_svg(&h, "u");
        assert!(svg.contains("M299.3,23V136"), "{svg}");
        for tick in [">0<", ">100<", ">200<", ">300<"] {
            assert!(svg.contains(tick), "tick {tick} missing: {svg}");
        }
    }

    #[test]
    fn an_outlier_does_not_squash_the_range_and_is_counted_outside_it() {
        let f = numbers((0..399).map(|i| f64::from(i) / 399.0).chain([1e6]));
        let h = Histogram::of(Some(f.numeric()), None).unwrap();
        assert!(h.edges[BINS] < 1.0, "range up to {}", h.edges[BINS]);
        let r = h.reference.as_ref().unwrap();
        assert!(
            r.above >= 1.0 / 400.0 && r.above <= 3.0 / 400.0,
            "{}",
            r.above
        );
        assert!((r.shares.iter().sum::<f64>() + r.below + r.above - 1.0).abs() < 1e-12);
    }

    #[test]
    fn one_value_is_drawn_in_a_window_around_it() {
        let f = numbers([5.0; 30]);
        let h = Histogram::of(Some(f.numeric()), None).unwrap();
        assert_eq!((h.edges[0], h.edges[BINS]), (4.75, 5.25));
        let r = h.reference.as_ref().unwrap();
        assert_eq!(r.shares.iter().filter(|&&s| s == 1.0).count(), 1);
        assert!(Histogram::of(Some(FeatureProfile::default().numeric()), None).is_none());
    }

    #[test]
    fn ticks_are_round_numbers_inside_the_range() {
        assert_eq!(ticks(0.0, 226.7, 5), [0.0, 50.0, 100.0, 150.0, 200.0]);
        assert_eq!(ticks(-9.1, 80.9, 5), [0.0, 20.0, 40.0, 60.0, 80.0]);
        assert_eq!(ticks(-1.0, 1.0, 4), [-1.0, -0.5, 0.0, 0.5, 1.0]);
        // Subnormal ranges: a handful of ticks at most, never an allocation of 2^63.
        assert!(ticks(5e-324, 1e-320, 5).len() <= 21);
        assert!(ticks(0.0, 2e-323, 5).len() <= 21);
    }

    #[test]
    fn bars_list_the_largest_shares_of_either_side() {
        let r = strings(&[("a", 60), ("b", 30), ("c", 10)]);
        let c = strings(&[("a", 20), ("b", 30), ("d", 50)]);
        let bars = Bars::of(Kind::String, Some(&r), Some(&c));
        let rows: Vec<(&str, Option<f64>, Option<f64>)> = bars
            .0
            .iter()
            .map(|b| (b.label.as_str(), b.reference, b.current))
            .collect();
        assert_eq!(
            rows,
            [
                ("a", Some(0.6), Some(0.2)),
                ("d", Some(0.0), Some(0.5)),
                ("b", Some(0.3), Some(0.3)),
                ("c", Some(0.1), Some(0.0)),
            ]
        );
        // Twelve categories: eight drawn, the rest pooled.
        let many: Vec<(String, usize)> = (0..12).map(|i| (format!("v{i:02}"), 12 - i)).collect();
        let many: Vec<(&str, usize)> = many.iter().map(|(v, n)| (v.as_str(), *n)).collect();
        let f = strings(&many);
        let bars = Bars::of(Kind::String, Some(&f), None);
        assert_eq!(bars.0.len(), CATEGORIES + 1);
        let other = bars.0.last().unwrap();
        assert!(other.other && other.current.is_none());
        // v08..v11 hold 4 + 3 + 2 + 1 of 78 values.
        assert!((other.reference.unwrap() - 10.0 / 78.0).abs() < 1e-12);
    }

    #[test]
    fn booleans_are_shares_of_true_and_false() {
        let mut f = FeatureProfile::with_declared(None);
        for i in 0..10 {
            f.observe(Value::Bool(i < 3));
        }
        let bars = Bars::of(Kind::Boolean, None, Some(&f));
        assert_eq!(bars.0[0].label, "false");
        assert_eq!(
            (bars.0[0].current, bars.0[1].current),
            (Some(0.7), Some(0.3))
        );
        assert_eq!(bars.0[0].reference, None);
    }

    #[test]
    fn bar_labels_are_escaped_and_lengths_share_one_scale() {
        let r = strings(&[("<script>alert(1)</script>", 3), ("x\u{202e}y", 1)]);
        let svg = bars_svg(&Bars::of(Kind::String, Some(&r), Some(&r)), "b");
        assert!(!svg.contains("<script"), "{svg}");
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(svg.contains("x\\u{202e}y") && !svg.contains('\u{202e}'));
        // The larger share spans the bars' width (374), the other a third of it.
        assert!(
            svg.contains("M174,4h374v9H174z") && svg.contains("M174,28h124.7v9H174z"),
            "{svg}"
        );
        let nulls = nulls_svg(Some(0.0), Some(0.5));
        assert!(
            nulls.contains("M174,15h187v9H174z") && nulls.contains(">50%<"),
            "{nulls}"
        );
    }
}
