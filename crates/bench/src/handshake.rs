//! The `handshake` scenario: broker CPU per full mutual-TLS handshake.
//!
//! `openssl s_time -new` opens connection after connection, each a full
//! handshake (no resumption) presenting the client certificate, and closes
//! it without speaking MQTT. We read the broker's CPU time from /proc before
//! and after and divide by the number of connections s_time reports. The
//! broker sees a TLS session end without a CONNECT, which costs it nothing
//! beyond the handshake and the accept.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Serialize;

use crate::cli::HandshakeArgs;
use crate::procfs::{self, Proc};

/// The JSON result of one `handshake` run.
#[derive(Debug, Serialize)]
pub struct HandshakeReport {
    /// Always "handshake".
    pub kind: &'static str,
    /// `--tag` labels.
    pub tags: BTreeMap<String, String>,
    /// host:port.
    pub target: String,
    /// Seconds s_time ran.
    pub time_s: u32,
    /// Connections s_time completed.
    pub handshakes: u64,
    /// Wall-clock seconds s_time reported.
    pub real_s: Option<f64>,
    /// handshakes / real_s.
    pub handshakes_per_s: Option<f64>,
    /// Broker CPU seconds from just before s_time to shortly after it ended.
    pub broker_cpu_s: Option<f64>,
    /// broker_cpu_s / handshakes, in milliseconds.
    pub broker_cpu_ms_per_handshake: Option<f64>,
    /// broker_cpu_s / real_s.
    pub broker_cores: Option<f64>,
    /// Problems (s_time exit status, unparsable output).
    pub errors: Vec<String>,
    /// Clock ticks per second used to convert /proc CPU times.
    pub clk_tck: u64,
}

/// What `s_time` printed that we need.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct STimeResult {
    /// Connections completed.
    pub connections: u64,
    /// Elapsed wall-clock seconds.
    pub real_seconds: f64,
}

/// Parse the `N connections in T real seconds` line of `openssl s_time`.
pub fn parse_s_time(output: &str) -> Option<STimeResult> {
    output.lines().find_map(|line| {
        let (n, rest) = line.trim().split_once(" connections in ")?;
        let t = rest.strip_suffix("real seconds").or_else(|| rest.split_once(" real seconds").map(|(t, _)| t))?;
        Some(STimeResult { connections: n.trim().parse().ok()?, real_seconds: t.trim().parse().ok()? })
    })
}

/// Run `openssl s_time` against the broker and print the report.
pub async fn run(a: HandshakeArgs) -> anyhow::Result<()> {
    if a.time == 0 {
        bail!("--time must be positive");
    }
    let broker = a.output.broker_pid.map(Proc::new);
    let target = format!("{}:{}", a.host, a.port);
    let before = broker.and_then(|b| b.cpu_seconds().ok());
    let mut cmd = std::process::Command::new(&a.openssl);
    cmd.arg("s_time")
        .args(["-connect", &target, "-new", "-time", &a.time.to_string()])
        .arg("-cert")
        .arg(&a.cert)
        .arg("-key")
        .arg(&a.key)
        .arg("-CAfile")
        .arg(&a.ca)
        .stdin(std::process::Stdio::null());
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .context("s_time runner panicked")?
        .with_context(|| format!("cannot run {}", a.openssl))?;
    // The broker may still be finishing the last handshakes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = broker.and_then(|b| b.cpu_seconds().ok());

    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut errors = Vec::new();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        errors.push(format!("openssl s_time exited with {}: {}", out.status, tail.join(" | ")));
    }
    let parsed = parse_s_time(&stdout);
    if parsed.is_none() {
        errors.push("could not find 'N connections in T real seconds' in the s_time output".into());
    }
    let handshakes = parsed.map_or(0, |p| p.connections);
    let real_s = parsed.map(|p| p.real_seconds).filter(|&t| t > 0.0);
    let broker_cpu_s = before.zip(after).map(|(b, a)| (a - b).max(0.0));
    let report = HandshakeReport {
        kind: "handshake",
        tags: a.output.tags.iter().cloned().collect(),
        target,
        time_s: a.time,
        handshakes,
        real_s,
        handshakes_per_s: real_s.map(|t| handshakes as f64 / t),
        broker_cpu_s,
        broker_cpu_ms_per_handshake: broker_cpu_s.filter(|_| handshakes > 0).map(|c| c * 1000.0 / handshakes as f64),
        broker_cores: broker_cpu_s.zip(real_s).map(|(c, t)| c / t),
        errors,
        clk_tck: procfs::clock_ticks_per_sec(),
    };
    let text = format!(
        "handshake {}: {} full TLS handshakes in {} s ({} /s); broker CPU {} s = {} ms per handshake\n{}",
        report.target,
        report.handshakes,
        report.real_s.map_or("-".into(), |v| format!("{v:.0}")),
        report.handshakes_per_s.map_or("-".into(), |v| format!("{v:.0}")),
        report.broker_cpu_s.map_or("-".into(), |v| format!("{v:.2}")),
        report.broker_cpu_ms_per_handshake.map_or("-".into(), |v| format!("{v:.3}")),
        report.errors.iter().map(|e| format!("  error: {e}\n")).collect::<String>(),
    );
    crate::report::emit(a.output.json, &report, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s_time_output() {
        let out = "Collecting connection statistics for 10 seconds\n\
                   tttttttttttttttttttt\n\n\
                   2113 connections in 4.63s; 456.37 connections/user sec, bytes read 0\n\
                   2113 connections in 11 real seconds, 0 bytes read per connection\n";
        assert_eq!(parse_s_time(out), Some(STimeResult { connections: 2113, real_seconds: 11.0 }));
        assert_eq!(parse_s_time("ERROR\nconnect:errno=111\n"), None);
    }
}
