//! `--plot DIR`: the run's tables as SVG charts (plotters' SVG backend: text is SVG `<text>`,
//! so no font files are needed).
//!
//! - A throughput or time table (its first column `... /s` or `ns per ...`): one horizontal bar
//!   per peer at the median over the rounds, with the [min, max] spread as an error bar.
//! - A latency table (columns `p50 ns`, `p99 ns`, `p99.9 ns`, `p99.99 ns`): one line per peer
//!   through its median percentiles, with [min, max] error bars, on a log axis.
//!
//! ringwal's entries are drawn in red, the peers in blue.

use plotters::prelude::*;
use std::path::{Path, PathBuf};

use crate::report::summary;

/// One table as the run printed it.
pub struct Recorded {
    pub title: String,
    pub headers: Vec<&'static str>,
    pub names: Vec<String>,
    /// `[peer][round][column]`.
    pub results: Vec<Vec<Vec<f64>>>,
}

/// The latency columns a chart shows, in order.
const PERCENTILES: [&str; 4] = ["p50 ns", "p99 ns", "p99.9 ns", "p99.99 ns"];

type Failure = Box<dyn std::error::Error>;

/// Writes one SVG per table that has a chartable column; returns the files written.
pub fn write_all(dir: &Path, tables: &[Recorded]) -> Result<Vec<PathBuf>, Failure> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for t in tables {
        let path = dir.join(format!("{}.svg", slug(&t.title)));
        let drawn = if PERCENTILES.iter().all(|p| t.headers.contains(p)) {
            latency_chart(&path, t)?;
            true
        } else if t
            .headers
            .first()
            .is_some_and(|h| h.ends_with("/s") || h.starts_with("ns per"))
        {
            bar_chart(&path, t)?;
            true
        } else {
            false
        };
        if drawn {
            written.push(path);
        }
    }
    Ok(written)
}

/// A file name from a title: lowercase letters and digits, words joined by `-`.
fn slug(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

fn is_ringwal(name: &str) -> bool {
    name.starts_with("ringwal")
}

fn color(name: &str) -> RGBColor {
    if is_ringwal(name) {
        RGBColor(200, 40, 40)
    } else {
        RGBColor(40, 90, 170)
    }
}

/// Median, min and max of column `metric` over the rounds of peer `i`.
fn stats(t: &Recorded, i: usize, metric: usize) -> (f64, f64, f64) {
    let values: Vec<f64> = t.results[i].iter().map(|round| round[metric]).collect();
    summary(&values)
}

fn bar_chart(path: &Path, t: &Recorded) -> Result<(), Failure> {
    let header = t.headers[0];
    // Throughput in millions; times as they are.
    let scale = if header.ends_with("/s") { 1e-6 } else { 1.0 };
    let unit = if header.ends_with("/s") {
        header.replace("M ", "").replace(" in file", "")
    } else {
        header.to_string()
    };
    let n = t.names.len();
    let rows: Vec<(f64, f64, f64)> = (0..n)
        .map(|i| {
            let (med, min, max) = stats(t, i, 0);
            (med * scale, min * scale, max * scale)
        })
        .collect();
    let top = rows.iter().map(|r| r.2).fold(0.0, f64::max).max(1e-9) * 1.08;
    let height = 90 + 28 * n as u32;
    let root = SVGBackend::new(path, (900, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let caption = format!("{} ({}, median, [min, max] over rounds)", t.title, unit);
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(330)
        .build_cartesian_2d(0.0..top, (0..n).into_segmented())?;
    let names = t.names.clone();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .x_desc(unit)
        .draw()?;
    chart.draw_series(rows.iter().enumerate().map(|(i, r)| {
        let c = color(&t.names[i]);
        let mut bar = Rectangle::new(
            [
                (0.0, SegmentValue::Exact(i)),
                (r.0, SegmentValue::Exact(i + 1)),
            ],
            c.mix(0.55).filled(),
        );
        bar.set_margin(4, 4, 0, 0);
        bar
    }))?;
    chart.draw_series(rows.iter().enumerate().map(|(i, r)| {
        ErrorBar::new_horizontal(
            SegmentValue::CenterOf(i),
            r.1,
            r.0,
            r.2,
            BLACK.stroke_width(1),
            8,
        )
    }))?;
    root.present()?;
    Ok(())
}

fn latency_chart(path: &Path, t: &Recorded) -> Result<(), Failure> {
    let columns: Vec<usize> = PERCENTILES
        .iter()
        .map(|p| t.headers.iter().position(|h| h == p).expect("checked"))
        .collect();
    let n = t.names.len();
    let mut lo = f64::MAX;
    let mut hi = 1.0f64;
    for i in 0..n {
        for &c in &columns {
            let (_, min, max) = stats(t, i, c);
            lo = lo.min(min.max(1.0));
            hi = hi.max(max);
        }
    }
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let caption = format!(
        "{} (ns, log scale; median, [min, max] over rounds)",
        t.title
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (0..PERCENTILES.len() - 1).into_segmented(),
            (lo * 0.8..hi * 1.25).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_labels(PERCENTILES.len())
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => PERCENTILES
                .get(*i)
                .map_or(String::new(), |p| p.trim_end_matches(" ns").to_string()),
            _ => String::new(),
        })
        .y_desc("ns per call")
        .draw()?;
    for i in 0..n {
        // A distinct colour per peer; ringwal's entries drawn thicker.
        let c = Palette99::pick(i).to_rgba();
        let points: Vec<(SegmentValue<usize>, f64)> = columns
            .iter()
            .enumerate()
            .map(|(k, &col)| (SegmentValue::CenterOf(k), stats(t, i, col).0.max(1.0)))
            .collect();
        let width = if is_ringwal(&t.names[i]) { 3 } else { 1 };
        chart
            .draw_series(LineSeries::new(points.clone(), c.stroke_width(width)))?
            .label(t.names[i].clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3)));
        chart.draw_series(columns.iter().enumerate().map(|(k, &col)| {
            let (med, min, max) = stats(t, i, col);
            ErrorBar::new_vertical(
                SegmentValue::CenterOf(k),
                min.max(1.0),
                med.max(1.0),
                max.max(1.0),
                c.stroke_width(1),
                6,
            )
        }))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(
            slug("SPSC throughput, u64 (also the MPSC 1-producer case)"),
            "spsc-throughput-u64-also-the-mpsc-1-producer-case"
        );
    }
}
