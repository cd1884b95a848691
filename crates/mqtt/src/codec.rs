//! Encoder and incremental decoder for MQTT 3.1.1 and 5.0 control packets.
//!
//! # Decoding
//!
//! The decoder is written for bytes that come straight from the internet. It
//! follows a strict reader discipline: every read is bounds-checked against
//! the frame (never the socket buffer), every length prefix is checked before
//! anything is sliced, and a frame must be consumed exactly — trailing bytes
//! are an error. [`frame_len`] looks only at the fixed header, so an oversized
//! packet is refused before its body has been buffered.
//!
//! What the decoder checks (each violation is a [`DecodeError`] whose
//! [`reason_code`](DecodeError::reason_code) is what an MQTT 5 peer should be
//! told in DISCONNECT or CONNACK):
//!
//! * fixed-header flags per packet type, PUBLISH QoS 3, DUP on QoS 0;
//! * packet identifier 0 where one is required;
//! * UTF-8 strings are valid UTF-8 without U+0000 (MQTT-1.5.4);
//! * CONNECT: protocol name and level, reserved flag, will flags, password
//!   without user name (3.1.1 only);
//! * PUBLISH and will topic names: no wildcards, non-empty (except a v5
//!   PUBLISH carrying a topic alias);
//! * SUBSCRIBE / UNSUBSCRIBE: at least one filter, subscription option bits;
//! * v5 properties: identifier known, allowed on that packet type, not
//!   repeated (except user property, and subscription identifier on PUBLISH),
//!   values in range (topic alias, receive maximum and maximum packet size are
//!   non-zero, flag-like properties are 0 or 1, subscription identifier is
//!   non-zero, authentication data needs an authentication method).
//!
//! What it deliberately does **not** check, because the answer is a reason
//! code in an acknowledgement rather than a dropped connection, or depends on
//! connection state: topic *filter* syntax (use
//! [`topic::valid_topic_filter`](crate::topic::valid_topic_filter) and answer
//! 0x8F per filter), topic alias ranges, whether a client may send a given
//! packet type or property in its direction (e.g. a client must not send a
//! subscription identifier on PUBLISH), and reason-code values (except where
//! 3.1.1 defines a closed set).
//!
//! # Encoding
//!
//! [`encode`] writes a packet for one protocol version, downgrading MQTT 5
//! fields for 3.1.1 peers. Properties that the MQTT 5 specification does not
//! allow on the packet type being encoded are silently left out, so a
//! broker may forward a PUBLISH's properties without filtering them itself.
//! The encoder refuses (with an [`EncodeError`], writing nothing) any packet
//! the decoder would reject, so whatever `encode` emits, `decode` accepts.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::packet::{
    Auth, ConnAck, Connect, Disconnect, Packet, Protocol, PubResp, Publish, QoS, SubAck, SubOptions, Subscribe,
    UnsubAck, Unsubscribe, Will,
};
use crate::properties::Properties;
use crate::reason;

/// Largest value a variable byte integer can hold, and so the largest
/// remaining length of a packet: 268,435,455.
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// Largest length of a UTF-8 string or binary data field (two-byte prefix).
pub const MAX_FIELD_LENGTH: usize = 65_535;

const MAX_VARINT: u32 = 268_435_455;

/// Why bytes from a peer are not an acceptable MQTT packet.
///
/// Every decode error is fatal for the connection: the caller should (for
/// MQTT 5 peers) send DISCONNECT — or CONNACK when the offending packet was
/// CONNECT — with [`reason_code`](DecodeError::reason_code), then close.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum DecodeError {
    /// The packet (fixed header included) is larger than the allowed
    /// maximum. Reported from the fixed header alone, before the body has
    /// arrived. Reason code 0x95.
    #[error("packet of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge {
        /// Total size of the packet as announced by its fixed header.
        size: usize,
        /// The limit that was in force.
        max: usize,
    },
    /// The bytes cannot be parsed as the packet they claim to be (bad
    /// lengths, reserved bits set, trailing bytes, ...). Reason code 0x81.
    #[error("malformed packet: {0}")]
    MalformedPacket(&'static str),
    /// The packet parses but carries something the protocol forbids
    /// (duplicate or misplaced property, packet identifier 0, ...).
    /// Reason code 0x82.
    #[error("protocol error: {0}")]
    ProtocolError(&'static str),
    /// CONNECT names a protocol level this crate does not speak (3 for
    /// MQTT 3.1, or anything other than 4 and 5). The broker should answer
    /// CONNACK return code 0x01 (3.1.1 format) and close. Reason code 0x84.
    #[error("unsupported protocol version {0}")]
    UnsupportedProtocolVersion(u8),
    /// A UTF-8 encoded string is not valid UTF-8 or contains U+0000
    /// (MQTT-1.5.4-1, MQTT-1.5.4-2). Reason code 0x81 (malformed).
    #[error("invalid UTF-8 string")]
    InvalidUtf8,
    /// A PUBLISH or will topic name contains a wildcard, or is empty where
    /// that is not allowed. Reason code 0x90.
    #[error("invalid topic name")]
    TopicNameInvalid,
}

impl DecodeError {
    /// The MQTT 5 reason code to put in the DISCONNECT (or CONNACK, when the
    /// packet being decoded was CONNECT) that reports this error.
    pub fn reason_code(&self) -> u8 {
        match self {
            DecodeError::PacketTooLarge { .. } => reason::PACKET_TOO_LARGE,
            DecodeError::MalformedPacket(_) | DecodeError::InvalidUtf8 => reason::MALFORMED_PACKET,
            DecodeError::ProtocolError(_) => reason::PROTOCOL_ERROR,
            DecodeError::UnsupportedProtocolVersion(_) => reason::UNSUPPORTED_PROTOCOL_VERSION,
            DecodeError::TopicNameInvalid => reason::TOPIC_NAME_INVALID,
        }
    }
}

/// Why a packet cannot be encoded. Nothing is written to the buffer when
/// encoding fails.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum EncodeError {
    /// A UTF-8 string or binary data field is longer than 65,535 bytes.
    #[error("field of {len} bytes is longer than 65535 bytes")]
    FieldTooLong {
        /// Length of the offending field.
        len: usize,
    },
    /// The remaining length would exceed 268,435,455 bytes.
    #[error("packet remaining length {size} exceeds 268435455 bytes")]
    PacketTooLarge {
        /// The remaining length the packet would have.
        size: usize,
    },
    /// The packet cannot be expressed in the requested protocol version
    /// (AUTH in MQTT 3.1.1).
    #[error("not representable in this protocol version: {0}")]
    Unsupported(&'static str),
    /// The packet breaks a rule that the decoder enforces (packet identifier
    /// 0, no filters in SUBSCRIBE, U+0000 in a string, wildcard in a topic
    /// name, property value out of range, ...).
    #[error("invalid packet: {0}")]
    InvalidPacket(&'static str),
}

// ---------------------------------------------------------------------------
// Fixed header
// ---------------------------------------------------------------------------

/// Checks the first byte of a fixed header: packet type not reserved, flag
/// bits as the type requires. Version-independent checks only.
fn check_first_byte(first: u8) -> Result<(), DecodeError> {
    let flags = first & 0x0F;
    match first >> 4 {
        0 => Err(DecodeError::MalformedPacket("reserved packet type 0")),
        3 => {
            if (flags >> 1) & 0b11 == 3 {
                Err(DecodeError::MalformedPacket("PUBLISH with QoS 3"))
            } else {
                Ok(())
            }
        }
        6 | 8 | 10 => {
            if flags == 0b0010 {
                Ok(())
            } else {
                Err(DecodeError::MalformedPacket("fixed header flags of PUBREL, SUBSCRIBE or UNSUBSCRIBE must be 0010"))
            }
        }
        _ => {
            if flags == 0 {
                Ok(())
            } else {
                Err(DecodeError::MalformedPacket("reserved fixed header flags set"))
            }
        }
    }
}

/// Parses the fixed header at the front of `buf`: `(first byte, header
/// length, remaining length)`, or `None` when it is not complete yet.
fn fixed_header(buf: &[u8]) -> Result<Option<(u8, usize, usize)>, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    check_first_byte(first)?;
    let mut value = 0usize;
    for i in 0..4 {
        let Some(&b) = buf.get(1 + i) else {
            return Ok(None);
        };
        value |= usize::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((first, 2 + i, value)));
        }
    }
    Err(DecodeError::MalformedPacket("remaining length longer than 4 bytes"))
}

/// Two-pass framing check.
///
/// Returns `Ok(Some(total_frame_len))` once the fixed header is complete and
/// the whole frame (`total_frame_len` bytes, fixed header included) is in
/// `buf`; `Ok(None)` when more bytes are needed. Fails with
/// [`DecodeError::PacketTooLarge`] as soon as the remaining length says the
/// frame exceeds `max_packet_size` — before the body has arrived, so nothing
/// large is ever buffered — and with [`DecodeError::MalformedPacket`] for a
/// variable byte integer longer than 4 bytes or an invalid first byte
/// (reserved packet type, wrong fixed-header flags, PUBLISH QoS 3).
///
/// Non-minimal remaining-length encodings are accepted.
pub fn frame_len(buf: &[u8], max_packet_size: usize) -> Result<Option<usize>, DecodeError> {
    let Some((_, header_len, remaining)) = fixed_header(buf)? else {
        return Ok(None);
    };
    let total = header_len + remaining;
    if total > max_packet_size {
        return Err(DecodeError::PacketTooLarge { size: total, max: max_packet_size });
    }
    Ok((buf.len() >= total).then_some(total))
}

// ---------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------

/// Bounds-checked cursor over one frame (or one property block).
struct Reader {
    buf: Bytes,
    pos: usize,
    /// Error message when a read runs past the end.
    eof: &'static str,
}

impl Reader {
    fn new(buf: Bytes, eof: &'static str) -> Self {
        Reader { buf, pos: 0, eof }
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// End offset of an `n`-byte read, if it fits.
    fn end_of(&self, n: usize) -> Result<usize, DecodeError> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.buf.len() => Ok(end),
            _ => Err(DecodeError::MalformedPacket(self.eof)),
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let start = self.pos;
        let end = self.end_of(n)?;
        self.pos = end;
        self.buf.get(start..end).ok_or(DecodeError::MalformedPacket(self.eof))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let eof = self.eof;
        self.take(N)?.try_into().map_err(|_| DecodeError::MalformedPacket(eof))
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array::<2>()?))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array::<4>()?))
    }

    /// Variable byte integer, at most 4 bytes (non-minimal forms accepted).
    fn varint(&mut self) -> Result<u32, DecodeError> {
        let mut value = 0u32;
        for i in 0..4 {
            let b = self.u8()?;
            value |= u32::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::MalformedPacket("variable byte integer longer than 4 bytes"))
    }

    /// Zero-copy slice of the next `n` bytes.
    fn bytes(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        let start = self.pos;
        let end = self.end_of(n)?;
        self.pos = end;
        Ok(self.buf.slice(start..end))
    }

    /// Binary data: two-byte length, then that many bytes (zero-copy).
    fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let len = usize::from(self.u16()?);
        self.bytes(len)
    }

    /// UTF-8 encoded string (MQTT 1.5.4): valid UTF-8 and no U+0000.
    fn string(&mut self) -> Result<String, DecodeError> {
        let len = usize::from(self.u16()?);
        let raw = self.take(len)?;
        let s = std::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8)?;
        if s.contains('\0') {
            return Err(DecodeError::InvalidUtf8);
        }
        Ok(s.to_owned())
    }

    /// Everything that is left (zero-copy).
    fn rest(&mut self) -> Bytes {
        let start = self.pos.min(self.buf.len());
        self.pos = self.buf.len();
        self.buf.slice(start..)
    }

    /// A reader over the next `n` bytes.
    fn sub(&mut self, n: usize, eof: &'static str) -> Result<Reader, DecodeError> {
        let start = self.pos;
        let end = match self.pos.checked_add(n) {
            Some(end) if end <= self.buf.len() => end,
            _ => return Err(DecodeError::MalformedPacket("property length exceeds the packet")),
        };
        self.pos = end;
        Ok(Reader::new(self.buf.slice(start..end), eof))
    }

    /// Fails when bytes are left over.
    fn finish(&self) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::MalformedPacket("trailing bytes after the packet contents"))
        }
    }
}

// ---------------------------------------------------------------------------
// Properties: identifiers and where each may appear
// ---------------------------------------------------------------------------

mod id {
    pub const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
    pub const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    pub const CONTENT_TYPE: u8 = 0x03;
    pub const RESPONSE_TOPIC: u8 = 0x08;
    pub const CORRELATION_DATA: u8 = 0x09;
    pub const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
    pub const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    pub const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
    pub const SERVER_KEEP_ALIVE: u8 = 0x13;
    pub const AUTHENTICATION_METHOD: u8 = 0x15;
    pub const AUTHENTICATION_DATA: u8 = 0x16;
    pub const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
    pub const WILL_DELAY_INTERVAL: u8 = 0x18;
    pub const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
    pub const RESPONSE_INFORMATION: u8 = 0x1A;
    pub const SERVER_REFERENCE: u8 = 0x1C;
    pub const REASON_STRING: u8 = 0x1F;
    pub const RECEIVE_MAXIMUM: u8 = 0x21;
    pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    pub const TOPIC_ALIAS: u8 = 0x23;
    pub const MAXIMUM_QOS: u8 = 0x24;
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    pub const USER_PROPERTY: u8 = 0x26;
    pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    pub const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
    pub const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
    pub const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;
}

/// The place a property block sits in: each allows a different set of
/// properties (MQTT 5 table 2-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Connect,
    Will,
    ConnAck,
    Publish,
    PubResp,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

const fn bits(ids: &[u8]) -> u64 {
    let mut m = 0u64;
    let mut i = 0;
    while i < ids.len() {
        m |= 1u64 << ids[i];
        i += 1;
    }
    m
}

impl Ctx {
    /// Bit `n` set when property identifier `n` may appear.
    const fn mask(self) -> u64 {
        use id::*;
        match self {
            Ctx::Connect => bits(&[
                SESSION_EXPIRY_INTERVAL,
                AUTHENTICATION_METHOD,
                AUTHENTICATION_DATA,
                REQUEST_PROBLEM_INFORMATION,
                REQUEST_RESPONSE_INFORMATION,
                RECEIVE_MAXIMUM,
                TOPIC_ALIAS_MAXIMUM,
                USER_PROPERTY,
                MAXIMUM_PACKET_SIZE,
            ]),
            Ctx::Will => bits(&[
                PAYLOAD_FORMAT_INDICATOR,
                MESSAGE_EXPIRY_INTERVAL,
                CONTENT_TYPE,
                RESPONSE_TOPIC,
                CORRELATION_DATA,
                WILL_DELAY_INTERVAL,
                USER_PROPERTY,
            ]),
            Ctx::ConnAck => bits(&[
                SESSION_EXPIRY_INTERVAL,
                ASSIGNED_CLIENT_IDENTIFIER,
                SERVER_KEEP_ALIVE,
                AUTHENTICATION_METHOD,
                AUTHENTICATION_DATA,
                RESPONSE_INFORMATION,
                SERVER_REFERENCE,
                REASON_STRING,
                RECEIVE_MAXIMUM,
                TOPIC_ALIAS_MAXIMUM,
                MAXIMUM_QOS,
                RETAIN_AVAILABLE,
                USER_PROPERTY,
                MAXIMUM_PACKET_SIZE,
                WILDCARD_SUBSCRIPTION_AVAILABLE,
                SUBSCRIPTION_IDENTIFIER_AVAILABLE,
                SHARED_SUBSCRIPTION_AVAILABLE,
            ]),
            Ctx::Publish => bits(&[
                PAYLOAD_FORMAT_INDICATOR,
                MESSAGE_EXPIRY_INTERVAL,
                CONTENT_TYPE,
                RESPONSE_TOPIC,
                CORRELATION_DATA,
                SUBSCRIPTION_IDENTIFIER,
                TOPIC_ALIAS,
                USER_PROPERTY,
            ]),
            Ctx::PubResp | Ctx::SubAck | Ctx::UnsubAck => bits(&[REASON_STRING, USER_PROPERTY]),
            Ctx::Subscribe => bits(&[SUBSCRIPTION_IDENTIFIER, USER_PROPERTY]),
            Ctx::Unsubscribe => bits(&[USER_PROPERTY]),
            Ctx::Disconnect => bits(&[SESSION_EXPIRY_INTERVAL, SERVER_REFERENCE, REASON_STRING, USER_PROPERTY]),
            Ctx::Auth => bits(&[AUTHENTICATION_METHOD, AUTHENTICATION_DATA, REASON_STRING, USER_PROPERTY]),
        }
    }

    fn allows(self, id: u8) -> bool {
        id < 64 && self.mask() & (1u64 << id) != 0
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::ProtocolError("property appears more than once"));
    }
    *slot = Some(value);
    Ok(())
}

fn flag_value(v: u8, what: &'static str) -> Result<u8, DecodeError> {
    if v <= 1 {
        Ok(v)
    } else {
        Err(DecodeError::ProtocolError(what))
    }
}

/// Reads a property length and the property block it announces.
fn decode_properties(r: &mut Reader, ctx: Ctx) -> Result<Properties, DecodeError> {
    use id::*;
    let len = r.varint()? as usize;
    let mut p = r.sub(len, "property value extends past the property length")?;
    let mut props = Properties::default();
    while !p.is_empty() {
        let ident = p.varint()?;
        let ident = u8::try_from(ident).map_err(|_| DecodeError::MalformedPacket("unknown property identifier"))?;
        if !is_known_property(ident) {
            return Err(DecodeError::MalformedPacket("unknown property identifier"));
        }
        if !ctx.allows(ident) {
            return Err(DecodeError::ProtocolError("property not allowed on this packet type"));
        }
        match ident {
            PAYLOAD_FORMAT_INDICATOR => {
                let v = flag_value(p.u8()?, "payload format indicator must be 0 or 1")?;
                set_once(&mut props.payload_format_indicator, v)?;
            }
            MESSAGE_EXPIRY_INTERVAL => set_once(&mut props.message_expiry_interval, p.u32()?)?,
            CONTENT_TYPE => set_once(&mut props.content_type, p.string()?)?,
            RESPONSE_TOPIC => {
                let t = p.string()?;
                if !crate::topic::valid_topic_name(&t) {
                    return Err(DecodeError::ProtocolError("response topic is not a valid topic name"));
                }
                set_once(&mut props.response_topic, t)?;
            }
            CORRELATION_DATA => set_once(&mut props.correlation_data, p.binary()?)?,
            SUBSCRIPTION_IDENTIFIER => {
                let v = p.varint()?;
                if v == 0 {
                    return Err(DecodeError::ProtocolError("subscription identifier 0"));
                }
                if ctx != Ctx::Publish && !props.subscription_identifiers.is_empty() {
                    return Err(DecodeError::ProtocolError("property appears more than once"));
                }
                props.subscription_identifiers.push(v);
            }
            SESSION_EXPIRY_INTERVAL => set_once(&mut props.session_expiry_interval, p.u32()?)?,
            ASSIGNED_CLIENT_IDENTIFIER => set_once(&mut props.assigned_client_identifier, p.string()?)?,
            SERVER_KEEP_ALIVE => set_once(&mut props.server_keep_alive, p.u16()?)?,
            AUTHENTICATION_METHOD => set_once(&mut props.authentication_method, p.string()?)?,
            AUTHENTICATION_DATA => set_once(&mut props.authentication_data, p.binary()?)?,
            REQUEST_PROBLEM_INFORMATION => {
                let v = flag_value(p.u8()?, "request problem information must be 0 or 1")?;
                set_once(&mut props.request_problem_information, v)?;
            }
            WILL_DELAY_INTERVAL => set_once(&mut props.will_delay_interval, p.u32()?)?,
            REQUEST_RESPONSE_INFORMATION => {
                let v = flag_value(p.u8()?, "request response information must be 0 or 1")?;
                set_once(&mut props.request_response_information, v)?;
            }
            RESPONSE_INFORMATION => set_once(&mut props.response_information, p.string()?)?,
            SERVER_REFERENCE => set_once(&mut props.server_reference, p.string()?)?,
            REASON_STRING => set_once(&mut props.reason_string, p.string()?)?,
            RECEIVE_MAXIMUM => {
                let v = p.u16()?;
                if v == 0 {
                    return Err(DecodeError::ProtocolError("receive maximum 0"));
                }
                set_once(&mut props.receive_maximum, v)?;
            }
            TOPIC_ALIAS_MAXIMUM => set_once(&mut props.topic_alias_maximum, p.u16()?)?,
            TOPIC_ALIAS => {
                let v = p.u16()?;
                if v == 0 {
                    return Err(DecodeError::ProtocolError("topic alias 0"));
                }
                set_once(&mut props.topic_alias, v)?;
            }
            MAXIMUM_QOS => {
                let v = flag_value(p.u8()?, "maximum QoS must be 0 or 1")?;
                set_once(&mut props.maximum_qos, v)?;
            }
            RETAIN_AVAILABLE => {
                let v = flag_value(p.u8()?, "retain available must be 0 or 1")?;
                set_once(&mut props.retain_available, v)?;
            }
            USER_PROPERTY => {
                let k = p.string()?;
                let v = p.string()?;
                props.user_properties.push((k, v));
            }
            MAXIMUM_PACKET_SIZE => {
                let v = p.u32()?;
                if v == 0 {
                    return Err(DecodeError::ProtocolError("maximum packet size 0"));
                }
                set_once(&mut props.maximum_packet_size, v)?;
            }
            WILDCARD_SUBSCRIPTION_AVAILABLE => {
                let v = flag_value(p.u8()?, "wildcard subscription available must be 0 or 1")?;
                set_once(&mut props.wildcard_subscription_available, v)?;
            }
            SUBSCRIPTION_IDENTIFIER_AVAILABLE => {
                let v = flag_value(p.u8()?, "subscription identifier available must be 0 or 1")?;
                set_once(&mut props.subscription_identifier_available, v)?;
            }
            SHARED_SUBSCRIPTION_AVAILABLE => {
                let v = flag_value(p.u8()?, "shared subscription available must be 0 or 1")?;
                set_once(&mut props.shared_subscription_available, v)?;
            }
            _ => return Err(DecodeError::MalformedPacket("unknown property identifier")),
        }
    }
    if props.authentication_data.is_some() && props.authentication_method.is_none() {
        return Err(DecodeError::ProtocolError("authentication data without authentication method"));
    }
    Ok(props)
}

fn is_known_property(ident: u8) -> bool {
    use id::*;
    matches!(
        ident,
        PAYLOAD_FORMAT_INDICATOR
            | MESSAGE_EXPIRY_INTERVAL
            | CONTENT_TYPE
            | RESPONSE_TOPIC
            | CORRELATION_DATA
            | SUBSCRIPTION_IDENTIFIER
            | SESSION_EXPIRY_INTERVAL
            | ASSIGNED_CLIENT_IDENTIFIER
            | SERVER_KEEP_ALIVE
            | AUTHENTICATION_METHOD
            | AUTHENTICATION_DATA
            | REQUEST_PROBLEM_INFORMATION
            | WILL_DELAY_INTERVAL
            | REQUEST_RESPONSE_INFORMATION
            | RESPONSE_INFORMATION
            | SERVER_REFERENCE
            | REASON_STRING
            | RECEIVE_MAXIMUM
            | TOPIC_ALIAS_MAXIMUM
            | TOPIC_ALIAS
            | MAXIMUM_QOS
            | RETAIN_AVAILABLE
            | USER_PROPERTY
            | MAXIMUM_PACKET_SIZE
            | WILDCARD_SUBSCRIPTION_AVAILABLE
            | SUBSCRIPTION_IDENTIFIER_AVAILABLE
            | SHARED_SUBSCRIPTION_AVAILABLE
    )
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// Decodes one packet from the front of `buf`.
///
/// On success the packet's bytes (exactly one frame) are removed from `buf`;
/// `Ok(None)` means the frame is not complete yet and nothing was consumed.
/// `protocol` is the connection's negotiated version; for CONNECT it is
/// ignored, since CONNECT carries its own level (4 → [`Protocol::V311`],
/// 5 → [`Protocol::V5`], anything else →
/// [`DecodeError::UnsupportedProtocolVersion`]; the protocol name must be
/// `"MQTT"`, or `"MQIsdp"` which is reported as unsupported version 3).
///
/// Binary fields (PUBLISH and will payloads, password, correlation and
/// authentication data) are zero-copy [`Bytes`] slices of the frame.
///
/// `max_packet_size` bounds the whole frame, fixed header included, and is
/// enforced from the fixed header alone (see [`frame_len`]).
///
/// On error the state of `buf` is unspecified (the offending frame may or may
/// not have been consumed): the connection must be closed anyway.
pub fn decode(buf: &mut BytesMut, protocol: Protocol, max_packet_size: usize) -> Result<Option<Packet>, DecodeError> {
    let Some((first, header_len, remaining)) = fixed_header(buf)? else {
        return Ok(None);
    };
    let total = header_len + remaining;
    if total > max_packet_size {
        return Err(DecodeError::PacketTooLarge { size: total, max: max_packet_size });
    }
    if buf.len() < total {
        return Ok(None);
    }
    let mut frame = buf.split_to(total);
    frame.advance(header_len);
    decode_body(first, frame.freeze(), protocol).map(Some)
}

/// Decodes a packet body (the bytes after the fixed header).
fn decode_body(first: u8, body: Bytes, protocol: Protocol) -> Result<Packet, DecodeError> {
    let v5 = protocol == Protocol::V5;
    let mut r = Reader::new(body, "packet is shorter than its fields");
    let packet = match first >> 4 {
        1 => Packet::Connect(decode_connect(&mut r)?),
        2 => Packet::ConnAck(decode_connack(&mut r, v5)?),
        3 => Packet::Publish(decode_publish(&mut r, first, v5)?),
        4 => Packet::PubAck(decode_pubresp(&mut r, v5)?),
        5 => Packet::PubRec(decode_pubresp(&mut r, v5)?),
        6 => Packet::PubRel(decode_pubresp(&mut r, v5)?),
        7 => Packet::PubComp(decode_pubresp(&mut r, v5)?),
        8 => Packet::Subscribe(decode_subscribe(&mut r, v5)?),
        9 => Packet::SubAck(decode_suback(&mut r, v5)?),
        10 => Packet::Unsubscribe(decode_unsubscribe(&mut r, v5)?),
        11 => Packet::UnsubAck(decode_unsuback(&mut r, v5)?),
        12 => Packet::PingReq,
        13 => Packet::PingResp,
        14 => Packet::Disconnect(decode_disconnect(&mut r, v5)?),
        15 if v5 => Packet::Auth(decode_auth(&mut r)?),
        15 => return Err(DecodeError::MalformedPacket("AUTH packet in MQTT 3.1.1")),
        _ => return Err(DecodeError::MalformedPacket("reserved packet type 0")),
    };
    r.finish()?;
    Ok(packet)
}

fn packet_id(r: &mut Reader) -> Result<u16, DecodeError> {
    match r.u16()? {
        0 => Err(DecodeError::ProtocolError("packet identifier 0")),
        id => Ok(id),
    }
}

fn decode_connect(r: &mut Reader) -> Result<Connect, DecodeError> {
    let name_len = usize::from(r.u16()?);
    let name = r.take(name_len)?;
    let name_is_mqtt = name == b"MQTT";
    // MQTT 3.1 used "MQIsdp"; report its level so the broker can answer
    // CONNACK 0x01 like other brokers do.
    let name_is_mqisdp = name == b"MQIsdp";
    let level = r.u8()?;
    if !name_is_mqtt && !name_is_mqisdp {
        return Err(DecodeError::ProtocolError("protocol name is not \"MQTT\""));
    }
    let protocol = match (name_is_mqtt, level) {
        (true, 4) => Protocol::V311,
        (true, 5) => Protocol::V5,
        (_, level) => return Err(DecodeError::UnsupportedProtocolVersion(level)),
    };
    let v5 = protocol == Protocol::V5;

    let flags = r.u8()?;
    if flags & 0x01 != 0 {
        return Err(DecodeError::MalformedPacket("CONNECT reserved flag is set"));
    }
    let clean_start = flags & 0x02 != 0;
    let will_flag = flags & 0x04 != 0;
    let will_qos = (flags >> 3) & 0b11;
    let will_retain = flags & 0x20 != 0;
    let password_flag = flags & 0x40 != 0;
    let username_flag = flags & 0x80 != 0;
    if !will_flag && (will_qos != 0 || will_retain) {
        return Err(DecodeError::MalformedPacket("will QoS or will retain set without will flag"));
    }
    let will_qos = QoS::from_u8(will_qos).ok_or(DecodeError::MalformedPacket("will QoS 3"))?;
    if !v5 && password_flag && !username_flag {
        return Err(DecodeError::MalformedPacket("password flag set without user name flag"));
    }
    let keep_alive = r.u16()?;
    let properties = if v5 { decode_properties(r, Ctx::Connect)? } else { Properties::default() };

    let client_id = r.string()?;
    let will = if will_flag {
        let properties = if v5 { decode_properties(r, Ctx::Will)? } else { Properties::default() };
        let topic = r.string()?;
        if !crate::topic::valid_topic_name(&topic) {
            return Err(DecodeError::TopicNameInvalid);
        }
        let payload = r.binary()?;
        Some(Will { topic, payload, qos: will_qos, retain: will_retain, properties })
    } else {
        None
    };
    let username = if username_flag { Some(r.string()?) } else { None };
    let password = if password_flag { Some(r.binary()?) } else { None };
    Ok(Connect { protocol, clean_start, keep_alive, client_id, will, username, password, properties })
}

/// MQTT 5 reason code for a 3.1.1 CONNACK return code (the inverse of
/// [`reason::connack_v311`] on its canonical codes).
fn connack_from_v311(code: u8) -> Result<u8, DecodeError> {
    Ok(match code {
        0 => reason::SUCCESS,
        1 => reason::UNSUPPORTED_PROTOCOL_VERSION,
        2 => reason::CLIENT_IDENTIFIER_NOT_VALID,
        3 => reason::SERVER_UNAVAILABLE,
        4 => reason::BAD_USER_NAME_OR_PASSWORD,
        5 => reason::NOT_AUTHORIZED,
        _ => return Err(DecodeError::MalformedPacket("reserved CONNACK return code")),
    })
}

fn decode_connack(r: &mut Reader, v5: bool) -> Result<ConnAck, DecodeError> {
    let ack_flags = r.u8()?;
    if ack_flags & 0xFE != 0 {
        return Err(DecodeError::MalformedPacket("CONNACK reserved flags set"));
    }
    let session_present = ack_flags & 0x01 != 0;
    let raw = r.u8()?;
    let code = if v5 { raw } else { connack_from_v311(raw)? };
    if session_present && code != 0 {
        return Err(DecodeError::ProtocolError("session present with a failure code"));
    }
    let properties = if v5 { decode_properties(r, Ctx::ConnAck)? } else { Properties::default() };
    Ok(ConnAck { session_present, code, properties })
}

fn decode_publish(r: &mut Reader, first: u8, v5: bool) -> Result<Publish, DecodeError> {
    let dup = first & 0x08 != 0;
    let retain = first & 0x01 != 0;
    let qos = QoS::from_u8((first >> 1) & 0b11).ok_or(DecodeError::MalformedPacket("PUBLISH with QoS 3"))?;
    if dup && qos == QoS::AtMostOnce {
        return Err(if v5 {
            DecodeError::ProtocolError("DUP flag set on a QoS 0 PUBLISH")
        } else {
            DecodeError::MalformedPacket("DUP flag set on a QoS 0 PUBLISH")
        });
    }
    let topic = r.string()?;
    if topic.contains(['+', '#']) {
        return Err(DecodeError::TopicNameInvalid);
    }
    let packet_id = if qos == QoS::AtMostOnce { 0 } else { packet_id(r)? };
    let properties = if v5 { decode_properties(r, Ctx::Publish)? } else { Properties::default() };
    if topic.is_empty() {
        if !v5 {
            return Err(DecodeError::TopicNameInvalid);
        }
        if properties.topic_alias.is_none() {
            return Err(DecodeError::ProtocolError("empty topic name without a topic alias"));
        }
    }
    let payload = r.rest();
    Ok(Publish { dup, qos, retain, topic, packet_id, payload, properties })
}

fn decode_pubresp(r: &mut Reader, v5: bool) -> Result<PubResp, DecodeError> {
    let packet_id = packet_id(r)?;
    let mut resp = PubResp::new(packet_id);
    if v5 && !r.is_empty() {
        resp.reason = r.u8()?;
        if !r.is_empty() {
            resp.properties = decode_properties(r, Ctx::PubResp)?;
        }
    }
    Ok(resp)
}

fn decode_subscribe(r: &mut Reader, v5: bool) -> Result<Subscribe, DecodeError> {
    let packet_id = packet_id(r)?;
    let properties = if v5 { decode_properties(r, Ctx::Subscribe)? } else { Properties::default() };
    let mut filters = Vec::new();
    while !r.is_empty() {
        let filter = r.string()?;
        let opts = r.u8()?;
        let qos = QoS::from_u8(opts & 0b11);
        let options = if v5 {
            if opts & 0xC0 != 0 {
                return Err(DecodeError::MalformedPacket("subscription options reserved bits set"));
            }
            let qos = qos.ok_or(DecodeError::ProtocolError("subscription with QoS 3"))?;
            let retain_handling = (opts >> 4) & 0b11;
            if retain_handling == 3 {
                return Err(DecodeError::ProtocolError("retain handling 3"));
            }
            let no_local = opts & 0x04 != 0;
            if no_local && filter.starts_with("$share/") {
                return Err(DecodeError::ProtocolError("no local set on a shared subscription"));
            }
            SubOptions { qos, no_local, retain_as_published: opts & 0x08 != 0, retain_handling }
        } else {
            if opts & 0xFC != 0 {
                return Err(DecodeError::MalformedPacket("requested QoS reserved bits set"));
            }
            SubOptions::qos(qos.ok_or(DecodeError::MalformedPacket("subscription with QoS 3"))?)
        };
        filters.push((filter, options));
    }
    if filters.is_empty() {
        return Err(DecodeError::ProtocolError("SUBSCRIBE without topic filters"));
    }
    Ok(Subscribe { packet_id, filters, properties })
}

fn decode_suback(r: &mut Reader, v5: bool) -> Result<SubAck, DecodeError> {
    let packet_id = packet_id(r)?;
    let properties = if v5 { decode_properties(r, Ctx::SubAck)? } else { Properties::default() };
    let reasons = r.rest().to_vec();
    if reasons.is_empty() {
        return Err(DecodeError::ProtocolError("SUBACK without return codes"));
    }
    if !v5 && reasons.iter().any(|&c| c > 2 && c != 0x80) {
        return Err(DecodeError::MalformedPacket("invalid SUBACK return code"));
    }
    Ok(SubAck { packet_id, reasons, properties })
}

fn decode_unsubscribe(r: &mut Reader, v5: bool) -> Result<Unsubscribe, DecodeError> {
    let packet_id = packet_id(r)?;
    let properties = if v5 { decode_properties(r, Ctx::Unsubscribe)? } else { Properties::default() };
    let mut filters = Vec::new();
    while !r.is_empty() {
        filters.push(r.string()?);
    }
    if filters.is_empty() {
        return Err(DecodeError::ProtocolError("UNSUBSCRIBE without topic filters"));
    }
    Ok(Unsubscribe { packet_id, filters, properties })
}

fn decode_unsuback(r: &mut Reader, v5: bool) -> Result<UnsubAck, DecodeError> {
    let packet_id = packet_id(r)?;
    if !v5 {
        return Ok(UnsubAck { packet_id, reasons: Vec::new(), properties: Properties::default() });
    }
    let properties = decode_properties(r, Ctx::UnsubAck)?;
    let reasons = r.rest().to_vec();
    if reasons.is_empty() {
        return Err(DecodeError::ProtocolError("UNSUBACK without reason codes"));
    }
    Ok(UnsubAck { packet_id, reasons, properties })
}

fn decode_disconnect(r: &mut Reader, v5: bool) -> Result<Disconnect, DecodeError> {
    let mut d = Disconnect::default();
    if v5 && !r.is_empty() {
        d.reason = r.u8()?;
        if !r.is_empty() {
            d.properties = decode_properties(r, Ctx::Disconnect)?;
        }
    }
    Ok(d)
}

fn decode_auth(r: &mut Reader) -> Result<Auth, DecodeError> {
    let mut a = Auth::default();
    if !r.is_empty() {
        a.reason = r.u8()?;
        if !r.is_empty() {
            a.properties = decode_properties(r, Ctx::Auth)?;
        }
    }
    Ok(a)
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/// Destination of the encoder: either a byte counter (used for lengths and,
/// in validating mode, for checking the packet before anything is written)
/// or the output buffer. One generic body writer serves both, so
/// [`encoded_len`] is exact by construction.
trait Sink {
    /// Whether `check`s are enforced.
    const VALIDATE: bool;
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_varint(&mut self, v: u32);
    fn put_slice(&mut self, b: &[u8]);
}

/// Counts bytes; `V` selects whether checks are enforced.
struct Counter<const V: bool>(usize);

impl<const V: bool> Sink for Counter<V> {
    const VALIDATE: bool = V;
    fn put_u8(&mut self, _: u8) {
        self.0 += 1;
    }
    fn put_u16(&mut self, _: u16) {
        self.0 += 2;
    }
    fn put_u32(&mut self, _: u32) {
        self.0 += 4;
    }
    fn put_varint(&mut self, v: u32) {
        self.0 += varint_len(v as usize);
    }
    fn put_slice(&mut self, b: &[u8]) {
        self.0 += b.len();
    }
}

/// Writes into the output buffer (the packet was validated beforehand).
struct Writer<'a>(&'a mut BytesMut);

impl Sink for Writer<'_> {
    const VALIDATE: bool = false;
    fn put_u8(&mut self, v: u8) {
        self.0.put_u8(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.0.put_u16(v);
    }
    fn put_u32(&mut self, v: u32) {
        self.0.put_u32(v);
    }
    fn put_varint(&mut self, v: u32) {
        write_varint(self.0, v as usize);
    }
    fn put_slice(&mut self, b: &[u8]) {
        self.0.put_slice(b);
    }
}

/// Bytes needed for `v` as a variable byte integer.
fn varint_len(v: usize) -> usize {
    match v {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Writes `v` (at most [`MAX_REMAINING_LENGTH`]) as a variable byte integer.
fn write_varint(buf: &mut BytesMut, mut v: usize) {
    for _ in 0..4 {
        let mut b = (v & 0x7F) as u8;
        v >>= 7;
        if v > 0 {
            b |= 0x80;
        }
        buf.put_u8(b);
        if v == 0 {
            break;
        }
    }
}

fn check<S: Sink>(ok: bool, err: EncodeError) -> Result<(), EncodeError> {
    if S::VALIDATE && !ok {
        Err(err)
    } else {
        Ok(())
    }
}

fn put_str<S: Sink>(s: &mut S, v: &str) -> Result<(), EncodeError> {
    check::<S>(v.len() <= MAX_FIELD_LENGTH, EncodeError::FieldTooLong { len: v.len() })?;
    if S::VALIDATE && v.contains('\0') {
        return Err(EncodeError::InvalidPacket("string contains U+0000"));
    }
    s.put_u16(v.len() as u16);
    s.put_slice(v.as_bytes());
    Ok(())
}

fn put_bin<S: Sink>(s: &mut S, v: &[u8]) -> Result<(), EncodeError> {
    check::<S>(v.len() <= MAX_FIELD_LENGTH, EncodeError::FieldTooLong { len: v.len() })?;
    s.put_u16(v.len() as u16);
    s.put_slice(v);
    Ok(())
}

fn put_packet_id<S: Sink>(s: &mut S, id: u16) -> Result<(), EncodeError> {
    check::<S>(id != 0, EncodeError::InvalidPacket("packet identifier 0"))?;
    s.put_u16(id);
    Ok(())
}

/// Length of the property block (without its length prefix) for `ctx`.
fn props_len(p: &Properties, ctx: Ctx) -> usize {
    let mut c = Counter::<false>(0);
    // A non-validating counter never fails.
    let _ = props_body(&mut c, p, ctx);
    c.0
}

/// Property length prefix followed by the properties allowed in `ctx`.
fn put_props<S: Sink>(s: &mut S, p: &Properties, ctx: Ctx) -> Result<(), EncodeError> {
    let len = props_len(p, ctx);
    check::<S>(len <= MAX_REMAINING_LENGTH, EncodeError::PacketTooLarge { size: len })?;
    s.put_varint(len as u32);
    props_body(s, p, ctx)
}

fn props_body<S: Sink>(s: &mut S, p: &Properties, ctx: Ctx) -> Result<(), EncodeError> {
    use id::*;
    let on = |ident: u8| ctx.allows(ident);
    let flag_ok = |v: u8, what| check::<S>(v <= 1, EncodeError::InvalidPacket(what));
    macro_rules! prop {
        ($ident:expr, $field:expr, $put:ident) => {
            if on($ident) {
                if let Some(v) = &$field {
                    s.put_u8($ident);
                    $put(s, v)?;
                }
            }
        };
    }
    fn u8_<S: Sink>(s: &mut S, v: &u8) -> Result<(), EncodeError> {
        s.put_u8(*v);
        Ok(())
    }
    fn u16_<S: Sink>(s: &mut S, v: &u16) -> Result<(), EncodeError> {
        s.put_u16(*v);
        Ok(())
    }
    fn u32_<S: Sink>(s: &mut S, v: &u32) -> Result<(), EncodeError> {
        s.put_u32(*v);
        Ok(())
    }
    fn str_<S: Sink>(s: &mut S, v: &str) -> Result<(), EncodeError> {
        put_str(s, v)
    }
    fn bin_<S: Sink>(s: &mut S, v: &Bytes) -> Result<(), EncodeError> {
        put_bin(s, v)
    }

    if on(PAYLOAD_FORMAT_INDICATOR) {
        if let Some(v) = p.payload_format_indicator {
            flag_ok(v, "payload format indicator must be 0 or 1")?;
        }
    }
    prop!(PAYLOAD_FORMAT_INDICATOR, p.payload_format_indicator, u8_);
    prop!(MESSAGE_EXPIRY_INTERVAL, p.message_expiry_interval, u32_);
    prop!(CONTENT_TYPE, p.content_type, str_);
    if on(RESPONSE_TOPIC) {
        if let Some(t) = &p.response_topic {
            check::<S>(
                crate::topic::valid_topic_name(t),
                EncodeError::InvalidPacket("response topic is not a valid topic name"),
            )?;
        }
    }
    prop!(RESPONSE_TOPIC, p.response_topic, str_);
    prop!(CORRELATION_DATA, p.correlation_data, bin_);
    if on(SUBSCRIPTION_IDENTIFIER) {
        check::<S>(
            ctx == Ctx::Publish || p.subscription_identifiers.len() <= 1,
            EncodeError::InvalidPacket("more than one subscription identifier"),
        )?;
        for &v in &p.subscription_identifiers {
            check::<S>(
                (1..=MAX_VARINT).contains(&v),
                EncodeError::InvalidPacket("subscription identifier out of range"),
            )?;
            s.put_u8(SUBSCRIPTION_IDENTIFIER);
            s.put_varint(v);
        }
    }
    prop!(SESSION_EXPIRY_INTERVAL, p.session_expiry_interval, u32_);
    prop!(ASSIGNED_CLIENT_IDENTIFIER, p.assigned_client_identifier, str_);
    prop!(SERVER_KEEP_ALIVE, p.server_keep_alive, u16_);
    prop!(AUTHENTICATION_METHOD, p.authentication_method, str_);
    if on(AUTHENTICATION_DATA) {
        check::<S>(
            p.authentication_data.is_none() || p.authentication_method.is_some(),
            EncodeError::InvalidPacket("authentication data without authentication method"),
        )?;
    }
    prop!(AUTHENTICATION_DATA, p.authentication_data, bin_);
    if on(REQUEST_PROBLEM_INFORMATION) {
        if let Some(v) = p.request_problem_information {
            flag_ok(v, "request problem information must be 0 or 1")?;
        }
    }
    prop!(REQUEST_PROBLEM_INFORMATION, p.request_problem_information, u8_);
    prop!(WILL_DELAY_INTERVAL, p.will_delay_interval, u32_);
    if on(REQUEST_RESPONSE_INFORMATION) {
        if let Some(v) = p.request_response_information {
            flag_ok(v, "request response information must be 0 or 1")?;
        }
    }
    prop!(REQUEST_RESPONSE_INFORMATION, p.request_response_information, u8_);
    prop!(RESPONSE_INFORMATION, p.response_information, str_);
    prop!(SERVER_REFERENCE, p.server_reference, str_);
    prop!(REASON_STRING, p.reason_string, str_);
    if on(RECEIVE_MAXIMUM) {
        check::<S>(p.receive_maximum != Some(0), EncodeError::InvalidPacket("receive maximum 0"))?;
    }
    prop!(RECEIVE_MAXIMUM, p.receive_maximum, u16_);
    prop!(TOPIC_ALIAS_MAXIMUM, p.topic_alias_maximum, u16_);
    if on(TOPIC_ALIAS) {
        check::<S>(p.topic_alias != Some(0), EncodeError::InvalidPacket("topic alias 0"))?;
    }
    prop!(TOPIC_ALIAS, p.topic_alias, u16_);
    if on(MAXIMUM_QOS) {
        if let Some(v) = p.maximum_qos {
            flag_ok(v, "maximum QoS must be 0 or 1")?;
        }
    }
    prop!(MAXIMUM_QOS, p.maximum_qos, u8_);
    if on(RETAIN_AVAILABLE) {
        if let Some(v) = p.retain_available {
            flag_ok(v, "retain available must be 0 or 1")?;
        }
    }
    prop!(RETAIN_AVAILABLE, p.retain_available, u8_);
    if on(USER_PROPERTY) {
        for (k, v) in &p.user_properties {
            s.put_u8(USER_PROPERTY);
            put_str(s, k)?;
            put_str(s, v)?;
        }
    }
    if on(MAXIMUM_PACKET_SIZE) {
        check::<S>(p.maximum_packet_size != Some(0), EncodeError::InvalidPacket("maximum packet size 0"))?;
    }
    prop!(MAXIMUM_PACKET_SIZE, p.maximum_packet_size, u32_);
    for (ident, v, what) in [
        (
            WILDCARD_SUBSCRIPTION_AVAILABLE,
            p.wildcard_subscription_available,
            "wildcard subscription available must be 0 or 1",
        ),
        (
            SUBSCRIPTION_IDENTIFIER_AVAILABLE,
            p.subscription_identifier_available,
            "subscription identifier available must be 0 or 1",
        ),
        (
            SHARED_SUBSCRIPTION_AVAILABLE,
            p.shared_subscription_available,
            "shared subscription available must be 0 or 1",
        ),
    ] {
        if on(ident) {
            if let Some(v) = v {
                flag_ok(v, what)?;
                s.put_u8(ident);
                s.put_u8(v);
            }
        }
    }
    Ok(())
}

/// First byte of the fixed header.
fn first_byte(packet: &Packet) -> u8 {
    match packet {
        Packet::Connect(_) => 0x10,
        Packet::ConnAck(_) => 0x20,
        Packet::Publish(p) => {
            let dup = p.dup && p.qos != QoS::AtMostOnce;
            0x30 | (u8::from(dup) << 3) | ((p.qos as u8) << 1) | u8::from(p.retain)
        }
        Packet::PubAck(_) => 0x40,
        Packet::PubRec(_) => 0x50,
        Packet::PubRel(_) => 0x62,
        Packet::PubComp(_) => 0x70,
        Packet::Subscribe(_) => 0x82,
        Packet::SubAck(_) => 0x90,
        Packet::Unsubscribe(_) => 0xA2,
        Packet::UnsubAck(_) => 0xB0,
        Packet::PingReq => 0xC0,
        Packet::PingResp => 0xD0,
        Packet::Disconnect(_) => 0xE0,
        Packet::Auth(_) => 0xF0,
    }
}

/// Everything after the fixed header.
fn put_body<S: Sink>(s: &mut S, packet: &Packet, protocol: Protocol) -> Result<(), EncodeError> {
    let v5 = protocol == Protocol::V5;
    match packet {
        Packet::Connect(c) => put_connect(s, c),
        Packet::ConnAck(a) => put_connack(s, a, v5),
        Packet::Publish(p) => put_publish(s, p, v5),
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            put_packet_id(s, r.packet_id)?;
            if v5 {
                let plen = props_len(&r.properties, Ctx::PubResp);
                if r.reason != 0 || plen != 0 {
                    s.put_u8(r.reason);
                    if plen != 0 {
                        put_props(s, &r.properties, Ctx::PubResp)?;
                    }
                }
            }
            Ok(())
        }
        Packet::Subscribe(sub) => put_subscribe(s, sub, v5),
        Packet::SubAck(a) => put_suback(s, a, v5),
        Packet::Unsubscribe(u) => put_unsubscribe(s, u, v5),
        Packet::UnsubAck(a) => put_unsuback(s, a, v5),
        Packet::PingReq | Packet::PingResp => Ok(()),
        Packet::Disconnect(d) => {
            if v5 {
                let plen = props_len(&d.properties, Ctx::Disconnect);
                if d.reason != 0 || plen != 0 {
                    s.put_u8(d.reason);
                    if plen != 0 {
                        put_props(s, &d.properties, Ctx::Disconnect)?;
                    }
                }
            }
            Ok(())
        }
        Packet::Auth(a) => {
            check::<S>(v5, EncodeError::Unsupported("AUTH does not exist in MQTT 3.1.1"))?;
            if a.reason != 0 || props_len(&a.properties, Ctx::Auth) != 0 {
                s.put_u8(a.reason);
                put_props(s, &a.properties, Ctx::Auth)?;
            }
            Ok(())
        }
    }
}

fn put_connect<S: Sink>(s: &mut S, c: &Connect) -> Result<(), EncodeError> {
    let v5 = c.protocol == Protocol::V5;
    check::<S>(
        v5 || c.password.is_none() || c.username.is_some(),
        EncodeError::InvalidPacket("MQTT 3.1.1 CONNECT with a password but no user name"),
    )?;
    put_str(s, "MQTT")?;
    s.put_u8(c.protocol.level());
    let mut flags = 0u8;
    if c.clean_start {
        flags |= 0x02;
    }
    if let Some(w) = &c.will {
        flags |= 0x04 | ((w.qos as u8) << 3);
        if w.retain {
            flags |= 0x20;
        }
    }
    if c.password.is_some() {
        flags |= 0x40;
    }
    if c.username.is_some() {
        flags |= 0x80;
    }
    s.put_u8(flags);
    s.put_u16(c.keep_alive);
    if v5 {
        put_props(s, &c.properties, Ctx::Connect)?;
    }
    put_str(s, &c.client_id)?;
    if let Some(w) = &c.will {
        if v5 {
            put_props(s, &w.properties, Ctx::Will)?;
        }
        check::<S>(
            crate::topic::valid_topic_name(&w.topic),
            EncodeError::InvalidPacket("will topic is not a valid topic name"),
        )?;
        put_str(s, &w.topic)?;
        put_bin(s, &w.payload)?;
    }
    if let Some(u) = &c.username {
        put_str(s, u)?;
    }
    if let Some(p) = &c.password {
        put_bin(s, p)?;
    }
    Ok(())
}

fn put_connack<S: Sink>(s: &mut S, a: &ConnAck, v5: bool) -> Result<(), EncodeError> {
    check::<S>(
        !(a.session_present && a.code != 0),
        EncodeError::InvalidPacket("CONNACK with session present and a failure code"),
    )?;
    s.put_u8(u8::from(a.session_present));
    if v5 {
        s.put_u8(a.code);
        put_props(s, &a.properties, Ctx::ConnAck)?;
    } else {
        s.put_u8(reason::connack_v311(a.code));
    }
    Ok(())
}

fn put_publish<S: Sink>(s: &mut S, p: &Publish, v5: bool) -> Result<(), EncodeError> {
    if S::VALIDATE {
        if p.topic.is_empty() {
            if !v5 {
                return Err(EncodeError::InvalidPacket("empty topic name in MQTT 3.1.1"));
            }
            if p.properties.topic_alias.is_none() {
                return Err(EncodeError::InvalidPacket("empty topic name without a topic alias"));
            }
        } else if p.topic.contains(['+', '#']) {
            return Err(EncodeError::InvalidPacket("wildcard in a PUBLISH topic name"));
        }
    }
    put_str(s, &p.topic)?;
    if p.qos != QoS::AtMostOnce {
        put_packet_id(s, p.packet_id)?;
    }
    if v5 {
        put_props(s, &p.properties, Ctx::Publish)?;
    }
    s.put_slice(&p.payload);
    Ok(())
}

fn put_subscribe<S: Sink>(s: &mut S, sub: &Subscribe, v5: bool) -> Result<(), EncodeError> {
    check::<S>(!sub.filters.is_empty(), EncodeError::InvalidPacket("SUBSCRIBE without topic filters"))?;
    put_packet_id(s, sub.packet_id)?;
    if v5 {
        put_props(s, &sub.properties, Ctx::Subscribe)?;
    }
    for (filter, o) in &sub.filters {
        put_str(s, filter)?;
        let mut opts = o.qos as u8;
        if v5 {
            check::<S>(o.retain_handling <= 2, EncodeError::InvalidPacket("retain handling above 2"))?;
            check::<S>(
                !(o.no_local && filter.starts_with("$share/")),
                EncodeError::InvalidPacket("no local set on a shared subscription"),
            )?;
            opts |= (u8::from(o.no_local) << 2)
                | (u8::from(o.retain_as_published) << 3)
                | ((o.retain_handling & 0b11) << 4);
        }
        s.put_u8(opts);
    }
    Ok(())
}

fn put_suback<S: Sink>(s: &mut S, a: &SubAck, v5: bool) -> Result<(), EncodeError> {
    check::<S>(!a.reasons.is_empty(), EncodeError::InvalidPacket("SUBACK without return codes"))?;
    put_packet_id(s, a.packet_id)?;
    if v5 {
        put_props(s, &a.properties, Ctx::SubAck)?;
        s.put_slice(&a.reasons);
    } else {
        for &code in &a.reasons {
            s.put_u8(if code <= 2 { code } else { reason::UNSPECIFIED_ERROR });
        }
    }
    Ok(())
}

fn put_unsubscribe<S: Sink>(s: &mut S, u: &Unsubscribe, v5: bool) -> Result<(), EncodeError> {
    check::<S>(!u.filters.is_empty(), EncodeError::InvalidPacket("UNSUBSCRIBE without topic filters"))?;
    put_packet_id(s, u.packet_id)?;
    if v5 {
        put_props(s, &u.properties, Ctx::Unsubscribe)?;
    }
    for f in &u.filters {
        put_str(s, f)?;
    }
    Ok(())
}

fn put_unsuback<S: Sink>(s: &mut S, a: &UnsubAck, v5: bool) -> Result<(), EncodeError> {
    put_packet_id(s, a.packet_id)?;
    if v5 {
        check::<S>(!a.reasons.is_empty(), EncodeError::InvalidPacket("UNSUBACK without reason codes"))?;
        put_props(s, &a.properties, Ctx::UnsubAck)?;
        s.put_slice(&a.reasons);
    }
    Ok(())
}

/// Encodes `packet` for `protocol` and appends it to `buf`.
///
/// For [`Protocol::V311`]: properties are not written; the CONNACK code goes
/// through [`reason::connack_v311`]; SUBACK codes other than 0, 1, 2 become
/// 0x80; PUBACK/PUBREC/PUBREL/PUBCOMP carry no reason code; UNSUBACK has no
/// payload; DISCONNECT has no body; AUTH is an [`EncodeError::Unsupported`].
///
/// For [`Protocol::V5`]: the reason code and property length are left out
/// when the reason code is 0 and there are no properties (PUBACK, PUBREC,
/// PUBREL, PUBCOMP, DISCONNECT, AUTH), and the property length is left out
/// when only the reason code is needed (PUBACK family, DISCONNECT).
///
/// In both versions: a CONNECT is encoded for its own [`Connect::protocol`]
/// (the `protocol` argument is ignored for it, mirroring [`decode`]); the DUP
/// flag is only written for QoS > 0, and the packet identifier only for
/// QoS > 0; properties not allowed on the packet type are left out.
///
/// The buffer grows by exactly [`encoded_len`] bytes, reserved up front. On
/// error nothing is written.
pub fn encode(packet: &Packet, protocol: Protocol, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let mut counter = Counter::<true>(0);
    put_body(&mut counter, packet, protocol)?;
    let remaining = counter.0;
    if remaining > MAX_REMAINING_LENGTH {
        return Err(EncodeError::PacketTooLarge { size: remaining });
    }
    let start = buf.len();
    buf.reserve(1 + varint_len(remaining) + remaining);
    buf.put_u8(first_byte(packet));
    write_varint(buf, remaining);
    let result = put_body(&mut Writer(buf), packet, protocol);
    if result.is_err() {
        buf.truncate(start);
    }
    result
}

/// Exact number of bytes [`encode`] would append for `packet` (fixed header
/// included); used to honour a peer's Maximum Packet Size before encoding.
/// Meaningless when `encode` would fail.
pub fn encoded_len(packet: &Packet, protocol: Protocol) -> usize {
    let mut counter = Counter::<false>(0);
    // A non-validating counter never fails.
    let _ = put_body(&mut counter, packet, protocol);
    1 + varint_len(counter.0) + counter.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_boundaries() {
        // MQTT 5 table 1-1 / 3.1.1 table 2.4.
        let cases: &[(usize, &[u8])] = &[
            (0, &[0x00]),
            (127, &[0x7F]),
            (128, &[0x80, 0x01]),
            (16_383, &[0xFF, 0x7F]),
            (16_384, &[0x80, 0x80, 0x01]),
            (2_097_151, &[0xFF, 0xFF, 0x7F]),
            (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
            (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
        ];
        for &(v, bytes) in cases {
            let mut buf = BytesMut::new();
            write_varint(&mut buf, v);
            assert_eq!(&buf[..], bytes, "encoding {v}");
            assert_eq!(varint_len(v), bytes.len());
            let mut r = Reader::new(Bytes::copy_from_slice(bytes), "eof");
            assert_eq!(r.varint().unwrap() as usize, v);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn varint_rejects_five_bytes_and_accepts_non_minimal() {
        let mut r = Reader::new(Bytes::from_static(&[0x80, 0x80, 0x80, 0x80, 0x01]), "eof");
        assert!(matches!(r.varint(), Err(DecodeError::MalformedPacket(_))));
        let mut r = Reader::new(Bytes::from_static(&[0x81, 0x00]), "eof");
        assert_eq!(r.varint().unwrap(), 1);
        let mut r = Reader::new(Bytes::from_static(&[0x80]), "eof");
        assert_eq!(r.varint(), Err(DecodeError::MalformedPacket("eof")));
    }

    #[test]
    fn reader_never_reads_past_the_end() {
        let mut r = Reader::new(Bytes::from_static(&[0x00, 0x05, b'a']), "eof");
        assert_eq!(r.string(), Err(DecodeError::MalformedPacket("eof")));
        let mut r = Reader::new(Bytes::from_static(&[0x01]), "eof");
        assert!(r.u16().is_err());
        assert!(r.u32().is_err());
        assert_eq!(r.u8().unwrap(), 1);
        assert!(r.u8().is_err());
        assert!(r.bytes(usize::MAX).is_err());
        assert!(r.sub(usize::MAX, "eof").is_err());
        assert!(r.rest().is_empty());
        assert!(r.finish().is_ok());
    }

    #[test]
    fn property_masks_match_table_2_4() {
        // Every known identifier is allowed somewhere; user property everywhere.
        let all = [
            Ctx::Connect,
            Ctx::Will,
            Ctx::ConnAck,
            Ctx::Publish,
            Ctx::PubResp,
            Ctx::Subscribe,
            Ctx::SubAck,
            Ctx::Unsubscribe,
            Ctx::UnsubAck,
            Ctx::Disconnect,
            Ctx::Auth,
        ];
        for ident in 0..=255u8 {
            let somewhere = all.iter().any(|c| c.allows(ident));
            assert_eq!(somewhere, is_known_property(ident), "identifier {ident:#x}");
        }
        assert!(all.iter().all(|c| c.allows(id::USER_PROPERTY)));
        assert!(Ctx::Will.allows(id::WILL_DELAY_INTERVAL));
        assert!(!Ctx::Publish.allows(id::WILL_DELAY_INTERVAL));
        assert!(!Ctx::Unsubscribe.allows(id::REASON_STRING));
    }
}
