//! An application message as it travels through the router.

use std::sync::Arc;

use bytes::Bytes;
use mqtt::{Properties, QoS};
use store::StoredMessage;

/// The connection a message came from. Compared by identity, so messages
/// stay comparable.
#[derive(Debug, Clone)]
pub struct Origin(pub Arc<crate::ClientCtx>);

impl PartialEq for Origin {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Origin {}

/// A published message, shared (behind `Arc`) by every session it goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: Arc<str>,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// Properties carried to subscribers (payload format, content type,
    /// response topic, correlation data, user properties).
    pub properties: Properties,
    /// Absolute expiry (ms since epoch) from the message expiry interval.
    pub expires_at_ms: Option<u64>,
    /// Client id of the publisher (MQTT 5 no-local); None for system messages.
    pub publisher: Option<Arc<str>>,
    /// Principal (certificate id) of the publisher, for rules' `principal()`; not persisted.
    pub principal: Option<Arc<str>>,
    /// The publishing connection, for built-in services that act on the
    /// requester's behalf (and ask its policy); not persisted.
    pub origin: Option<Origin>,
    pub received_at_ms: u64,
}

impl Message {
    /// A message originated by the server itself (events, service replies).
    pub fn system(topic: &str, payload: impl Into<Bytes>, qos: QoS) -> Message {
        Message {
            topic: topic.into(),
            payload: payload.into(),
            qos,
            retain: false,
            properties: Properties::default(),
            expires_at_ms: None,
            publisher: None,
            principal: None,
            origin: None,
            received_at_ms: store::now_ms(),
        }
    }

    /// Build from a client's PUBLISH (only forwardable properties are kept).
    pub fn from_publish(p: &mqtt::Publish, topic: Arc<str>, publisher: Option<Arc<str>>, now_ms: u64) -> Message {
        let src = &p.properties;
        let properties = Properties {
            payload_format_indicator: src.payload_format_indicator,
            content_type: src.content_type.clone(),
            response_topic: src.response_topic.clone(),
            correlation_data: src.correlation_data.clone(),
            user_properties: src.user_properties.clone(),
            ..Properties::default()
        };
        Message {
            topic,
            payload: p.payload.clone(),
            qos: p.qos,
            retain: p.retain,
            properties,
            expires_at_ms: src.message_expiry_interval.map(|s| now_ms + u64::from(s) * 1000),
            publisher,
            principal: None,
            origin: None,
            received_at_ms: now_ms,
        }
    }

    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_some_and(|e| e <= now_ms)
    }

    pub fn to_stored(&self) -> StoredMessage {
        StoredMessage {
            topic: self.topic.to_string(),
            payload: self.payload.to_vec(),
            qos: self.qos as u8,
            retain: self.retain,
            payload_format_indicator: self.properties.payload_format_indicator,
            content_type: self.properties.content_type.clone(),
            response_topic: self.properties.response_topic.clone(),
            correlation_data: self.properties.correlation_data.as_ref().map(|b| b.to_vec()),
            user_properties: self.properties.user_properties.clone(),
            expires_at_ms: self.expires_at_ms,
            publisher: self.publisher.as_ref().map(|p| p.to_string()),
            received_at_ms: self.received_at_ms,
            subscription_ids: Vec::new(),
            released_packet_id: None,
        }
    }

    pub fn from_stored(s: StoredMessage) -> Message {
        Message {
            topic: s.topic.into(),
            payload: Bytes::from(s.payload),
            qos: QoS::from_u8(s.qos).unwrap_or(QoS::AtLeastOnce),
            retain: s.retain,
            properties: Properties {
                payload_format_indicator: s.payload_format_indicator,
                content_type: s.content_type,
                response_topic: s.response_topic,
                correlation_data: s.correlation_data.map(Bytes::from),
                user_properties: s.user_properties,
                ..Properties::default()
            },
            expires_at_ms: s.expires_at_ms,
            publisher: s.publisher.map(Into::into),
            principal: None,
            origin: None,
            received_at_ms: s.received_at_ms,
        }
    }
}
