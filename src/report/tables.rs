//! The report's tables, as cells of text: per task and configuration, per
//! configuration over every task, and the baseline of each task. Every
//! number comes from eval.json or eval_summary.json; the overall rows add
//! the per-task counts up and use eval's own Wilson interval.

use super::data::{Data, GroupIn};
use crate::eval;

/// A table: a header and rows of cells (plain text; HTML escapes them).
#[derive(Debug, Clone)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn markdown(&self) -> String {
        let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
        let mut out = String::new();
        out.push_str(&format!(
            "| {} |\n",
            self.header
                .iter()
                .map(|h| cell(h))
                .collect::<Vec<_>>()
                .join(" | ")
        ));
        out.push_str(&format!("|{}\n", " --- |".repeat(self.header.len())));
        for r in &self.rows {
            out.push_str(&format!(
                "| {} |\n",
                r.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")
            ));
        }
        out
    }
}

/// A number for a table: integers as such, else at most 4 decimals
/// (scientific notation for very large or very small magnitudes).
pub fn fmt_num(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    if x == x.trunc() && x.abs() < 1e15 {
        return format!("{}", x as i64);
    }
    if x.abs() >= 1e6 || x.abs() < 1e-3 {
        return format!("{x:.3e}");
    }
    let s = format!("{x:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// 0.375 as "37.5%".
pub fn fmt_pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// "3/8 37.5% [13.7%, 69.4%]".
pub fn fmt_rate(k: usize, n: usize, rate: f64, ci: [f64; 2]) -> String {
    format!(
        "{k}/{n} {} [{}, {}]",
        fmt_pct(rate),
        fmt_pct(ci[0]),
        fmt_pct(ci[1])
    )
}

/// A mean with its interval, each cell formatted by `f`.
fn fmt_estimate(mean: f64, ci: Option<[f64; 2]>, f: fn(f64) -> String) -> String {
    match ci {
        Some([lo, hi]) => format!("{} [{}, {}]", f(mean), f(lo), f(hi)),
        None => f(mean),
    }
}

const NONE: &str = "-";

/// The best of the group's runs' best scores, for its direction.
pub fn best_score(data: &Data, g: &GroupIn) -> Option<f64> {
    let bests = data.runs_of(g).filter_map(|r| r.result.best_score);
    if g.lower_is_better() {
        bests.reduce(f64::min)
    } else {
        bests.reduce(f64::max)
    }
}

/// The median of the group's runs' step counts.
pub fn median_steps(data: &Data, g: &GroupIn) -> Option<f64> {
    let mut steps: Vec<u64> = data.runs_of(g).filter_map(|r| r.result.steps()).collect();
    if steps.is_empty() {
        return None;
    }
    steps.sort_unstable();
    let n = steps.len();
    Some(if n % 2 == 1 {
        steps[n / 2] as f64
    } else {
        (steps[n / 2 - 1] + steps[n / 2]) as f64 / 2.0
    })
}

/// Per task and configuration.
pub fn per_group(data: &Data) -> Table {
    let header = [
        "task",
        "config",
        "runs",
        "success@10%",
        "avg improvement",
        "best score",
        "median steps",
        "tokens/run",
        "cost/run ($)",
        "time/run (s)",
    ];
    let rows = data
        .groups
        .iter()
        .map(|g| {
            let mut runs = g.runs.to_string();
            if g.infra_failures > 0 {
                runs.push_str(&format!(" ({} infra)", g.infra_failures));
            }
            vec![
                g.task.clone(),
                format!("{} {}", data.short(&g.config), g.config),
                runs,
                g.success10()
                    .map(|r| fmt_rate(r.k, r.n, r.rate, r.ci95))
                    .unwrap_or_else(|| NONE.into()),
                g.average_improvement
                    .as_ref()
                    .map(|e| fmt_estimate(e.mean, e.ci95, fmt_pct))
                    .unwrap_or_else(|| NONE.into()),
                opt(best_score(data, g)),
                opt(median_steps(data, g)),
                opt(g.tokens.as_ref().map(|u| u.mean)),
                opt(g.cost_usd.as_ref().map(|u| u.mean)),
                opt(g.wall_time_s.as_ref().map(|u| u.mean)),
            ]
        })
        .collect();
    Table {
        header: header.iter().map(|s| s.to_string()).collect(),
        rows,
    }
}

fn opt(x: Option<f64>) -> String {
    x.map(fmt_num).unwrap_or_else(|| NONE.into())
}

/// One configuration over every task.
#[derive(Debug, Clone)]
pub struct Overall {
    pub config: String,
    pub tasks: usize,
    pub runs: usize,
    /// Successes and evaluated runs at 10%, summed over tasks.
    pub success: Option<(usize, usize)>,
    /// Mean of the per-task average improvements, weighted by their runs.
    pub improvement: Option<f64>,
    /// Total cost over runs that recorded one, and how many did.
    pub cost: Option<(f64, usize)>,
    pub tokens: Option<(f64, usize)>,
    pub wall: Option<(f64, usize)>,
}

impl Overall {
    pub fn success_rate(&self) -> Option<f64> {
        self.success
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| k as f64 / n as f64)
    }

    pub fn cost_per_run(&self) -> Option<f64> {
        self.cost.filter(|(_, n)| *n > 0).map(|(t, n)| t / n as f64)
    }
}

/// The per-configuration totals.
pub fn overall(data: &Data) -> Vec<Overall> {
    data.configs
        .iter()
        .filter_map(|c| {
            let gs: Vec<&GroupIn> = data.groups.iter().filter(|g| &g.config == c).collect();
            if gs.is_empty() {
                return None;
            }
            let add = |pick: fn(&GroupIn) -> Option<(f64, usize)>| {
                let xs: Vec<(f64, usize)> = gs.iter().filter_map(|g| pick(g)).collect();
                (!xs.is_empty()).then(|| xs.iter().fold((0.0, 0), |(t, n), (x, m)| (t + x, n + m)))
            };
            let rates: Vec<_> = gs.iter().filter_map(|g| g.success10()).collect();
            let imps: Vec<_> = gs
                .iter()
                .filter_map(|g| g.average_improvement.as_ref())
                .collect();
            let imp_n: usize = imps.iter().map(|e| e.n).sum();
            Some(Overall {
                config: c.clone(),
                tasks: gs.len(),
                runs: gs.iter().map(|g| g.runs).sum(),
                success: (!rates.is_empty()).then(|| {
                    (
                        rates.iter().map(|r| r.k).sum(),
                        rates.iter().map(|r| r.n).sum(),
                    )
                }),
                improvement: (imp_n > 0)
                    .then(|| imps.iter().map(|e| e.mean * e.n as f64).sum::<f64>() / imp_n as f64),
                cost: add(|g| g.cost_usd.as_ref().map(|u| (u.total, u.n))),
                tokens: add(|g| g.tokens.as_ref().map(|u| (u.total, u.n))),
                wall: add(|g| g.wall_time_s.as_ref().map(|u| (u.total, u.n))),
            })
        })
        .collect()
}

/// The overall table.
pub fn overall_table(data: &Data) -> Table {
    let header = [
        "config",
        "tasks",
        "runs",
        "success@10% (all tasks)",
        "avg improvement",
        "tokens/run",
        "cost/run ($)",
        "total cost ($)",
        "time/run (s)",
    ];
    let per = |x: Option<(f64, usize)>| opt(x.filter(|(_, n)| *n > 0).map(|(t, n)| t / n as f64));
    let rows = overall(data)
        .into_iter()
        .map(|o| {
            vec![
                format!("{} {}", data.short(&o.config), o.config),
                o.tasks.to_string(),
                o.runs.to_string(),
                match o.success {
                    Some((k, n)) if n > 0 => {
                        fmt_rate(k, n, k as f64 / n as f64, eval::wilson(k, n))
                    }
                    _ => NONE.into(),
                },
                o.improvement.map(fmt_pct).unwrap_or_else(|| NONE.into()),
                per(o.tokens),
                per(o.cost),
                opt(o.cost.map(|(t, _)| t)),
                per(o.wall),
            ]
        })
        .collect();
    Table {
        header: header.iter().map(|s| s.to_string()).collect(),
        rows,
    }
}

/// The baseline of each task and where it came from.
pub fn baselines(data: &Data) -> Table {
    let mut rows = Vec::new();
    for task in &data.tasks {
        let Some(g) = data.groups.iter().find(|g| &g.task == task) else {
            continue;
        };
        rows.push(vec![
            task.clone(),
            g.direction.clone(),
            opt(g.baseline),
            describe_source(&g.baseline_source, g.baseline_runs),
        ]);
    }
    Table {
        header: ["task", "direction", "baseline", "source"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        rows,
    }
}

/// eval's wording of a baseline source.
fn describe_source(source: &str, runs: usize) -> String {
    let s = match source {
        "flag" => eval::BaselineSource::Flag,
        "baseline_runs" => eval::BaselineSource::BaselineRuns,
        "task_toml" => eval::BaselineSource::TaskToml,
        "paper_baseline" => eval::BaselineSource::PaperBaseline,
        _ => eval::BaselineSource::Unknown,
    };
    s.describe(runs)
}

/// report.md.
pub fn markdown(data: &Data) -> String {
    let mut out = String::from("# mlab report\n\n");
    out.push_str(&format!(
        "Log folder: `{}`; {} run(s), {} task(s), {} configuration(s). \
         Numbers from eval.json and eval_summary.json.\n\n",
        data.log_folder.display(),
        data.runs.len(),
        data.tasks.len(),
        data.configs.len()
    ));
    out.push_str("## Per task and configuration\n\n");
    out.push_str(&per_group(data).markdown());
    out.push_str(
        "\nsuccess@10%: runs whose final score beats the baseline by more than 10%, \
         k/n rate [Wilson 95% interval]; infrastructure failures are left out. \
         avg improvement: mean relative improvement over the baseline [bootstrap 95% interval]. \
         tokens, cost and time: mean per run.\n\n",
    );
    let notes: Vec<String> = data
        .groups
        .iter()
        .filter_map(|g| {
            g.note
                .as_ref()
                .map(|n| format!("- {} / {}: {n}\n", g.task, g.config))
        })
        .collect();
    if !notes.is_empty() {
        out.push_str(&notes.concat());
        out.push('\n');
    }
    out.push_str("## Per configuration, over every task\n\n");
    out.push_str(&overall_table(data).markdown());
    out.push_str(
        "\nsuccess@10%: the per-task counts added up, with the Wilson 95% interval; \
         avg improvement: the per-task means weighted by their runs.\n\n",
    );
    out.push_str("## Baselines\n\n");
    out.push_str(&baselines(data).markdown());
    out.push_str("\n## Plots\n\n");
    for (name, title) in super::plots::titles(data) {
        out.push_str(&format!("![{title}](plots/{name}.svg)\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short_and_exact_where_whole() {
        assert_eq!(fmt_num(3.0), "3");
        assert_eq!(fmt_num(0.5), "0.5");
        assert_eq!(fmt_num(0.123456), "0.1235");
        assert_eq!(fmt_num(1234567.0), "1234567");
        assert_eq!(fmt_num(0.0001234), "1.234e-4");
        assert_eq!(
            fmt_rate(1, 3, 1.0 / 3.0, [0.1, 0.8]),
            "1/3 33.3% [10.0%, 80.0%]"
        );
    }

    #[test]
    fn markdown_cells_cannot_break_the_table() {
        let t = Table {
            header: vec!["a".into()],
            rows: vec![vec!["x|y\nz".into()]],
        };
        assert_eq!(t.markdown(), "| a |\n| --- |\n| x\\|y z |\n");
    }
}
