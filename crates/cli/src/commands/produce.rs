//! `vltava produce TOPIC`: sends one record per stdin line (Kafka's console producer).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use clap::Args;
use tokio::io::{AsyncBufReadExt, BufReader};
use tracing::Instrument;
use vltava_client::{Acks, ClientError, Compression, Producer, ProducerConfig, ProducerRecord};

use super::{ServerArgs, interrupted, parse_acks, parse_compression};

/// Arguments of `vltava produce`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ProduceArgs {
    /// Topic to send to.
    pub topic: String,
    /// Split each line at the first occurrence of SEP: the text before it is the key, the text
    /// after it the value (a line without SEP has no key).
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// Acknowledgements to wait for: all (-1), 1 (the leader) or 0 (none).
    #[arg(long, value_name = "all|1|0", default_value = "all", value_parser = parse_acks)]
    pub acks: Acks,
    /// `enable.idempotence` (with `--acks all`): a retried batch is never stored twice.
    #[arg(long, value_name = "true|false", default_value_t = true, action = clap::ArgAction::Set)]
    pub enable_idempotence: bool,
    /// Send every record to this partition (default: by key hash, or sticky without a key).
    #[arg(long, value_name = "P")]
    pub partition: Option<i32>,
    /// Compression codec of the record batches.
    #[arg(long, value_name = "none|gzip|snappy|lz4|zstd", default_value = "none", value_parser = parse_compression)]
    pub compression: Compression,
    /// Send in transactions with this `transactional.id`: every record is committed at the end
    /// of input (or every `--transaction-records` records) and aborted if the input is
    /// interrupted or a record fails; read_committed consumers see whole transactions only.
    #[arg(long, value_name = "ID")]
    pub transactional_id: Option<String>,
    /// With `--transactional-id`: commit after this many records (0: one transaction for all).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub transaction_records: u64,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// A line without its line terminator (`\n` or `\r\n`).
pub fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Splits a line into key and value at the first `separator`; without a separator (or when the
/// line does not contain it) the whole line is the value and there is no key.
pub fn split_key<'a>(line: &'a [u8], separator: Option<&[u8]>) -> (Option<&'a [u8]>, &'a [u8]) {
    let Some(sep) = separator.filter(|s| !s.is_empty()) else {
        return (None, line);
    };
    match line.windows(sep.len()).position(|w| w == sep) {
        Some(i) => (Some(&line[..i]), &line[i + sep.len()..]),
        None => (None, line),
    }
}

/// The record for one input line (terminator already stripped).
pub fn record_for_line(topic: &str, line: &[u8], separator: Option<&[u8]>, partition: Option<i32>) -> ProducerRecord {
    let (key, value) = split_key(line, separator);
    let mut record = ProducerRecord::new(topic, Bytes::copy_from_slice(value));
    if let Some(key) = key {
        record = record.key(Bytes::copy_from_slice(key));
    }
    if let Some(p) = partition {
        record = record.partition(p);
    }
    record
}

/// The summary line printed on stderr at the end.
pub fn summary(acknowledged: u64, failed: u64) -> String {
    let noun = if acknowledged == 1 { "record" } else { "records" };
    format!("{acknowledged} {noun} acknowledged, {failed} failed")
}

/// Delivery outcomes, updated from the producer's callbacks.
#[derive(Debug, Default)]
struct Outcomes {
    acknowledged: AtomicU64,
    failed: AtomicU64,
    first_error: std::sync::Mutex<Option<ClientError>>,
}

impl Outcomes {
    fn record(&self, result: Result<(), ClientError>) {
        match result {
            Ok(()) => {
                self.acknowledged.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
                first.get_or_insert(e);
            }
        }
    }
}

/// The span each record is sent in (exported when the CLI exports traces): the record carries
/// its context, so consumers' `process` spans link to it.
fn produce_span(topic: &str) -> tracing::Span {
    tracing::info_span!(
        "produce",
        otel.name = %format_args!("produce {topic}"),
        otel.kind = "producer",
        messaging.system = "vltava",
        messaging.operation.type = "create",
        messaging.destination.name = topic,
    )
}

/// Commits the open transaction when `commit` (aborting it if the commit is refused as
/// abortable), else aborts it.
async fn end_transaction(producer: &Producer, commit: bool) -> anyhow::Result<()> {
    if commit {
        match producer.commit_transaction().await {
            Ok(()) => return Ok(()),
            Err(e @ ClientError::TransactionAbortable(_)) => {
                producer.abort_transaction().await?;
                return Err(anyhow::Error::new(e).context("the transaction was aborted"));
            }
            Err(e) => return Err(e.into()),
        }
    }
    producer.abort_transaction().await?;
    eprintln!("the open transaction was aborted");
    Ok(())
}

/// Runs `vltava produce`.
pub async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let mut config = ProducerConfig::new(args.server.server.clone());
    config.acks = args.acks;
    config.enable_idempotence = args.enable_idempotence;
    config.compression = args.compression;
    config.transactional_id = args.transactional_id.clone();
    let producer = Producer::connect(config).await?;
    let transactional = args.transactional_id.is_some();
    if transactional {
        producer.init_transactions().await?;
        producer.begin_transaction()?;
    }
    let mut in_transaction = 0u64;
    let mut stopped = false;
    let outcomes = Arc::new(Outcomes::default());
    let separator = args.key_separator.as_deref().map(str::as_bytes);

    let mut stdin = BufReader::with_capacity(64 * 1024, tokio::io::stdin());
    let mut line = Vec::with_capacity(1024);
    let mut aborted: Option<anyhow::Error> = None;
    let stop = interrupted();
    tokio::pin!(stop);
    loop {
        line.clear();
        let read = tokio::select! {
            biased;
            () = &mut stop => {
                stopped = true;
                break;
            }
            read = stdin.read_until(b'\n', &mut line) => read,
        };
        match read {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                aborted = Some(anyhow::Error::new(e).context("reading stdin"));
                break;
            }
        }
        let record = record_for_line(&args.topic, strip_line_end(&line), separator, args.partition);
        let o = outcomes.clone();
        let sent = tokio::select! {
            biased;
            () = &mut stop => {
                stopped = true;
                break;
            }
            sent = producer.send_with_callback(record, move |r| o.record(r.map(|_| ()))).instrument(produce_span(&args.topic)) => sent,
        };
        if let Err(e) = sent {
            // The record never reached the producer's buffer.
            let fatal = transactional || !matches!(e, ClientError::RecordTooLarge { .. });
            outcomes.record(Err(e.clone()));
            if fatal {
                aborted = Some(e.into());
                break;
            }
        }
        in_transaction += 1;
        if transactional && args.transaction_records > 0 && in_transaction >= args.transaction_records {
            if let Err(e) = producer.commit_transaction().await {
                aborted = Some(e.into());
                break;
            }
            in_transaction = 0;
            producer.begin_transaction()?;
        }
    }
    if transactional {
        end_transaction(&producer, aborted.is_none() && !stopped).await?;
    }
    producer.flush().await?;
    producer.close().await;

    let acknowledged = outcomes.acknowledged.load(Ordering::Relaxed);
    let failed = outcomes.failed.load(Ordering::Relaxed);
    eprintln!("{}", summary(acknowledged, failed));
    if let Some(e) = aborted {
        return Err(e);
    }
    let first = outcomes.first_error.lock().unwrap_or_else(|p| p.into_inner()).take();
    match first {
        Some(e) => Err(e.into()),
        None if failed > 0 => anyhow::bail!("{failed} records failed"),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_the_text_before_the_first_separator() {
        let sep = Some(b":".as_slice());
        assert_eq!(split_key(b"k:v", sep), (Some(b"k".as_slice()), b"v".as_slice()));
        assert_eq!(split_key(b"k:v:w", sep), (Some(b"k".as_slice()), b"v:w".as_slice()));
        assert_eq!(split_key(b":v", sep), (Some(b"".as_slice()), b"v".as_slice()));
        assert_eq!(split_key(b"k:", sep), (Some(b"k".as_slice()), b"".as_slice()));
        assert_eq!(split_key(b"no separator", sep), (None, b"no separator".as_slice()));
        assert_eq!(split_key(b"k:v", None), (None, b"k:v".as_slice()));
        assert_eq!(split_key(b"k:v", Some(b"")), (None, b"k:v".as_slice()));
    }

    #[test]
    fn multi_byte_separators_split_at_the_first_match() {
        let sep = Some("::".as_bytes());
        assert_eq!(split_key(b"a::b::c", sep), (Some(b"a".as_slice()), b"b::c".as_slice()));
        assert_eq!(split_key(b"a:b", sep), (None, b"a:b".as_slice()));
        let tab = Some(b"\t".as_slice());
        assert_eq!(split_key(b"user-1\t{\"x\":1}", tab), (Some(b"user-1".as_slice()), b"{\"x\":1}".as_slice()));
    }

    #[test]
    fn line_terminators_are_stripped() {
        assert_eq!(strip_line_end(b"abc\n"), b"abc");
        assert_eq!(strip_line_end(b"abc\r\n"), b"abc");
        assert_eq!(strip_line_end(b"abc"), b"abc");
        assert_eq!(strip_line_end(b"\n"), b"");
    }

    #[test]
    fn records_carry_key_value_and_partition() {
        let r = record_for_line("t", b"k=v", Some(b"="), Some(2));
        assert_eq!(r.topic, "t");
        assert_eq!(r.key.as_deref(), Some(b"k".as_slice()));
        assert_eq!(r.value.as_deref(), Some(b"v".as_slice()));
        assert_eq!(r.partition, Some(2));
        let r = record_for_line("t", b"plain", Some(b"="), None);
        assert_eq!(r.key, None);
        assert_eq!(r.partition, None);
        assert_eq!(summary(100, 0), "100 records acknowledged, 0 failed");
        assert_eq!(summary(1, 2), "1 record acknowledged, 2 failed");
    }

    #[test]
    fn outcomes_keep_the_first_error() {
        let o = Outcomes::default();
        o.record(Ok(()));
        o.record(Err(ClientError::Closed));
        o.record(Err(ClientError::Config("later".into())));
        assert_eq!(o.acknowledged.load(Ordering::Relaxed), 1);
        assert_eq!(o.failed.load(Ordering::Relaxed), 2);
        assert_eq!(o.first_error.lock().unwrap().as_ref(), Some(&ClientError::Closed));
    }
}
