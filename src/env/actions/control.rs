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
    let mut err = std::io::stderr();
    let _ = writeln!(
        err,
        "\n=== The agent asks for help (step {}) ===\n{request}\n=== Type your reply; an empty line ends it ===",
        ctx.step
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
    if reply.is_empty() {
        return Ok("The person gave no reply.".into());
    }
    Ok(reply)
}
