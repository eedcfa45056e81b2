//! User-facing output: logging setup, errors, warnings and tables.
//!
//! Results go to stdout; progress, warnings and errors go to stderr, so that
//! `mlab tasks --json | jq` and friends see only data.

use std::fmt::Write as _;

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
        .with_target(false)
        .try_init();
}

/// Prints an error with its chain of causes, one per line.
pub fn error(err: &anyhow::Error) {
    let mut text = format!("error: {err}");
    for cause in err.chain().skip(1) {
        let _ = write!(text, "\n  caused by: {cause}");
    }
    eprintln!("{text}");
}

pub fn warn(msg: impl AsRef<str>) {
    eprintln!("warning: {}", msg.as_ref());
}

pub fn info(msg: impl AsRef<str>) {
    eprintln!("{}", msg.as_ref());
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
}
