//! The picture of a run (SVG): acknowledged and consumed records per second, the fault windows as
//! shaded bands, one lane per partition leader and coordinator showing which broker held it over
//! time, and the anomalies as red marks, so that a person sees at a glance what happened.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::checker::{Verdict, kind_name};
use crate::history::Event;

const WIDTH: f64 = 1200.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 20.0;
const CHART_TOP: f64 = 50.0;
const CHART_HEIGHT: f64 = 200.0;
const LANE_HEIGHT: f64 = 18.0;
/// Colours of brokers 1, 2, 3... (and grey for "none").
const PALETTE: [&str; 8] = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f"];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn colour(broker: i32) -> &'static str {
    if broker <= 0 { "#cccccc" } else { PALETTE[(broker as usize - 1) % PALETTE.len()] }
}

/// Renders the run. `title` heads the picture (seed, duration, result).
pub fn render(title: &str, events: &[Event], verdict: &Verdict) -> String {
    let end_ms = events.iter().map(Event::t).max().unwrap_or(1).max(1) as f64;
    let x = |t: u64| LEFT + (t as f64 / end_ms) * (WIDTH - LEFT - RIGHT);
    // Per-second rates.
    let seconds = (end_ms / 1000.0).ceil() as usize + 1;
    let mut acks = vec![0u32; seconds];
    let mut reads = vec![0u32; seconds];
    for e in events {
        match e {
            Event::Ack { t, .. } => acks[(*t / 1000) as usize] += 1,
            Event::Read { t, group: true, .. } => reads[(*t / 1000) as usize] += 1,
            _ => {}
        }
    }
    let peak = acks.iter().chain(&reads).copied().max().unwrap_or(1).max(1) as f64;
    let y = |v: u32| CHART_TOP + CHART_HEIGHT - (f64::from(v) / peak) * CHART_HEIGHT;
    // Leadership lanes: name -> [(t, broker)].
    let mut lanes: BTreeMap<String, Vec<(u64, i32)>> = BTreeMap::new();
    for e in events {
        if let Event::Leader { t, of, broker } = e {
            lanes.entry(of.clone()).or_default().push((*t, *broker));
        }
    }
    let lanes_top = CHART_TOP + CHART_HEIGHT + 40.0;
    let anomalies_top = lanes_top + lanes.len() as f64 * (LANE_HEIGHT + 4.0) + 30.0;
    let listed = verdict.anomalies.len().min(20);
    let height = anomalies_top + 20.0 + listed as f64 * 16.0 + 30.0;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(s, r#"<text x="{LEFT}" y="20" font-size="15" font-weight="bold">{}</text>"#, escape(title));
    // Fault windows across the chart and the lanes.
    let mut open: BTreeMap<String, u64> = BTreeMap::new();
    let mut bands = Vec::new();
    for e in events {
        if let Event::Fault { t, description, kind, start } = e {
            if *start {
                open.insert(description.clone(), *t);
            } else if let Some(from) = open.remove(description) {
                bands.push((from, *t, kind.clone(), description.clone()));
            }
        }
    }
    for (i, (from, to, kind, description)) in bands.iter().enumerate() {
        let colour = if kind == "crash" { "#e15759" } else { "#999999" };
        let (x0, x1) = (x(*from), x(*to).max(x(*from) + 1.0));
        let _ = writeln!(
            s,
            r#"<rect x="{x0:.1}" y="{CHART_TOP}" width="{:.1}" height="{:.1}" fill="{colour}" fill-opacity="0.18"><title>{}</title></rect>"#,
            x1 - x0,
            anomalies_top - CHART_TOP - 20.0,
            escape(description)
        );
        let label_y = CHART_TOP - 4.0 - (i % 2) as f64 * 12.0;
        let _ = writeln!(s, r##"<text x="{x0:.1}" y="{label_y}" fill="#555">{}</text>"##, escape(kind));
    }
    // Axes and rates.
    let _ = writeln!(
        s,
        r##"<line x1="{LEFT}" y1="{0}" x2="{1}" y2="{0}" stroke="#333"/><line x1="{LEFT}" y1="{CHART_TOP}" x2="{LEFT}" y2="{0}" stroke="#333"/>"##,
        CHART_TOP + CHART_HEIGHT,
        WIDTH - RIGHT
    );
    let _ = writeln!(s, r#"<text x="4" y="{}">{peak} rec/s</text>"#, CHART_TOP + 10.0);
    let _ = writeln!(s, r#"<text x="4" y="{}">0</text>"#, CHART_TOP + CHART_HEIGHT);
    for tick in (0..seconds).step_by(10) {
        let tx = x(tick as u64 * 1000);
        let _ = writeln!(
            s,
            r#"<text x="{tx:.1}" y="{}" text-anchor="middle">{tick}s</text>"#,
            CHART_TOP + CHART_HEIGHT + 14.0
        );
    }
    for (series, colour, label) in [(&acks, "#4e79a7", "acknowledged"), (&reads, "#59a14f", "consumed (group)")] {
        let points: Vec<String> = series
            .iter()
            .enumerate()
            .map(|(sec, v)| format!("{:.1},{:.1}", x(sec as u64 * 1000 + 500), y(*v)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"#,
            points.join(" ")
        );
        let ly = if label == "acknowledged" { CHART_TOP + 12.0 } else { CHART_TOP + 26.0 };
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{ly}" fill="{colour}" text-anchor="end">{label}</text>"#,
            WIDTH - RIGHT - 4.0
        );
    }
    // Lanes.
    let _ = writeln!(s, r#"<text x="4" y="{}" font-weight="bold">leaders</text>"#, lanes_top - 8.0);
    for (i, (name, changes)) in lanes.iter().enumerate() {
        let ly = lanes_top + i as f64 * (LANE_HEIGHT + 4.0);
        let _ = writeln!(s, r#"<text x="4" y="{:.1}">{}</text>"#, ly + 13.0, escape(name));
        for (j, (t, broker)) in changes.iter().enumerate() {
            let until = changes.get(j + 1).map_or(end_ms as u64, |(next, _)| *next);
            let (x0, x1) = (x(*t), x(until));
            let _ = writeln!(
                s,
                r#"<rect x="{x0:.1}" y="{ly:.1}" width="{:.1}" height="{LANE_HEIGHT}" fill="{}"><title>{name}: broker {broker} from {t} ms</title></rect>"#,
                (x1 - x0).max(0.5),
                colour(*broker)
            );
            if x1 - x0 > 14.0 {
                let _ = writeln!(s, r#"<text x="{:.1}" y="{:.1}" fill="white">{broker}</text>"#, x0 + 3.0, ly + 13.0);
            }
        }
    }
    // Anomalies: marks on the chart and a list.
    for a in &verdict.anomalies {
        if let Some(t) = a.t {
            let ax = x(t);
            let _ = writeln!(
                s,
                r##"<line x1="{ax:.1}" y1="{CHART_TOP}" x2="{ax:.1}" y2="{}" stroke="#d62728" stroke-width="1"><title>{}</title></line>"##,
                CHART_TOP + CHART_HEIGHT,
                escape(&a.detail)
            );
        }
    }
    let summary = if verdict.ok() {
        format!("no anomaly in {} acknowledged and {} stored records", verdict.acknowledged, verdict.stored)
    } else {
        let counts: Vec<String> =
            verdict.counts.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k}: {n}")).collect();
        format!("ANOMALIES: {}", counts.join(", "))
    };
    let fill = if verdict.ok() { "#2ca02c" } else { "#d62728" };
    let _ =
        writeln!(s, r#"<text x="4" y="{anomalies_top}" font-weight="bold" fill="{fill}">{}</text>"#, escape(&summary));
    for (i, a) in verdict.anomalies.iter().take(listed).enumerate() {
        let _ = writeln!(
            s,
            r##"<text x="14" y="{:.1}" fill="#d62728">{} p{}: {}</text>"##,
            anomalies_top + 18.0 + i as f64 * 16.0,
            kind_name(a.kind),
            a.partition,
            escape(&a.detail)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::{Anomaly, AnomalyKind};

    #[test]
    fn the_picture_shows_rates_faults_leaders_and_anomalies() {
        let events = vec![
            Event::Leader { t: 0, of: "p0".into(), broker: 1 },
            Event::Ack { t: 500, client: "p1".into(), value: "p1:0".into(), partition: 0, offset: 0 },
            Event::Fault { t: 1_000, description: "kill -9 broker-1".into(), kind: "kill".into(), start: true },
            Event::Leader { t: 1_500, of: "p0".into(), broker: 2 },
            Event::Fault { t: 3_000, description: "kill -9 broker-1".into(), kind: "kill".into(), start: false },
            Event::Ack { t: 3_500, client: "p1".into(), value: "p1:1".into(), partition: 0, offset: 1 },
        ];
        let mut verdict = Verdict::default();
        verdict.anomalies.push(Anomaly {
            kind: AnomalyKind::Lost,
            partition: 0,
            offset: Some(1),
            value: Some("p1:1".into()),
            t: Some(3_500),
            detail: "acknowledged <here> & gone".into(),
        });
        verdict.counts.insert("lost".into(), 1);
        let svg = render("seed 7", &events, &verdict);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("<title>kill -9 broker-1</title>"), "the fault window");
        assert!(svg.contains("p0: broker 1 from 0 ms") && svg.contains("p0: broker 2 from 1500 ms"), "the lane");
        assert!(svg.contains("ANOMALIES: lost: 1"));
        assert!(svg.contains("acknowledged &lt;here&gt; &amp; gone"), "text is escaped");
        assert!(svg.contains("<polyline"), "the rates");
    }
}
