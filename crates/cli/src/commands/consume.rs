//! `vltava consume TOPIC`: prints records to stdout (Kafka's console consumer).
//!
//! With `--group G` (and no `--partition`) it joins consumer group G and reads the partitions
//! the group's coordinator assigns it: several `vltava consume --group G` share the topic's
//! partitions, and partitions move between them as they come and go. Each partition resumes
//! from the group's committed offset.
//!
//! Where it starts otherwise: `--partition P --offset O` reads that partition from O;
//! partitions without a committed offset (and every partition without `--group`) start at the
//! log start with `--from-beginning`, else at the end (only records produced after start-up
//! are printed). Without a group, positions are resolved before the first record is awaited,
//! so "the end" means the end at start-up.
//!
//! With `--group` the offsets after the printed (and flushed) records are committed every 5 s,
//! before a partition moves to another member, and on exit (end of `--max-messages`,
//! `--timeout-ms`, Ctrl-C, or a closed stdout). Records fetched but not printed are never
//! committed: the consumer is rewound to the first of them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, BufWriter, Write};
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use vltava_client::{
    ClientError, Consumer, ConsumerConfig, ConsumerRecord, ErrorCode, IsolationLevel, OffsetReset, TopicPartition,
};

use super::{ServerArgs, interrupted};

/// How often offsets are committed with `--group`.
const COMMIT_INTERVAL: Duration = Duration::from_secs(5);
/// Longest single `poll`, so that timeouts and commits are checked regularly.
const MAX_POLL: Duration = Duration::from_millis(500);

/// Arguments of `vltava consume`.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct ConsumeArgs {
    /// Topic to read.
    pub topic: String,
    /// Consumer group: join it (share the topic's partitions with its other members), resume
    /// from its committed offsets and commit what is printed.
    #[arg(long, value_name = "G")]
    pub group: Option<String>,
    /// Start at the log start (when no committed offset applies) instead of the end.
    #[arg(long)]
    pub from_beginning: bool,
    /// Read only this partition.
    #[arg(long, value_name = "P")]
    pub partition: Option<i32>,
    /// Start offset in `--partition`: a number, `earliest` or `latest`.
    #[arg(long, value_name = "O", requires = "partition", conflicts_with = "from_beginning", value_parser = parse_start_offset)]
    pub offset: Option<StartOffset>,
    /// Exit after printing N records.
    #[arg(long, value_name = "N")]
    pub max_messages: Option<u64>,
    /// Exit after T milliseconds without a record (default: run until Ctrl-C).
    #[arg(long, value_name = "T")]
    pub timeout_ms: Option<u64>,
    /// Print `key<TAB>` before each value (`null` for no key).
    #[arg(long)]
    pub print_key: bool,
    /// Print `partition<TAB>offset<TAB>` before each record.
    #[arg(long)]
    pub print_offset: bool,
    /// Print one JSON object per record: {topic, partition, offset, timestamp, key, value, headers}.
    #[arg(long)]
    pub json: bool,
    /// `isolation.level`: `read_committed` prints only records of committed transactions (and
    /// every non-transactional one); `read_uncommitted` prints everything.
    #[arg(long, value_name = "read_uncommitted|read_committed", default_value = "read_uncommitted", value_parser = parse_isolation)]
    pub isolation_level: IsolationLevel,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Where `--offset` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOffset {
    /// An absolute offset.
    At(i64),
    /// The log start.
    Earliest,
    /// The end of the log.
    Latest,
}

/// Parses `--isolation-level`.
pub fn parse_isolation(s: &str) -> Result<IsolationLevel, String> {
    s.parse::<IsolationLevel>().map_err(|e| e.to_string())
}

/// Parses `--offset`: a non-negative number, `earliest` or `latest`.
pub fn parse_start_offset(s: &str) -> Result<StartOffset, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "earliest" => Ok(StartOffset::Earliest),
        "latest" => Ok(StartOffset::Latest),
        n => match n.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(StartOffset::At(n)),
            _ => Err(format!("invalid offset {s:?}: expected a non-negative number, earliest or latest")),
        },
    }
}

/// How each record is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordFormat {
    /// `key<TAB>` before the value.
    pub print_key: bool,
    /// `partition<TAB>offset<TAB>` first.
    pub print_offset: bool,
    /// One JSON object per line instead (the other flags are ignored).
    pub json: bool,
}

/// A record as `--json` prints it.
#[derive(Debug, Serialize)]
struct JsonRecord<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    key: Option<Cow<'a, str>>,
    value: Option<Cow<'a, str>>,
    headers: Vec<JsonHeader<'a>>,
}

/// A header as `--json` prints it (an array keeps order and repeated keys).
#[derive(Debug, Serialize)]
struct JsonHeader<'a> {
    key: &'a str,
    value: Option<Cow<'a, str>>,
}

/// Writes one record, followed by a newline, in `format`.
///
/// Text mode writes key and value bytes as they are (`null` when absent); JSON mode decodes
/// them as UTF-8, replacing invalid sequences.
pub fn write_record<W: Write>(out: &mut W, record: &ConsumerRecord, format: RecordFormat) -> io::Result<()> {
    if format.json {
        let json = JsonRecord {
            topic: &record.topic,
            partition: record.partition,
            offset: record.offset,
            timestamp: record.timestamp,
            key: record.key.as_deref().map(String::from_utf8_lossy),
            value: record.value.as_deref().map(String::from_utf8_lossy),
            headers: record
                .headers
                .iter()
                .map(|h| JsonHeader { key: &h.key, value: h.value.as_deref().map(String::from_utf8_lossy) })
                .collect(),
        };
        serde_json::to_writer(&mut *out, &json).map_err(io::Error::from)?;
        return out.write_all(b"\n");
    }
    if format.print_offset {
        write!(out, "{}\t{}\t", record.partition, record.offset)?;
    }
    if format.print_key {
        out.write_all(record.key.as_deref().unwrap_or(b"null"))?;
        out.write_all(b"\t")?;
    }
    out.write_all(record.value.as_deref().unwrap_or(b"null"))?;
    out.write_all(b"\n")
}

/// Why the consume loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// `--max-messages` reached, `--timeout-ms` elapsed, or Ctrl-C.
    Done,
    /// stdout was closed.
    BrokenPipe,
}

/// Runs `vltava consume`.
pub async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let mut config = ConsumerConfig::new(args.server.server.clone());
    config.isolation_level = args.isolation_level;
    config.group_id = args.group.clone();
    config.client_id = "vltava-cli".to_string();
    // An explicit --offset outside the log is an error (OFFSET_OUT_OF_RANGE with the valid range),
    // not a silent jump to the end.
    config.auto_offset_reset = if args.offset.is_some() {
        OffsetReset::None
    } else if args.from_beginning {
        OffsetReset::Earliest
    } else {
        OffsetReset::Latest
    };
    // Positions only ever cover printed and flushed records (unprinted ones are rewound), so
    // the consumer's own commits (every interval, before a revocation, on close) commit exactly
    // what was printed.
    config.enable_auto_commit = args.group.is_some();
    config.auto_commit_interval = COMMIT_INTERVAL;
    let mut consumer = Consumer::connect(config).await?;
    if args.group.is_some() && args.partition.is_none() {
        // A group member waits for its topic (as Kafka's console consumer does), but says so.
        let admin = vltava_client::Admin::connect(&args.server.server).await?;
        if let Err(e) = admin.describe_topic(&args.topic).await
            && e.code() == Some(ErrorCode::UnknownTopicOrPartition)
        {
            eprintln!("warning: topic {:?} does not exist (yet): waiting for it to be created", args.topic);
        }
        consumer.subscribe([args.topic.clone()])?;
    } else {
        start(&mut consumer, &args).await?;
    }
    let format = RecordFormat { print_key: args.print_key, print_offset: args.print_offset, json: args.json };

    let mut state = Loop { consumer, printed: 0 };
    let result = state.consume(&args, format).await;
    let printed = state.printed;
    let close = state.consumer.close().await;
    eprintln!("Processed a total of {printed} messages");
    result?;
    Ok(close?)
}

/// Assigns partitions by hand and positions them.
async fn start(consumer: &mut Consumer, args: &ConsumeArgs) -> anyhow::Result<()> {
    consumer.assign_topic(&args.topic).await?;
    if let Some(p) = args.partition {
        let tp = TopicPartition::new(args.topic.clone(), p);
        let count = consumer.assignment().len();
        if !consumer.assignment().contains(&tp) {
            return Err(ClientError::Server(vltava_client::WireError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("partition {p} of topic {:?} does not exist ({count} partitions)", args.topic),
            ))
            .into());
        }
        consumer.assign(vec![tp.clone()]);
        match args.offset {
            Some(StartOffset::At(o)) => consumer.seek(&tp, o)?,
            Some(StartOffset::Earliest) => consumer.seek_to_beginning(std::slice::from_ref(&tp))?,
            Some(StartOffset::Latest) => consumer.seek_to_end(std::slice::from_ref(&tp))?,
            None => {}
        }
    }
    let assignment = consumer.assignment();
    if args.group.is_none() && args.offset.is_none() {
        if args.from_beginning {
            consumer.seek_to_beginning(&assignment)?;
        } else {
            consumer.seek_to_end(&assignment)?;
        }
    }
    for tp in assignment {
        match consumer.position(&tp).await {
            Ok(_) => {}
            // Left for `poll` to resolve (e.g. a leader moving right now).
            Err(e) if e.is_retriable() => tracing::debug!(error = %e, %tp, "position not resolved yet"),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The consume loop's state.
struct Loop {
    consumer: Consumer,
    printed: u64,
}

impl Loop {
    async fn consume(&mut self, args: &ConsumeArgs, format: RecordFormat) -> anyhow::Result<End> {
        let mut out = BufWriter::with_capacity(64 * 1024, io::stdout());
        let idle_limit = args.timeout_ms.map(Duration::from_millis);
        let mut last_record = Instant::now();
        let exporting = vltava_common::telemetry::exporting();
        let stop = interrupted();
        tokio::pin!(stop);
        loop {
            if args.max_messages.is_some_and(|max| self.printed >= max) {
                return Ok(End::Done);
            }
            let mut wait = MAX_POLL;
            if let Some(limit) = idle_limit {
                let left = limit.saturating_sub(last_record.elapsed());
                if left.is_zero() {
                    return Ok(End::Done);
                }
                wait = wait.min(left);
            }
            let records = tokio::select! {
                biased;
                () = &mut stop => return Ok(End::Done),
                records = self.consumer.poll(wait) => records?,
            };
            if !records.is_empty() {
                last_record = Instant::now();
            }
            let mut written = 0;
            let mut result = Ok(());
            for record in &records {
                if args.max_messages.is_some_and(|max| self.printed >= max) {
                    break;
                }
                // Printing is the processing: while traces are exported, its span links to the
                // record's producer (no per-record span work otherwise).
                result = if exporting {
                    record.process_span().in_scope(|| write_record(&mut out, record, format))
                } else {
                    write_record(&mut out, record, format)
                };
                if result.is_err() {
                    break;
                }
                written += 1;
                self.printed += 1;
            }
            if result.is_ok() {
                result = out.flush();
            }
            if result.is_err() {
                // What was buffered may not have reached stdout: count none of it as printed.
                written = 0;
            }
            self.rewind(&records[written..])?;
            match result {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(End::BrokenPipe),
                Err(e) => return Err(anyhow::Error::new(e).context("writing to stdout")),
            }
        }
    }

    /// Moves the consumer back to the first of `unprinted` in each of their partitions, so that
    /// commits cover only what was printed.
    fn rewind(&mut self, unprinted: &[ConsumerRecord]) -> anyhow::Result<()> {
        let mut first: HashMap<TopicPartition, i64> = HashMap::new();
        for r in unprinted {
            let offset = first.entry(TopicPartition::new(r.topic.to_string(), r.partition)).or_insert(r.offset);
            *offset = (*offset).min(r.offset);
        }
        for (tp, offset) in first {
            self.consumer.seek(&tp, offset)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use vltava_client::Header;

    use super::*;

    fn record(key: Option<&str>, value: Option<&[u8]>) -> ConsumerRecord {
        ConsumerRecord {
            topic: Arc::from("events"),
            partition: 2,
            offset: 41,
            timestamp: 1_700_000_000_000,
            key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
            value: value.map(Bytes::copy_from_slice),
            headers: Vec::new(),
        }
    }

    fn text(r: &ConsumerRecord, print_key: bool, print_offset: bool) -> String {
        let mut out = Vec::new();
        write_record(&mut out, r, RecordFormat { print_key, print_offset, json: false }).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_lines_with_key_and_offset_prefixes() {
        let r = record(Some("k"), Some(b"v"));
        assert_eq!(text(&r, false, false), "v\n");
        assert_eq!(text(&r, true, false), "k\tv\n");
        assert_eq!(text(&r, false, true), "2\t41\tv\n");
        assert_eq!(text(&r, true, true), "2\t41\tk\tv\n");
        let r = record(None, None);
        assert_eq!(text(&r, true, false), "null\tnull\n");
    }

    #[test]
    fn text_mode_writes_raw_bytes() {
        let r = record(None, Some(b"\xff\x00"));
        let mut out = Vec::new();
        write_record(&mut out, &r, RecordFormat::default()).unwrap();
        assert_eq!(out, b"\xff\x00\n");
    }

    #[test]
    fn json_lines_have_every_field() {
        let mut r = record(Some("k"), Some(b"v\xff"));
        r.headers = vec![
            Header { key: "h".into(), value: Some(Bytes::from_static(b"1")) },
            Header { key: "h".into(), value: None },
        ];
        let mut out = Vec::new();
        let format = RecordFormat { json: true, print_key: true, print_offset: true };
        write_record(&mut out, &r, format).unwrap();
        let line = String::from_utf8(out).unwrap();
        assert!(line.ends_with('\n') && line.lines().count() == 1);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "topic": "events", "partition": 2, "offset": 41, "timestamp": 1_700_000_000_000i64,
                "key": "k", "value": "v\u{fffd}",
                "headers": [{"key": "h", "value": "1"}, {"key": "h", "value": null}]
            })
        );
        let mut out = Vec::new();
        write_record(&mut out, &record(None, None), format).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["key"], serde_json::Value::Null);
        assert_eq!(v["value"], serde_json::Value::Null);
        assert_eq!(v["headers"], serde_json::json!([]));
    }

    #[test]
    fn start_offsets_parse() {
        assert_eq!(parse_start_offset("17"), Ok(StartOffset::At(17)));
        assert_eq!(parse_start_offset("earliest"), Ok(StartOffset::Earliest));
        assert_eq!(parse_start_offset("LATEST"), Ok(StartOffset::Latest));
        assert!(parse_start_offset("-3").is_err());
        assert!(parse_start_offset("x").is_err());
    }
}
