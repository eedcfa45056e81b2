//! mlab's engine: tasks, the research environment, agents, models, the
//! sandbox, runs and their scoring, as a library.
//!
//! The `mlab` binary (`src/main.rs` and `src/cli/`) is a thin front end over
//! it and the only code that knows the command line: it turns its flags into
//! each module's own configuration ([`llm::Config`], [`sandbox::Kind`],
//! [`task::Locations`], [`agent::AgentConfig`], [`run::RunConfig`], ...) and
//! prints what comes back. Tests, benchmarks and other programs call the same
//! entry points in-process, e.g. [`run::run`].
//!
//! What stays process-wide (everything else belongs to one call):
//! - Ctrl-C handling, which a front end installs once
//!   ([`run::signals::install`]): its one flag and its kill of every child
//!   process group stop every run of the process, and its watchdog closes
//!   each run still registered and ends the process;
//! - caches of facts about the machine, keyed by what they describe
//!   (whether bubblewrap works, the system folders it binds, what a Python
//!   interpreter reports, cgroup support) and the thread that spawns
//!   sandboxed children;
//! - the HTTP client and async runtime the model calls share, and the
//!   registry of API keys kept out of logs;
//! - what is read from the process's surroundings where noted: environment
//!   variables (`MLAB_BENCHMARKS`, `MLAB_PYTHON`, `MLAB_HOME`, API keys and
//!   base URLs, `NO_COLOR`) and the current directory (`./benchmarks`, the
//!   original's key files);
//! - `ui`'s record that stdout was closed, and logging set up by the front
//!   end.

pub mod agent;
pub mod doctor;
pub mod env;
pub mod eval;
pub mod gateway;
pub mod llm;
pub mod paths;
pub mod prompts;
pub mod python;
pub mod report;
pub mod run;
pub mod sandbox;
pub mod study;
pub mod task;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod ui;
