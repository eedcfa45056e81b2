//! Request Help (a person answers; only with `--interactive`) and Final
//! Answer (never executed: the environment turns it into the end of the
//! run before dispatch, as the original does).

use std::io::{BufRead, Write};

use serde_json::{Map, Value};

use super::{text_arg, ActionError, Ctx};
use crate::env::catalog::{FINAL_ANSWER, REQUEST_HELP};

pub fn dispatch(
    name: &str,
    args: &Map<String, Value>,
    ctx: &mut Ctx,
) -> Result<String, ActionError> {
    match name {
        REQUEST_HELP => request_help(&text_arg(args, "request")?, ctx),
        FINAL_ANSWER => Ok("end".into()),
        _ => unreachable!("not a control action: {name}"),
    }
}

fn request_help(request: &str, ctx: &mut Ctx) -> Result<String, ActionError> {
    if !ctx.interactive {
        // Not offered without --interactive; kept as a guard.
        return Err(ActionError::env(
            "nobody is watching this run, so Request Help is not available",
        ));
    }
    let reply = read_from_terminal(
        &format!("The agent asks for help (step {})", ctx.step),
        Some(request),
    );
    Ok(reply.unwrap_or_else(|| "The person gave no reply.".into()))
}

/// Shows `heading` (and `body`) on stderr and reads lines from stdin up
/// to an empty line (or the end of input); None when nothing was typed.
pub fn read_from_terminal(heading: &str, body: Option<&str>) -> Option<String> {
    let mut err = std::io::stderr();
    let body = body.map(|b| format!("{b}\n")).unwrap_or_default();
    let _ = writeln!(
        err,
        "\n=== {heading} ===\n{body}=== Type your reply; an empty line ends it ==="
    );
    let _ = err.flush();
    let stdin = std::io::stdin();
    let mut reply = String::new();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            break;
        }
        reply.push_str(&line);
        reply.push('\n');
    }
    (!reply.is_empty()).then_some(reply)
}
