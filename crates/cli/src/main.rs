//! The `vltava` command: the `dev` server, the cluster processes (`controller`, `broker`,
//! `gateway`, `local-cluster`), topic, group and cluster administration, a console producer and
//! consumer, and perf tests.
//!
//! Exit status: 0 on success (also when stdout is closed early, e.g. `| head`), 1 on any error,
//! including invalid arguments. Errors are one line on stderr: `error: CODE: message`.

mod broker;
mod cli;
mod commands;
mod controller;
mod dev;
mod gateway;
mod local_cluster;
mod output;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use vltava_common::telemetry::{
    LogFormat, TelemetryConfig, init_logging, init_telemetry_with_log_filter, otlp_endpoint_in_env,
};

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version "fail" to stdout with success; usage errors exit with 1.
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // A client command exports traces when OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set (set up
    // inside the runtime, which the exporter needs); it only logs warnings otherwise.
    let client = cli.command.is_client();
    let client_traces = client && otlp_endpoint_in_env();
    if client && !client_traces {
        init_logging(LogFormat::Text, "warn");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let _telemetry = if client_traces {
            match init_telemetry_with_log_filter("vltava-cli", LogFormat::Text, &TelemetryConfig::default(), "warn") {
                Ok(guard) => Some(guard),
                Err(e) => return Err(anyhow::Error::new(e)),
            }
        } else {
            None
        };
        cli::run(cli.command).await
    });
    // A stdin read may still be blocked on a runtime thread (after Ctrl-C): do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", output::format_error(&e));
            ExitCode::FAILURE
        }
    }
}
