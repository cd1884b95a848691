//! The result of a `pubsub` run: aggregation of publisher and subscriber
//! results, resource use, the JSON report and its text form.

use std::collections::BTreeMap;

use mqtt::QoS;
use serde::Serialize;

use super::{Plan, PubResult, SubResult, WindowSamples};
use crate::cli::PubsubArgs;
use crate::client::Target;
use crate::procfs::{self, Sample};
use crate::stats::{Histogram, LatencySummary};

/// Most distinct error messages kept in a report.
const MAX_ERRORS: usize = 10;

/// Broker or generator resource use over the measured window.
#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    /// CPU seconds (user + system) used during the window.
    pub cpu_s: f64,
    /// CPU seconds per second of window (1.0 = one core busy).
    pub cores: f64,
    /// CPU seconds per million messages received by subscribers during the window.
    pub cpu_s_per_million_msgs: Option<f64>,
    /// Resident memory at the end of the window, bytes.
    pub rss_bytes: u64,
}

/// The JSON result of one `pubsub` run.
#[derive(Debug, Serialize)]
pub struct PubsubReport {
    /// Always "pubsub".
    pub kind: &'static str,
    /// `--tag` labels.
    pub tags: BTreeMap<String, String>,
    /// Broker address.
    pub target: String,
    /// Whether TLS was used.
    pub tls: bool,
    /// 4 or 5.
    pub mqtt_version: u8,
    /// fan-in, fan-out or pairs.
    pub topic_mode: String,
    /// Publishing connections.
    pub publishers: usize,
    /// Subscribing connections.
    pub subscribers: usize,
    /// 0 or 1.
    pub qos: u8,
    /// Payload size, bytes.
    pub payload_bytes: usize,
    /// Requested total rate, msgs/s (0 = unlimited).
    pub target_rate: f64,
    /// Measured window, seconds.
    pub duration_s: f64,
    /// Warm-up before it, seconds.
    pub warmup_s: f64,
    /// Messages sent during the window.
    pub sent: u64,
    /// Deliveries expected for them.
    pub expected: u64,
    /// Distinct deliveries of them received.
    pub received: u64,
    /// expected - received: not delivered by the end of the drain.
    pub missing: u64,
    /// Known drops: sequence numbers skipped before an in-window message
    /// of the same publisher arrived.
    pub dropped: u64,
    /// Repeated or out-of-order deliveries (whole run).
    pub duplicates: u64,
    /// Whether deliveries were still arriving when the drain ended.
    pub drain_cut_short: bool,
    /// Messages sent per second during the window.
    pub sent_per_s: f64,
    /// Messages received per second during the window (by arrival time).
    pub received_per_s: f64,
    /// End-to-end latency of the window's messages.
    pub latency: LatencySummary,
    /// QoS 1: publishes never acknowledged.
    pub unacked: u64,
    /// QoS 1: PUBACKs with a failure reason code.
    pub puback_errors: u64,
    /// Connections that failed during the run (first few messages).
    pub errors: Vec<String>,
    /// Broker resource use, with --broker-pid.
    pub broker: Option<Usage>,
    /// This load generator's own resource use.
    pub generator: Option<Usage>,
    /// Busy cores of the whole machine during the window (broker,
    /// generator and anything else that ran).
    pub machine_busy_cores: Option<f64>,
    /// Clock ticks per second used to convert /proc CPU times.
    pub clk_tck: u64,
}

fn usage(pair: Option<(Sample, Sample)>, window_s: f64, msgs: u64) -> Option<Usage> {
    let (a, b) = pair?;
    let cpu_s = (b.cpu_s - a.cpu_s).max(0.0);
    Some(Usage {
        cpu_s,
        cores: cpu_s / window_s,
        cpu_s_per_million_msgs: (msgs > 0).then(|| cpu_s / (msgs as f64 / 1e6)),
        rss_bytes: b.rss_bytes,
    })
}

pub(crate) fn build_report(
    a: &PubsubArgs,
    target: &Target,
    plan: &Plan,
    pubs: &[PubResult],
    subs: &[SubResult],
    expected: u64,
    samples: WindowSamples,
) -> PubsubReport {
    let window_s = a.duration.as_secs_f64();
    let mut latency = Histogram::new();
    for s in subs {
        latency.merge(&s.latency);
    }
    let sent: u64 = pubs.iter().map(|p| p.sent_window).sum();
    let received: u64 = subs.iter().map(|s| s.received_window).sum();
    let arrived: u64 = subs.iter().map(|s| s.arrived_in_window).sum();
    let mut errors: Vec<String> = Vec::new();
    for e in pubs.iter().filter_map(|p| p.error.as_ref()).chain(subs.iter().filter_map(|s| s.error.as_ref())) {
        if errors.len() < MAX_ERRORS && !errors.contains(e) {
            errors.push(e.clone());
        }
    }
    let foreign: u64 = subs.iter().map(|s| s.foreign).sum();
    if foreign > 0 {
        errors.push(format!("{foreign} deliveries with a payload that is not ours"));
    }
    PubsubReport {
        kind: "pubsub",
        tags: a.output.tags.iter().cloned().collect(),
        target: target.addr.to_string(),
        tls: target.tls.is_some(),
        mqtt_version: a.target.mqtt_version,
        topic_mode: format!("{:?}", a.topic_mode).to_lowercase(),
        publishers: a.publishers,
        subscribers: a.subscribers,
        qos: a.qos,
        payload_bytes: plan.payload,
        target_rate: a.rate,
        duration_s: window_s,
        warmup_s: a.warmup.as_secs_f64(),
        sent,
        expected,
        received,
        missing: expected.saturating_sub(received),
        dropped: super::subscriber::known_drops(pubs, subs, a.topic_mode),
        drain_cut_short: false,
        duplicates: subs.iter().map(|s| s.duplicates).sum(),
        sent_per_s: sent as f64 / window_s,
        received_per_s: arrived as f64 / window_s,
        latency: latency.summary_us(),
        unacked: if plan.qos == QoS::AtLeastOnce {
            pubs.iter().map(|p| p.sent_total.saturating_sub(p.acked)).sum()
        } else {
            0
        },
        puback_errors: pubs.iter().map(|p| p.ack_errors).sum(),
        errors,
        broker: usage(samples.broker, window_s, arrived),
        generator: usage(samples.generator, window_s, arrived),
        machine_busy_cores: samples.machine_busy_s.map(|s| s / window_s),
        clk_tck: procfs::clock_ticks_per_sec(),
    }
}

pub(crate) fn pubsub_text(r: &PubsubReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let us = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0} µs"));
    let _ = writeln!(
        s,
        "pubsub {} QoS {} {}→{} ({}), {} B payload, rate {}, window {:.1} s after {:.1} s warm-up",
        r.target,
        r.qos,
        r.publishers,
        r.subscribers,
        r.topic_mode,
        r.payload_bytes,
        if r.target_rate > 0.0 { format!("{} msg/s", r.target_rate) } else { "unlimited".into() },
        r.duration_s,
        r.warmup_s
    );
    let _ = writeln!(s, "  sent      {:>12} ({:.0} msg/s)", r.sent, r.sent_per_s);
    let _ = writeln!(s, "  expected  {:>12}", r.expected);
    let _ = writeln!(s, "  received  {:>12} ({:.0} msg/s arrived during the window)", r.received, r.received_per_s);
    let _ = writeln!(
        s,
        "  missing   {:>12}   dropped {}  duplicates {}{}",
        r.missing,
        r.dropped,
        r.duplicates,
        if r.drain_cut_short { "  (deliveries still arriving when the drain ended)" } else { "" }
    );
    if r.qos == 1 {
        let _ = writeln!(s, "  unacked   {:>12}   PUBACK errors {}", r.unacked, r.puback_errors);
    }
    let l = &r.latency;
    let _ = writeln!(
        s,
        "  latency   p50 {}  p99 {}  p99.9 {}  max {}",
        us(l.p50_us),
        us(l.p99_us),
        us(l.p999_us),
        us(l.max_us)
    );
    for (who, u) in [("broker", &r.broker), ("generator", &r.generator)] {
        if let Some(u) = u {
            let _ = writeln!(
                s,
                "  {who:<9} CPU {:.2} s ({:.2} cores), {} CPU s per 1M msgs, RSS {:.1} MiB",
                u.cpu_s,
                u.cores,
                u.cpu_s_per_million_msgs.map_or("-".into(), |v| format!("{v:.2}")),
                u.rss_bytes as f64 / 1048576.0
            );
        }
    }
    if let Some(m) = r.machine_busy_cores {
        let ours = r.broker.as_ref().map_or(0.0, |u| u.cores) + r.generator.as_ref().map_or(0.0, |u| u.cores);
        let _ = writeln!(
            s,
            "  machine   {m:.2} cores busy, {:.2} of them outside broker and generator",
            (m - ours).max(0.0)
        );
    }
    for e in &r.errors {
        let _ = writeln!(s, "  error: {e}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_per_million() {
        let a = Sample { cpu_s: 10.0, rss_bytes: 1 };
        let b = Sample { cpu_s: 12.0, rss_bytes: 4096 };
        let u = usage(Some((a, b)), 4.0, 500_000).unwrap();
        assert!((u.cpu_s - 2.0).abs() < 1e-9);
        assert!((u.cores - 0.5).abs() < 1e-9);
        assert!((u.cpu_s_per_million_msgs.unwrap() - 4.0).abs() < 1e-9);
        assert_eq!(u.rss_bytes, 4096);
        assert!(usage(None, 1.0, 1).is_none());
        assert!(usage(Some((a, b)), 1.0, 0).unwrap().cpu_s_per_million_msgs.is_none());
    }
}
