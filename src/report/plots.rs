//! The plots, as SVG and PNG from one drawing code (plotters): success
//! rate per task and configuration with Wilson whiskers, average
//! improvement with bootstrap whiskers, best-so-far score against step per
//! task (a line per run, the baseline dashed), and cost against success
//! rate per configuration.
//!
//! Configurations are named C1, C2, ... in the plots, with a legend below
//! each plot giving their full names one per line, and the canvas grows
//! with the number of tasks and configurations, so no text overlaps.
//! Text needs a TrueType font, read at run time: $MLAB_FONT, else DejaVu
//! Sans (Debian's fonts-dejavu-core) or another common sans font.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{anyhow, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::data::Data;
use super::tables;

/// A plot written as `<name>.svg` (and `<name>.png`).
#[derive(Debug, Clone)]
pub struct Plot {
    pub name: String,
    pub title: String,
    /// The SVG text, for inlining in index.html.
    pub svg: String,
    pub png: bool,
}

const FONT: &str = "sans-serif";

/// Fonts tried in order after $MLAB_FONT.
const FONT_FILES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// Registers the font once; an error says how to get one.
fn font() -> Result<()> {
    static DONE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let env = std::env::var_os("MLAB_FONT").map(std::path::PathBuf::from);
        let candidates = env
            .iter()
            .cloned()
            .chain(FONT_FILES.iter().map(std::path::PathBuf::from));
        for path in candidates {
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font(FONT, FontStyle::Normal, bytes).is_ok() {
                let _ = plotters::style::register_font(FONT, FontStyle::Bold, bytes);
                return Ok(());
            }
        }
        Err(
            "plots need a TrueType font and none was found: install fonts-dejavu-core \
             (./install.sh --browser, or apt-get install fonts-dejavu-core), or set MLAB_FONT \
             to a .ttf file"
                .to_string(),
        )
    })
    .clone()
    .map_err(|e| anyhow!(e))
}

/// Ten colours that tell apart (Tableau 10).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// What one plot shows.
enum Kind {
    /// Success rate at 10% (true) or average improvement (false), per task
    /// and configuration.
    Bars {
        success: bool,
    },
    /// Best-so-far score against step for one task.
    BestSoFar {
        task: String,
    },
    CostVsSuccess,
}

/// The plots of `data`: (file name, title).
pub fn titles(data: &Data) -> Vec<(String, String)> {
    plan(data).into_iter().map(|(n, t, _)| (n, t)).collect()
}

fn plan(data: &Data) -> Vec<(String, String, Kind)> {
    let mut out = vec![
        (
            "success_rate".to_string(),
            "Success rate at 10% over the baseline (Wilson 95% interval)".to_string(),
            Kind::Bars { success: true },
        ),
        (
            "average_improvement".to_string(),
            "Average improvement over the baseline (bootstrap 95% interval)".to_string(),
            Kind::Bars { success: false },
        ),
    ];
    for (i, task) in data.tasks.iter().enumerate() {
        out.push((
            format!("best_so_far_{}", i + 1),
            format!("Best score so far against step: {task}"),
            Kind::BestSoFar { task: task.clone() },
        ));
    }
    out.push((
        "cost_vs_success".to_string(),
        "Cost per run against success rate at 10%, per configuration".to_string(),
        Kind::CostVsSuccess,
    ));
    out
}

/// Draws every plot into `dir` as SVG and PNG.
pub fn write_all(data: &Data, dir: &Path) -> Result<Vec<Plot>> {
    font()?;
    std::fs::create_dir_all(dir).with_context(|| format!("could not make {}", dir.display()))?;
    let mut plots = Vec::new();
    for (name, title, kind) in plan(data) {
        let size = canvas(data, &kind);
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
            draw(data, &kind, &title, &root)?;
            root.present().map_err(|e| anyhow!("{e}"))?;
        }
        std::fs::write(dir.join(format!("{name}.svg")), &svg)?;
        let png_path = dir.join(format!("{name}.png"));
        {
            let root = BitMapBackend::new(&png_path, size).into_drawing_area();
            draw(data, &kind, &title, &root)?;
            root.present()
                .map_err(|e| anyhow!("could not write {}: {e}", png_path.display()))?;
        }
        plots.push(Plot {
            name,
            title,
            svg,
            png: true,
        });
    }
    Ok(plots)
}

/// Height of one legend line.
const LEGEND_LINE: u32 = 20;
/// Widest label under a group of bars, in characters.
const TASK_LABEL: usize = 22;

fn canvas(data: &Data, kind: &Kind) -> (u32, u32) {
    let c = data.configs.len().max(1) as u32;
    let legend = 16 + LEGEND_LINE * (c + 1);
    match kind {
        Kind::Bars { .. } => {
            let t = data.tasks.len().max(1) as u32;
            let group = (c * 22 + 30).max(TASK_LABEL as u32 * 8 + 10);
            ((120 + t * group).max(760), 440 + legend)
        }
        Kind::BestSoFar { .. } | Kind::CostVsSuccess => (900, 440 + legend),
    }
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let head: String = s.chars().take(max - 1).collect();
        format!("{head}…")
    }
}

fn text_style(size: f64) -> TextStyle<'static> {
    (FONT, size).into_font().color(&BLACK)
}

type Area<DB> = DrawingArea<DB, Shift>;

fn draw<DB: DrawingBackend>(data: &Data, kind: &Kind, title: &str, root: &Area<DB>) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let (_, h) = root.dim_in_pixel();
    let entries = legend_entries(data, kind);
    let legend_h = 16 + LEGEND_LINE * entries.len() as u32;
    let (top, bottom) = root.split_vertically(h.saturating_sub(legend_h));
    let top = top
        .titled(title, (FONT, 18).into_font())
        .map_err(|e| anyhow!("{e}"))?;
    match kind {
        Kind::Bars { success } => bars(data, *success, &top),
        Kind::BestSoFar { task } => best_so_far(data, task, &top),
        Kind::CostVsSuccess => cost_vs_success(data, &top),
    }?;
    legend(&bottom, &entries)
}

/// A legend line: a colour, whether it is dashed, and the text.
type Entry = (RGBColor, bool, String);

fn legend_entries(data: &Data, kind: &Kind) -> Vec<Entry> {
    let mut out: Vec<Entry> = data
        .configs
        .iter()
        .enumerate()
        .map(|(i, c)| (colour(i), false, format!("C{}  {}", i + 1, clip(c, 100))))
        .collect();
    if let Kind::BestSoFar { .. } = kind {
        out.push((BLACK, true, "baseline".to_string()));
    }
    out
}

fn legend<DB: DrawingBackend>(area: &Area<DB>, entries: &[Entry]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("{e}");
    for (i, (c, dashed, text)) in entries.iter().enumerate() {
        let y = 8 + i as i32 * LEGEND_LINE as i32 + (LEGEND_LINE as i32 / 2);
        if *dashed {
            for x in [20, 32] {
                area.draw(&PathElement::new(
                    vec![(x, y), (x + 8, y)],
                    c.stroke_width(2),
                ))
                .map_err(e)?;
            }
        } else {
            area.draw(&Rectangle::new([(20, y - 6), (40, y + 6)], c.filled()))
                .map_err(e)?;
        }
        area.draw(&Text::new(
            text.clone(),
            (50, y),
            text_style(14.0).pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(e)?;
    }
    Ok(())
}

fn bars<DB: DrawingBackend>(data: &Data, success: bool, area: &Area<DB>) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("{e}");
    let t = data.tasks.len().max(1);
    let c = data.configs.len().max(1);
    // (task index, config index, value, interval)
    let mut items = Vec::new();
    for g in &data.groups {
        let Some(ti) = data.tasks.iter().position(|x| x == &g.task) else {
            continue;
        };
        let Some(ci) = data.configs.iter().position(|x| x == &g.config) else {
            continue;
        };
        let v = if success {
            g.success10().map(|r| (r.rate, Some(r.ci95)))
        } else {
            g.average_improvement.as_ref().map(|e| (e.mean, e.ci95))
        };
        if let Some((v, ci95)) = v {
            items.push((ti, ci, v, ci95));
        }
    }
    let (mut lo, mut hi) = if success {
        (0.0, 1.0)
    } else {
        (0.0f64, 0.0f64)
    };
    if !success {
        for (_, _, v, ci) in &items {
            lo = lo.min(*v);
            hi = hi.max(*v);
            if let Some([a, b]) = ci {
                lo = lo.min(*a);
                hi = hi.max(*b);
            }
        }
        let pad = ((hi - lo) * 0.1).max(0.05);
        lo -= pad;
        hi += pad;
    } else {
        hi = 1.05;
    }
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..t as f64, lo..hi)
        .map_err(e)?;
    let pct = |v: &f64| format!("{:.0}%", v * 100.0);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .disable_x_axis()
        .x_labels(0)
        .y_desc(if success {
            "success rate"
        } else {
            "average improvement"
        })
        .y_label_formatter(&pct)
        .light_line_style(RGBColor(238, 238, 238))
        .label_style(text_style(13.0))
        .axis_desc_style(text_style(14.0))
        .draw()
        .map_err(e)?;
    let width = 0.8 / c as f64;
    for (ti, ci, v, ci95) in &items {
        let x0 = *ti as f64 + 0.1 + *ci as f64 * width;
        let x1 = x0 + width * 0.85;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x0, 0.0), (x1, *v)],
                colour(*ci).filled(),
            )))
            .map_err(e)?;
        if let Some([a, b]) = ci95 {
            let xm = (x0 + x1) / 2.0;
            let cap = (x1 - x0) * 0.3;
            let style = BLACK.stroke_width(1);
            let lines = vec![
                PathElement::new(vec![(xm, *a), (xm, *b)], style),
                PathElement::new(vec![(xm - cap, *a), (xm + cap, *a)], style),
                PathElement::new(vec![(xm - cap, *b), (xm + cap, *b)], style),
            ];
            chart.draw_series(lines).map_err(e)?;
        }
    }
    // The zero line, and the task names under their groups.
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(0.0, 0.0), (t as f64, 0.0)],
            BLACK.stroke_width(1),
        )))
        .map_err(e)?;
    for (i, task) in data.tasks.iter().enumerate() {
        let (px, _) = chart.backend_coord(&(i as f64 + 0.5, lo));
        let (_, py) = chart.backend_coord(&(0.0, lo));
        area.draw(&Text::new(
            clip(task, TASK_LABEL),
            (px, py + 8),
            text_style(13.0).pos(Pos::new(HPos::Center, VPos::Top)),
        ))
        .map_err(e)?;
    }
    Ok(())
}

fn best_so_far<DB: DrawingBackend>(data: &Data, task: &str, area: &Area<DB>) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("{e}");
    let group = data.groups.iter().find(|g| g.task == task);
    let lower = group.is_some_and(|g| g.lower_is_better());
    let baseline = group.and_then(|g| g.baseline);
    let mut lines: Vec<(usize, Vec<(f64, f64)>)> = Vec::new();
    for r in data.runs.iter().filter(|r| r.task() == task) {
        let mut points: Vec<(f64, f64)> = r
            .result
            .score_steps
            .iter()
            .zip(&r.result.step_scores)
            .filter_map(|(s, v)| v.map(|v| (*s as f64, v)))
            .collect();
        if let Some(f) = r.result.graded_final_score {
            let last = r
                .result
                .steps()
                .map(|s| s as f64)
                .or_else(|| points.last().map(|p| p.0 + 1.0))
                .unwrap_or(0.0);
            points.push((last, f));
        }
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut best: Option<f64> = None;
        let points = points
            .into_iter()
            .map(|(x, v)| {
                let b = match best {
                    Some(b) if lower => b.min(v),
                    Some(b) => b.max(v),
                    None => v,
                };
                best = Some(b);
                (x, b)
            })
            .collect::<Vec<_>>();
        if !points.is_empty() {
            let ci = data
                .configs
                .iter()
                .position(|c| c == &r.config)
                .unwrap_or(0);
            lines.push((ci, points));
        }
    }
    let xs = lines.iter().flat_map(|(_, p)| p.iter().map(|q| q.0));
    let x_max = xs.fold(1.0f64, f64::max);
    let ys: Vec<f64> = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.1))
        .chain(baseline)
        .collect();
    let (mut lo, mut hi) = ys
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
            (a.min(*y), b.max(*y))
        });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.1).max(1e-3_f64.max(hi.abs() * 0.05));
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..x_max, (lo - pad)..(hi + pad))
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .x_labels((x_max as usize + 1).min(12))
        .y_desc(if lower {
            "best score so far (lower is better)"
        } else {
            "best score so far"
        })
        .x_label_formatter(&|x| {
            if x.fract() == 0.0 {
                tables::fmt_num(*x)
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| tables::fmt_num(*y))
        .light_line_style(RGBColor(238, 238, 238))
        .label_style(text_style(13.0))
        .axis_desc_style(text_style(14.0))
        .draw()
        .map_err(e)?;
    for (ci, points) in lines {
        let c = colour(ci);
        chart
            .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))
            .map_err(e)?;
        chart
            .draw_series(points.into_iter().map(|p| Circle::new(p, 3, c.filled())))
            .map_err(e)?;
    }
    if let Some(b) = baseline {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, b), (x_max, b)],
                8,
                5,
                BLACK.stroke_width(2),
            ))
            .map_err(e)?;
    }
    Ok(())
}

fn cost_vs_success<DB: DrawingBackend>(data: &Data, area: &Area<DB>) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("{e}");
    let points: Vec<(usize, f64, f64)> = tables::overall(data)
        .iter()
        .filter_map(|o| {
            let ci = data.configs.iter().position(|c| c == &o.config)?;
            Some((ci, o.cost_per_run().unwrap_or(0.0), o.success_rate()?))
        })
        .collect();
    // Configurations whose runs recorded no cost (the original's) sit at 0
    // and say so.
    let unknown: Vec<usize> = tables::overall(data)
        .iter()
        .filter(|o| o.cost_per_run().is_none())
        .filter_map(|o| data.configs.iter().position(|c| c == &o.config))
        .collect();
    let x_max = points.iter().map(|p| p.1).fold(0.0f64, f64::max);
    let x_max = if x_max > 0.0 { x_max * 1.15 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, -0.05f64..1.1)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("mean cost per run (USD)")
        .y_desc("success rate at 10%")
        .x_label_formatter(&|x| tables::fmt_num(*x))
        .y_label_formatter(&|y| format!("{:.0}%", y * 100.0))
        .light_line_style(RGBColor(238, 238, 238))
        .label_style(text_style(13.0))
        .axis_desc_style(text_style(14.0))
        .draw()
        .map_err(e)?;
    // Points at (nearly) the same place share one label, "C1, C2, C3",
    // beside them, on the left when the right edge is too close.
    let mut clusters: Vec<((i32, i32), Vec<usize>)> = Vec::new();
    for (ci, x, y) in &points {
        let c = colour(*ci);
        chart
            .draw_series(std::iter::once(Circle::new((*x, *y), 6, c.filled())))
            .map_err(e)?;
        let at = chart.backend_coord(&(*x, *y));
        match clusters
            .iter_mut()
            .find(|(p, _)| (p.0 - at.0).abs() < 14 && (p.1 - at.1).abs() < 14)
        {
            Some((_, members)) => members.push(*ci),
            None => clusters.push((at, vec![*ci])),
        }
    }
    let (right, _) = chart.backend_coord(&(x_max, 0.0));
    for ((px, py), members) in clusters {
        let label = members
            .iter()
            .map(|c| {
                if unknown.contains(c) {
                    format!("C{} (cost not recorded)", c + 1)
                } else {
                    format!("C{}", c + 1)
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let width = label.chars().count() as i32 * 8;
        let (x, h) = if px + 10 + width > right {
            (px - 10, HPos::Right)
        } else {
            (px + 10, HPos::Left)
        };
        area.draw(&Text::new(
            label,
            (x, py - 10),
            text_style(13.0).pos(Pos::new(h, VPos::Bottom)),
        ))
        .map_err(e)?;
    }
    Ok(())
}
