//! The README's Kafka client snippets (between the `kafka-snippets` markers) run as written
//! against a real `vltava dev`, with its Kafka address in place of 127.0.0.1:9092: the kcat
//! lines with bash, the Python ones with the test venv (confluent-kafka, kafka-python).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use vltava_client::{Admin, NewTopic};
use vltava_testkit::{ServerProcess, run_bounded};

fn vltava() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vltava"))
}

/// The fenced blocks (language, code) between the README's kafka-snippets markers.
fn snippets() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme.find("<!-- kafka-snippets:begin").expect("README has the Kafka snippets");
    let end = readme[start..].find("<!-- kafka-snippets:end -->").unwrap() + start;
    let mut out = Vec::new();
    let mut lines = readme[start..end].lines();
    while let Some(line) = lines.next() {
        if let Some(lang) = line.strip_prefix("```").filter(|l| !l.is_empty()) {
            let code: Vec<&str> = lines.by_ref().take_while(|l| !l.starts_with("```")).collect();
            out.push((lang.to_string(), code.join("\n") + "\n"));
        }
    }
    out
}

/// Runs `program` with `code` as its script; returns stdout, failing the test on an error or
/// after 120 s.
fn run(program: &std::path::Path, flag: &str, code: &str) -> String {
    let out = run_bounded(Command::new(program).args([flag, code]), b"", Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}:\n{code}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the snippet failed:\n{code}\n{stderr}");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_kafka_client_snippets_run_as_written() {
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_dev_with_env(
        &vltava(),
        data.path(),
        &[
            ("VLTAVA_BROKER__GROUPS__INITIAL_REBALANCE_DELAY", "100ms"),
            ("VLTAVA_BROKER__GROUPS__MIN_SESSION_TIMEOUT", "1s"),
        ],
    )
    .unwrap();
    let kafka = server.kafka().unwrap();
    // The quick start created `orders` before these lines.
    Admin::connect(&server.server()).await.unwrap().create_topic(NewTopic::new("orders", 3)).await.unwrap();
    let venv = std::env::var("VLTAVA_KAFKA_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/vltava-kafka-venv"));
    let python = venv.join("bin/python");
    let blocks = snippets();
    assert_eq!(blocks.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>(), ["sh", "python", "python"]);
    let mut outputs = Vec::new();
    for (lang, code) in &blocks {
        let code = format!("set -euo pipefail\n{}", code.replace("127.0.0.1:9092", &kafka));
        let out = match lang.as_str() {
            "sh" => run(std::path::Path::new("bash"), "-c", &code),
            _ => run(&python, "-c", code.trim_start_matches("set -euo pipefail\n")),
        };
        outputs.push(out);
    }
    assert!(outputs[0].contains("alice order 1 source=kcat"), "{}", outputs[0]);
    assert!(outputs[0].contains("bob order 2"), "{}", outputs[0]);
    assert!(outputs[1].contains("b'order"), "{}", outputs[1]);
    assert_eq!(outputs[2].trim(), "b'10 EUR'");
}
