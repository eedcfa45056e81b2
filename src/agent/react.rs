//! `--agent react` (the original's ReasoningActionAgent): the simple agent
//! with a Thought written before each action. Everything else is
//! `simple::LiteAgent`.

use std::path::Path;

use anyhow::Result;

use super::simple::LiteAgent;
use super::Options;
use crate::llm::Models;

/// The fields of `--agent react`.
pub const REACT_FIELDS: [&str; 3] = ["Thought", "Action", "Action Input"];

pub fn new(opts: Options, models: Models, agent_log: &Path) -> Result<LiteAgent> {
    LiteAgent::new(opts, models, agent_log, "react", &REACT_FIELDS)
}
