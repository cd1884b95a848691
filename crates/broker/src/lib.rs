//! The Thingport MQTT broker.
//!
//! A [`Broker`] owns sessions, the subscription tree and retained messages;
//! [`listener`] accepts TCP or TLS connections and hands each to
//! [`connection::serve`], which speaks MQTT 3.1.1 or 5 with the client.
//! Identity and permissions are not decided here: an [`auth::Authenticator`]
//! turns a connection into a [`auth::Principal`] and an [`auth::Authorizer`]
//! answers every connect, publish, subscribe and delivery.
#![forbid(unsafe_code)]

pub mod auth;
pub mod broker;
pub mod config;
pub mod connection;
pub mod events;
pub mod listener;
pub mod message;
pub mod reserved;
pub mod session;
pub mod tree;

pub use auth::{AllowNonReserved, Authenticator, Authorizer, ClientCtx, PeerInfo, Principal};
pub use broker::Broker;
pub use config::Limits;
pub use message::{Message, Origin};
