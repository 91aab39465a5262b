//! Convergence charts (one per metric, several curves), written as SVG and PNG with plotters.
//!
//! Text is laid out and rasterised with ab_glyph from DejaVu Sans embedded in the binary (the
//! `dejavu` crate), so no system font, fontconfig or freetype is needed.

use crate::Result;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Once;

/// How a series' points are marked.
#[derive(Clone, Copy, Debug)]
pub enum Marker {
    Circle,
    Triangle,
    Cross,
}

/// One curve: (epoch, value) points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
    pub marker: Marker,
    /// Line width in pixels.
    pub width: u32,
    /// Dashed line (drawn on top of solid ones, so that identical curves stay visible).
    pub dashed: bool,
}

/// A chart: title, axis descriptions and y range.
pub struct Chart<'a> {
    pub title: &'a str,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    pub y_range: (f64, f64),
    /// y labels as percentages (values in [0, 1]).
    pub percent: bool,
    /// Logarithmic y axis (the range must be positive).
    pub log_y: bool,
    pub series: &'a [Series],
}

const SIZE: (u32, u32) = (900, 540);

fn register_fonts() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut res = Ok(());
    ONCE.call_once(|| {
        res = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        )
        .and_then(|_| {
            plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold())
        })
        .map_err(|_| "cannot load the embedded DejaVu Sans font".into());
    });
    res
}

/// Writes `<stem>.svg` and `<stem>.png`; returns both paths.
pub fn write(stem: &Path, chart: &Chart) -> Result<Vec<PathBuf>> {
    register_fonts()?;
    let svg = stem.with_extension("svg");
    let png = stem.with_extension("png");
    {
        let root = SVGBackend::new(&svg, SIZE).into_drawing_area();
        draw(&root, chart).map_err(|e| format!("{}: {e}", svg.display()))?;
        root.present()
            .map_err(|e| format!("{}: {e}", svg.display()))?;
    }
    {
        let root = BitMapBackend::new(&png, SIZE).into_drawing_area();
        draw(&root, chart).map_err(|e| format!("{}: {e}", png.display()))?;
        root.present()
            .map_err(|e| format!("{}: {e}", png.display()))?;
    }
    Ok(vec![svg, png])
}

/// The marker's outline as a polygon around (cx, cy) (for the legend, where every entry must
/// have the same element type).
fn marker_outline(marker: Marker, cx: i32, cy: i32) -> Vec<(i32, i32)> {
    let pts: Vec<(f64, f64)> = match marker {
        Marker::Circle => (0..16)
            .map(|i| {
                let a = i as f64 * std::f64::consts::TAU / 16.0;
                (4.5 * a.cos(), 4.5 * a.sin())
            })
            .collect(),
        Marker::Triangle => vec![(0.0, -6.0), (5.5, 4.0), (-5.5, 4.0)],
        Marker::Cross => {
            // An "x" of two bars 2.5 px wide and 12 px long.
            let (a, b) = (1.25, 5.5);
            vec![
                (0.0, -a * 1.41),
                (b - a, -b),
                (b, -b + a),
                (a * 1.41, 0.0),
                (b, b - a),
                (b - a, b),
                (0.0, a * 1.41),
                (-b + a, b),
                (-b, b - a),
                (-a * 1.41, 0.0),
                (-b, -b + a),
                (-b + a, -b),
            ]
        }
    };
    pts.into_iter()
        .map(|(x, y)| (cx + x.round() as i32, cy + y.round() as i32))
        .collect()
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &Chart,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let x_max = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let (y0, y1) = chart.y_range;
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(chart.title, ("sans-serif", 24))
        .margin(18)
        .x_label_area_size(50)
        .y_label_area_size(80);
    let x = -0.2..x_max + 0.2;
    if chart.log_y {
        let cc = builder.build_cartesian_2d(x, (y0..y1).log_scale())?;
        draw_series(cc, chart, x_max)
    } else {
        let cc = builder.build_cartesian_2d(x, y0..y1)?;
        draw_series(cc, chart, x_max)
    }
}

fn draw_series<'a, DB, Y>(
    mut cc: ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>,
    chart: &Chart,
    x_max: f64,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend + 'a,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let percent = chart.percent;
    let y_fmt = move |y: &f64| {
        if percent {
            format!("{:.0} %", y * 100.0)
        } else if *y != 0.0 && y.abs() < 0.001 {
            format!("{y:.0e}")
        } else {
            // At most 3 decimals, trailing zeros dropped: 1, 0.5, 0.125.
            format!("{}", (y * 1000.0).round() / 1000.0)
        }
    };
    let x_fmt = |x: &f64| {
        if (x - x.round()).abs() < 1e-6 && *x >= -1e-6 {
            format!("{}", x.round() as i64)
        } else {
            String::new()
        }
    };
    cc.configure_mesh()
        .x_desc(chart.x_desc)
        .y_desc(chart.y_desc)
        .x_labels((x_max as usize + 1).min(16))
        .y_labels(8)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .axis_desc_style(("sans-serif", 18))
        .label_style(("sans-serif", 15))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.12))
        .draw()?;
    // Lines: wide solid ones first, then thinner ones, dashed on top, so that coinciding curves
    // stay visible.
    let mut order: Vec<&Series> = chart.series.iter().collect();
    order.sort_by_key(|s| (s.dashed, std::cmp::Reverse(s.width)));
    for s in order {
        let style = s.color.stroke_width(s.width);
        let pts = s.points.clone();
        if s.dashed {
            cc.draw_series(DashedLineSeries::new(pts, 10, 6, style))?;
        } else {
            cc.draw_series(LineSeries::new(pts, style))?;
        }
    }
    // Markers, which carry the legend entries, in the given order.
    for s in chart.series {
        let color = s.color;
        let width = s.width;
        let dashed = s.dashed;
        let marker = s.marker;
        match s.marker {
            Marker::Circle => {
                cc.draw_series(s.points.iter().map(|&p| Circle::new(p, 5, color.filled())))?
            }
            Marker::Triangle => cc.draw_series(
                s.points
                    .iter()
                    .map(|&p| TriangleMarker::new(p, 7, color.filled())),
            )?,
            Marker::Cross => cc.draw_series(
                s.points
                    .iter()
                    .map(|&p| Cross::new(p, 6, color.stroke_width(2))),
            )?,
        }
        .label(s.name.clone())
        .legend(move |(x, y)| {
            // A dashed legend line is two segments with a gap; a solid one two that touch.
            let gap = if dashed { 6 } else { 0 };
            let st = color.stroke_width(width);
            let line = EmptyElement::at((x, y))
                + PathElement::new(vec![(0, 0), (12 - gap / 2, 0)], st)
                + PathElement::new(vec![(12 + gap / 2, 0), (26, 0)], st);
            line + Polygon::new(marker_outline(marker, 13, 0), color.filled())
        });
    }
    cc.configure_series_labels()
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    Ok(())
}
