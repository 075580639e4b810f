use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::layer::SubscriberExt;

use super::otlp::{self, Endpoint};
use super::*;

/// A `MakeWriter` collecting everything written into a shared buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn log_with(format: LogFormat) -> String {
    let out = Capture::default();
    let subscriber = tracing_subscriber::registry().with(logging::fmt_layer(format, out.clone(), false));
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(topic = "orders", partition = 3, "record stored");
    });
    String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
}

fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |name| map.get(name).cloned()
}

#[test]
fn tracing_json_log_format_writes_one_json_object_per_line() {
    let text = log_with(LogFormat::Json);
    let line = text.lines().next().expect("one line logged");
    let v: serde_json::Value = serde_json::from_str(line).expect("the line is JSON");
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["fields"]["message"], "record stored");
    assert_eq!(v["fields"]["topic"], "orders");
    assert_eq!(v["fields"]["partition"], 3);
    assert!(v["target"].as_str().unwrap().contains("telemetry"));
}

#[test]
fn tracing_text_log_format_is_human_readable() {
    let text = log_with(LogFormat::Text);
    assert!(text.contains("INFO") && text.contains("record stored") && text.contains("topic=\"orders\""), "{text}");
    assert!(serde_json::from_str::<serde_json::Value>(text.lines().next().unwrap()).is_err());
}

#[test]
fn tracing_log_format_parses_from_config() {
    #[derive(serde::Deserialize)]
    struct F {
        log_format: LogFormat,
        telemetry: TelemetryConfig,
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, "log_format = \"json\"\n[telemetry]\notlp_endpoint = \"http://collector:4317\"\n").unwrap();
    let f: F = crate::config::load_with_prefix(Some(&path), "VLTAVA_TELEMETRY_PARSE_TEST").unwrap();
    assert_eq!(f.log_format, LogFormat::Json);
    assert_eq!(f.telemetry.otlp_endpoint.as_deref(), Some("http://collector:4317"));
    assert_eq!(f.telemetry.sample_ratio, 1.0);
    assert_eq!(f.telemetry.trace_filter, "info");
    assert!(f.telemetry.validate().is_ok());
}

#[test]
fn tracing_otel_service_name_overrides_the_process_name() {
    assert_eq!(otlp::service_name("vltava-broker", &env_of(&[])), "vltava-broker");
    let attrs = env_of(&[("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,service.name=from-attrs")]);
    assert_eq!(otlp::service_name("vltava-broker", &attrs), "from-attrs");
    let both = env_of(&[("OTEL_SERVICE_NAME", "orders-broker"), ("OTEL_RESOURCE_ATTRIBUTES", "service.name=x")]);
    assert_eq!(otlp::service_name("vltava-broker", &both), "orders-broker");
    let empty = env_of(&[("OTEL_SERVICE_NAME", " ")]);
    assert_eq!(otlp::service_name("vltava-gateway", &empty), "vltava-gateway");

    let resource = otlp::resource(otlp::service_name("vltava-broker", &both));
    let name = resource.get(&opentelemetry::Key::from_static_str("service.name")).map(|v| v.to_string());
    assert_eq!(name.as_deref(), Some("orders-broker"));
}

#[test]
fn tracing_endpoint_comes_from_config_or_the_standard_variables() {
    let none = TelemetryConfig::default();
    assert_eq!(otlp::endpoint(&none, &env_of(&[])), None);
    let from_env = env_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")]);
    assert_eq!(otlp::endpoint(&none, &from_env), Some(Endpoint::FromEnvironment));
    let traces_env = env_of(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4317")]);
    assert_eq!(otlp::endpoint(&none, &traces_env), Some(Endpoint::FromEnvironment));
    let configured = TelemetryConfig { otlp_endpoint: Some("http://c:4317".into()), ..TelemetryConfig::default() };
    assert_eq!(otlp::endpoint(&configured, &from_env), Some(Endpoint::Configured("http://c:4317")));
    let disabled = env_of(&[("OTEL_SDK_DISABLED", "true")]);
    assert_eq!(otlp::endpoint(&configured, &disabled), None);
    let no_exporter = env_of(&[("OTEL_TRACES_EXPORTER", "none"), ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://x:1")]);
    assert_eq!(otlp::endpoint(&none, &no_exporter), None);
}

#[test]
fn tracing_config_validation_rejects_bad_values() {
    let bad_ratio = TelemetryConfig { sample_ratio: 1.5, ..TelemetryConfig::default() };
    assert!(bad_ratio.validate().is_err());
    let no_scheme = TelemetryConfig { otlp_endpoint: Some("collector:4317".into()), ..TelemetryConfig::default() };
    assert!(no_scheme.validate().unwrap_err().to_string().contains("http://"));
    let empty = TelemetryConfig { otlp_endpoint: Some(String::new()), ..TelemetryConfig::default() };
    assert!(empty.validate().is_ok());
}

#[test]
fn tracing_traceparent_round_trips() {
    let value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let sc = parse_traceparent(value).expect("valid traceparent");
    assert!(sc.is_sampled() && sc.is_remote());
    assert_eq!(format!("{}", sc.trace_id()), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(format_traceparent(&sc), value);
    assert!(parse_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none());
    assert!(parse_traceparent("garbage").is_none());
}

#[test]
fn tracing_no_context_outside_a_trace() {
    assert_eq!(current_traceparent(), None);
    let mut headers = http::HeaderMap::new();
    inject_current_context(&mut headers);
    assert!(headers.is_empty());
}
