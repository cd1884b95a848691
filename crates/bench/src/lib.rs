//! `thingport-bench`: an MQTT load generator for Thingport or any other
//! MQTT 3.1.1 / 5 broker, over plain TCP or mutual TLS.
//!
//! It speaks MQTT through the workspace's own codec ([`mqtt`]) so that it is
//! cheap per message and batches writes the way we choose. Scenarios:
//!
//! * [`pubsub`]: publishers and subscribers on fan-in, fan-out or paired
//!   topics, QoS 0 or 1, a fixed or unlimited rate; reports throughput,
//!   losses, end-to-end latency and (with a broker pid) broker CPU and RSS.
//! * [`connections`]: many idle mTLS connections; broker RSS per connection.
//! * [`handshake`]: broker CPU per full TLS handshake, driving
//!   `openssl s_time`.
//! * [`report`]: turns the JSON lines the others print into markdown tables.
#![forbid(unsafe_code)]

pub mod cli;
pub mod client;
pub mod connections;
pub mod handshake;
pub mod payload;
pub mod procfs;
pub mod pubsub;
pub mod report;
pub mod stats;
pub mod tls;
