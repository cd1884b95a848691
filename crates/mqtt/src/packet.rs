//! The packet model shared by both protocol versions.
//!
//! Fields that exist only in MQTT 5 (properties, reason codes) are present on
//! every packet; a 3.1.1 decoder leaves them at their defaults and a 3.1.1
//! encoder drops or downgrades them.

use bytes::Bytes;

use crate::properties::Properties;

/// Protocol level from CONNECT: 4 is MQTT 3.1.1, 5 is MQTT 5.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// MQTT 3.1.1 (protocol level 4).
    V311,
    /// MQTT 5.0 (protocol level 5).
    V5,
}

impl Protocol {
    /// The protocol level byte sent in CONNECT.
    pub fn level(self) -> u8 {
        match self {
            Protocol::V311 => 4,
            Protocol::V5 => 5,
        }
    }
}

/// Quality of service of a publication or subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QoS {
    /// QoS 0: fire and forget.
    AtMostOnce = 0,
    /// QoS 1: acknowledged with PUBACK, may be duplicated.
    AtLeastOnce = 1,
    /// QoS 2: four-way handshake, delivered exactly once.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for its wire value, `None` for 3 and above.
    pub fn from_u8(v: u8) -> Option<QoS> {
        match v {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// One MQTT control packet, of either protocol version.
// CONNECT is the largest variant (two inline `Properties`); it is sent once
// per connection, so boxing it would buy little and change the public API.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT (type 1), client to server.
    Connect(Connect),
    /// CONNACK (type 2), server to client.
    ConnAck(ConnAck),
    /// PUBLISH (type 3), both directions.
    Publish(Publish),
    /// PUBACK (type 4): QoS 1 acknowledgement.
    PubAck(PubResp),
    /// PUBREC (type 5): QoS 2, publish received.
    PubRec(PubResp),
    /// PUBREL (type 6): QoS 2, publish release.
    PubRel(PubResp),
    /// PUBCOMP (type 7): QoS 2, publish complete.
    PubComp(PubResp),
    /// SUBSCRIBE (type 8), client to server.
    Subscribe(Subscribe),
    /// SUBACK (type 9), server to client.
    SubAck(SubAck),
    /// UNSUBSCRIBE (type 10), client to server.
    Unsubscribe(Unsubscribe),
    /// UNSUBACK (type 11), server to client.
    UnsubAck(UnsubAck),
    /// PINGREQ (type 12), client to server.
    PingReq,
    /// PINGRESP (type 13), server to client.
    PingResp,
    /// DISCONNECT (type 14); both directions in MQTT 5.
    Disconnect(Disconnect),
    /// AUTH (type 15), MQTT 5 only.
    Auth(Auth),
}

impl Packet {
    /// The packet type's name as the specification writes it ("PUBLISH"),
    /// for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Packet::Connect(_) => "CONNECT",
            Packet::ConnAck(_) => "CONNACK",
            Packet::Publish(_) => "PUBLISH",
            Packet::PubAck(_) => "PUBACK",
            Packet::PubRec(_) => "PUBREC",
            Packet::PubRel(_) => "PUBREL",
            Packet::PubComp(_) => "PUBCOMP",
            Packet::Subscribe(_) => "SUBSCRIBE",
            Packet::SubAck(_) => "SUBACK",
            Packet::Unsubscribe(_) => "UNSUBSCRIBE",
            Packet::UnsubAck(_) => "UNSUBACK",
            Packet::PingReq => "PINGREQ",
            Packet::PingResp => "PINGRESP",
            Packet::Disconnect(_) => "DISCONNECT",
            Packet::Auth(_) => "AUTH",
        }
    }
}

/// CONNECT: the first packet a client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// Protocol version from the CONNECT's own protocol level; the encoder
    /// writes this level regardless of the version it is asked for.
    pub protocol: Protocol,
    /// "Clean Session" in 3.1.1, "Clean Start" in 5.
    pub clean_start: bool,
    /// Keep alive in seconds (0 disables it).
    pub keep_alive: u16,
    /// May be empty (the server then assigns one, or refuses for 3.1.1 with clean_session=0).
    pub client_id: String,
    /// Will message, published when the connection ends without DISCONNECT.
    pub will: Option<Will>,
    /// User name (a UTF-8 string).
    pub username: Option<String>,
    /// Password (binary data). MQTT 3.1.1 allows it only with a user name.
    pub password: Option<Bytes>,
    /// CONNECT properties (MQTT 5).
    pub properties: Properties,
}

/// The will message carried by CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// Will topic (a valid topic name: no wildcards).
    pub topic: String,
    /// Will payload.
    pub payload: Bytes,
    /// QoS to publish the will with.
    pub qos: QoS,
    /// Whether the will is published retained.
    pub retain: bool,
    /// Will properties (MQTT 5): will delay interval, message expiry, content type, …
    pub properties: Properties,
}

/// CONNACK: the server's answer to CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    /// Whether the server resumed a stored session (must be false when
    /// `code` is not 0).
    pub session_present: bool,
    /// MQTT 5 reason code; encoded as the nearest 3.1.1 return code for 3.1.1 clients.
    /// A 3.1.1 CONNACK decodes to the canonical MQTT 5 code for its return
    /// code (0x00, 0x84, 0x85, 0x88, 0x86, 0x87).
    pub code: u8,
    /// CONNACK properties (MQTT 5).
    pub properties: Properties,
}

/// PUBLISH: an application message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// Redelivery flag; only meaningful (and only encoded) for QoS > 0.
    pub dup: bool,
    /// Delivery QoS.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// May be empty in MQTT 5 when a topic alias is used.
    pub topic: String,
    /// Present exactly when qos > 0 (0 otherwise).
    pub packet_id: u16,
    /// Application payload; when decoded, a zero-copy slice of the frame.
    pub payload: Bytes,
    /// PUBLISH properties (MQTT 5).
    pub properties: Properties,
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP share one shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubResp {
    /// Packet identifier of the PUBLISH (or PUBREL) being answered.
    pub packet_id: u16,
    /// MQTT 5 reason code (0 = success); not encoded for 3.1.1.
    pub reason: u8,
    /// Properties (MQTT 5): reason string and user properties.
    pub properties: Properties,
}

impl PubResp {
    /// A successful response (reason 0, no properties).
    pub fn new(packet_id: u16) -> Self {
        PubResp { packet_id, reason: 0, properties: Properties::default() }
    }
    /// A response with the given MQTT 5 reason code and no properties.
    pub fn with_reason(packet_id: u16, reason: u8) -> Self {
        PubResp { packet_id, reason, properties: Properties::default() }
    }
}

/// Subscription options of one SUBSCRIBE entry. In 3.1.1 only `qos` exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubOptions {
    /// Maximum QoS the subscriber accepts.
    pub qos: QoS,
    /// Do not forward the client's own publications back to it (MQTT 5).
    pub no_local: bool,
    /// Keep the RETAIN flag of forwarded messages as published (MQTT 5).
    pub retain_as_published: bool,
    /// 0: send retained on subscribe; 1: only if the subscription is new; 2: never.
    pub retain_handling: u8,
}

impl SubOptions {
    /// Options with the given QoS and every MQTT 5 option at its default.
    pub fn qos(qos: QoS) -> Self {
        SubOptions { qos, no_local: false, retain_as_published: false, retain_handling: 0 }
    }
}

/// SUBSCRIBE: one or more topic filters with their options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// Non-zero packet identifier.
    pub packet_id: u16,
    /// At least one `(filter, options)`. Filters are not validated by the
    /// decoder; see [`crate::topic::valid_topic_filter`].
    pub filters: Vec<(String, SubOptions)>,
    /// Properties (MQTT 5): subscription identifier and user properties.
    pub properties: Properties,
}

/// SUBACK: one result per filter of a SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    /// Packet identifier of the SUBSCRIBE.
    pub packet_id: u16,
    /// One per filter: granted QoS (0,1,2) or an MQTT 5 failure code (>= 0x80);
    /// failures are encoded as 0x80 for 3.1.1.
    pub reasons: Vec<u8>,
    /// Properties (MQTT 5): reason string and user properties.
    pub properties: Properties,
}

/// UNSUBSCRIBE: one or more topic filters to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    /// Non-zero packet identifier.
    pub packet_id: u16,
    /// At least one filter (not validated by the decoder).
    pub filters: Vec<String>,
    /// Properties (MQTT 5): user properties only.
    pub properties: Properties,
}

/// UNSUBACK: acknowledges an UNSUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    /// Packet identifier of the UNSUBSCRIBE.
    pub packet_id: u16,
    /// One per filter (MQTT 5 only; empty for 3.1.1).
    pub reasons: Vec<u8>,
    /// Properties (MQTT 5): reason string and user properties.
    pub properties: Properties,
}

/// DISCONNECT. In 3.1.1 it has no body and only the client sends it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disconnect {
    /// MQTT 5 reason code (0 = normal disconnection); not encoded for 3.1.1.
    pub reason: u8,
    /// Properties (MQTT 5): session expiry, server reference, reason
    /// string, user properties.
    pub properties: Properties,
}

/// AUTH (MQTT 5 only): extended authentication exchange.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Auth {
    /// 0x00 success, 0x18 continue authentication, 0x19 re-authenticate.
    pub reason: u8,
    /// Properties: authentication method and data, reason string, user
    /// properties.
    pub properties: Properties,
}
