//! Broker limits. Sizes default to AWS IoT Core's; rates default to unlimited.

use std::time::Duration;

/// Every limit the broker enforces, each configurable.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest PUBLISH payload accepted (AWS: 128 KB).
    pub max_payload: usize,
    /// Largest topic name or filter in bytes (AWS: 256).
    pub max_topic_bytes: usize,
    /// Most '/' characters in a topic (AWS: 7).
    pub max_topic_slashes: usize,
    /// Longest client id in bytes (AWS: 128).
    pub max_client_id: usize,
    /// Keep-alive values are clamped to this range (AWS: 30..=1200 s; 0 becomes the maximum).
    pub keep_alive_min: u16,
    pub keep_alive_max: u16,
    /// Subscriptions per session (AWS: 50).
    pub max_subscriptions: usize,
    /// Filters per SUBSCRIBE packet (AWS: 8).
    pub max_filters_per_subscribe: usize,
    /// Unacknowledged QoS 1/2 messages we send to a client at once (further ones queue).
    pub max_inflight: u16,
    /// Receive Maximum we announce: unacknowledged QoS 2 publishes a client may have open.
    pub receive_maximum: u16,
    /// Topic aliases a client may use towards us (AWS: 8).
    pub topic_alias_maximum: u16,
    /// Messages queued per session before new ones are dropped.
    pub max_queued_messages: usize,
    /// Session expiry for MQTT 3.1.1 clean-session=0 sessions (AWS: 1 h).
    pub default_session_expiry: u32,
    /// Longest session expiry granted (AWS: 7 days).
    pub max_session_expiry: u32,
    /// Publishes per second per connection; None = unlimited (AWS offers 100).
    pub max_publish_rate: Option<u32>,
    /// Time a new connection has to send CONNECT.
    pub connect_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload: 128 * 1024,
            max_topic_bytes: 256,
            max_topic_slashes: 7,
            max_client_id: 128,
            keep_alive_min: 30,
            keep_alive_max: 1200,
            max_subscriptions: 50,
            max_filters_per_subscribe: 8,
            max_inflight: 100,
            receive_maximum: 100,
            topic_alias_maximum: 8,
            max_queued_messages: 10_000,
            default_session_expiry: 3600,
            max_session_expiry: 7 * 24 * 3600,
            max_publish_rate: None,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// Largest packet accepted: the payload limit plus room for topic and properties.
    pub fn max_packet_size(&self) -> usize {
        self.max_payload + 8 * 1024
    }

    /// Apply the keep-alive clamp.
    pub fn clamp_keep_alive(&self, requested: u16) -> u16 {
        if requested == 0 || requested > self.keep_alive_max {
            self.keep_alive_max
        } else {
            requested.max(self.keep_alive_min)
        }
    }

    /// Whether a topic name or filter respects the size limits.
    pub fn topic_within_limits(&self, topic: &str) -> bool {
        topic.len() <= self.max_topic_bytes && topic.bytes().filter(|b| *b == b'/').count() <= self.max_topic_slashes
    }
}
