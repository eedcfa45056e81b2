//! User-facing output: logging setup, errors, warnings and tables.
//!
//! Results go to stdout; progress, warnings and errors go to stderr, so that
//! `mlab tasks --json | jq` and friends see only data.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;

/// Sets up `tracing` to stderr; `-v` raises the level, RUST_LOG overrides.
pub fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour_on_stderr())
        .with_target(false)
        .try_init();
}

/// Colour codes only for a person at a terminal: never when stderr is a
/// file or a pipe, and never when NO_COLOR is set to anything non-empty
/// (<https://no-color.org>).
pub fn colour_on_stderr() -> bool {
    colour_allowed(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

fn colour_allowed(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Set once stdout could not be written (its reader went away, or the disk
/// is full); later output is dropped instead of failing again.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);
/// Set when stdout failed for a reason other than a closed pipe.
static STDOUT_FAILED: AtomicBool = AtomicBool::new(false);

/// Writes results to stdout (use the `out!`/`outln!` macros). A reader
/// that stopped reading (`mlab eval | head -2`) is not an error: the rest
/// of the output is dropped quietly and the command finishes its work
/// (files it writes after printing are still written). Any other write
/// error is reported once, and [`stdout_failed`] turns the exit status
/// into a failure.
pub fn write_stdout(args: std::fmt::Arguments) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    let result = out.write_fmt(args).and_then(|_| out.flush());
    if let Err(e) = result {
        STDOUT_GONE.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            STDOUT_FAILED.store(true, Ordering::Relaxed);
            warn(format!("could not write the output: {e}"));
        }
    }
}

/// True when some output could not be written (other than to a closed pipe).
pub fn stdout_failed() -> bool {
    STDOUT_FAILED.load(Ordering::Relaxed)
}

/// `print!` that tolerates a closed stdout (see [`write_stdout`]).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::ui::write_stdout(format_args!($($arg)*))
    };
}

/// `println!` that tolerates a closed stdout (see [`write_stdout`]).
#[macro_export]
macro_rules! outln {
    () => {
        $crate::ui::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::ui::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

// Exported for the front end; reached as `ui::out!` and `ui::outln!`.
pub use crate::{out, outln};

/// Makes a closed stdout end any command quietly, as `cat` or `ls` do when
/// piped into `head`. Results are printed with `out!`/`outln!`, which
/// never fail; this hook catches a plain `println!` that reached a closed
/// pipe (it would otherwise panic and exit 101): the process exits at
/// once with status 0 and no message. Rust ignores SIGPIPE, so writes to a
/// closed pipe return EPIPE; restoring SIGPIPE instead would also kill mlab
/// when a child it writes to (a grader worker, an external agent) exits
/// early, before the run is closed. A `eprintln!` that fails on a closed
/// stderr prints nothing (nobody could read it) and unwinds as before, so
/// `mlab run` still records how it ended.
pub fn exit_quietly_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        let broken = msg.contains(&format!("(os error {})", libc::EPIPE));
        if broken && msg.starts_with("failed printing to stdout") {
            std::process::exit(0);
        }
        if broken && msg.starts_with("failed printing to stderr") {
            return;
        }
        default(info)
    }));
}

/// Prints an error with its chain of causes, one per line.
pub fn error(err: &anyhow::Error) {
    let mut text = format!("error: {err}");
    for cause in err.chain().skip(1) {
        let _ = write!(text, "\n  caused by: {cause}");
    }
    to_stderr(&text);
}

pub fn warn(msg: impl AsRef<str>) {
    to_stderr(&format!("warning: {}", msg.as_ref()));
}

pub fn info(msg: impl AsRef<str>) {
    to_stderr(msg.as_ref());
}

/// One line to stderr. A stderr that cannot be written (its reader went
/// away) must not stop a run before it has closed its records, so the
/// error is ignored: there is nobody left to tell.
fn to_stderr(line: &str) {
    if let Some(sink) = STDERR_SINK
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
    {
        sink(line);
        return;
    }
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// Where [`info`], [`warn`] and [`error`] lines go instead of stderr.
pub type StderrSink = Box<dyn Fn(&str) + Send + Sync>;

static STDERR_SINK: std::sync::Mutex<Option<StderrSink>> = std::sync::Mutex::new(None);

/// Sends the lines of [`info`], [`warn`] and [`error`] to `sink` (None:
/// to stderr again), so that a progress display redrawn in place on the
/// terminal can print them above itself instead of being garbled by them.
/// The sink must not call back into this module.
pub fn set_stderr_sink(sink: Option<StderrSink>) {
    *STDERR_SINK.lock().unwrap_or_else(|p| p.into_inner()) = sink;
}

/// Renders rows as a left-aligned text table with a header line.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                s.push_str(cell);
                s.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_to_the_widest_cell() {
        let t = table(
            &["name", "x"],
            &[
                vec!["a".into(), "1".into()],
                vec!["long".into(), "2".into()],
            ],
        );
        assert_eq!(t, "name  x\na     1\nlong  2\n");
    }

    #[test]
    fn colour_only_at_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(colour_allowed(true, None));
        assert!(colour_allowed(true, Some(OsStr::new(""))));
        assert!(!colour_allowed(true, Some(OsStr::new("1"))));
        assert!(!colour_allowed(false, None));
    }
}
