//! One subscribing connection: receive, acknowledge QoS 1, and account for
//! every delivery (window, duplicates, known drops, latency).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use mqtt::{Packet, PubResp, QoS};
use tokio::sync::watch;

use super::{Plan, Progress, PubResult};
use crate::cli::TopicMode;
use crate::client::Conn;
use crate::payload::{self, Stamp};
use crate::stats::Histogram;

/// What one subscriber saw.
#[derive(Debug)]
pub(crate) struct SubResult {
    pub(crate) latency: Histogram,
    pub(crate) received_total: u64,
    /// Distinct messages whose send time is in the window.
    pub(crate) received_window: u64,
    /// Messages that arrived while the window was open (any send time).
    pub(crate) arrived_in_window: u64,
    /// A sequence number at or below one already seen from that publisher.
    pub(crate) duplicates: u64,
    /// Per publisher: distinct in-window messages received.
    pub(crate) window_by_publisher: Vec<u64>,
    /// Per publisher: highest sequence number received.
    pub(crate) last_seq: Vec<Option<u64>>,
    /// Payloads that are not ours.
    pub(crate) foreign: u64,
    pub(crate) error: Option<String>,
}

/// Receive until told to stop, acknowledging QoS 1 deliveries.
pub(crate) async fn subscriber(
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
        window_by_publisher: vec![0; plan.publishers],
        last_seq: vec![None; plan.publishers],
        foreign: 0,
        error: None,
    };
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
                    on_message(&mut r, &plan, &p.payload, arrived_ns);
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    r.error = Some(format!("subscriber: {e:#}"));
                    return r;
                }
            }
        }
        live.window.fetch_add(r.received_window - before_window, Ordering::Relaxed);
        live.total.fetch_add(r.received_total - before_total, Ordering::Relaxed);
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
fn on_message(r: &mut SubResult, plan: &Plan, payload: &[u8], arrived_ns: u64) {
    let Some(Stamp { sent_ns, publisher, seq }) = payload::parse(payload) else {
        r.foreign += 1;
        return;
    };
    let Some(last) = r.last_seq.get_mut(publisher as usize) else {
        r.foreign += 1;
        return;
    };
    r.received_total += 1;
    if last.is_some_and(|l| seq <= l) {
        r.duplicates += 1;
        return;
    }
    *last = Some(seq);
    if plan.in_window(sent_ns) {
        r.received_window += 1;
        r.window_by_publisher[publisher as usize] += 1;
    }
    if plan.in_window(arrived_ns) {
        r.arrived_in_window += 1;
        r.latency.record(arrived_ns.saturating_sub(sent_ns));
    }
}

/// Known drops of in-window messages: for each subscriber and publisher,
/// the window's sequence numbers up to the highest one the subscriber saw,
/// minus those it received (order is kept per publisher, so anything
/// skipped below a received number will never come).
pub(crate) fn known_drops(pubs: &[PubResult], subs: &[SubResult], topic_mode: TopicMode) -> u64 {
    let mut dropped = 0;
    for (si, s) in subs.iter().enumerate() {
        for (pi, p) in pubs.iter().enumerate() {
            if topic_mode == TopicMode::Pairs && pi != si {
                continue;
            }
            let (Some(first), Some(seen)) = (p.first_window_seq, s.last_seq[pi]) else {
                continue;
            };
            if seen < first || p.sent_window == 0 {
                continue;
            }
            let last_in_window = first + p.sent_window - 1;
            let below = seen.min(last_in_window) - first + 1;
            dropped += below.saturating_sub(s.window_by_publisher[pi]);
        }
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::Clock;
    use bytes::BytesMut;

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

    fn empty(publishers: usize) -> SubResult {
        SubResult {
            latency: Histogram::new(),
            received_total: 0,
            received_window: 0,
            arrived_in_window: 0,
            duplicates: 0,
            window_by_publisher: vec![0; publishers],
            last_seq: vec![None; publishers],
            foreign: 0,
            error: None,
        }
    }

    #[test]
    fn accounting() {
        let plan = plan();
        let mut r = empty(2);
        let mut scratch = BytesMut::new();
        let mut deliver = |r: &mut SubResult, sent_ns, publisher, seq, at| {
            let p = payload::build(&mut scratch, 64, Stamp { sent_ns, publisher, seq });
            on_message(r, &plan, &p, at);
        };
        deliver(&mut r, 500, 0, 0, 900); // warm-up, not in window
        deliver(&mut r, 1_100, 0, 1, 1_300); // window
        deliver(&mut r, 1_200, 0, 1, 1_400); // duplicate
        deliver(&mut r, 1_500, 0, 4, 2_500); // 2 and 3 dropped; arrives after the window
        deliver(&mut r, 900, 1, 3, 1_700); // sent in warm-up, arrives in window
        deliver(&mut r, 1_600, 1, 4, 1_800); // other publisher
        deliver(&mut r, 1_600, 9, 0, 1_700); // unknown publisher
        assert_eq!(r.received_total, 6); // duplicates included
        assert_eq!(r.received_window, 3);
        assert_eq!(r.arrived_in_window, 3);
        assert_eq!(r.duplicates, 1);
        assert_eq!(r.foreign, 1);
        assert_eq!(r.window_by_publisher, vec![2, 1]);
        // Latency of what arrived in the window: 200, 800, 200 ns.
        assert_eq!(r.latency.len(), 3);
        assert_eq!(r.latency.quantile(1.0), Some(800));
        on_message(&mut r, &plan, b"short", 1_500);
        assert_eq!(r.foreign, 2);

        // Publisher 0 sent seqs 1..=6 in the window, publisher 1 sent 4..=9.
        let p = |first, n| PubResult { first_window_seq: Some(first), sent_window: n, ..PubResult::default() };
        let pubs = [p(1, 6), p(4, 6)];
        // Subscriber saw 0:{1,4} (2, 3 known dropped; 5, 6 maybe late) and 1:{4}.
        assert_eq!(known_drops(&pubs, std::slice::from_ref(&r), TopicMode::FanIn), 2);
        assert_eq!(known_drops(&pubs, &[r], TopicMode::Pairs), 2);
    }
}
