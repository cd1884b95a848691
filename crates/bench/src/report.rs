//! Output: print one result as text or as a JSON line, and turn files of
//! JSON lines (one per run, tagged with `broker` and `scenario`) into
//! markdown tables, one row per broker and scenario.

use std::fmt::Write as _;

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

use crate::cli::{ReportArgs, ReportFormat};

/// Print `report` as one JSON line, or `text` for people.
pub fn emit<T: Serialize>(json: bool, report: &T, text: &str) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(report)?);
    } else {
        print!("{text}");
    }
    Ok(())
}

/// `report`: read JSON lines and print tables (or one JSON array).
pub fn run(a: ReportArgs) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for f in &a.files {
        let text = std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: Value =
                serde_json::from_str(line).with_context(|| format!("{}:{}: not JSON", f.display(), n + 1))?;
            rows.push(v);
        }
    }
    match a.format {
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        ReportFormat::Markdown => print!("{}", markdown(&rows)),
    }
    Ok(())
}

fn tag<'a>(v: &'a Value, key: &str) -> &'a str {
    v["tags"][key].as_str().unwrap_or("")
}

fn num(v: &Value, path: &[&str]) -> Option<f64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_f64()
}

/// `value` with `digits` decimals, or "–" when absent.
fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".to_string(), |v| format!("{v:.digits$}"))
}

/// Thousands separators for counts and rates.
fn big(v: Option<f64>) -> String {
    let Some(v) = v else { return "–".into() };
    let s = format!("{:.0}", v.round());
    let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

fn mib(bytes: Option<f64>) -> String {
    fmt(bytes.map(|b| b / 1048576.0), 1)
}

/// Busy cores outside the broker and the generator during the window.
fn other_cores(r: &Value) -> Option<f64> {
    let machine = num(r, &["machine_busy_cores"])?;
    let ours = num(r, &["broker", "cores"]).unwrap_or(0.0) + num(r, &["generator", "cores"]).unwrap_or(0.0);
    Some((machine - ours).max(0.0))
}

/// The three tables: pub/sub, idle connections, TLS handshakes.
pub fn markdown(rows: &[Value]) -> String {
    let mut s = String::new();
    let of = |kind: &'static str| rows.iter().filter(move |r| r["kind"] == kind);
    if of("pubsub").next().is_some() {
        s.push_str("| scenario | broker | sent msg/s | received msg/s | missing | dropped | p50 µs | p99 µs | p99.9 µs | broker CPU s / 1M msgs | broker cores | broker RSS MiB | generator cores | other cores |\n");
        s.push_str(
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        );
        for r in of("pubsub") {
            let missing = num(r, &["missing"]);
            let expected = num(r, &["expected"]);
            let mut missing_txt = match (missing, expected) {
                (Some(l), Some(e)) if e > 0.0 && l > 0.0 => {
                    format!("{} ({:.1} %)", big(Some(l)), l / e * 100.0)
                }
                _ => big(missing),
            };
            if r["drain_cut_short"] == true {
                missing_txt.push_str(" †");
            }
            let errors = r["errors"].as_array().map_or(0, Vec::len);
            let _ = writeln!(
                s,
                "| {} | {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                tag(r, "scenario"),
                tag(r, "broker"),
                if errors > 0 { " ⚠" } else { "" },
                big(num(r, &["sent_per_s"])),
                big(num(r, &["received_per_s"])),
                missing_txt,
                big(num(r, &["dropped"])),
                fmt(num(r, &["latency", "p50_us"]), 0),
                fmt(num(r, &["latency", "p99_us"]), 0),
                fmt(num(r, &["latency", "p999_us"]), 0),
                fmt(num(r, &["broker", "cpu_s_per_million_msgs"]), 2),
                fmt(num(r, &["broker", "cores"]), 2),
                mib(num(r, &["broker", "rss_bytes"])),
                fmt(num(r, &["generator", "cores"]), 2),
                fmt(other_cores(r), 2),
            );
        }
        if of("pubsub").any(|r| r["drain_cut_short"] == true) {
            s.push_str("\n† deliveries were still arriving when the drain period ended: the broker had a backlog.\n");
        }
        s.push('\n');
    }
    if of("connections").next().is_some() {
        s.push_str("| scenario | broker | connected | failed | dropped while idle | RSS before MiB | RSS after MiB | bytes / connection | broker CPU ms / connect | connect p50 ms | connect p99 ms |\n");
        s.push_str("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        for r in of("connections") {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                tag(r, "scenario"),
                tag(r, "broker"),
                big(num(r, &["connected"])),
                big(num(r, &["failed"])),
                big(num(r, &["dropped"])),
                mib(num(r, &["broker_rss_before_bytes"])),
                mib(num(r, &["broker_rss_after_bytes"])),
                big(num(r, &["bytes_per_connection"])),
                fmt(num(r, &["broker_cpu_ms_per_connect"]), 2),
                fmt(num(r, &["connect_latency", "p50_us"]).map(|v| v / 1000.0), 1),
                fmt(num(r, &["connect_latency", "p99_us"]).map(|v| v / 1000.0), 1),
            );
        }
        s.push('\n');
    }
    if of("handshake").next().is_some() {
        s.push_str("| scenario | broker | handshakes | handshakes/s | broker CPU s | broker CPU ms / handshake | broker cores |\n");
        s.push_str("| --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
        for r in of("handshake") {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                tag(r, "scenario"),
                tag(r, "broker"),
                big(num(r, &["handshakes"])),
                fmt(num(r, &["handshakes_per_s"]), 0),
                fmt(num(r, &["broker_cpu_s"]), 2),
                fmt(num(r, &["broker_cpu_ms_per_handshake"]), 3),
                fmt(num(r, &["broker_cores"]), 2),
            );
        }
        s.push('\n');
    }
    let flagged: Vec<&Value> = rows.iter().filter(|r| r["errors"].as_array().is_some_and(|e| !e.is_empty())).collect();
    if !flagged.is_empty() {
        s.push_str("⚠ errors reported:\n\n");
        for r in flagged {
            for e in r["errors"].as_array().into_iter().flatten() {
                let _ = writeln!(s, "- {} / {}: {}", tag(r, "scenario"), tag(r, "broker"), e.as_str().unwrap_or(""));
            }
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(big(Some(1234567.4)), "1,234,567");
        assert_eq!(big(Some(999.0)), "999");
        assert_eq!(big(Some(-1000.0)), "-1,000");
        assert_eq!(big(None), "–");
        assert_eq!(fmt(Some(1.234), 2), "1.23");
        assert_eq!(mib(Some(2.0 * 1048576.0)), "2.0");
    }

    #[test]
    fn tables() {
        let rows: Vec<Value> = [
            r#"{"kind":"pubsub","tags":{"broker":"thingport","scenario":"QoS 0 1→1"},"sent_per_s":1000,"received_per_s":990,"missing":10,"expected":1000,"dropped":0,"latency":{"p50_us":100.0,"p99_us":200.0,"p999_us":null},"broker":{"cpu_s_per_million_msgs":1.5,"cores":0.4,"rss_bytes":10485760},"generator":null,"machine_busy_cores":0.5,"errors":[]}"#,
            r#"{"kind":"handshake","tags":{"broker":"mosquitto","scenario":"TLS"},"handshakes":100,"handshakes_per_s":10,"broker_cpu_s":1,"broker_cpu_ms_per_handshake":10,"broker_cores":0.1,"errors":["boom"]}"#,
        ]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
        let md = markdown(&rows);
        assert!(
            md.contains(
                "| QoS 0 1→1 | thingport | 1,000 | 990 | 10 (1.0 %) | 0 | 100 | 200 | – | 1.50 | 0.40 | 10.0 | – | 0.10 |"
            ),
            "{md}"
        );
        assert!(md.contains("| TLS | mosquitto | 100 | 10 | 1.00 | 10.000 | 0.10 |"), "{md}");
        assert!(md.contains("- TLS / mosquitto: boom"), "{md}");
        assert!(!md.contains("connected"));
    }
}
