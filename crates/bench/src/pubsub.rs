//! The `pubsub` scenario: N publishers, M subscribers, one topic layout.
//!
//! Order of events, so that no message can be lost to a race in the
//! benchmark itself:
//! 1. every subscriber connects and receives its SUBACK;
//! 2. every publisher connects;
//! 3. publishing starts at one instant for all publishers, runs `warmup`
//!    (not counted) and then the measured window of `duration`;
//! 4. publishers stop, wait for their outstanding PUBACKs (QoS 1), and the
//!    subscribers get up to `drain` to receive what is still on its way;
//! 5. everything disconnects.
//!
//! Accounting, per measured window `[start, end)`:
//! * *sent*: messages whose send timestamp is in the window;
//! * *expected*: sent × subscribers matching their topic;
//! * *received*: distinct deliveries of those messages, whenever they
//!   arrived (up to the end of the drain); *missing* = expected − received;
//! * *dropped*: sequence numbers a subscriber never saw although a later
//!   message of the same publisher arrived (MQTT keeps per-publisher order
//!   on a topic, so these are known losses, not late arrivals), counted at
//!   arrivals of in-window messages;
//! * *received/s*: deliveries that arrived while the window was open, by
//!   arrival time — the rate the broker actually delivered;
//! * *latency*: arrival time − send time of the deliveries that arrived
//!   during the window, on the one monotonic clock of this process. At an
//!   unlimited rate this measures the broker's (and the kernel's) queue
//!   depth, not its speed; only fixed-rate runs give service latency.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::BytesMut;
use mqtt::{Packet, Properties, PubResp, Publish, QoS, SubOptions, Subscribe};
use serde::Serialize;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::cli::{PubsubArgs, TopicMode};
use crate::client::{Conn, Target};
use crate::payload::{self, Clock, Stamp};
use crate::procfs::{self, Proc, Sample};
use crate::stats::{Histogram, LatencySummary};

/// Most distinct error messages kept in a report.
const MAX_ERRORS: usize = 10;

/// Timing and shape shared by every task of one run.
#[derive(Debug)]
struct Plan {
    clock: Clock,
    /// Publishing starts (warm-up begins).
    start_ns: u64,
    /// Measured window: `[window_start_ns, window_end_ns)`; publishing stops at its end.
    window_start_ns: u64,
    window_end_ns: u64,
    qos: QoS,
    payload: usize,
    /// Messages per second per publisher; 0 = unlimited.
    rate_per_publisher: f64,
    publishers: usize,
    batch: usize,
    inflight: usize,
}

impl Plan {
    fn in_window(&self, ns: u64) -> bool {
        (self.window_start_ns..self.window_end_ns).contains(&ns)
    }
}

/// What one publisher did.
#[derive(Debug, Default)]
struct PubResult {
    sent_total: u64,
    sent_window: u64,
    acked: u64,
    /// PUBACKs with a failure reason code (MQTT 5).
    ack_errors: u64,
    error: Option<String>,
}

/// What one subscriber saw.
#[derive(Debug)]
struct SubResult {
    latency: Histogram,
    received_total: u64,
    /// Distinct messages whose send time is in the window.
    received_window: u64,
    /// Messages that arrived while the window was open (any send time).
    arrived_in_window: u64,
    /// A sequence number at or below one already seen from that publisher.
    duplicates: u64,
    /// Sequence numbers skipped before an in-window message arrived.
    dropped: u64,
    /// Payloads that are not ours.
    foreign: u64,
    error: Option<String>,
}

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
    /// Clock ticks per second used to convert /proc CPU times.
    pub clk_tck: u64,
}

/// Run the scenario and print its report.
pub async fn run(a: PubsubArgs) -> anyhow::Result<()> {
    if a.publishers == 0 || a.subscribers == 0 {
        bail!("need at least one publisher and one subscriber");
    }
    if a.topic_mode == TopicMode::Pairs && a.publishers != a.subscribers {
        bail!("--topic-mode pairs needs as many publishers as subscribers");
    }
    if a.qos == 1 && a.inflight == 0 {
        bail!("--inflight must be at least 1");
    }
    if a.duration.is_zero() {
        bail!("--duration must be positive");
    }
    let target = Target::from_args(&a.target).await?;
    let conns = a.publishers + a.subscribers;
    if let Some(limit) = procfs::open_files_limit() {
        if (conns as u64) + 64 > limit {
            eprintln!("warning: {conns} connections but the open-files limit is {limit}; raise it (ulimit -n)");
        }
    }
    let run_id = run_id();
    let qos = if a.qos == 1 {
        QoS::AtLeastOnce
    } else {
        QoS::AtMostOnce
    };
    let pub_topic = |i: usize| match a.topic_mode {
        TopicMode::FanIn | TopicMode::FanOut => format!("bench/{run_id}/all"),
        TopicMode::Pairs => format!("bench/{run_id}/p{i}"),
    };
    let prefix = format!("{}-{run_id}", target.client_id_prefix);

    // 1. Subscribers, each SUBACKed.
    let sub_ids: Vec<(String, Option<String>)> = (0..a.subscribers)
        .map(|i| (format!("{prefix}-s{i}"), Some(pub_topic(i))))
        .collect();
    let subs = connect_many(&target, sub_ids, qos, a.connect_concurrency)
        .await
        .context("connecting subscribers")?;
    // 2. Publishers.
    let pub_ids: Vec<(String, Option<String>)> = (0..a.publishers)
        .map(|i| (format!("{prefix}-p{i}"), None))
        .collect();
    let pubs = connect_many(&target, pub_ids, qos, a.connect_concurrency)
        .await
        .context("connecting publishers")?;

    // 3. Publish.
    let clock = Clock::start();
    let start_ns = clock.now_ns() + 100_000_000;
    let window_start_ns = start_ns + a.warmup.as_nanos() as u64;
    let window_end_ns = window_start_ns + a.duration.as_nanos() as u64;
    let plan = Arc::new(Plan {
        clock,
        start_ns,
        window_start_ns,
        window_end_ns,
        qos,
        payload: a.payload.max(payload::HEADER_LEN),
        rate_per_publisher: if a.rate > 0.0 {
            a.rate / a.publishers as f64
        } else {
            0.0
        },
        publishers: a.publishers,
        batch: a.batch.max(1),
        inflight: a.inflight,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let live: Vec<Arc<Progress>> = (0..a.subscribers)
        .map(|_| Arc::new(Progress::default()))
        .collect();
    let sub_tasks: Vec<JoinHandle<SubResult>> = subs
        .into_iter()
        .zip(&live)
        .map(|(c, l)| tokio::spawn(subscriber(c, plan.clone(), l.clone(), stop_rx.clone())))
        .collect();
    let pub_tasks: Vec<JoinHandle<PubResult>> = pubs
        .into_iter()
        .enumerate()
        .map(|(i, c)| tokio::spawn(publisher(i, c, plan.clone(), pub_topic(i))))
        .collect();
    let broker = a.output.broker_pid.map(Proc::new);
    let me = Proc::current();
    let sampler = tokio::spawn(sample_window(plan.clone(), broker, me));

    let mut pub_results = Vec::with_capacity(pub_tasks.len());
    for t in pub_tasks {
        pub_results.push(t.await.context("publisher task panicked")?);
    }
    let (broker_usage, generator_usage) = sampler.await.context("sampler task panicked")?;

    // 4. Drain.
    let sent: u64 = pub_results.iter().map(|r| r.sent_window).sum();
    let expected = match a.topic_mode {
        TopicMode::FanIn | TopicMode::FanOut => sent * a.subscribers as u64,
        TopicMode::Pairs => sent,
    };
    let drain_cut_short = !drain(&live, expected, a.drain).await;
    let _ = stop_tx.send(true);
    let mut sub_results = Vec::with_capacity(sub_tasks.len());
    for t in sub_tasks {
        sub_results.push(t.await.context("subscriber task panicked")?);
    }

    // 5. Report.
    let mut report = build_report(
        &a,
        &target,
        plan.as_ref(),
        &pub_results,
        &sub_results,
        expected,
        broker_usage,
        generator_usage,
    );
    report.drain_cut_short = drain_cut_short;
    crate::report::emit(a.output.json, &report, &pubsub_text(&report))
}

/// A short id that keeps the topics and client ids of concurrent or
/// successive runs apart.
fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}", std::process::id() & 0xffff, nanos & 0xfffff)
}

/// Connect `(client id, filter to subscribe)` pairs, at most `concurrency` at
/// a time; any failure fails the run (the benchmark must start complete).
async fn connect_many(
    target: &Target,
    ids: Vec<(String, Option<String>)>,
    qos: QoS,
    concurrency: usize,
) -> anyhow::Result<Vec<Conn>> {
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let tasks: Vec<_> = ids
        .into_iter()
        .map(|(id, filter)| {
            let target = target.clone();
            let gate = gate.clone();
            tokio::spawn(async move {
                let _permit = gate.acquire().await?;
                let fut = async {
                    let mut conn = target.connect(&id).await?;
                    if let Some(filter) = filter {
                        subscribe(&mut conn, &filter, qos).await?;
                    }
                    anyhow::Ok(conn)
                };
                tokio::time::timeout(Duration::from_secs(30), fut)
                    .await
                    .map_err(|_| anyhow::anyhow!("timed out"))?
                    .with_context(|| format!("client {id}"))
            })
        })
        .collect();
    let mut conns = Vec::with_capacity(tasks.len());
    for t in tasks {
        conns.push(t.await??);
    }
    Ok(conns)
}

/// SUBSCRIBE to one filter and wait for a successful SUBACK.
async fn subscribe(conn: &mut Conn, filter: &str, qos: QoS) -> anyhow::Result<()> {
    conn.queue(&Packet::Subscribe(Subscribe {
        packet_id: 1,
        filters: vec![(filter.to_string(), SubOptions::qos(qos))],
        properties: Properties::default(),
    }))?;
    conn.flush().await?;
    loop {
        match conn.recv().await.context("waiting for SUBACK")? {
            Packet::SubAck(ack) if ack.packet_id == 1 => {
                return match ack.reasons.first() {
                    Some(&r) if r < 0x80 => Ok(()),
                    r => bail!("subscription to {filter} refused: {r:?}"),
                };
            }
            _ => continue,
        }
    }
}

/// Sample broker and generator at the window's start and end.
async fn sample_window(
    plan: Arc<Plan>,
    broker: Option<Proc>,
    me: Proc,
) -> (Option<(Sample, Sample)>, Option<(Sample, Sample)>) {
    tokio::time::sleep_until(plan.clock.instant(plan.window_start_ns).into()).await;
    let b0 = broker.and_then(|b| b.sample().ok());
    let g0 = me.sample().ok();
    tokio::time::sleep_until(plan.clock.instant(plan.window_end_ns).into()).await;
    let b1 = broker.and_then(|b| b.sample().ok());
    let g1 = me.sample().ok();
    (b0.zip(b1), g0.zip(g1))
}

/// Live counters a subscriber publishes for the drain phase.
#[derive(Debug, Default)]
struct Progress {
    /// Distinct in-window messages received.
    window: AtomicU64,
    /// Every delivery received.
    total: AtomicU64,
}

/// Wait until `expected` window messages have arrived, deliveries stop
/// for a second, or `limit` passes. False when deliveries were still
/// arriving at the limit (the broker still had a backlog).
async fn drain(live: &[Arc<Progress>], expected: u64, limit: Duration) -> bool {
    let started = tokio::time::Instant::now();
    let mut last = u64::MAX;
    let mut last_progress = started;
    loop {
        let window: u64 = live.iter().map(|c| c.window.load(Ordering::Relaxed)).sum();
        let total: u64 = live.iter().map(|c| c.total.load(Ordering::Relaxed)).sum();
        let now = tokio::time::Instant::now();
        if total != last {
            last = total;
            last_progress = now;
        }
        if window >= expected || now - last_progress >= Duration::from_secs(1) {
            return true;
        }
        if now - started >= limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Publish until the window ends, at the planned rate, keeping at most
/// `inflight` QoS 1 messages unacknowledged.
async fn publisher(index: usize, conn: Conn, plan: Arc<Plan>, topic: String) -> PubResult {
    let mut r = PubResult::default();
    let (mut reader, mut writer) = conn.split();
    let window = Arc::new(Semaphore::new(plan.inflight));
    let acks = Arc::new(AtomicU64::new(0));
    let ack_errors = Arc::new(AtomicU64::new(0));
    let ack_task = {
        let (window, acks, ack_errors) = (window.clone(), acks.clone(), ack_errors.clone());
        tokio::spawn(async move {
            let e = loop {
                match reader.recv().await {
                    Ok(Packet::PubAck(a)) => {
                        acks.fetch_add(1, Ordering::Relaxed);
                        if a.reason >= 0x80 {
                            ack_errors.fetch_add(1, Ordering::Relaxed);
                        }
                        window.add_permits(1);
                    }
                    Ok(_) => {}
                    Err(e) => break e,
                }
            };
            window.close();
            e
        })
    };
    let qos1 = plan.qos == QoS::AtLeastOnce;
    let mut scratch = BytesMut::with_capacity(64 * 1024);
    let mut packet_id: u16 = 0;
    let rate = plan.rate_per_publisher;
    // Spread publishers' send instants over one interval.
    let phase_ns = if rate > 0.0 {
        (1e9 / rate * index as f64 / plan.publishers as f64) as u64
    } else {
        0
    };
    let start_ns = plan.start_ns + phase_ns;
    tokio::time::sleep_until(plan.clock.instant(start_ns).into()).await;
    'publish: loop {
        let now = plan.clock.now_ns();
        if now >= plan.window_end_ns {
            break;
        }
        let n = if rate > 0.0 {
            // Message k is due at start + k / rate.
            let due = ((now - start_ns) as f64 * rate / 1e9) as u64 + 1;
            if due <= r.sent_total {
                let next_ns = start_ns + (r.sent_total as f64 * 1e9 / rate) as u64;
                tokio::time::sleep_until(
                    plan.clock.instant(next_ns.min(plan.window_end_ns)).into(),
                )
                .await;
                continue;
            }
            (due - r.sent_total).min(plan.batch as u64 * 16)
        } else {
            plan.batch as u64
        };
        for _ in 0..n {
            if qos1 {
                match window.try_acquire() {
                    Ok(p) => p.forget(),
                    Err(_) => {
                        if let Err(e) = writer.flush().await {
                            r.error = Some(format!("publisher {index}: write failed: {e}"));
                            break 'publish;
                        }
                        match window.acquire().await {
                            Ok(p) => p.forget(),
                            Err(_) => {
                                r.error = Some(format!(
                                    "publisher {index}: connection lost while waiting for PUBACKs"
                                ));
                                break 'publish;
                            }
                        }
                    }
                }
                packet_id = packet_id.checked_add(1).unwrap_or(1);
            }
            let sent_ns = plan.clock.now_ns();
            let stamp = Stamp {
                sent_ns,
                publisher: index as u32,
                seq: r.sent_total,
            };
            let p = Publish {
                dup: false,
                qos: plan.qos,
                retain: false,
                topic: topic.clone(),
                packet_id: if qos1 { packet_id } else { 0 },
                payload: payload::build(&mut scratch, plan.payload, stamp),
                properties: Properties::default(),
            };
            if let Err(e) = writer.queue(&Packet::Publish(p)) {
                r.error = Some(format!("publisher {index}: {e}"));
                break 'publish;
            }
            r.sent_total += 1;
            if plan.in_window(sent_ns) {
                r.sent_window += 1;
            }
        }
        if let Err(e) = writer.flush().await {
            r.error = Some(format!("publisher {index}: write failed: {e}"));
            break;
        }
        if rate == 0.0 {
            // Let subscribers on this worker thread run between batches.
            tokio::task::yield_now().await;
        }
    }
    if qos1 && r.error.is_none() {
        let _ = writer.flush().await;
        let all = u32::try_from(plan.inflight).unwrap_or(u32::MAX);
        match tokio::time::timeout(Duration::from_secs(10), window.acquire_many(all)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => {
                r.error = Some(format!(
                    "publisher {index}: connection lost while waiting for the last PUBACKs"
                ))
            }
            Err(_) => {
                r.error = Some(format!(
                    "publisher {index}: PUBACKs still missing 10 s after publishing stopped"
                ))
            }
        }
    }
    // Stop the reader before DISCONNECT, so that the close we cause is not
    // mistaken for a broken connection.
    ack_task.abort();
    if let Ok(e) = ack_task.await {
        // The reader only ends on its own when the connection broke.
        if r.error.is_none() {
            r.error = Some(format!("publisher {index}: {e:#}"));
        }
    }
    writer.close().await;
    r.acked = acks.load(Ordering::Relaxed);
    r.ack_errors = ack_errors.load(Ordering::Relaxed);
    r
}

/// Receive until told to stop, acknowledging QoS 1 deliveries.
async fn subscriber(
    mut conn: Conn,
    plan: Arc<Plan>,
    live: Arc<Progress>,
    mut stop: watch::Receiver<bool>,
) -> SubResult {
    let mut r = SubResult {
        latency: Histogram::new(),
        received_total: 0,
        received_window: 0,
        arrived_in_window: 0,
        duplicates: 0,
        dropped: 0,
        foreign: 0,
        error: None,
    };
    let mut last_seq: Vec<Option<u64>> = vec![None; plan.publishers];
    let mut arrived_ns = plan.clock.now_ns();
    loop {
        let (before_window, before_total) = (r.received_window, r.received_total);
        loop {
            match conn.try_decode() {
                Ok(Some(Packet::Publish(p))) => {
                    if p.qos == QoS::AtLeastOnce {
                        if let Err(e) = conn.queue(&Packet::PubAck(PubResp::new(p.packet_id))) {
                            r.error = Some(e.to_string());
                            return r;
                        }
                    }
                    on_message(&mut r, &mut last_seq, &plan, &p.payload, arrived_ns);
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    r.error = Some(format!("subscriber: {e:#}"));
                    return r;
                }
            }
        }
        live.window
            .fetch_add(r.received_window - before_window, Ordering::Relaxed);
        live.total
            .fetch_add(r.received_total - before_total, Ordering::Relaxed);
        if let Err(e) = conn.flush().await {
            r.error = Some(format!("subscriber: write failed: {e}"));
            return r;
        }
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            res = conn.fill() => match res {
                Ok(_) => arrived_ns = plan.clock.now_ns(),
                Err(e) => {
                    r.error = Some(format!("subscriber: {e:#}"));
                    return r;
                }
            },
        }
    }
    conn.close().await;
    r
}

/// Account for one delivery that arrived at `arrived_ns`.
fn on_message(
    r: &mut SubResult,
    last_seq: &mut [Option<u64>],
    plan: &Plan,
    payload: &[u8],
    arrived_ns: u64,
) {
    let Some(Stamp {
        sent_ns,
        publisher,
        seq,
    }) = payload::parse(payload)
    else {
        r.foreign += 1;
        return;
    };
    let Some(last) = last_seq.get_mut(publisher as usize) else {
        r.foreign += 1;
        return;
    };
    r.received_total += 1;
    // Messages of this publisher never seen before this one (known drops).
    let skipped = match *last {
        Some(l) if seq <= l => {
            r.duplicates += 1;
            return;
        }
        Some(l) => seq - l - 1,
        None => seq,
    };
    *last = Some(seq);
    if plan.in_window(sent_ns) {
        r.received_window += 1;
        r.dropped += skipped;
    }
    if plan.in_window(arrived_ns) {
        r.arrived_in_window += 1;
        r.latency.record(arrived_ns.saturating_sub(sent_ns));
    }
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

#[allow(clippy::too_many_arguments)]
fn build_report(
    a: &PubsubArgs,
    target: &Target,
    plan: &Plan,
    pubs: &[PubResult],
    subs: &[SubResult],
    expected: u64,
    broker: Option<(Sample, Sample)>,
    generator: Option<(Sample, Sample)>,
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
    for e in pubs
        .iter()
        .filter_map(|p| p.error.as_ref())
        .chain(subs.iter().filter_map(|s| s.error.as_ref()))
    {
        if errors.len() < MAX_ERRORS && !errors.contains(e) {
            errors.push(e.clone());
        }
    }
    let foreign: u64 = subs.iter().map(|s| s.foreign).sum();
    if foreign > 0 {
        errors.push(format!(
            "{foreign} deliveries with a payload that is not ours"
        ));
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
        dropped: subs.iter().map(|s| s.dropped).sum(),
        drain_cut_short: false,
        duplicates: subs.iter().map(|s| s.duplicates).sum(),
        sent_per_s: sent as f64 / window_s,
        received_per_s: arrived as f64 / window_s,
        latency: latency.summary_us(),
        unacked: if plan.qos == QoS::AtLeastOnce {
            pubs.iter()
                .map(|p| p.sent_total.saturating_sub(p.acked))
                .sum()
        } else {
            0
        },
        puback_errors: pubs.iter().map(|p| p.ack_errors).sum(),
        errors,
        broker: usage(broker, window_s, arrived),
        generator: usage(generator, window_s, arrived),
        clk_tck: procfs::clock_ticks_per_sec(),
    }
}

fn pubsub_text(r: &PubsubReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let us = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0} µs"));
    let _ =
        writeln!(
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
    let _ = writeln!(
        s,
        "  received  {:>12} ({:.0} msg/s arrived during the window)",
        r.received, r.received_per_s
    );
    let _ = writeln!(
        s,
        "  missing   {:>12}   dropped {}  duplicates {}{}",
        r.missing,
        r.dropped,
        r.duplicates,
        if r.drain_cut_short {
            "  (deliveries still arriving when the drain ended)"
        } else {
            ""
        }
    );
    if r.qos == 1 {
        let _ = writeln!(
            s,
            "  unacked   {:>12}   PUBACK errors {}",
            r.unacked, r.puback_errors
        );
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
                u.cpu_s_per_million_msgs
                    .map_or("-".into(), |v| format!("{v:.2}")),
                u.rss_bytes as f64 / 1048576.0
            );
        }
    }
    for e in &r.errors {
        let _ = writeln!(s, "  error: {e}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            clock: Clock::start(),
            start_ns: 0,
            window_start_ns: 1_000,
            window_end_ns: 2_000,
            qos: QoS::AtMostOnce,
            payload: 64,
            rate_per_publisher: 0.0,
            publishers: 2,
            batch: 1,
            inflight: 1,
        }
    }

    fn empty() -> SubResult {
        SubResult {
            latency: Histogram::new(),
            received_total: 0,
            received_window: 0,
            arrived_in_window: 0,
            duplicates: 0,
            dropped: 0,
            foreign: 0,
            error: None,
        }
    }

    #[test]
    fn accounting() {
        let plan = plan();
        let mut r = empty();
        let mut last = vec![None; 2];
        let mut scratch = BytesMut::new();
        let mut deliver = |r: &mut SubResult, sent_ns, publisher, seq, at| {
            let p = payload::build(
                &mut scratch,
                64,
                Stamp {
                    sent_ns,
                    publisher,
                    seq,
                },
            );
            on_message(r, &mut last, &plan, &p, at);
        };
        deliver(&mut r, 500, 0, 0, 900); // warm-up, not in window
        deliver(&mut r, 1_100, 0, 1, 1_300); // window
        deliver(&mut r, 1_200, 0, 1, 1_400); // duplicate
        deliver(&mut r, 1_500, 0, 4, 2_500); // 2 dropped before it; arrives after the window
        deliver(&mut r, 900, 1, 3, 1_700); // sent in warm-up (3 dropped, not counted), arrives in window
        deliver(&mut r, 1_600, 1, 4, 1_800); // other publisher
        deliver(&mut r, 1_600, 9, 0, 1_700); // unknown publisher
        assert_eq!(r.received_total, 5);
        assert_eq!(r.received_window, 3);
        assert_eq!(r.arrived_in_window, 3);
        assert_eq!(r.duplicates, 1);
        assert_eq!(r.dropped, 2);
        assert_eq!(r.foreign, 1);
        // Latency of what arrived in the window: 200, 800, 200 ns.
        assert_eq!(r.latency.len(), 3);
        assert_eq!(r.latency.quantile(1.0), Some(800));
        on_message(&mut r, &mut [None], &plan, b"short", 1_500);
        assert_eq!(r.foreign, 2);
    }

    #[test]
    fn usage_per_million() {
        let a = Sample {
            cpu_s: 10.0,
            rss_bytes: 1,
        };
        let b = Sample {
            cpu_s: 12.0,
            rss_bytes: 4096,
        };
        let u = usage(Some((a, b)), 4.0, 500_000).unwrap();
        assert!((u.cpu_s - 2.0).abs() < 1e-9);
        assert!((u.cores - 0.5).abs() < 1e-9);
        assert!((u.cpu_s_per_million_msgs.unwrap() - 4.0).abs() < 1e-9);
        assert_eq!(u.rss_bytes, 4096);
        assert!(usage(None, 1.0, 1).is_none());
        assert!(usage(Some((a, b)), 1.0, 0)
            .unwrap()
            .cpu_s_per_million_msgs
            .is_none());
    }
}
