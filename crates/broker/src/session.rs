//! Session state: what MQTT keeps for a client id between and during its
//! connections — subscriptions, the outgoing queue, messages in flight.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use mqtt::QoS;
use parking_lot::Mutex;
use tokio::sync::{mpsc, Notify};

use crate::message::Message;
use crate::tree::SubEntry;

/// A message waiting for (or in) delivery to one session.
#[derive(Debug, Clone)]
pub struct Queued {
    pub msg: Arc<Message>,
    /// Delivery QoS: the minimum of the message's and the subscription's.
    pub qos: QoS,
    /// RETAIN flag as delivered.
    pub retain: bool,
    pub subscription_ids: Vec<u32>,
    /// Sequence number in the durable queue; 0 when not persisted.
    pub seq: u64,
    /// May have been sent before (recovered after a restart): send with DUP.
    pub dup: bool,
}

/// A QoS 1/2 message sent and not yet fully acknowledged.
#[derive(Debug, Clone)]
pub struct Inflight {
    pub queued: Queued,
    /// QoS 2: PUBREC received, PUBREL sent, waiting for PUBCOMP.
    pub released: bool,
}

/// Orders the broker can give a live connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Close the connection with this MQTT 5 reason code.
    Kick(u8),
}

/// How the broker reaches the connection currently attached to a session.
#[derive(Debug)]
pub struct ConnLink {
    pub conn_id: u64,
    pub control: mpsc::UnboundedSender<Control>,
    pub principal_id: Arc<str>,
}

/// Mutable session state, behind the session's lock.
#[derive(Debug, Default)]
pub struct SessionState {
    pub subscriptions: HashMap<String, SubEntry>,
    pub queue: VecDeque<Queued>,
    pub inflight: BTreeMap<u16, Inflight>,
    /// QoS 2 packet ids received (PUBREC sent) awaiting PUBREL.
    pub incoming_qos2: HashSet<u16>,
    next_packet_id: u16,
    /// Seconds the session outlives its connection; 0 = ends with it.
    pub expiry_interval: u32,
    pub conn: Option<ConnLink>,
    /// Incremented each time a connection attaches (expiry and will timers check it).
    pub generation: u64,
    next_seq: u64,
    /// Removed from the registry: nothing may be queued any more.
    pub discarded: bool,
}

impl SessionState {
    /// Whether the session is persisted (it outlives its connection).
    pub fn durable(&self) -> bool {
        self.expiry_interval > 0
    }

    /// Next sequence number for the durable queue.
    pub fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Continue numbering after recovered messages.
    pub fn set_seq_floor(&mut self, seq: u64) {
        self.next_seq = self.next_seq.max(seq);
    }

    /// A packet id not in use by an in-flight message.
    pub fn alloc_packet_id(&mut self) -> u16 {
        loop {
            self.next_packet_id = self.next_packet_id.wrapping_add(1);
            if self.next_packet_id != 0 && !self.inflight.contains_key(&self.next_packet_id) {
                return self.next_packet_id;
            }
        }
    }
}

/// A session, shared by the registry, the router and its connection.
#[derive(Debug)]
pub struct Session {
    pub client_id: Arc<str>,
    pub state: Mutex<SessionState>,
    /// Wakes the attached connection when messages were queued.
    pub notify: Notify,
}

impl Session {
    pub fn new(client_id: Arc<str>, expiry_interval: u32) -> Arc<Session> {
        Arc::new(Session {
            client_id,
            state: Mutex::new(SessionState { expiry_interval, ..Default::default() }),
            notify: Notify::new(),
        })
    }
}
