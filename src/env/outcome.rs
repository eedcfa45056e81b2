//! How a run ended: the one exit reason that the environment's end event,
//! the agents (the external agent's `end` message), run.json and eval all
//! use. Its JSON form is the snake_case name (`"final_answer"`,
//! `"max_steps"`, ...), as run.json has always had it.

use serde::{Deserialize, Serialize};

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    FinalAnswer,
    MaxSteps,
    MaxTime,
    /// `--agent actions` ran out of actions before a Final Answer or limit.
    ActionsExhausted,
    AgentError,
    LlmError,
    /// The model failed at the task (empty, refused, filtered or unusable
    /// replies, a prompt too long for it): the configuration's result.
    ModelError,
    Budget,
    Interrupted,
    HarnessError,
    /// The disk of the log folder filled up.
    DiskFull,
}

impl ExitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::FinalAnswer => "final_answer",
            ExitReason::MaxSteps => "max_steps",
            ExitReason::MaxTime => "max_time",
            ExitReason::ActionsExhausted => "actions_exhausted",
            ExitReason::AgentError => "agent_error",
            ExitReason::LlmError => "llm_error",
            ExitReason::ModelError => "model_error",
            ExitReason::Budget => "budget",
            ExitReason::Interrupted => "interrupted",
            ExitReason::HarnessError => "harness_error",
            ExitReason::DiskFull => "disk_full",
        }
    }

    /// Why a run that ended this way is an infrastructure failure (left
    /// out of success rates), or None when it counts for or against the
    /// agent. Only faults outside the agent count: mlab's own failures, the
    /// log disk, the model provider. What the agent did to its workspace
    /// can never make a harness error (snapshots skip what they cannot
    /// store), so it is judged like any other run.
    pub fn infra_reason(self) -> Option<&'static str> {
        match self {
            ExitReason::HarnessError => Some("harness_error"),
            ExitReason::DiskFull => Some("log_disk_full"),
            ExitReason::LlmError => Some("model_provider"),
            _ => None,
        }
    }

    /// Ends that are a normal outcome of a run rather than a failure.
    pub fn is_normal(self) -> bool {
        matches!(
            self,
            ExitReason::FinalAnswer
                | ExitReason::MaxSteps
                | ExitReason::MaxTime
                | ExitReason::ActionsExhausted
                | ExitReason::Budget
        )
    }
}

impl std::fmt::Display for ExitReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_reasons_keep_their_run_json_names_both_ways() {
        let all = [
            ExitReason::FinalAnswer,
            ExitReason::MaxSteps,
            ExitReason::MaxTime,
            ExitReason::ActionsExhausted,
            ExitReason::AgentError,
            ExitReason::LlmError,
            ExitReason::ModelError,
            ExitReason::Budget,
            ExitReason::Interrupted,
            ExitReason::HarnessError,
            ExitReason::DiskFull,
        ];
        for r in all {
            let json = serde_json::to_value(r).unwrap();
            assert_eq!(json, serde_json::Value::from(r.as_str()));
            assert_eq!(serde_json::from_value::<ExitReason>(json).unwrap(), r);
        }
        assert_eq!(ExitReason::ModelError.as_str(), "model_error");
        assert_eq!(ExitReason::DiskFull.as_str(), "disk_full");
    }
}
