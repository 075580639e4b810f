//! `vltava consume TOPIC`: prints records to stdout (Kafka's console consumer).
//!
//! Where it starts: `--partition P --offset O` reads that partition from O; otherwise, with
//! `--group` it resumes from the group's committed offsets; partitions without one (and every
//! partition without `--group`) start at the log start with `--from-beginning`, else at the end
//! (only records produced after start-up are printed). Positions are resolved before the first
//! record is awaited, so "the end" means the end at start-up.
//!
//! With `--group` the offsets after the printed (and flushed) records are committed every 5 s
//! and on exit (end of `--max-messages`, `--timeout-ms`, Ctrl-C, or a closed stdout).

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, BufWriter, Write};
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use vltava_client::{ClientError, Consumer, ConsumerConfig, ConsumerRecord, ErrorCode, OffsetReset, TopicPartition};

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
    /// Consumer group: resume from its committed offsets and commit what is printed.
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
    config.group_id = args.group.clone();
    // An explicit --offset outside the log is an error (OFFSET_OUT_OF_RANGE with the valid range),
    // not a silent jump to the end.
    config.auto_offset_reset = if args.offset.is_some() {
        OffsetReset::None
    } else if args.from_beginning {
        OffsetReset::Earliest
    } else {
        OffsetReset::Latest
    };
    // Offsets are committed here, after the records are printed, never ahead of them.
    config.enable_auto_commit = false;
    let mut consumer = Consumer::connect(config).await?;
    let committed = start(&mut consumer, &args).await?;
    let format = RecordFormat { print_key: args.print_key, print_offset: args.print_offset, json: args.json };

    let mut state = Loop { consumer, group: args.group.is_some(), committed, printed: 0 };
    let result = state.consume(&args, format).await;
    let commit = state.commit().await;
    eprintln!("Processed a total of {} messages", state.printed);
    result?;
    commit
}

/// Assigns partitions and positions them; returns the start positions (what a group commit
/// would store if nothing gets printed).
async fn start(consumer: &mut Consumer, args: &ConsumeArgs) -> anyhow::Result<HashMap<TopicPartition, i64>> {
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
    let mut positions = HashMap::new();
    for tp in assignment {
        match consumer.position(&tp).await {
            Ok(p) => {
                positions.insert(tp, p);
            }
            // Left for `poll` to resolve (e.g. a leader moving right now).
            Err(e) if e.is_retriable() => tracing::debug!(error = %e, %tp, "position not resolved yet"),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(positions)
}

/// The consume loop's state.
struct Loop {
    consumer: Consumer,
    group: bool,
    /// Next offset per partition, after the records printed and flushed so far.
    committed: HashMap<TopicPartition, i64>,
    printed: u64,
}

impl Loop {
    async fn consume(&mut self, args: &ConsumeArgs, format: RecordFormat) -> anyhow::Result<End> {
        let mut out = BufWriter::with_capacity(64 * 1024, io::stdout());
        // Next offset per partition of the records written since the last flush.
        let mut pending: HashMap<i32, i64> = HashMap::new();
        let idle_limit = args.timeout_ms.map(Duration::from_millis);
        let mut last_record = Instant::now();
        let mut last_commit = Instant::now();
        let mut dirty = false;
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
            let mut result = Ok(());
            for record in &records {
                if args.max_messages.is_some_and(|max| self.printed >= max) {
                    break;
                }
                result = write_record(&mut out, record, format);
                if result.is_err() {
                    break;
                }
                self.printed += 1;
                pending.insert(record.partition, record.offset + 1);
            }
            if result.is_ok() {
                result = out.flush();
            }
            match result {
                Ok(()) => {
                    dirty |= !pending.is_empty();
                    let topic = &args.topic;
                    self.committed.extend(pending.drain().map(|(p, o)| (TopicPartition::new(topic.clone(), p), o)));
                }
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(End::BrokenPipe),
                Err(e) => return Err(anyhow::Error::new(e).context("writing to stdout")),
            }
            if self.group && dirty && last_commit.elapsed() >= COMMIT_INTERVAL {
                self.commit().await?;
                dirty = false;
                last_commit = Instant::now();
            }
        }
    }

    /// Commits the offsets after what was printed (only with `--group`).
    async fn commit(&mut self) -> anyhow::Result<()> {
        if !self.group || self.committed.is_empty() {
            return Ok(());
        }
        self.consumer.commit_offsets(self.committed.clone()).await?;
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
