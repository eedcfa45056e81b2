//! The messages of the external-agent protocol, defined once: one JSON
//! object per line, `type` naming the kind. docs/agent-protocol.md
//! describes them for agent authors; `external` speaks them.
//!
//! mlab sends `start`, `observation`, `llm_result`, `llm_error` and `end`;
//! the agent sends `action`, `llm`, `final` and `log`. Unknown fields are
//! ignored in both directions, so either side may add fields later.

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::env::catalog::ActionInfo;
use crate::llm::{Message, Usage};

/// Bumped when a message changes incompatibly.
pub const PROTOCOL_VERSION: u32 = 1;

/// mlab to the agent.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToAgent {
    /// First message: the task and the rules.
    Start {
        protocol: u32,
        task: String,
        research_problem: String,
        actions: Vec<ActionSpec>,
        limits: Limits,
        /// The model `llm` requests go to; null when the run has none.
        llm: Option<String>,
        /// Steps already taken (non-zero when the run was resumed).
        steps_taken: usize,
    },
    /// The result of an `action` (or `final`).
    Observation {
        text: String,
        /// Index of the environment step this was.
        step: usize,
        /// True when the run is over (Final Answer, or a limit reached).
        done: bool,
    },
    /// The answer to an `llm` request.
    LlmResult {
        text: String,
        usage: Usage,
        cost_usd: f64,
    },
    /// An `llm` request failed; the run goes on.
    LlmError { kind: String, message: String },
    /// Last message: the run is over; the agent should exit.
    End { reason: String },
}

/// The run's limits, as the agent should plan with them.
#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    pub max_steps: u64,
    /// Seconds.
    pub max_time: f64,
    /// Seconds mlab waits for each message of the agent.
    pub agent_timeout: f64,
}

/// An action as offered to the agent: the table's fields (name,
/// description, usage with the exact keys, return_value) plus a JSON schema
/// of its input.
#[derive(Debug)]
pub struct ActionSpec(pub &'static ActionInfo);

impl Serialize for ActionSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Usage(&'static ActionInfo);
        impl Serialize for Usage {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(Some(self.0.usage.len()))?;
                for a in self.0.usage {
                    m.serialize_entry(a.key, a.description)?;
                }
                m.end()
            }
        }
        let mut st = s.serialize_struct("ActionSpec", 5)?;
        st.serialize_field("name", self.0.name)?;
        st.serialize_field("description", self.0.description)?;
        st.serialize_field("usage", &Usage(self.0))?;
        st.serialize_field("return_value", self.0.return_value)?;
        st.serialize_field("parameters", &self.0.json_schema())?;
        st.end()
    }
}

/// The agent to mlab.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromAgent {
    /// Take one action. `args` is normally an object with the action's keys.
    Action {
        name: String,
        #[serde(default)]
        args: Value,
    },
    /// Ask the run's main model.
    Llm {
        messages: Vec<Message>,
        #[serde(default)]
        max_tokens: Option<u32>,
        #[serde(default)]
        stop: Vec<String>,
        #[serde(default)]
        temperature: Option<f32>,
    },
    /// Submit: the same as a Final Answer action.
    Final {
        #[serde(default)]
        answer: Option<String>,
    },
    /// A note for agent_log/main_log.
    Log { text: String },
}

impl ToAgent {
    /// The message as one line (no newline inside; JSON escapes them).
    #[expect(
        clippy::expect_used,
        reason = "the messages hold only strings, numbers and JSON values, which always serialise"
    )]
    pub fn line(&self) -> String {
        let mut s = serde_json::to_string(self).expect("protocol messages always serialise");
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::catalog::lookup;

    #[test]
    fn messages_have_their_documented_shape() {
        let start = ToAgent::Start {
            protocol: PROTOCOL_VERSION,
            task: "t".into(),
            research_problem: "p".into(),
            actions: vec![ActionSpec(lookup("Copy File").unwrap())],
            limits: Limits {
                max_steps: 5,
                max_time: 60.0,
                agent_timeout: 10.0,
            },
            llm: None,
            steps_taken: 0,
        };
        let line = start.line();
        assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["type"], "start");
        assert_eq!(v["actions"][0]["name"], "Copy File");
        // Usage keys keep the table's order on the wire.
        assert!(line.find("\"source\":").unwrap() < line.find("\"destination\":").unwrap());
        assert_eq!(v["actions"][0]["parameters"]["required"][1], "destination");
        assert_eq!(v["limits"]["max_steps"], 5);
        let obs: Value = serde_json::from_str(
            &ToAgent::Observation {
                text: "x".into(),
                step: 2,
                done: true,
            }
            .line(),
        )
        .unwrap();
        assert_eq!(
            obs,
            serde_json::json!({"type": "observation", "text": "x", "step": 2, "done": true})
        );
    }

    #[test]
    fn agent_messages_parse_with_defaults() {
        let a: FromAgent = serde_json::from_str(
            r#"{"type":"action","name":"List Files","args":{"dir_path":"."},"id":7}"#,
        )
        .unwrap();
        assert_eq!(
            a,
            FromAgent::Action {
                name: "List Files".into(),
                args: serde_json::json!({"dir_path": "."})
            }
        );
        let l: FromAgent =
            serde_json::from_str(r#"{"type":"llm","messages":[{"role":"user","content":"hi"}]}"#)
                .unwrap();
        assert!(matches!(
            l,
            FromAgent::Llm {
                max_tokens: None,
                ..
            }
        ));
        assert_eq!(
            serde_json::from_str::<FromAgent>(r#"{"type":"final"}"#).unwrap(),
            FromAgent::Final { answer: None }
        );
        assert!(serde_json::from_str::<FromAgent>(r#"{"type":"dance"}"#).is_err());
    }
}
