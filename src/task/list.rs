//! `mlab tasks`: what tasks there are, whether they are prepared, and what
//! they need.

use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::{discover, Direction, Layout, Locations, Task};
use crate::ui;

#[derive(Serialize)]
struct TaskRow<'a> {
    name: &'a str,
    description: &'a str,
    category: &'a str,
    metric: &'a str,
    direction: Direction,
    prepared: bool,
    needs: Vec<&'static str>,
    kaggle: Option<&'a str>,
    baseline: Option<f64>,
    layout: Layout,
    defaulted: &'a [&'static str],
    path: String,
}

fn needs(task: &Task) -> Vec<&'static str> {
    let r = &task.spec.requires;
    let mut v = Vec::new();
    if r.gpu {
        v.push("gpu");
    }
    if r.internet {
        v.push("internet");
    }
    if r.kaggle.is_some() {
        v.push("kaggle");
    }
    v
}

/// Prints the tasks as a table, or as JSON when `json`.
pub fn run(locations: &Locations, json: bool) -> Result<ExitCode> {
    let root = discover::benchmarks_root(locations)?;
    let (tasks, broken) = discover::all_tasks(&root)?;
    for (path, err) in &broken {
        ui::warn(format!("skipping {}: {err:#}", path.display()));
    }
    let rows: Vec<TaskRow> = tasks
        .iter()
        .map(|t| TaskRow {
            name: t.name(),
            description: &t.spec.description,
            category: &t.spec.category,
            metric: &t.spec.metric,
            direction: t.spec.direction,
            prepared: t.is_prepared(),
            needs: needs(t),
            kaggle: t.spec.requires.kaggle.as_deref(),
            baseline: t.spec.baseline,
            layout: t.layout,
            defaulted: &t.defaulted,
            path: t.dir.display().to_string(),
        })
        .collect();
    if json {
        crate::ui::outln!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.name.to_string(),
                r.category.to_string(),
                r.metric.to_string(),
                r.direction.as_str().to_string(),
                if r.prepared { "yes" } else { "no" }.to_string(),
                if r.needs.is_empty() {
                    "-".to_string()
                } else {
                    r.needs.join(",")
                },
            ]
        })
        .collect();
    crate::ui::out!(
        "{}",
        ui::table(
            &["TASK", "CATEGORY", "METRIC", "BETTER", "PREPARED", "NEEDS"],
            &table
        )
    );
    for t in tasks.iter().filter(|t| !t.defaulted.is_empty()) {
        ui::info(format!(
            "note: {} uses the original layout; defaulted: {}",
            t.name(),
            t.defaulted.join(", ")
        ));
    }
    Ok(ExitCode::SUCCESS)
}
