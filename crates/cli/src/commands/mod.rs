//! The client commands, one per file, and the arguments they share.

pub mod cluster;
pub mod consume;
pub mod group;
pub mod group_describe;
pub mod group_reset;
pub mod partition;
pub mod perf;
pub mod perf_consume;
pub mod perf_groups;
pub mod perf_produce;
pub mod perf_stats;
pub mod perf_transactions;
pub mod produce;
pub mod topic;

use clap::Args;
use vltava_client::{Acks, Compression};

/// Server address used when neither `--server` nor `VLTAVA_SERVER` is given.
pub const DEFAULT_SERVER: &str = "127.0.0.1:7070";

/// The `--server` option every client command takes.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ServerArgs {
    /// Server to connect to, `host:port` (several may be given, comma-separated).
    #[arg(long, value_name = "ADDR", env = "VLTAVA_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,
}

/// Parses `--acks`: `all` (or `-1`), `1` (or `leader`), `0` (or `none`).
pub fn parse_acks(s: &str) -> Result<Acks, String> {
    s.parse::<Acks>().map_err(|_| format!("invalid acks {s:?}: expected all, -1, 1 or 0"))
}

/// Parses `--compression`: `none`, `gzip`, `snappy`, `lz4` or `zstd`.
pub fn parse_compression(s: &str) -> Result<Compression, String> {
    s.parse::<Compression>().map_err(|_| format!("invalid compression {s:?}: expected none, gzip, snappy, lz4 or zstd"))
}

/// The name `--acks` values print as (`all`, `1`, `0`).
pub fn acks_name(acks: Acks) -> &'static str {
    match acks {
        Acks::All => "all",
        Acks::Leader => "1",
        Acks::None => "0",
    }
}

/// Binds a server's listener and announces it on stderr as `vltava ROLE: serving on ADDR (DETAIL)`.
/// Tests and scripts read the bound address (port 0 picks a free one) from that line.
pub async fn bind_and_announce(role: &str, listen: &str, detail: &str) -> anyhow::Result<tokio::net::TcpListener> {
    use anyhow::Context;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!("vltava {role}: serving on {} ({detail})", listener.local_addr()?);
    Ok(listener)
}

/// Binds the Kafka protocol listener of `config` (`kafka_listen`, `None` when `off`) and
/// announces it on stderr as `vltava ROLE: kafka protocol on ADDR (advertised ADDR)`.
pub async fn bind_kafka(
    role: &str,
    config: &vltava_broker::BrokerConfig,
) -> anyhow::Result<Option<vltava_broker::FrontDoor>> {
    use anyhow::Context;
    let listener = vltava_kafka::KafkaListener::bind(config)
        .await
        .with_context(|| format!("cannot listen for Kafka clients on {} (kafka_listen)", config.kafka_listen))?;
    Ok(listener.map(|l| {
        match l.local_addr() {
            Ok(bound) => eprintln!("vltava {role}: kafka protocol on {bound} (advertised {})", l.advertised()),
            Err(_) => eprintln!("vltava {role}: kafka protocol advertised as {}", l.advertised()),
        }
        l.front_door()
    }))
}

/// A future that resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM; pending forever if the
/// handlers cannot be installed.
pub async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    r = tokio::signal::ctrl_c() => if r.is_err() { std::future::pending::<()>().await },
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                if tokio::signal::ctrl_c().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_and_compression_spellings() {
        assert_eq!(parse_acks("all"), Ok(Acks::All));
        assert_eq!(parse_acks("-1"), Ok(Acks::All));
        assert_eq!(parse_acks("1"), Ok(Acks::Leader));
        assert_eq!(parse_acks("0"), Ok(Acks::None));
        assert!(parse_acks("2").unwrap_err().contains("expected all, -1, 1 or 0"));
        assert_eq!(acks_name(Acks::Leader), "1");
        for name in ["none", "gzip", "snappy", "lz4", "zstd"] {
            assert_eq!(parse_compression(name).unwrap().name(), name);
        }
        assert!(parse_compression("brotli").is_err());
    }
}
