//! MQTT 3.1.1 and 5.0 wire format: the packet model, an encoder and an
//! incremental decoder, plus topic-name / topic-filter rules.
//!
//! This crate is pure: bytes in, values out. The broker owns sockets; this
//! crate owns the question "is this a well-formed packet, and what does it say?".
//! Everything here is written against MQTT 5 semantics (reason codes,
//! properties); encoding for a 3.1.1 client downgrades them (see [`encode`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
pub mod packet;
pub mod properties;
pub mod reason;
pub mod topic;

pub use codec::{decode, encode, encoded_len, frame_len, DecodeError, EncodeError};
pub use packet::*;
pub use properties::Properties;
