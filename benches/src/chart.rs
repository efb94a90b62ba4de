//! Line charts of benchmark results, written as SVG files: a title, a label on each axis, each
//! axis linear or logarithmic, several named series of (x, y) points, a legend.
//!
//! Text is written as SVG `<text>` elements and laid out by the viewer, so no font is needed to
//! render a chart (plotters without its `ttf` or `ab_glyph` features).
//!
//! ```no_run
//! use annal_benches::chart::{Axis, Chart, Series};
//!
//! # fn main() -> annal_benches::BenchResult<()> {
//! let chart = Chart {
//!     title: "appends against payload size".into(),
//!     x: Axis::bytes("payload").log2(),
//!     y: Axis::number("events/s").log10(),
//!     series: vec![Series::new("annal", vec![(16.0, 900.0), (1024.0, 850.0)])],
//!     ..Chart::default()
//! };
//! chart.render(std::path::Path::new("docs/example.svg"))?;
//! # Ok(())
//! # }
//! ```

use std::ops::Range;
use std::path::Path;

use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::prelude::*;
use serde::Serialize;

use crate::BenchResult;

/// Width of a chart, in pixels.
pub const WIDTH_PX: u32 = 960;
/// Height of a chart, in pixels.
pub const HEIGHT_PX: u32 = 600;

/// How an axis maps values to positions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Scale {
    /// Evenly spaced values; the axis starts at 0 when no value is negative.
    Linear,
    /// Evenly spaced powers of 10; every value must be above 0.
    Log10,
    /// Evenly spaced powers of 2; every value must be above 0.
    Log2,
}

/// How the tick labels of an axis are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Ticks {
    /// A number, with a k, M or G suffix from a thousand on: `2.5k`, `40M`.
    Number,
    /// A size in bytes, with binary prefixes: `512 B`, `4 KiB`, `1.5 GiB`.
    Bytes,
}

/// One axis of a chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Axis {
    /// What the axis shows, with its unit.
    pub label: String,
    /// Linear or logarithmic.
    pub scale: Scale,
    /// How its ticks are labelled.
    pub ticks: Ticks,
}

impl Axis {
    /// A linear axis of numbers.
    #[must_use]
    pub fn number(label: impl Into<String>) -> Self {
        Self { label: label.into(), scale: Scale::Linear, ticks: Ticks::Number }
    }

    /// A linear axis of sizes in bytes.
    #[must_use]
    pub fn bytes(label: impl Into<String>) -> Self {
        Self { label: label.into(), scale: Scale::Linear, ticks: Ticks::Bytes }
    }

    /// The same axis with a scale in powers of 10.
    #[must_use]
    pub fn log10(self) -> Self {
        Self { scale: Scale::Log10, ..self }
    }

    /// The same axis with a scale in powers of 2.
    #[must_use]
    pub fn log2(self) -> Self {
        Self { scale: Scale::Log2, ..self }
    }

    fn format(&self, value: f64) -> String {
        match self.ticks {
            Ticks::Number => format_number(value),
            Ticks::Bytes => format_bytes(value),
        }
    }
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum Line {
    /// A solid line through the points.
    #[default]
    Solid,
    /// A dashed line through the points, for a baseline or a reference.
    Dashed,
}

/// A named series of points, joined in the order given.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// Its name in the legend.
    pub name: String,
    /// Its points, (x, y).
    pub points: Vec<(f64, f64)>,
    /// How its line is drawn.
    pub line: Line,
}

impl Series {
    /// A series drawn with a solid line.
    #[must_use]
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self { name: name.into(), points, line: Line::Solid }
    }

    /// The same series drawn with a dashed line.
    #[must_use]
    pub fn dashed(self) -> Self {
        Self { line: Line::Dashed, ..self }
    }
}

/// Where the legend goes inside the plotting area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum Legend {
    /// Top left corner.
    UpperLeft,
    /// Top right corner.
    #[default]
    UpperRight,
    /// Bottom left corner.
    LowerLeft,
    /// Bottom right corner.
    LowerRight,
}

impl Legend {
    fn position(self) -> SeriesLabelPosition {
        match self {
            Self::UpperLeft => SeriesLabelPosition::UpperLeft,
            Self::UpperRight => SeriesLabelPosition::UpperRight,
            Self::LowerLeft => SeriesLabelPosition::LowerLeft,
            Self::LowerRight => SeriesLabelPosition::LowerRight,
        }
    }
}

/// A line chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chart {
    /// The title above the plot.
    pub title: String,
    /// The horizontal axis.
    pub x: Axis,
    /// The vertical axis.
    pub y: Axis,
    /// The series, drawn in order, each in its own colour.
    pub series: Vec<Series>,
    /// Where the legend goes.
    pub legend: Legend,
}

impl Default for Chart {
    fn default() -> Self {
        Self {
            title: String::new(),
            x: Axis::number("x"),
            y: Axis::number("y"),
            series: Vec::new(),
            legend: Legend::default(),
        }
    }
}

impl Chart {
    /// Writes the chart to `path` as an SVG file of [`WIDTH_PX`] by [`HEIGHT_PX`].
    ///
    /// # Errors
    /// No series has a point; a value that is not finite, or not above 0 on a logarithmic axis;
    /// the file cannot be written.
    pub fn render(&self, path: &Path) -> BenchResult<()> {
        let points = || self.series.iter().flat_map(|s| s.points.iter().copied());
        if points().next().is_none() {
            return Err(format!("chart {:?} has no point to draw", self.title).into());
        }
        let x = axis_range(&self.x, points().map(|(x, _)| x))?;
        let y = axis_range(&self.y, points().map(|(_, y)| y))?;
        let root = SVGBackend::new(path, (WIDTH_PX, HEIGHT_PX)).into_drawing_area();
        let drawn = match (self.x.scale, self.y.scale) {
            (Scale::Linear, Scale::Linear) => self.draw(&root, x, y),
            (Scale::Linear, log) => self.draw(&root, x, y.clone().log_scale().base(base(log))),
            (log, Scale::Linear) => self.draw(&root, x.clone().log_scale().base(base(log)), y),
            (lx, ly) => self.draw(
                &root,
                x.clone().log_scale().base(base(lx)),
                y.clone().log_scale().base(base(ly)),
            ),
        };
        drawn.and_then(|()| root.present().map_err(|e| e.to_string())).map_err(|e| {
            format!("drawing chart {:?} to {}: {e}", self.title, path.display()).into()
        })
    }

    fn draw<X, Y>(
        &self,
        root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
        x: X,
        y: Y,
    ) -> Result<(), String>
    where
        X: AsRangedCoord<Value = f64>,
        Y: AsRangedCoord<Value = f64>,
        X::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
        Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        let text = |e: &dyn std::fmt::Display| e.to_string();
        root.fill(&WHITE).map_err(|e| text(&e))?;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 24))
            .margin(16)
            .margin_right(48)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d(x, y)
            .map_err(|e| text(&e))?;
        let format_x = |v: &f64| self.x.format(*v);
        let format_y = |v: &f64| self.y.format(*v);
        chart
            .configure_mesh()
            .x_desc(&self.x.label)
            .y_desc(&self.y.label)
            .x_label_formatter(&format_x)
            .y_label_formatter(&format_y)
            .axis_desc_style(("sans-serif", 18))
            .label_style(("sans-serif", 14))
            .light_line_style(BLACK.mix(0.05))
            .bold_line_style(BLACK.mix(0.15))
            .draw()
            .map_err(|e| text(&e))?;
        for (i, series) in self.series.iter().enumerate() {
            let color = color(i);
            let style = color.stroke_width(2);
            let points = series.points.iter().copied();
            let drawn = match series.line {
                Line::Solid => chart.draw_series(LineSeries::new(points, style)),
                Line::Dashed => chart.draw_series(DashedLineSeries::new(points, 8, 5, style)),
            };
            let legend_line = move |(x, y): (i32, i32)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2))
            };
            drawn.map_err(|e| text(&e))?.label(&series.name).legend(legend_line);
            chart
                .draw_series(series.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(|e| text(&e))?;
        }
        chart
            .configure_series_labels()
            .position(self.legend.position())
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()
            .map_err(|e| text(&e))
    }
}

/// Colours of the series, in order (the Tableau 10 palette), then plotters' 99-colour palette.
const COLORS: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

fn color(i: usize) -> RGBAColor {
    COLORS
        .get(i)
        .map_or_else(|| Palette99::pick(i).to_rgba(), |&(r, g, b)| RGBColor(r, g, b).to_rgba())
}

fn base(scale: Scale) -> f64 {
    if scale == Scale::Log2 { 2.0 } else { 10.0 }
}

/// The range an axis shows for `values`: on a linear axis from 0 (or the least value, if
/// negative) to a little above the greatest; on a logarithmic one from the power of its base at
/// or below the least value to the one at or above the greatest, widened by a millionth so that
/// rounding does not drop the ticks at both ends.
fn axis_range(axis: &Axis, values: impl Iterator<Item = f64>) -> BenchResult<Range<f64>> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        if !v.is_finite() || (axis.scale != Scale::Linear && v <= 0.0) {
            return Err(format!("axis {:?} cannot show the value {v}", axis.label).into());
        }
        lo = lo.min(v);
        hi = hi.max(v);
    }
    Ok(match axis.scale {
        Scale::Linear => {
            let lo = lo.min(0.0);
            let span = if hi > lo { hi - lo } else { 1.0 };
            lo..hi + span * 0.05
        }
        Scale::Log10 | Scale::Log2 => {
            let b = base(axis.scale);
            let lo = b.powf((lo.log(b) + 1e-9).floor());
            let mut hi = b.powf((hi.log(b) - 1e-9).ceil());
            if hi <= lo {
                hi = lo * b;
            }
            lo * (1.0 - 1e-6)..hi * (1.0 + 1e-6)
        }
    })
}

/// `value` with a k, M or G suffix from a thousand on, and at most 3 significant digits below.
#[must_use]
pub fn format_number(value: f64) -> String {
    let a = value.abs();
    let (scaled, suffix) = if a >= 1e9 {
        (value / 1e9, "G")
    } else if a >= 1e6 {
        (value / 1e6, "M")
    } else if a >= 1e3 {
        (value / 1e3, "k")
    } else {
        (value, "")
    };
    format!("{}{suffix}", trim(scaled))
}

/// `bytes` with a binary prefix: `16 B`, `4 KiB`, `1.5 GiB`.
#[must_use]
pub fn format_bytes(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut scaled = bytes;
    let mut unit = 0;
    while scaled.abs() >= 1024.0 && unit + 1 < UNITS.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    format!("{} {}", trim(scaled), UNITS[unit])
}

/// `v` with at most 3 significant digits (all of its integer digits), without trailing zeros.
fn trim(v: f64) -> String {
    let a = v.abs();
    let decimals = if a >= 100.0 || a == 0.0 {
        0
    } else if a >= 10.0 {
        1
    } else if a >= 1.0 {
        2
    } else {
        3
    };
    let s = format!("{v:.decimals$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels() {
        assert_eq!(format_number(2_500.0), "2.5k");
        assert_eq!(format_number(40_000_000.0), "40M");
        assert_eq!(format_number(0.125), "0.125");
        assert_eq!(format_number(12.0), "12");
        assert_eq!(format_bytes(16.0), "16 B");
        assert_eq!(format_bytes(65_536.0), "64 KiB");
        assert_eq!(format_bytes(1.5 * f64::from(1 << 30)), "1.5 GiB");
    }

    #[test]
    fn log_ranges_snap_to_powers() -> BenchResult<()> {
        let near = |r: &Range<f64>, lo: f64, hi: f64| {
            (r.start / lo - 1.0).abs() < 1e-5 && (r.end / hi - 1.0).abs() < 1e-5
        };
        let r = axis_range(&Axis::bytes("b").log2(), [16.0, 65_536.0].into_iter())?;
        assert!(near(&r, 16.0, 65_536.0), "{r:?}");
        let r = axis_range(&Axis::number("n").log10(), [3.0, 4.0].into_iter())?;
        assert!(near(&r, 1.0, 10.0), "{r:?}");
        let r = axis_range(&Axis::number("n").log10(), [0.12, 100.0].into_iter())?;
        assert!(near(&r, 0.1, 100.0), "{r:?}");
        let r = axis_range(&Axis::number("n").log10(), [100.0].into_iter())?;
        assert!(near(&r, 100.0, 1000.0), "{r:?}");
        assert!(axis_range(&Axis::number("n").log10(), [0.0, 1.0].into_iter()).is_err());
        let r = axis_range(&Axis::number("n"), [5.0, 10.0].into_iter())?;
        assert_eq!(r.start, 0.0);
        Ok(())
    }

    #[test]
    fn renders_text_and_series() -> BenchResult<()> {
        let dir = crate::scratch_dir()?;
        for (x, y) in [
            (Axis::number("writers"), Axis::number("events per second")),
            (Axis::bytes("payload size").log2(), Axis::number("seconds to open").log10()),
        ] {
            let path = dir.path().join("chart.svg");
            let chart = Chart {
                title: "tiny chart title".into(),
                x,
                y,
                series: vec![
                    Series::new("annal durable", vec![(16.0, 1_000.0), (64.0, 900.0)]),
                    Series::new("raw baseline", vec![(16.0, 2_000.0), (64.0, 1_900.0)]).dashed(),
                    Series::new("one point", vec![(32.0, 1_500.0)]),
                ],
                legend: Legend::LowerRight,
            };
            chart.render(&path)?;
            let svg = std::fs::read_to_string(&path)?;
            assert!(svg.starts_with("<svg"), "not an SVG file: {svg:.40}");
            for text in [&chart.title, &chart.x.label, &chart.y.label]
                .into_iter()
                .chain(chart.series.iter().map(|s| &s.name))
            {
                assert!(svg.contains(&format!(">\n{text}\n</text>")), "the SVG lacks {text:?}");
            }
        }
        let empty = Chart { title: "empty".into(), ..Chart::default() };
        assert!(empty.render(&dir.path().join("empty.svg")).is_err());
        Ok(())
    }
}
