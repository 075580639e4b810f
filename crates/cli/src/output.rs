//! Shared output helpers: JSON documents, aligned tables and one-line error messages.
//!
//! Conventions every client command follows:
//! - results go to stdout, diagnostics (progress, summaries, errors) to stderr;
//! - `--json` prints exactly one compact JSON document on one line;
//! - an error is one line, `error: CODE: message`, and the exit code is 1;
//! - a closed stdout pipe (`vltava ... | head`) ends the command quietly with exit code 0.

use std::io::{self, Write};

use serde::Serialize;

/// Prints `value` as one compact JSON document on one line of stdout.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Prints `text` to stdout as is (it should end with a newline) and flushes.
pub fn print_text(text: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// A table with a header row whose columns are left-aligned and separated by two spaces.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub fn new<I, S>(header: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Table { header: header.into_iter().map(Into::into).collect(), rows: Vec::new() }
    }

    /// Appends a row (missing cells are blank, extra cells are kept).
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// The table as text, one line per row (header first), each ending with a newline and
    /// without trailing spaces.
    pub fn render(&self) -> String {
        let columns = std::iter::once(&self.header).chain(&self.rows).map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0usize; columns];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                let pad = widths[i] - cell.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// The one-line message printed for a failed command: `error: ` and [`error_message`].
pub fn format_error(error: &anyhow::Error) -> String {
    format!("error: {}", error_message(error))
}

/// An error and its causes joined by `: ` on one line, leaving out causes already contained in
/// the text before them (the client's errors wrap a server error whose text they repeat).
pub fn error_message(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        let text = text.trim();
        if text.is_empty() || message.contains(text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(text);
    }
    let flat: Vec<&str> = message.split_whitespace().collect();
    flat.join(" ")
}

/// Whether `error` (or one of its causes) is a write to a closed pipe.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            || cause.downcast_ref::<serde_json::Error>().and_then(serde_json::Error::io_error_kind)
                == Some(io::ErrorKind::BrokenPipe)
    })
}

/// Megabytes (MiB, as Kafka's perf tools count them) per second.
pub fn mb_per_sec(bytes: u64, seconds: f64) -> f64 {
    if seconds > 0.0 { bytes as f64 / (1024.0 * 1024.0) / seconds } else { 0.0 }
}

/// Events per second.
pub fn per_sec(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 { count as f64 / seconds } else { 0.0 }
}

/// Rounds to `digits` decimals (keeps JSON output short).
pub fn round(value: f64, digits: i32) -> f64 {
    let factor = 10f64.powi(digits);
    (value * factor).round() / factor
}

#[cfg(test)]
mod tests {
    use super::*;
    use vltava_client::{ClientError, ErrorCode, WireError};

    #[test]
    fn table_aligns_columns_without_trailing_spaces() {
        let mut t = Table::new(["NAME", "PARTITIONS"]);
        t.row(["orders", "3"]);
        t.row(["a-much-longer-name", "12"]);
        assert_eq!(t.render(), "NAME                PARTITIONS\norders              3\na-much-longer-name  12\n");
        let empty = Table::new(["A", "B"]);
        assert_eq!(empty.render(), "A  B\n");
    }

    #[test]
    fn server_errors_print_once_as_code_and_message() {
        let e = ClientError::Server(WireError::new(ErrorCode::UnknownTopicOrPartition, "topic \"x\" does not exist"));
        let e = anyhow::Error::new(e);
        assert_eq!(format_error(&e), "error: UNKNOWN_TOPIC_OR_PARTITION: topic \"x\" does not exist");
    }

    #[test]
    fn context_and_causes_are_joined_on_one_line() {
        let io = io::Error::other("disk\nfull");
        let e = anyhow::Error::new(io).context("writing output");
        assert_eq!(format_error(&e), "error: writing output: disk full");
    }

    #[test]
    fn broken_pipe_is_recognised_through_context() {
        let e = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe)).context("printing");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
        let json = serde_json::Error::io(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(is_broken_pipe(&anyhow::Error::new(json)));
    }

    #[test]
    fn rates_and_rounding() {
        assert_eq!(mb_per_sec(2 * 1024 * 1024, 2.0), 1.0);
        assert_eq!(mb_per_sec(5, 0.0), 0.0);
        assert_eq!(per_sec(10, 4.0), 2.5);
        assert_eq!(round(1.23456, 2), 1.23);
    }
}
