//! The `connections` scenario: open many idle connections (TCP, TLS,
//! CONNECT / CONNACK) at a fixed rate, hold them, and measure the broker's
//! resident memory before and after, its CPU time per connection set-up and
//! while idle, and how many connections it dropped while they were idle.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use mqtt::Packet;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::cli::ConnectionsArgs;
use crate::client::Target;
use crate::procfs::{self, Proc};
use crate::stats::{Histogram, LatencySummary};

/// Buffer size per idle connection (they only ever see PINGRESP).
const IDLE_BUFFER: usize = 256;

/// The JSON result of one `connections` run.
#[derive(Debug, Serialize)]
pub struct ConnectionsReport {
    /// Always "connections".
    pub kind: &'static str,
    /// `--tag` labels.
    pub tags: BTreeMap<String, String>,
    /// Broker address.
    pub target: String,
    /// Whether TLS was used.
    pub tls: bool,
    /// 4 or 5.
    pub mqtt_version: u8,
    /// Connections attempted.
    pub count: usize,
    /// Attempted connections per second.
    pub connect_rate: f64,
    /// Seconds everything was held open after the last attempt finished.
    pub hold_s: f64,
    /// Connections that got a successful CONNACK.
    pub connected: u64,
    /// Attempts that failed (TCP, TLS, CONNACK or timeout).
    pub failed: u64,
    /// Connected clients the broker closed while they were idle.
    pub dropped: u64,
    /// Seconds from the first attempt to the last result.
    pub connect_phase_s: f64,
    /// TCP connect + TLS handshake + CONNECT/CONNACK time.
    pub connect_latency: LatencySummary,
    /// Broker RSS before the first connection, bytes.
    pub broker_rss_before_bytes: Option<u64>,
    /// Broker RSS at the end of the hold, bytes.
    pub broker_rss_after_bytes: Option<u64>,
    /// (after - before) / connected.
    pub bytes_per_connection: Option<f64>,
    /// Broker CPU seconds during the connect phase.
    pub broker_cpu_connect_s: Option<f64>,
    /// That, per successful connection, in milliseconds.
    pub broker_cpu_ms_per_connect: Option<f64>,
    /// Broker CPU seconds during the hold (idle connections).
    pub broker_cpu_hold_s: Option<f64>,
    /// This generator's RSS at the end of the hold, bytes.
    pub generator_rss_bytes: Option<u64>,
    /// First distinct failure messages.
    pub errors: Vec<String>,
    /// Clock ticks per second used to convert /proc CPU times.
    pub clk_tck: u64,
}

/// Outcome of one connection attempt.
enum Attempt {
    Connected(u64),
    Failed(String),
}

/// Run the scenario and print its report.
pub async fn run(a: ConnectionsArgs) -> anyhow::Result<()> {
    if a.count == 0 || a.connect_rate <= 0.0 {
        bail!("--count and --connect-rate must be positive");
    }
    let mut target = Target::from_args(&a.target).await?;
    target.buffer_size = IDLE_BUFFER;
    let target = Arc::new(target);
    if let Some(limit) = procfs::open_files_limit() {
        if (a.count as u64) + 64 > limit {
            eprintln!("warning: {} connections but the open-files limit is {limit}; raise it (ulimit -n)", a.count);
        }
    }
    let broker = a.output.broker_pid.map(Proc::new);
    let before = broker.and_then(|b| b.sample().ok());

    let (stop_tx, stop_rx) = watch::channel(false);
    let (result_tx, mut result_rx) = mpsc::unbounded_channel();
    let dropped = Arc::new(AtomicU64::new(0));
    let prefix = format!("{}-idle-{:x}", target.client_id_prefix, std::process::id());
    let started = Instant::now();
    let spawner = {
        let (target, stop_rx, dropped) = (target.clone(), stop_rx.clone(), dropped.clone());
        let (count, rate, timeout) = (a.count, a.connect_rate, a.connect_timeout);
        tokio::spawn(async move {
            let mut tasks = Vec::with_capacity(count);
            for i in 0..count {
                tokio::time::sleep_until(started + Duration::from_secs_f64(i as f64 / rate)).await;
                let id = format!("{prefix}-{i}");
                let t = tokio::spawn(hold_one(
                    target.clone(),
                    id,
                    timeout,
                    result_tx.clone(),
                    stop_rx.clone(),
                    dropped.clone(),
                ));
                tasks.push(t);
            }
            tasks
        })
    };

    let mut latency = Histogram::new();
    let (mut connected, mut failed) = (0u64, 0u64);
    let mut errors: Vec<String> = Vec::new();
    while connected + failed < a.count as u64 {
        match result_rx.recv().await {
            Some(Attempt::Connected(ns)) => {
                connected += 1;
                latency.record(ns);
            }
            Some(Attempt::Failed(e)) => {
                failed += 1;
                if errors.len() < 10 && !errors.contains(&e) {
                    errors.push(e);
                }
            }
            None => break,
        }
    }
    let connect_phase_s = started.elapsed().as_secs_f64();
    let after_connect = broker.and_then(|b| b.sample().ok());
    tokio::time::sleep(a.hold).await;
    let after = broker.and_then(|b| b.sample().ok());
    let generator_rss = Proc::current().rss_bytes().ok();
    let dropped_n = dropped.load(Ordering::Relaxed);

    let _ = stop_tx.send(true);
    if let Ok(tasks) = spawner.await {
        let _ = tokio::time::timeout(Duration::from_secs(15), async {
            for t in tasks {
                let _ = t.await;
            }
        })
        .await;
    }

    let cpu =
        |x: Option<procfs::Sample>, y: Option<procfs::Sample>| x.zip(y).map(|(x, y)| (y.cpu_s - x.cpu_s).max(0.0));
    let broker_cpu_connect_s = cpu(before, after_connect);
    let rss_before = before.map(|s| s.rss_bytes);
    let rss_after = after.map(|s| s.rss_bytes);
    let report = ConnectionsReport {
        kind: "connections",
        tags: a.output.tags.iter().cloned().collect(),
        target: target.addr.to_string(),
        tls: target.tls.is_some(),
        mqtt_version: a.target.mqtt_version,
        count: a.count,
        connect_rate: a.connect_rate,
        hold_s: a.hold.as_secs_f64(),
        connected,
        failed,
        dropped: dropped_n,
        connect_phase_s,
        connect_latency: latency.summary_us(),
        broker_rss_before_bytes: rss_before,
        broker_rss_after_bytes: rss_after,
        bytes_per_connection: rss_before
            .zip(rss_after)
            .filter(|_| connected > 0)
            .map(|(b, a)| (a as f64 - b as f64) / connected as f64),
        broker_cpu_connect_s,
        broker_cpu_ms_per_connect: broker_cpu_connect_s
            .filter(|_| connected > 0)
            .map(|c| c * 1000.0 / connected as f64),
        broker_cpu_hold_s: cpu(after_connect, after),
        generator_rss_bytes: generator_rss,
        errors,
        clk_tck: procfs::clock_ticks_per_sec(),
    };
    crate::report::emit(a.output.json, &report, &text(&report))
}

/// Connect one client, report the outcome, then keep it open (answering
/// nothing, pinging at half the keep-alive) until told to stop.
async fn hold_one(
    target: Arc<Target>,
    client_id: String,
    timeout: Duration,
    results: mpsc::UnboundedSender<Attempt>,
    mut stop: watch::Receiver<bool>,
    dropped: Arc<AtomicU64>,
) {
    let t0 = Instant::now();
    let mut conn = match tokio::time::timeout(timeout, target.connect(&client_id)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            let _ = results.send(Attempt::Failed(format!("{e:#}")));
            return;
        }
        Err(_) => {
            let _ = results.send(Attempt::Failed("connect timed out".into()));
            return;
        }
    };
    let _ = results.send(Attempt::Connected(t0.elapsed().as_nanos() as u64));
    drop(results);
    let ping_every = Duration::from_secs(u64::from(target.keep_alive.max(2)) / 2);
    let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = ping.tick() => {
                if conn.queue(&Packet::PingReq).is_err() || conn.flush().await.is_err() {
                    dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            r = conn.fill() => {
                if r.is_err() {
                    dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                while let Ok(Some(_)) = conn.try_decode() {}
            }
        }
    }
    conn.close().await;
}

fn text(r: &ConnectionsReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let mib = |b: Option<u64>| b.map_or("-".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0));
    let _ =
        writeln!(s, "connections {}: {} attempted at {}/s, held {:.0} s", r.target, r.count, r.connect_rate, r.hold_s);
    let _ = writeln!(
        s,
        "  connected {}  failed {}  dropped while idle {}  (connect phase {:.1} s)",
        r.connected, r.failed, r.dropped, r.connect_phase_s
    );
    let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.1} ms", v / 1000.0));
    let _ = writeln!(
        s,
        "  connect latency p50 {}  p99 {}  max {}",
        ms(r.connect_latency.p50_us),
        ms(r.connect_latency.p99_us),
        ms(r.connect_latency.max_us)
    );
    let _ = writeln!(
        s,
        "  broker RSS {} → {}  = {} bytes per connection",
        mib(r.broker_rss_before_bytes),
        mib(r.broker_rss_after_bytes),
        r.bytes_per_connection.map_or("-".into(), |b| format!("{b:.0}"))
    );
    let _ = writeln!(
        s,
        "  broker CPU {} s connecting ({} ms per connection), {} s while idle; generator RSS {}",
        r.broker_cpu_connect_s.map_or("-".into(), |v| format!("{v:.2}")),
        r.broker_cpu_ms_per_connect.map_or("-".into(), |v| format!("{v:.3}")),
        r.broker_cpu_hold_s.map_or("-".into(), |v| format!("{v:.2}")),
        mib(r.generator_rss_bytes)
    );
    for e in &r.errors {
        let _ = writeln!(s, "  error: {e}");
    }
    s
}
