//! The digest chart, drawn with plotters: tokens per person this week stacked
//! vested/pending, or the 12-week team trend. The same drawing goes to a PNG
//! (Discord) or an SVG (the dashboard). Text uses the font the project ships
//! (`assets/fonts`), so no system fonts are needed.

use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::{Digest, tokens1};
use crate::config::ChartKind;

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansMono.ttf");
const FAMILY: &str = "sans-serif";
/// People shown in the per-person chart.
const MAX_PEOPLE: usize = 15;
const WIDTH: u32 = 800;

const VESTED: RGBColor = RGBColor(43, 138, 62);
const PENDING: RGBColor = RGBColor(240, 170, 40);
const INK: RGBColor = RGBColor(40, 40, 40);
const GRID: RGBColor = RGBColor(220, 220, 220);

#[derive(Debug, thiserror::Error)]
#[error("the chart could not be drawn: {0}")]
pub struct ChartError(String);

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TrueType font checked into the repository.
        if plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_err() {
            tracing::error!("the shipped chart font could not be read");
        }
    });
}

fn size(d: &Digest, kind: ChartKind) -> (u32, u32) {
    match kind {
        ChartKind::People => {
            let n = d.leaderboard.len().clamp(1, MAX_PEOPLE) as u32;
            (WIDTH, 110 + 30 * n)
        }
        ChartKind::Trend => (WIDTH, 360),
    }
}

/// Whether the chart has anything to show (an empty one is not attached).
pub fn has_data(d: &Digest, kind: ChartKind) -> bool {
    match kind {
        ChartKind::People => !d.leaderboard.is_empty(),
        ChartKind::Trend => d.trend.iter().any(|w| w.earned != 0),
    }
}

/// The chart as a PNG.
pub fn png(d: &Digest, kind: ChartKind) -> Result<Vec<u8>, ChartError> {
    register_font();
    let (w, h) = size(d, kind);
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        draw(&root, d, kind).map_err(|e| ChartError(e.to_string()))?;
        root.present().map_err(|e| ChartError(e.to_string()))?;
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder
            .write_header()
            .map_err(|e| ChartError(e.to_string()))?;
        writer
            .write_image_data(&rgb)
            .map_err(|e| ChartError(e.to_string()))?;
    }
    Ok(out)
}

/// The chart as an SVG document.
pub fn svg(d: &Digest, kind: ChartKind) -> Result<String, ChartError> {
    let (w, h) = size(d, kind);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (w, h)).into_drawing_area();
        draw(&root, d, kind).map_err(|e| ChartError(e.to_string()))?;
        root.present().map_err(|e| ChartError(e.to_string()))?;
    }
    Ok(out)
}

type Drawn<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    d: &Digest,
    kind: ChartKind,
) -> Drawn<DB> {
    root.fill(&WHITE)?;
    let title = TextStyle::from((FAMILY, 18).into_font()).color(&INK);
    let text = TextStyle::from((FAMILY, 13).into_font()).color(&INK);
    match kind {
        ChartKind::People => people(root, d, &title, &text),
        ChartKind::Trend => trend(root, d, &title, &text),
    }
}

fn people<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    d: &Digest,
    title: &TextStyle,
    text: &TextStyle,
) -> Drawn<DB> {
    root.draw_text(
        &format!(
            "Net tokens per person (earned − clawed back), {} ({})",
            d.week, d.dates
        ),
        title,
        (20, 16),
    )?;
    let lines: Vec<_> = d.leaderboard.iter().take(MAX_PEOPLE).collect();
    if lines.is_empty() {
        root.draw_text("No one ranked this week.", text, (20, 60))?;
        return Ok(());
    }
    let (label_x, bar_x, bar_end) = (20, 200, WIDTH as i32 - 90);
    let max = lines
        .iter()
        .map(|l| l.vested + l.pending)
        .max()
        .unwrap_or(0)
        .max(1);
    let scale = |milli: i64| ((bar_end - bar_x) as f64 * milli as f64 / max as f64) as i32;
    for (i, l) in lines.iter().enumerate() {
        let y = 56 + 30 * i as i32;
        let name: String = crate::attribution::identity::public_name(&l.person)
            .chars()
            .take(22)
            .collect();
        root.draw_text(&name, text, (label_x, y + 4))?;
        let vested_end = bar_x + scale(l.vested.max(0));
        let pending_end = vested_end + scale(l.pending.max(0));
        root.draw(&Rectangle::new(
            [(bar_x, y), (vested_end, y + 20)],
            VESTED.filled(),
        ))?;
        root.draw(&Rectangle::new(
            [(vested_end, y), (pending_end, y + 20)],
            PENDING.filled(),
        ))?;
        root.draw_text(
            &tokens1(l.vested + l.pending),
            text,
            (pending_end + 6, y + 4),
        )?;
    }
    let y = 56 + 30 * lines.len() as i32 + 10;
    root.draw(&Rectangle::new(
        [(bar_x, y), (bar_x + 14, y + 14)],
        VESTED.filled(),
    ))?;
    root.draw_text("vested", text, (bar_x + 20, y + 1))?;
    root.draw(&Rectangle::new(
        [(bar_x + 100, y), (bar_x + 114, y + 14)],
        PENDING.filled(),
    ))?;
    root.draw_text("pending", text, (bar_x + 120, y + 1))?;
    Ok(())
}

fn trend<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    d: &Digest,
    title: &TextStyle,
    text: &TextStyle,
) -> Drawn<DB> {
    root.draw_text(
        &format!("Net tokens per week (earned − clawed back), to {}", d.week),
        title,
        (20, 16),
    )?;
    let (left, right, top, bottom) = (70, WIDTH as i32 - 30, 60, 300);
    let max = d.trend.iter().map(|w| w.earned).max().unwrap_or(0).max(1);
    let n = d.trend.len().max(2) as i32;
    let x = |i: usize| left + (right - left) * i as i32 / (n - 1);
    let y = |milli: i64| bottom - ((bottom - top) as f64 * milli.max(0) as f64 / max as f64) as i32;
    for step in 0..=4 {
        let v = max * step / 4;
        root.draw(&PathElement::new(vec![(left, y(v)), (right, y(v))], GRID))?;
        root.draw_text(&tokens1(v), text, (8, y(v) - 7))?;
    }
    let points: Vec<(i32, i32)> = d
        .trend
        .iter()
        .enumerate()
        .map(|(i, w)| (x(i), y(w.earned)))
        .collect();
    root.draw(&PathElement::new(points.clone(), VESTED.stroke_width(3)))?;
    for (i, (p, w)) in points.iter().zip(&d.trend).enumerate() {
        root.draw(&Circle::new(*p, 4, VESTED.filled()))?;
        // The value on each point: the chart says what the table says.
        root.draw_text(&tokens1(w.earned), text, (p.0 - 14, p.1 - 20))?;
        // Every other week, counted back from the last, so labels never touch.
        if (d.trend.len() - 1 - i).is_multiple_of(2) {
            let label = w.week.split_once('-').map_or(w.week.as_str(), |(_, w)| w);
            root.draw_text(label, text, (p.0 - 14, bottom + 12))?;
        }
    }
    Ok(())
}
