//! The log half: a fmt layer (human or JSON) on stderr, filtered by `RUST_LOG`.

use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, fmt};

use super::SPAN_TARGET;

/// Log output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (default).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The fmt layer writing to `writer` in `format`; colours only with `ansi`.
pub(crate) fn fmt_layer<S, W>(format: LogFormat, writer: W, ansi: bool) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = fmt::layer().with_writer(writer).with_target(true).with_ansi(ansi);
    match format {
        LogFormat::Text => layer.boxed(),
        LogFormat::Json => layer.json().boxed(),
    }
}

/// The fmt layer on stderr, in colour when stderr is a terminal (not in log files).
pub(crate) fn stderr_layer<S>(format: LogFormat) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fmt_layer(format, std::io::stderr, std::io::IsTerminal::is_terminal(&std::io::stderr()))
}

/// `RUST_LOG` when set (and valid), else `default_filter`; export-only spans are never logged.
pub(crate) fn log_filter(default_filter: &str) -> EnvFilter {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    match format!("{SPAN_TARGET}=off").parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    }
}

/// Installs a global `tracing` subscriber writing logs only to stderr (client commands, and the
/// `local-cluster` supervisor; servers use [`super::init_telemetry`]).
///
/// The filter comes from `RUST_LOG` when set, else `default_filter` (e.g. `"info"`). Calling it
/// twice is harmless: the second call does nothing.
pub fn init_logging(format: LogFormat, default_filter: &str) {
    let layer = stderr_layer(format).with_filter(log_filter(default_filter));
    let _ = tracing_subscriber::registry().with(layer).try_init();
}
