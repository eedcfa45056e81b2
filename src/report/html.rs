//! The static site: index.html (tables, plots, the run list) and a page
//! per run, `runs/<n>.html`, whose steps come in pages from
//! `runs/<n>/steps-<p>.js`. Each of those files calls `mlabSteps(p, html)`
//! with the page's HTML already rendered (and escaped) here, and is loaded
//! by adding a script tag, which works from `file://` where `fetch` does
//! not. No file refers to anything outside the output folder.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use serde_json::Value;

use super::data::{Data, RunData};
use super::diff::{self, Change};
use super::escape;
use super::plots::Plot;
use super::tables::{self, Table};

const CSS: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
header{background:#24344d;color:#fff;padding:12px 24px}header a{color:#cfe0ff}
main{padding:16px 24px;max-width:1400px}
h1{font-size:22px;margin:0}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px;margin:8px 0;background:#fff}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f6;position:sticky;top:0}
tr:nth-child(even) td{background:#f7f8fa}
.plot{background:#fff;border:1px solid #ddd;margin:10px 0;padding:6px;overflow-x:auto}
.plot svg{max-width:none}
.filters{display:flex;gap:12px;flex-wrap:wrap;margin:8px 0}
.filters label{font-size:13px}
pre{white-space:pre-wrap;word-break:break-word;background:#fff;border:1px solid #e3e3e3;padding:6px;font-size:12px;max-height:600px;overflow:auto;margin:4px 0}
.step{background:#fff;border:1px solid #d5d9e0;border-radius:6px;margin:12px 0;padding:8px 14px}
.step h3{margin:4px 0;font-size:16px}
.step h4{margin:8px 0 2px;font-size:13px;color:#444}
dl.reasoning dt{font-weight:600;font-size:13px;margin-top:4px}dl.reasoning dd{margin:0 0 0 12px;white-space:pre-wrap;font-size:13px}
details{margin:4px 0}summary{cursor:pointer;font-size:13px;color:#24344d}
.add{color:#116329;background:#e6ffec}.del{color:#82071e;background:#ffebe9}.hunk{color:#6e7781}
.file{margin:6px 0}.file .name{font-family:monospace;font-weight:600}
.note{background:#fff8c5;border:1px solid #e7d48a;padding:6px 10px;font-size:13px}
.pager button{margin:2px;padding:3px 8px}.pager button.on{font-weight:700;background:#cfe0ff}
.meta td:first-child{font-weight:600}
.success{color:#116329}.failure{color:#82071e}
"#;

fn page(title: &str, body: &str, script: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{CSS}</style></head><body>{body}<script>{script}</script></body></html>\n",
        escape(title)
    )
}

fn table_html(t: &Table, id: &str) -> String {
    let mut out = format!("<table id=\"{id}\"><thead><tr>");
    for h in &t.header {
        out.push_str(&format!("<th>{}</th>", escape(h)));
    }
    out.push_str("</tr></thead><tbody>");
    for r in &t.rows {
        out.push_str("<tr>");
        for c in r {
            out.push_str(&format!("<td>{}</td>", escape(c)));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// Writes index.html and every run page.
pub fn write_site(data: &Data, plots: &[Plot], out: &Path, page_size: usize) -> Result<()> {
    let runs_dir = out.join("runs");
    std::fs::create_dir_all(&runs_dir)
        .with_context(|| format!("could not make {}", runs_dir.display()))?;
    std::fs::write(out.join("index.html"), index(data, plots))
        .with_context(|| format!("could not write {}", out.join("index.html").display()))?;
    // Run pages in parallel: each reads its own run's files.
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(data.runs.len().max(1));
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(r) = data.runs.get(i) else {
                            return Ok(());
                        };
                        run_page(data, r, &runs_dir, page_size)?;
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a run page's thread panicked")))
            })
            .collect()
    });
    results.into_iter().collect()
}

const INDEX_JS: &str = r#"
(function(){
  var rows=[].slice.call(document.querySelectorAll('#runs tbody tr'));
  var keys=['task','agent','model','outcome'];
  keys.forEach(function(k){
    var sel=document.getElementById('f-'+k);
    var vals={};rows.forEach(function(r){vals[r.getAttribute('data-'+k)]=1;});
    Object.keys(vals).sort().forEach(function(v){var o=document.createElement('option');o.value=v;o.textContent=v;sel.appendChild(o);});
    sel.addEventListener('change',apply);
  });
  function apply(){
    var shown=0;
    rows.forEach(function(r){
      var ok=keys.every(function(k){var v=document.getElementById('f-'+k).value;return v===''||r.getAttribute('data-'+k)===v;});
      r.style.display=ok?'':'none';if(ok)shown++;
    });
    document.getElementById('shown').textContent=shown+' of '+rows.length+' runs';
  }
  apply();
})();
"#;

fn index(data: &Data, plots: &[Plot]) -> String {
    let mut b = String::new();
    b.push_str(&format!(
        "<header><h1>mlab report</h1><div>{} · {} run(s), {} task(s), {} configuration(s)</div></header><main>",
        escape(&data.log_folder.display().to_string()),
        data.runs.len(),
        data.tasks.len(),
        data.configs.len()
    ));
    b.push_str("<h2>Per task and configuration</h2>");
    b.push_str(&table_html(&tables::per_group(data), "per-group"));
    b.push_str(
        "<p>success@10%: runs whose final score beats the baseline by more than 10%, k/n rate \
         [Wilson 95% interval], infrastructure failures left out; avg improvement: mean relative \
         improvement [bootstrap 95% interval]; tokens, cost and time: mean per run.</p>",
    );
    for g in data.groups.iter().filter(|g| g.note.is_some()) {
        b.push_str(&format!(
            "<p class=\"note\">{} / {}: {}</p>",
            escape(&g.task),
            escape(&g.config),
            escape(g.note.as_deref().unwrap_or(""))
        ));
    }
    b.push_str("<h2>Per configuration, over every task</h2>");
    b.push_str(&table_html(&tables::overall_table(data), "overall"));
    b.push_str("<h2>Baselines</h2>");
    b.push_str(&table_html(&tables::baselines(data), "baselines"));
    b.push_str("<h2>Plots</h2>");
    if plots.is_empty() {
        b.push_str("<p class=\"note\">No plots: see the warning `mlab report` printed.</p>");
    }
    for p in plots {
        // The SVG is plotters' output for our own data, with every text
        // node escaped by its backend; the XML declaration is dropped.
        let svg = p.svg.find("<svg").map(|i| &p.svg[i..]).unwrap_or(&p.svg);
        b.push_str(&format!(
            "<div class=\"plot\" id=\"plot-{}\"><div><b>{}</b> · <a href=\"plots/{}.svg\">SVG</a> · <a href=\"plots/{}.png\">PNG</a></div>{svg}</div>",
            escape(&p.name),
            escape(&p.title),
            escape(&p.name),
            escape(&p.name)
        ));
    }
    b.push_str("<h2>Runs</h2><div class=\"filters\">");
    for (k, label) in [
        ("task", "task"),
        ("agent", "agent"),
        ("model", "model"),
        ("outcome", "outcome"),
    ] {
        b.push_str(&format!(
            "<label>{label} <select id=\"f-{k}\"><option value=\"\">all</option></select></label>"
        ));
    }
    b.push_str("<span id=\"shown\"></span></div>");
    b.push_str(
        "<table id=\"runs\"><thead><tr><th>#</th><th>run</th><th>task</th><th>config</th><th>agent</th>\
         <th>model</th><th>outcome</th><th>exit</th><th>final score</th><th>best</th><th>steps</th>\
         <th>tokens</th><th>cost ($)</th><th>time (s)</th></tr></thead><tbody>",
    );
    for r in &data.runs {
        let res = &r.result;
        let outcome = data.outcome(r);
        let agent = res.agent.clone().unwrap_or_else(|| "?".into());
        let model = res.models();
        let cells = [
            format!("<a href=\"runs/{}.html\">{}</a>", r.id, r.id),
            format!("<a href=\"runs/{}.html\">{}</a>", r.id, escape(&r.folder)),
            escape(r.task()),
            escape(&format!("{} {}", data.short(&r.config), r.config)),
            escape(&agent),
            escape(&model),
            format!(
                "<span class=\"{}\">{}</span>",
                outcome.replace(' ', "-"),
                escape(outcome)
            ),
            escape(&res.exit()),
            escape(
                &res.graded_final_score
                    .map(tables::fmt_num)
                    .unwrap_or_else(|| "-".into()),
            ),
            escape(
                &res.best_score
                    .map(tables::fmt_num)
                    .unwrap_or_else(|| "-".into()),
            ),
            escape(
                &res.steps()
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into()),
            ),
            escape(
                &res.total_tokens()
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into()),
            ),
            escape(
                &res.cost_usd
                    .as_f64()
                    .map(tables::fmt_num)
                    .unwrap_or_else(|| "-".into()),
            ),
            escape(&tables::fmt_num(res.total_time)),
        ];
        b.push_str(&format!(
            "<tr data-task=\"{}\" data-agent=\"{}\" data-model=\"{}\" data-outcome=\"{}\">",
            escape(r.task()),
            escape(&agent),
            escape(&model),
            escape(outcome)
        ));
        for c in cells {
            b.push_str(&format!("<td>{c}</td>"));
        }
        b.push_str("</tr>");
    }
    b.push_str("</tbody></table></main>");
    page("mlab report", &b, INDEX_JS)
}

/// One step of the trace.
struct StepIn {
    name: String,
    args: Value,
    observation: String,
    timestamp: f64,
}

fn read_trace(dir: &Path) -> (Vec<StepIn>, Option<String>) {
    let path = dir.join("env_log/trace.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            return (
                Vec::new(),
                Some(format!("could not read {}: {e}", path.display())),
            )
        }
    };
    let v: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            return (
                Vec::new(),
                Some(format!("{} is not JSON: {e}", path.display())),
            )
        }
    };
    let steps = v
        .get("steps")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|s| StepIn {
                    name: s
                        .pointer("/action/name")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_string(),
                    args: s.pointer("/action/args").cloned().unwrap_or(Value::Null),
                    observation: s
                        .get("observation")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    timestamp: s.get("timestamp").and_then(Value::as_f64).unwrap_or(0.0),
                })
                .collect()
        })
        .unwrap_or_default();
    (steps, None)
}

/// One recorded LLM call.
struct Call {
    time: f64,
    role: String,
    model: String,
    messages: Vec<(String, String)>,
    response: Option<String>,
    error: Option<String>,
    tokens: (u64, u64),
    cost: f64,
}

fn read_calls(dir: &Path) -> Option<Vec<Call>> {
    let text = std::fs::read_to_string(dir.join("agent_log/llm_calls.jsonl")).ok()?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
        let time = s("/time")
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.timestamp_micros() as f64 / 1e6)
            .unwrap_or(0.0);
        let messages = v
            .pointer("/request/messages")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|m| {
                        (
                            m.get("role")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string(),
                            m.get("content")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let u = |p: &str| v.pointer(p).and_then(Value::as_u64).unwrap_or(0);
        out.push(Call {
            time,
            role: s("/role").unwrap_or_default(),
            model: s("/model").unwrap_or_default(),
            messages,
            response: s("/response"),
            error: s("/error"),
            tokens: (u("/usage/input_tokens"), u("/usage/output_tokens")),
            cost: v.get("cost_usd").and_then(Value::as_f64).unwrap_or(0.0),
        });
    }
    Some(out)
}

/// The agent's named fields in a reply ("Reflection: ...", "Thought:
/// ..."), up to the action; empty when the reply has none.
pub fn reasoning_fields(reply: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in reply.lines() {
        let header = line.split_once(':').and_then(|(h, rest)| {
            let h = h.trim();
            let ok = !h.is_empty()
                && h.len() <= 40
                && h.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && h.chars().all(|c| c.is_ascii_alphabetic() || c == ' ')
                && line.starts_with(h);
            ok.then(|| (h.to_string(), rest.trim_start().to_string()))
        });
        match header {
            Some((h, _)) if h == "Action" || h == "Action Input" => break,
            Some((h, rest)) => out.push((h, rest)),
            None => {
                if let Some((_, body)) = out.last_mut() {
                    body.push('\n');
                    body.push_str(line);
                }
            }
        }
    }
    for (_, body) in &mut out {
        *body = body.trim().to_string();
    }
    out
}

/// Long texts are collapsed.
fn collapsible(label: &str, text: &str, class: &str) -> String {
    let lines = text.lines().count();
    if lines > 25 || text.len() > 2500 {
        format!(
            "<details class=\"{class}\"><summary>{} ({lines} lines, {} characters)</summary><pre>{}</pre></details>",
            escape(label),
            text.chars().count(),
            escape(text)
        )
    } else {
        format!(
            "<h4>{}</h4><pre class=\"{class}\">{}</pre>",
            escape(label),
            escape(text)
        )
    }
}

fn diff_html(diff: &str) -> String {
    let mut out = String::from("<pre class=\"udiff\">");
    for line in diff.lines() {
        let class = if line.starts_with("+++") || line.starts_with("---") {
            "hunk"
        } else if line.starts_with('+') {
            "add"
        } else if line.starts_with('-') {
            "del"
        } else if line.starts_with("@@") {
            "hunk"
        } else {
            ""
        };
        out.push_str(&format!(
            "<span class=\"{class}\">{}</span>\n",
            escape(line)
        ));
    }
    out.push_str("</pre>");
    out
}

fn changes_html(changes: &[(String, Change)], first: bool) -> String {
    if changes.is_empty() {
        return "<p class=\"nodiff\">No file changed.</p>".into();
    }
    if first {
        let list: Vec<String> = changes
            .iter()
            .map(|(p, c)| match c {
                Change::Added { size, .. } => format!("{} ({size} B)", escape(p)),
                _ => escape(p),
            })
            .collect();
        return format!(
            "<details><summary>first snapshot: {} file(s)</summary><pre>{}</pre></details>",
            changes.len(),
            list.join("\n")
        );
    }
    let mut out = String::new();
    for (p, c) in changes {
        let (what, body) = match c {
            Change::Added { size, diff } => (
                format!("added, {size} B"),
                diff.as_deref().map(diff_html).unwrap_or_default(),
            ),
            Change::Removed { size } => (format!("removed ({size} B)"), String::new()),
            Change::Modified {
                before,
                after,
                diff: Some(d),
            } => (format!("modified, {before} B → {after} B"), diff_html(d)),
            Change::Modified {
                before,
                after,
                diff: None,
            } => (
                format!("modified, {before} B → {after} B (binary or large: not shown)"),
                String::new(),
            ),
        };
        out.push_str(&format!(
            "<div class=\"file\"><span class=\"name\">{}</span> <span>{}</span>{body}</div>",
            escape(p),
            escape(&what)
        ));
    }
    out
}

fn step_html(
    run: &RunData,
    i: usize,
    s: &StepIn,
    calls: Option<&[&Call]>,
    prev_snapshot: Option<&Path>,
) -> String {
    let mut b = format!(
        "<section class=\"step\" id=\"step-{i}\"><h3>Step {i}: <code class=\"action\">{}</code></h3>",
        escape(&s.name)
    );
    // Reasoning: the fields of the last main-model reply of the step.
    if let Some(calls) = calls {
        let reply = calls
            .iter()
            .rev()
            .find(|c| c.role == "main" && c.response.is_some())
            .and_then(|c| c.response.as_deref());
        if let Some(reply) = reply {
            let fields = reasoning_fields(reply);
            if !fields.is_empty() {
                b.push_str("<dl class=\"reasoning\">");
                for (k, v) in fields {
                    b.push_str(&format!("<dt>{}</dt><dd>{}</dd>", escape(&k), escape(&v)));
                }
                b.push_str("</dl>");
            } else if !reply.trim().is_empty() {
                b.push_str(&collapsible("Reply", reply, "reply"));
            }
        }
    }
    let args = serde_json::to_string_pretty(&s.args).unwrap_or_default();
    b.push_str(&format!(
        "<h4>Action input</h4><pre class=\"args\">{}</pre>",
        escape(&args)
    ));
    b.push_str(&collapsible("Observation", &s.observation, "observation"));
    match calls {
        Some(calls) if !calls.is_empty() => {
            b.push_str(&format!("<h4>LLM calls ({})</h4>", calls.len()));
            for (k, c) in calls.iter().enumerate() {
                let prompt: String = c
                    .messages
                    .iter()
                    .map(|(role, text)| format!("[{role}]\n{text}\n"))
                    .collect();
                let reply = c
                    .response
                    .clone()
                    .or_else(|| c.error.as_ref().map(|e| format!("(failed) {e}")))
                    .unwrap_or_default();
                b.push_str(&format!(
                    "<details class=\"llm\"><summary>call {}: {} {} · {} in + {} out tokens · ${}</summary>\
                     <h4>Prompt</h4><pre>{}</pre><h4>Reply</h4><pre>{}</pre></details>",
                    k + 1,
                    escape(&c.role),
                    escape(&c.model),
                    c.tokens.0,
                    c.tokens.1,
                    escape(&tables::fmt_num(c.cost)),
                    escape(&prompt),
                    escape(&reply)
                ));
            }
        }
        Some(_) => b.push_str("<p class=\"nocalls\">No LLM call in this step.</p>"),
        None => {}
    }
    b.push_str("<h4>Workspace changes</h4><div class=\"diff\">");
    let snap = run.dir.join(format!("env_log/traces/step_{i}_files"));
    if snap.is_dir() {
        let changes = diff::changes(prev_snapshot, &snap);
        b.push_str(&changes_html(&changes, prev_snapshot.is_none()));
    } else {
        b.push_str("<p>No snapshot of this step.</p>");
    }
    b.push_str("</div></section>");
    b
}

const RUN_JS: &str = r#"
var mlabPages={};
function mlabSteps(p,html){mlabPages[p]=html;show(p);}
function show(p){
  var el=document.getElementById('steps');
  if(!(p in mlabPages)){el.innerHTML='<p>loading…</p>';var s=document.createElement('script');s.src=RUN_ID+'/steps-'+p+'.js';document.body.appendChild(s);return;}
  el.innerHTML=mlabPages[p];el.setAttribute('data-page',p);
  if(!el.hasAttribute('data-shown-ms'))el.setAttribute('data-shown-ms',Math.round(performance.now()));
  [].forEach.call(document.querySelectorAll('.pager button'),function(b){b.className=(+b.getAttribute('data-p')===p)?'on':'';});
  if(location.hash!=='#page-'+p)history.replaceState(null,'','#page-'+p);
}
[].forEach.call(document.querySelectorAll('.pager button'),function(b){b.addEventListener('click',function(){show(+b.getAttribute('data-p'));});});
var m=/^#page-(\d+)$/.exec(location.hash);show(m?+m[1]:0);
"#;

fn run_page(data: &Data, r: &RunData, runs_dir: &Path, page_size: usize) -> Result<()> {
    let (steps, trace_error) = read_trace(&r.dir);
    let calls = read_calls(&r.dir);
    let chunk_dir = runs_dir.join(r.id.to_string());
    std::fs::create_dir_all(&chunk_dir)
        .with_context(|| format!("could not make {}", chunk_dir.display()))?;
    // Calls belong to the step whose action ended next after them.
    let mut per_step: Vec<Vec<&Call>> = (0..steps.len()).map(|_| Vec::new()).collect();
    if let Some(calls) = &calls {
        let mut i = 0;
        for c in calls {
            while i < steps.len() && steps[i].timestamp < c.time {
                i += 1;
            }
            if i < steps.len() {
                per_step[i].push(c);
            }
        }
    }
    let pages = steps.len().div_ceil(page_size).max(1);
    let mut prev: Option<std::path::PathBuf> = None;
    for p in 0..pages {
        let mut html = String::new();
        let end = ((p + 1) * page_size).min(steps.len());
        for i in p * page_size..end {
            let c = calls.as_ref().map(|_| per_step[i].as_slice());
            html.push_str(&step_html(r, i, &steps[i], c, prev.as_deref()));
            let snap = r.dir.join(format!("env_log/traces/step_{i}_files"));
            if snap.is_dir() {
                prev = Some(snap);
            }
        }
        if steps.is_empty() {
            html.push_str("<p>This run has no steps.</p>");
        }
        let js = format!(
            "mlabSteps({p},{});\n",
            serde_json::to_string(&html).unwrap_or_default()
        );
        std::fs::write(chunk_dir.join(format!("steps-{p}.js")), js)?;
    }

    let res = &r.result;
    let mut b = format!(
        "<header><h1>Run {}: {}</h1><a href=\"../index.html\">← all runs</a></header><main>",
        r.id,
        escape(&r.folder)
    );
    let meta = [
        ("folder", r.dir.display().to_string()),
        ("task", r.task().to_string()),
        ("config", r.config.clone()),
        ("agent", res.agent.clone().unwrap_or_else(|| "?".into())),
        ("models", res.models()),
        ("outcome", data.outcome(r).to_string()),
        ("exit", res.exit()),
        (
            "final score",
            res.graded_final_score
                .map(tables::fmt_num)
                .unwrap_or_else(|| "-".into()),
        ),
        (
            "best score",
            res.best_score
                .map(tables::fmt_num)
                .unwrap_or_else(|| "-".into()),
        ),
        ("steps", steps.len().to_string()),
        (
            "tokens",
            res.total_tokens()
                .map(|t| t.to_string())
                .unwrap_or_else(|| "-".into()),
        ),
        (
            "cost ($)",
            res.cost_usd
                .as_f64()
                .map(tables::fmt_num)
                .unwrap_or_else(|| "-".into()),
        ),
        ("time (s)", tables::fmt_num(res.total_time)),
    ];
    b.push_str("<table class=\"meta\">");
    for (k, v) in meta {
        b.push_str(&format!("<tr><td>{k}</td><td>{}</td></tr>", escape(&v)));
    }
    b.push_str("</table>");
    if !res.error.is_empty() {
        b.push_str(&collapsible("Error", &res.error, "error"));
    }
    if let Some(e) = trace_error {
        b.push_str(&format!("<p class=\"note\">{}</p>", escape(&e)));
    }
    if calls.is_none() {
        b.push_str(
            "<p class=\"note\" id=\"no-calls\">The LLM calls of this run were not recorded \
             (it has no agent_log/llm_calls.jsonl: a run of the original MLAgentBench, or an agent \
             without a model), so its steps show no prompts, replies or reasoning.</p>",
        );
    }
    b.push_str("<div class=\"pager\">");
    for p in 0..pages {
        let last = ((p + 1) * page_size).min(steps.len());
        b.push_str(&format!(
            "<button data-p=\"{p}\">steps {}–{}</button>",
            p * page_size,
            last.saturating_sub(1)
        ));
    }
    b.push_str("</div><div id=\"steps\"></div></main>");
    let script = format!("var RUN_ID={};\n{RUN_JS}", r.id);
    std::fs::write(
        runs_dir.join(format!("{}.html", r.id)),
        page(&format!("run {}: {}", r.id, r.folder), &b, &script),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasoning_fields_stop_at_the_action() {
        let f = reasoning_fields(
            "Reflection: it ran.\nResearch Plan and Status: 1. a\n2. b\nThought: try x\nAction: List Files\nAction Input: {}",
        );
        assert_eq!(
            f,
            vec![
                ("Reflection".to_string(), "it ran.".to_string()),
                (
                    "Research Plan and Status".to_string(),
                    "1. a\n2. b".to_string()
                ),
                ("Thought".to_string(), "try x".to_string()),
            ]
        );
    }

    #[test]
    fn names_from_the_logs_cannot_inject_markup_into_the_pages() {
        let evil = "<script>alert(1)</script>";
        let run = RunData {
            id: 1,
            dir: std::path::PathBuf::from("/nonexistent/run"),
            folder: evil.to_string(),
            config: evil.to_string(),
            result: super::super::data::RunIn {
                task: Some(evil.to_string()),
                agent: Some(evil.to_string()),
                error: evil.to_string(),
                ..Default::default()
            },
        };
        let data = Data {
            log_folder: evil.into(),
            groups: Vec::new(),
            runs: vec![run],
            configs: vec![evil.to_string()],
            tasks: vec![evil.to_string()],
        };
        let index = index(&data, &[]);
        assert!(!index.contains(evil), "{index}");
        let dir = tempfile::tempdir().unwrap();
        run_page(&data, &data.runs[0], dir.path(), 50).unwrap();
        let page = std::fs::read_to_string(dir.path().join("1.html")).unwrap();
        assert!(!page.contains(evil), "{page}");
        assert!(page.contains("could not read"), "{page}");
    }

    #[test]
    fn a_diff_cannot_inject_markup() {
        let h = diff_html("+<script>x</script>\n-a & b\n");
        assert!(
            h.contains("&lt;script&gt;") && !h.contains("<script>"),
            "{h}"
        );
        assert!(h.contains("class=\"add\"") && h.contains("class=\"del\""));
    }
}
