//! The research log: Append Summary to Research Log adds to
//! `research_log.log` in the workspace; Reflection and Retrieval from
//! Research Log have the fast model read it back.

use serde_json::{Map, Value};

use super::{complete, files, text_arg, ActionError, Ctx, Role};
use crate::env::catalog::{APPEND_SUMMARY, REFLECTION, RETRIEVAL};

pub const RESEARCH_LOG: &str = "research_log.log";

pub fn dispatch(
    name: &str,
    args: &Map<String, Value>,
    ctx: &mut Ctx,
) -> Result<String, ActionError> {
    match name {
        APPEND_SUMMARY => {
            let content = text_arg(args, "content")?;
            files::append_text(ctx, RESEARCH_LOG, &format!("{content}\n"))?;
            Ok("The note was added to the research log.".into())
        }
        REFLECTION => {
            let topic = text_arg(args, "things_to_reflect_on")?;
            let log = read_log(ctx, REFLECTION)?;
            let prompt = format!(
                "You are helping with this research problem:\n{}\n\n\
                 Here is the research log so far:\n```\n{log}\n```\n\n\
                 Think carefully about the following and write down your reasoning in detail, \
                 without writing any code: {topic}",
                ctx.research_problem
            );
            let text = complete(ctx, REFLECTION, Role::Fast, prompt, ctx.tool_log.clone())?;
            Ok(format!("Reflection: {text}"))
        }
        RETRIEVAL => {
            let plan = text_arg(args, "current_plan")?;
            let log = read_log(ctx, RETRIEVAL)?;
            let prompt = format!(
                "You are helping with this research problem:\n{}\n\n\
                 Here is the research log so far:\n```\n{log}\n```\n\n\
                 The current plan is:\n{plan}\n\n\
                 Summarise, concisely, everything in the log that matters for carrying out this plan: \
                 what was tried, what the results were, and which files hold what.",
                ctx.research_problem
            );
            complete(ctx, RETRIEVAL, Role::Fast, prompt, ctx.tool_log.clone())
        }
        _ => unreachable!("not a research-log action: {name}"),
    }
}

fn read_log(ctx: &mut Ctx, action: &str) -> Result<String, ActionError> {
    let (_, src) = files::readable(ctx, RESEARCH_LOG)?;
    if !files::exists(ctx, &src)? {
        return Err(ActionError::env(format!(
            "{action} reads {RESEARCH_LOG}, which does not exist yet; add notes with Append Summary to Research Log first"
        )));
    }
    files::read_text(ctx, RESEARCH_LOG)
}
