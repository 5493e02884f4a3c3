//! Charts of the web UI, drawn on the server as SVG with plotters: only numbers and dates the
//! server formats go into them (never text from the data, which the pages show as HTML).

use plotters::prelude::*;

/// A forecast after the history: one value per day, with its 80% and 95% bands.
pub(crate) struct Band<'a> {
    pub(crate) point: &'a [f64],
    pub(crate) lower80: &'a [f64],
    pub(crate) upper80: &'a [f64],
    pub(crate) lower95: &'a [f64],
    pub(crate) upper95: &'a [f64],
}

const ACTUAL: RGBColor = RGBColor(10, 88, 202);
const FORECAST: RGBColor = RGBColor(122, 75, 0);
const ANOMALY: RGBColor = RGBColor(164, 14, 38);

/// Daily cost: the history as a line, the forecast after it as a dashed-looking line with its
/// 95% and 80% bands, anomalous days as red dots. `dates` names every day (history then
/// forecast); `anomalous` holds indexes of history days.
pub(crate) fn daily(
    dates: &[String],
    actual: &[f64],
    forecast: Option<&Band<'_>>,
    anomalous: &[usize],
    currency: &str,
) -> String {
    let mut svg = String::new();
    let n = dates.len().max(2);
    let top = actual
        .iter()
        .chain(forecast.map(|f| f.upper95).unwrap_or(&[]))
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.05;
    {
        let root = SVGBackend::with_string(&mut svg, (1100, 320)).into_drawing_area();
        let draw = || -> Result<(), Box<dyn std::error::Error + '_>> {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(80)
                .build_cartesian_2d(0f64..(n - 1) as f64, 0f64..top)?;
            let date = |x: &f64| dates.get(x.round().max(0.0) as usize).cloned().unwrap_or_default();
            let amount = |y: &f64| format!("{y:.0}");
            chart
                .configure_mesh()
                .x_labels(8)
                .y_labels(6)
                .x_label_formatter(&date)
                .y_label_formatter(&amount)
                .y_desc(format!("{currency} per day"))
                .x_label_style(("sans-serif", 13))
                .y_label_style(("sans-serif", 13))
                .axis_desc_style(("sans-serif", 14))
                .light_line_style(RGBColor(235, 238, 241))
                .draw()?;
            let start = actual.len().saturating_sub(1);
            if let Some(f) = forecast {
                let band = |lower: &[f64], upper: &[f64]| -> Vec<(f64, f64)> {
                    let mut points: Vec<(f64, f64)> =
                        upper.iter().enumerate().map(|(i, v)| ((start + 1 + i) as f64, *v)).collect();
                    points.extend(lower.iter().enumerate().rev().map(|(i, v)| ((start + 1 + i) as f64, *v)));
                    points
                };
                chart.draw_series(std::iter::once(Polygon::new(band(f.lower95, f.upper95), FORECAST.mix(0.12))))?;
                chart.draw_series(std::iter::once(Polygon::new(band(f.lower80, f.upper80), FORECAST.mix(0.22))))?;
                let last = actual.last().copied().unwrap_or(0.0);
                chart.draw_series(LineSeries::new(
                    std::iter::once((start as f64, last))
                        .chain(f.point.iter().enumerate().map(|(i, v)| ((start + 1 + i) as f64, *v))),
                    FORECAST.stroke_width(2),
                ))?;
            }
            chart.draw_series(LineSeries::new(
                actual.iter().enumerate().map(|(i, v)| (i as f64, *v)),
                ACTUAL.stroke_width(2),
            ))?;
            chart.draw_series(
                anomalous
                    .iter()
                    .filter_map(|&i| actual.get(i).map(|v| Circle::new((i as f64, *v), 5, ANOMALY.filled()))),
            )?;
            root.present()?;
            Ok(())
        };
        if let Err(e) = draw() {
            tracing::warn!(error = %e, "a chart could not be drawn");
        }
    }
    svg
}
