//! Broker durability: what the MQTT broker must find again after a crash.
//!
//! The broker submits [`BrokerOp`]s without waiting (they are applied in
//! submission order) and awaits [`BrokerStore::sync`] before it acknowledges
//! anything that depends on them, so one fsync-free commit serves many
//! messages under load while an acknowledged message is never lost.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

/// A message as stored: in a persistent session's queue or as a retained message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    pub topic: String,
    #[serde(skip)]
    pub payload: Vec<u8>,
    pub qos: u8,
    pub retain: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_format_indicator: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_data: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_properties: Vec<(String, String)>,
    /// Absolute expiry (ms since epoch) from the MQTT 5 message expiry interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
    /// Client id of the publisher (for MQTT 5 no-local).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    /// When the broker accepted it (ms since epoch).
    #[serde(default)]
    pub received_at_ms: u64,
    /// In a session queue: the subscription identifiers to deliver it with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscription_ids: Vec<u32>,
    /// In a session queue, QoS 2: PUBREC received and PUBREL sent under this
    /// packet id; after a restart the broker resends the PUBREL, not the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_packet_id: Option<u16>,
}

/// One subscription of a persistent session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSubscription {
    pub filter: String,
    pub qos: u8,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub retain_handling: u8,
    pub subscription_id: Option<u32>,
}

/// A persistent session as found at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub client_id: String,
    /// MQTT 5 session expiry interval in seconds (u32::MAX: never).
    pub expiry_interval: u32,
    /// When its last connection ended (ms since epoch); 0 if it was connected at the crash.
    pub disconnected_at_ms: u64,
    pub subscriptions: Vec<StoredSubscription>,
    /// Queued and in-flight messages in delivery order, with their sequence numbers.
    pub messages: Vec<(u64, StoredMessage)>,
}

/// Everything the broker reloads at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerSnapshot {
    pub sessions: Vec<StoredSession>,
    pub retained: Vec<StoredMessage>,
}

/// A change to broker state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerOp {
    /// Create or update a persistent session.
    PutSession {
        client_id: String,
        expiry_interval: u32,
        disconnected_at_ms: u64,
    },
    /// Remove a session with its subscriptions and messages.
    DeleteSession {
        client_id: String,
    },
    PutSubscription {
        client_id: String,
        subscription: StoredSubscription,
    },
    DeleteSubscription {
        client_id: String,
        filter: String,
    },
    /// Append a message to a session's queue under a per-session sequence number.
    Enqueue {
        client_id: String,
        seq: u64,
        message: StoredMessage,
    },
    /// QoS 2: the client sent PUBREC for the message and PUBREL went out.
    Release {
        client_id: String,
        seq: u64,
        packet_id: u16,
    },
    /// The message was delivered and acknowledged (or dropped): forget it.
    Ack {
        client_id: String,
        seq: u64,
    },
    /// A rule action still to run (at-least-once): `body` is the serialised job.
    PutJob {
        id: u64,
        body: String,
    },
    /// The job ran (or was given up and handed to the error action).
    DeleteJob {
        id: u64,
    },
    SetRetained(StoredMessage),
    ClearRetained {
        topic: String,
    },
}

/// A future that resolves once everything submitted before it is durable.
pub type SyncFuture = Pin<Box<dyn Future<Output = crate::Result<()>> + Send>>;

/// Where broker state is kept.
pub trait BrokerStore: Send + Sync + 'static {
    /// Load everything at start-up.
    fn load(&self) -> crate::Result<BrokerSnapshot>;
    /// Queue a change; never blocks; changes apply in submission order.
    fn submit(&self, op: BrokerOp);
    /// Resolves when all previously submitted changes are committed.
    fn sync(&self) -> SyncFuture;
}
