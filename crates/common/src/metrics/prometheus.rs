//! Renders collected OpenTelemetry metrics in the Prometheus text exposition format 0.0.4.
//!
//! Names follow the OpenTelemetry → Prometheus conventions: characters outside `[a-zA-Z0-9_:]`
//! become `_`, the unit is appended as a word (`s` → `_seconds`, `By` → `_bytes`; annotations
//! such as `{request}` are dropped), monotonic sums are counters ending in `_total`, other sums
//! and gauges are gauges, and explicit-bucket histograms become `_bucket{le=..}` (cumulative),
//! `_sum` and `_count`. Attributes become labels, escaped as the format requires. The resource
//! (service name, SDK) is one `target_info` gauge.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, Metric, MetricData, ResourceMetrics};

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One metric family: its metadata and its sample lines.
struct Family {
    kind: &'static str,
    help: String,
    samples: String,
}

/// Renders every metric of `rm` (families sorted by name, `target_info` first).
pub fn render(rm: &ResourceMetrics) -> String {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    for scope in rm.scope_metrics() {
        for metric in scope.metrics() {
            add_metric(&mut families, metric);
        }
    }
    let mut out = String::with_capacity(4096);
    let resource: Vec<KeyValue> = rm.resource().iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())).collect();
    if !resource.is_empty() {
        out.push_str("# HELP target_info Target metadata\n# TYPE target_info gauge\n");
        let _ = writeln!(out, "target_info{} 1", labels(resource.iter(), None));
    }
    for (name, family) in families {
        if family.samples.is_empty() {
            continue;
        }
        if !family.help.is_empty() {
            let _ = writeln!(out, "# HELP {name} {}", escape_help(&family.help));
        }
        let _ = writeln!(out, "# TYPE {name} {}", family.kind);
        out.push_str(&family.samples);
    }
    out
}

fn add_metric(families: &mut BTreeMap<String, Family>, metric: &Metric) {
    match metric.data() {
        AggregatedMetrics::F64(data) => add_data(families, metric, data),
        AggregatedMetrics::U64(data) => add_data(families, metric, data),
        AggregatedMetrics::I64(data) => add_data(families, metric, data),
    }
}

fn add_data<T: Number>(families: &mut BTreeMap<String, Family>, metric: &Metric, data: &MetricData<T>) {
    let (kind, counter) = match data {
        MetricData::Sum(s) if s.is_monotonic() => ("counter", true),
        MetricData::Sum(_) | MetricData::Gauge(_) => ("gauge", false),
        MetricData::Histogram(_) => ("histogram", false),
        // Exponential histograms have no text-format equivalent; none is created here.
        MetricData::ExponentialHistogram(_) => return,
    };
    let base = metric_name(metric.name(), metric.unit(), counter);
    let family = families.entry(base.clone()).or_insert_with(|| Family {
        kind,
        help: metric.description().to_string(),
        samples: String::new(),
    });
    if family.kind != kind {
        // Two instruments of different kinds map to one name: keep the first, as a scrape with
        // conflicting types would be rejected whole.
        return;
    }
    let out = &mut family.samples;
    match data {
        MetricData::Sum(s) => {
            for p in s.data_points() {
                let _ = writeln!(out, "{base}{} {}", labels(p.attributes(), None), p.value().text());
            }
        }
        MetricData::Gauge(g) => {
            for p in g.data_points() {
                let _ = writeln!(out, "{base}{} {}", labels(p.attributes(), None), p.value().text());
            }
        }
        MetricData::Histogram(h) => {
            for p in h.data_points() {
                let mut cumulative = 0u64;
                for (bound, count) in p.bounds().zip(p.bucket_counts()) {
                    cumulative += count;
                    let le = Some(("le", float_text(bound)));
                    let _ = writeln!(out, "{base}_bucket{} {cumulative}", labels(p.attributes(), le));
                }
                let le = Some(("le", "+Inf".to_string()));
                let _ = writeln!(out, "{base}_bucket{} {}", labels(p.attributes(), le), p.count());
                let plain = labels(p.attributes(), None);
                let _ = writeln!(out, "{base}_sum{plain} {}", p.sum().text());
                let _ = writeln!(out, "{base}_count{plain} {}", p.count());
            }
        }
        MetricData::ExponentialHistogram(_) => {}
    }
}

/// The Prometheus name of an instrument: sanitized, with its unit and, for counters, `_total`.
pub fn metric_name(name: &str, unit: &str, counter: bool) -> String {
    let mut out = sanitize(name, true);
    let unit = unit_word(unit);
    if !unit.is_empty() && !out.ends_with(&format!("_{unit}")) && !out.contains(&format!("_{unit}_")) {
        out.push('_');
        out.push_str(&unit);
    }
    if counter && !out.ends_with("_total") {
        out.push_str("_total");
    }
    out
}

/// The unit as a name suffix: well-known UCUM units spelled out, `{annotations}` and `1` dropped.
fn unit_word(unit: &str) -> String {
    let unit = unit.trim();
    if unit.is_empty() || unit == "1" || unit.starts_with('{') {
        return String::new();
    }
    let word = |u: &str| -> String {
        match u {
            "d" => "days".into(),
            "h" => "hours".into(),
            "min" => "minutes".into(),
            "s" => "seconds".into(),
            "ms" => "milliseconds".into(),
            "us" => "microseconds".into(),
            "ns" => "nanoseconds".into(),
            "By" => "bytes".into(),
            "KiBy" => "kibibytes".into(),
            "MiBy" => "mebibytes".into(),
            "GiBy" => "gibibytes".into(),
            "KBy" => "kilobytes".into(),
            "MBy" => "megabytes".into(),
            "GBy" => "gigabytes".into(),
            "%" => "percent".into(),
            other => sanitize(other, false).trim_matches('_').to_string(),
        }
    };
    match unit.split_once('/') {
        Some((num, per)) => {
            let per = match per {
                "s" => "second".to_string(),
                "m" | "min" => "minute".to_string(),
                "h" => "hour".to_string(),
                other => word(other),
            };
            format!("{}_per_{per}", word(num))
        }
        None => word(unit),
    }
}

/// Replaces characters Prometheus does not allow in names (`:` only in metric names) with `_`,
/// and prefixes `_` to a leading digit.
fn sanitize(name: &str, metric: bool) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    for (i, c) in name.chars().enumerate() {
        if i == 0 && c.is_ascii_digit() {
            out.push('_');
        }
        let ok = c.is_ascii_alphanumeric() || c == '_' || (metric && c == ':');
        out.push(if ok { c } else { '_' });
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// `{k="v",...}` from attributes sorted by name (plus an `extra` label last), or "" when none.
/// Names are sanitized; a name seen twice keeps its first value.
fn labels<'a>(attrs: impl Iterator<Item = &'a KeyValue>, extra: Option<(&str, String)>) -> String {
    let mut pairs: Vec<(String, String)> =
        attrs.map(|kv| (sanitize(kv.key.as_str(), false), kv.value.as_str().into_owned())).collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs.dedup_by(|b, a| a.0 == b.0);
    if let Some((k, _)) = &extra {
        pairs.retain(|(name, _)| name != k);
    }
    pairs.extend(extra.map(|(k, v)| (k.to_string(), v)));
    if pairs.is_empty() {
        return String::new();
    }
    let mut out = String::from("{");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{k}=\"{}\"", escape_label_value(v));
    }
    out.push('}');
    out
}

/// Escapes `\`, `"` and line feeds in a label value.
pub fn escape_label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes `\` and line feeds in a HELP text.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

fn float_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        v.to_string()
    }
}

/// A sample value type.
trait Number: Copy {
    fn text(self) -> String;
}

impl Number for f64 {
    fn text(self) -> String {
        float_text(self)
    }
}

impl Number for u64 {
    fn text(self) -> String {
        self.to_string()
    }
}

impl Number for i64 {
    fn text(self) -> String {
        self.to_string()
    }
}

#[cfg(test)]
#[path = "prometheus_tests.rs"]
mod tests;
