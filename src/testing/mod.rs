//! Test support that tests and benchmarks reach through the library: a mock
//! model provider over HTTP ([`mock_server`]), the toy task ([`toy`]) and
//! scripted-model files ([`scripted`]), and headless Chromium for the
//! report's browser checks ([`browser`]). Compiled only for unit tests and
//! with the `testing` feature, which the package's own dev-dependency on
//! itself turns on for `tests/` and `benches/`; `cargo build` and `cargo
//! install` leave it out, so the binary never carries it.
//!
//! It lives here rather than in `tests/` because the LLM layer's unit tests
//! (`src/llm/tests.rs`, white-box: they build private backends) need it as
//! much as the integration tests and `benches/llm_overhead.rs`, and a file
//! under `tests/` is reachable from neither without `#[path]`. The toy task
//! and scripted replies are here for the same reason: the benchmarks build
//! them too. Running `mlab` and reading what a run leaves behind is the
//! integration tests' own business (`tests/common/`).

pub mod browser;
pub mod mock_server;
pub mod scripted;
pub mod toy;
