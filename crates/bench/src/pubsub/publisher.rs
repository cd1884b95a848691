//! One publishing connection: timestamped, sequenced payloads at a planned
//! rate (or as fast as the socket takes them), batched per flush, with a
//! bounded window of unacknowledged QoS 1 publishes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use mqtt::{Packet, Properties, Publish, QoS};
use tokio::sync::Semaphore;

use super::Plan;
use crate::client::Conn;
use crate::payload::{self, Stamp};

/// What one publisher did.
#[derive(Debug, Default)]
pub(crate) struct PubResult {
    pub(crate) sent_total: u64,
    pub(crate) sent_window: u64,
    /// Sequence number of the first message sent in the window (the
    /// window's messages are `first..first + sent_window`).
    pub(crate) first_window_seq: Option<u64>,
    pub(crate) acked: u64,
    /// PUBACKs with a failure reason code (MQTT 5).
    pub(crate) ack_errors: u64,
    pub(crate) error: Option<String>,
}

/// Publish until the window ends, at the planned rate, keeping at most
/// `inflight` QoS 1 messages unacknowledged.
pub(crate) async fn publisher(index: usize, conn: Conn, plan: Arc<Plan>, topic: String) -> PubResult {
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
    let phase_ns = if rate > 0.0 { (1e9 / rate * index as f64 / plan.publishers as f64) as u64 } else { 0 };
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
                tokio::time::sleep_until(plan.clock.instant(next_ns.min(plan.window_end_ns)).into()).await;
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
                                r.error = Some(format!("publisher {index}: connection lost while waiting for PUBACKs"));
                                break 'publish;
                            }
                        }
                    }
                }
                packet_id = packet_id.checked_add(1).unwrap_or(1);
            }
            let sent_ns = plan.clock.now_ns();
            let stamp = Stamp { sent_ns, publisher: index as u32, seq: r.sent_total };
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
                r.first_window_seq.get_or_insert(r.sent_total - 1);
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
                r.error = Some(format!("publisher {index}: connection lost while waiting for the last PUBACKs"))
            }
            Err(_) => r.error = Some(format!("publisher {index}: PUBACKs still missing 10 s after publishing stopped")),
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
