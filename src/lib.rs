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
//! What stays process-wide (everything else belongs to one call): the
//! Ctrl-C handling that a front end installs once ([`run::signals`]), the
//! caches of facts about the machine (whether bubblewrap works, the system
//! folders it binds, cgroup support), the HTTP client and async runtime the
//! model calls share, the registry of API keys kept out of logs, and the
//! environment variables read where noted (`MLAB_BENCHMARKS`, `MLAB_PYTHON`,
//! `MLAB_HOME`, API keys, `NO_COLOR`).

pub mod agent;
pub mod doctor;
pub mod env;
pub mod eval;
pub mod llm;
pub mod paths;
pub mod python;
pub mod run;
pub mod sandbox;
pub mod task;
pub mod ui;
