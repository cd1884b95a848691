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
//! * *dropped*: in-window messages a subscriber never saw although a later
//!   message of the same publisher arrived (MQTT keeps per-publisher order
//!   on a topic, so these are known losses, not late arrivals); the rest of
//!   *missing* was still queued somewhere when the drain ended;
//! * *received/s*: deliveries that arrived while the window was open, by
//!   arrival time — the rate the broker actually delivered;
//! * *latency*: arrival time − send time of the deliveries that arrived
//!   during the window, on the one monotonic clock of this process. At an
//!   unlimited rate this measures the broker's (and the kernel's) queue
//!   depth, not its speed; only fixed-rate runs give service latency.

mod outcome;
mod publisher;
mod subscriber;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use mqtt::{Packet, Properties, QoS, SubOptions, Subscribe};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::cli::{PubsubArgs, TopicMode};
use crate::client::{Conn, Target};
use crate::payload::{self, Clock};
use crate::procfs::{self, Proc, Sample};

use outcome::{build_report, pubsub_text};
pub use outcome::{PubsubReport, Usage};
use publisher::{publisher, PubResult};
use subscriber::{subscriber, SubResult};

/// Timing and shape shared by every task of one run.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) clock: Clock,
    /// Publishing starts (warm-up begins).
    pub(crate) start_ns: u64,
    /// Measured window: `[window_start_ns, window_end_ns)`; publishing stops at its end.
    pub(crate) window_start_ns: u64,
    pub(crate) window_end_ns: u64,
    pub(crate) qos: QoS,
    pub(crate) payload: usize,
    /// Messages per second per publisher; 0 = unlimited.
    pub(crate) rate_per_publisher: f64,
    pub(crate) publishers: usize,
    pub(crate) batch: usize,
    pub(crate) inflight: usize,
}

impl Plan {
    pub(crate) fn in_window(&self, ns: u64) -> bool {
        (self.window_start_ns..self.window_end_ns).contains(&ns)
    }
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
    let qos = if a.qos == 1 { QoS::AtLeastOnce } else { QoS::AtMostOnce };
    let pub_topic = |i: usize| match a.topic_mode {
        TopicMode::FanIn | TopicMode::FanOut => format!("{}/{run_id}/all", a.topic_prefix),
        TopicMode::Pairs => format!("{}/{run_id}/p{i}", a.topic_prefix),
    };
    let prefix = format!("{}-{run_id}", target.client_id_prefix);

    // 1. Subscribers, each SUBACKed.
    let sub_ids: Vec<(String, Option<String>)> =
        (0..a.subscribers).map(|i| (format!("{prefix}-s{i}"), Some(pub_topic(i)))).collect();
    let subs = connect_many(&target, sub_ids, qos, a.connect_concurrency).await.context("connecting subscribers")?;
    // 2. Publishers.
    let pub_ids: Vec<(String, Option<String>)> = (0..a.publishers).map(|i| (format!("{prefix}-p{i}"), None)).collect();
    let pubs = connect_many(&target, pub_ids, qos, a.connect_concurrency).await.context("connecting publishers")?;

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
        rate_per_publisher: if a.rate > 0.0 { a.rate / a.publishers as f64 } else { 0.0 },
        publishers: a.publishers,
        batch: a.batch.max(1),
        inflight: a.inflight,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let live: Vec<Arc<Progress>> = (0..a.subscribers).map(|_| Arc::new(Progress::default())).collect();
    let sub_tasks: Vec<JoinHandle<SubResult>> = subs
        .into_iter()
        .zip(&live)
        .map(|(c, l)| tokio::spawn(subscriber(c, plan.clone(), l.clone(), stop_rx.clone())))
        .collect();
    let pub_tasks: Vec<JoinHandle<PubResult>> =
        pubs.into_iter().enumerate().map(|(i, c)| tokio::spawn(publisher(i, c, plan.clone(), pub_topic(i)))).collect();
    let broker = a.output.broker_pid.map(Proc::new);
    let me = Proc::current();
    let sampler = tokio::spawn(sample_window(plan.clone(), broker, me));

    let mut pub_results = Vec::with_capacity(pub_tasks.len());
    for t in pub_tasks {
        pub_results.push(t.await.context("publisher task panicked")?);
    }
    let samples = sampler.await.context("sampler task panicked")?;

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
    let mut report = build_report(&a, &target, plan.as_ref(), &pub_results, &sub_results, expected, samples);
    report.drain_cut_short = drain_cut_short;
    crate::report::emit(a.output.json, &report, &pubsub_text(&report))
}

/// A short id that keeps the topics and client ids of concurrent or
/// successive runs apart.
fn run_id() -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
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

/// /proc samples taken at the window's start and end.
#[derive(Debug, Default)]
pub(crate) struct WindowSamples {
    pub(crate) broker: Option<(Sample, Sample)>,
    pub(crate) generator: Option<(Sample, Sample)>,
    /// Busy CPU seconds of the whole machine during the window.
    pub(crate) machine_busy_s: Option<f64>,
}

/// Sample broker, generator and machine at the window's start and end.
async fn sample_window(plan: Arc<Plan>, broker: Option<Proc>, me: Proc) -> WindowSamples {
    tokio::time::sleep_until(plan.clock.instant(plan.window_start_ns).into()).await;
    let m0 = procfs::machine_busy_seconds().ok();
    let b0 = broker.and_then(|b| b.sample().ok());
    let g0 = me.sample().ok();
    tokio::time::sleep_until(plan.clock.instant(plan.window_end_ns).into()).await;
    let m1 = procfs::machine_busy_seconds().ok();
    let b1 = broker.and_then(|b| b.sample().ok());
    let g1 = me.sample().ok();
    WindowSamples {
        broker: b0.zip(b1),
        generator: g0.zip(g1),
        machine_busy_s: m0.zip(m1).map(|(a, b)| (b - a).max(0.0)),
    }
}

/// Live counters a subscriber publishes for the drain phase.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// Distinct in-window messages received.
    pub(crate) window: AtomicU64,
    /// Every delivery received.
    pub(crate) total: AtomicU64,
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
