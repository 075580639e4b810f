//! The `vltava` command's contract, run as a user would: a real `vltava dev` process and the CLI
//! binary, stdin in and stdout/stderr/exit status out.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use vltava_testkit::ServerProcess;

fn vltava() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vltava"))
}

/// Runs `vltava ARGS` against `server`, feeding `stdin`.
fn run(server: &ServerProcess, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(vltava())
        .args(args)
        .env("VLTAVA_SERVER", server.server())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn ok(server: &ServerProcess, args: &[&str], stdin: &str) -> String {
    let out = run(server, args, stdin);
    assert!(out.status.success(), "vltava {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Fails with exit status != 0 and one readable error line naming `code`.
fn fails_with(server: &ServerProcess, args: &[&str], code: &str) {
    let out = run(server, args, "one record\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "vltava {args:?} should fail");
    assert!(stderr.contains(code), "vltava {args:?}: expected {code} in {stderr:?}");
}

#[test]
fn given_a_dev_server_the_cli_creates_describes_produces_consumes_and_reports_errors() {
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_dev(&vltava(), data.path(), &[]).unwrap();

    ok(&server, &["topic", "create", "events", "--partitions", "3", "--config", "retention.ms=3600000"], "");
    let list: serde_json::Value = serde_json::from_str(&ok(&server, &["topic", "list", "--json"], "")).unwrap();
    assert!(list.to_string().contains("\"events\""), "{list}");

    // Keyed lines: the text before the first ':' is the key; a line without ':' has no key.
    let produced =
        run(&server, &["produce", "events", "--key-separator", ":", "--acks", "all"], "a:1\nb:2\na:3:x\nnokey\n");
    assert!(produced.status.success(), "{}", String::from_utf8_lossy(&produced.stderr));
    assert!(String::from_utf8_lossy(&produced.stderr).contains("4"), "reports the acknowledged count");

    let describe: serde_json::Value =
        serde_json::from_str(&ok(&server, &["topic", "describe", "events", "--json"], "")).unwrap();
    let partitions = describe["partitions"].as_array().expect("partitions array");
    assert_eq!(partitions.len(), 3);
    let total: i64 = partitions.iter().map(|p| p["log_end_offset"].as_i64().unwrap()).sum();
    assert_eq!(total, 4);
    for p in partitions {
        assert_eq!(p["leader"], 1);
        assert_eq!(p["leader_epoch"], 0);
        assert!(p["replicas"].is_array() && p["isr"].is_array());
        assert_eq!(p["log_start_offset"], 0);
    }
    assert_eq!(describe["configs"]["retention.ms"], "3600000");

    // Per-key order and keys survive; --print-key puts `key<TAB>` in front.
    let out = ok(&server, &["consume", "events", "--from-beginning", "--max-messages", "4", "--print-key"], "");
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    let a_lines: Vec<&str> = out.lines().filter(|l| l.starts_with("a\t")).collect();
    assert_eq!(a_lines, vec!["a\t1", "a\t3:x"], "records of one key keep their order");
    assert!(lines.contains(&"b\t2"));
    assert_eq!(lines.len(), 4);

    // --json: one object per record.
    let out = ok(&server, &["consume", "events", "--from-beginning", "--max-messages", "4", "--json"], "");
    let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    for field in ["topic", "partition", "offset", "timestamp", "key", "value", "headers"] {
        assert!(first.get(field).is_some(), "missing {field} in {first}");
    }

    // An explicit partition and offset; --print-offset puts `partition<TAB>offset<TAB>` in front.
    ok(&server, &["produce", "events", "--partition", "2"], "p2-a\np2-b\n");
    let out = ok(
        &server,
        &["consume", "events", "--partition", "2", "--offset", "0", "--print-offset", "--timeout-ms", "1500"],
        "",
    );
    assert!(out.lines().any(|l| l.starts_with("2\t") && l.ends_with("\tp2-b")), "{out}");

    // A group resumes where it committed.
    let first = ok(&server, &["consume", "events", "--group", "g", "--from-beginning", "--max-messages", "3"], "");
    assert_eq!(first.lines().count(), 3);
    let rest = ok(&server, &["consume", "events", "--group", "g", "--timeout-ms", "1500"], "");
    assert_eq!(rest.lines().count(), 3, "the group reads the other 3 of 6 records: {rest}");
    let groups = ok(&server, &["group", "list", "--json"], "");
    assert!(groups.contains("\"g\""), "{groups}");
    let described: serde_json::Value =
        serde_json::from_str(&ok(&server, &["group", "describe", "g", "--json"], "")).unwrap();
    assert_eq!(described["state"], "Empty", "the members left: {described}");
    assert_eq!(described["total_lag"], 0, "it committed everything it read: {described}");
    let committed = |server: &ServerProcess| -> i64 {
        let d: serde_json::Value =
            serde_json::from_str(&ok(server, &["group", "describe", "g", "--json"], "")).unwrap();
        d["partitions"].as_array().unwrap().iter().map(|p| p["committed_offset"].as_i64().unwrap_or(0)).sum()
    };
    assert_eq!(committed(&server), 6);

    // Reset: a dry run by default, stored with --execute; targets outside the log are clamped.
    let plan = ok(&server, &["group", "reset-offsets", "g", "--topic", "events", "--to-earliest"], "");
    assert!(plan.starts_with("GROUP") && plan.contains("NEW-OFFSET"), "{plan}");
    assert_eq!(committed(&server), 6, "a dry run changes nothing");
    ok(&server, &["group", "reset-offsets", "g", "--topic", "events", "--to-earliest", "--execute"], "");
    assert_eq!(committed(&server), 0);
    let shifted: serde_json::Value = serde_json::from_str(&ok(
        &server,
        &["group", "reset-offsets", "g", "--topic", "events:2", "--shift-by", "-1", "--execute", "--json"],
        "",
    ))
    .unwrap();
    assert_eq!(shifted, serde_json::json!([{"topic": "events", "partition": 2, "offset": 0}]), "clamped at the start");
    ok(&server, &["group", "reset-offsets", "g", "--topic", "events", "--to-latest", "--execute"], "");
    assert_eq!(committed(&server), 6);
    fails_with(&server, &["group", "reset-offsets", "g", "--topic", "events:9", "--to-latest"], "no partition 9");
    fails_with(&server, &["group", "reset-offsets", "g", "--topic", "events"], "--to-earliest");
    // Deleting the group forgets its offsets: it reads from the beginning again.
    assert_eq!(ok(&server, &["group", "delete", "g"], ""), "deleted group g\n");
    assert!(!ok(&server, &["group", "list", "--json"], "").contains("\"g\""));
    fails_with(&server, &["group", "delete", "g"], "GROUP_ID_NOT_FOUND");
    let again = ok(&server, &["consume", "events", "--group", "g", "--from-beginning", "--max-messages", "6"], "");
    assert_eq!(again.lines().count(), 6, "a deleted group starts over: {again}");

    // Bad input: one readable line, non-zero exit, nothing stored changes.
    fails_with(&server, &["topic", "create", "events", "--partitions", "1"], "TOPIC_ALREADY_EXISTS");
    fails_with(&server, &["topic", "create", "bad/name", "--partitions", "1"], "INVALID_TOPIC");
    fails_with(&server, &["topic", "create", "zero", "--partitions", "0"], "INVALID_PARTITIONS");
    fails_with(
        &server,
        &["topic", "create", "cfg", "--partitions", "1", "--config", "retention.ms=soon"],
        "INVALID_CONFIG",
    );
    fails_with(&server, &["topic", "describe", "missing"], "UNKNOWN_TOPIC_OR_PARTITION");
    fails_with(&server, &["produce", "missing"], "UNKNOWN_TOPIC_OR_PARTITION");
    fails_with(
        &server,
        &["consume", "events", "--partition", "0", "--offset", "999", "--max-messages", "1"],
        "OFFSET_OUT_OF_RANGE",
    );
    let after: serde_json::Value =
        serde_json::from_str(&ok(&server, &["topic", "describe", "events", "--json"], "")).unwrap();
    let total: i64 =
        after["partitions"].as_array().unwrap().iter().map(|p| p["log_end_offset"].as_i64().unwrap()).sum();
    assert_eq!(total, 6);

    ok(&server, &["topic", "delete", "events"], "");
    fails_with(&server, &["topic", "describe", "events"], "UNKNOWN_TOPIC_OR_PARTITION");
}

#[test]
fn given_no_server_the_cli_says_it_cannot_connect() {
    let out = Command::new(vltava()).args(["topic", "list", "--server", "127.0.0.1:1"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("127.0.0.1:1"), "names the address: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}

#[test]
fn given_a_gateway_in_front_of_the_server_the_cli_works_through_it() {
    let data = tempfile::tempdir().unwrap();
    let broker = ServerProcess::start_dev(&vltava(), data.path(), &[]).unwrap();
    let gateway = ServerProcess::start_gateway(&vltava(), &broker.server()).unwrap();
    ok(&gateway, &["topic", "create", "via-gw", "--partitions", "2"], "");
    let produced = run(&gateway, &["produce", "via-gw", "--key-separator", "="], "k=v1\nk=v2\n");
    assert!(produced.status.success(), "{}", String::from_utf8_lossy(&produced.stderr));
    let out = ok(&gateway, &["consume", "via-gw", "--from-beginning", "--max-messages", "2", "--print-key"], "");
    assert_eq!(out.lines().collect::<Vec<_>>(), vec!["k\tv1", "k\tv2"]);
    fails_with(&gateway, &["produce", "nowhere"], "UNKNOWN_TOPIC_OR_PARTITION");
}

#[test]
fn given_vltava_env_overrides_dev_should_auto_create_topics_with_the_configured_partitions() {
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_dev_with_env(
        &vltava(),
        data.path(),
        &[("VLTAVA_BROKER__AUTO_CREATE_TOPICS_ENABLE", "true"), ("VLTAVA_BROKER__NUM_PARTITIONS", "4")],
    )
    .unwrap();
    ok(&server, &["produce", "created-on-use"], "hello\n");
    let describe: serde_json::Value =
        serde_json::from_str(&ok(&server, &["topic", "describe", "created-on-use", "--json"], "")).unwrap();
    assert_eq!(describe["partitions"].as_array().unwrap().len(), 4);
}

#[test]
fn given_defaults_dev_should_refuse_unknown_topics() {
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_dev(&vltava(), data.path(), &[]).unwrap();
    fails_with(&server, &["produce", "never-created"], "UNKNOWN_TOPIC_OR_PARTITION");
    fails_with(&server, &["topic", "describe", "never-created"], "UNKNOWN_TOPIC_OR_PARTITION");
}

#[test]
fn given_a_transactional_id_produce_commits_and_read_committed_consumers_see_whole_transactions() {
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_dev(&vltava(), data.path(), &[]).unwrap();
    ok(&server, &["topic", "create", "ledger", "--partitions", "2"], "");

    let produced = run(&server, &["produce", "ledger", "--transactional-id", "cli-ledger"], "a\nb\nc\n");
    assert!(produced.status.success(), "{}", String::from_utf8_lossy(&produced.stderr));
    // One transaction every 2 records: 5 lines make 3 transactions, all committed.
    ok(
        &server,
        &["produce", "ledger", "--transactional-id", "cli-ledger", "--transaction-records", "2"],
        "1\n2\n3\n4\n5\n",
    );
    let read = |isolation: &str| {
        let args = ["consume", "ledger", "--from-beginning", "--isolation-level", isolation, "--timeout-ms", "1500"];
        let mut lines: Vec<String> = ok(&server, &args, "").lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    assert_eq!(read("read_committed"), ["1", "2", "3", "4", "5", "a", "b", "c"]);
    assert_eq!(read("read_uncommitted"), ["1", "2", "3", "4", "5", "a", "b", "c"], "markers are never printed");
    fails_with(&server, &["consume", "ledger", "--isolation-level", "serializable"], "isolation");
}
