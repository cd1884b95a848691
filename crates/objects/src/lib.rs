//! Thingport's object service: an S3-compatible endpoint so devices can move
//! payloads far larger than an MQTT message (images, recordings, firmware)
//! without holding storage credentials.
//!
//! Layers, from the wire inwards:
//! - pure request pieces: [`chunked`] (aws-chunked bodies and their chunk
//!   signatures), [`checksum`] (ETag and `x-amz-checksum-*`), [`post_policy`]
//!   (browser POST uploads), [`xml`] (S3's XML bodies), [`names`] (bucket and
//!   key rules), [`range`] (`Range` headers), [`events`] (S3 notification
//!   records);
//! - [`staging`]: a body becomes a verified temporary file before it becomes
//!   an object, so an object appears whole or not at all;
//! - [`storage`]: the [`storage::Backend`] trait with the local filesystem
//!   backend (and the S3-compatible one behind the `s3` feature);
//! - [`multipart`]: multipart uploads staged locally, for every backend.
#![forbid(unsafe_code)]

pub mod checksum;
pub mod chunked;
pub mod error;
pub mod events;
pub mod multipart;
pub mod names;
pub mod post_policy;
pub mod range;
pub mod service;
pub mod staging;
pub mod storage;
pub mod xml;

pub use error::S3Error;
pub use storage::{Backend, BucketInfo, ByteStream, ListRequest, Listing, ObjectMeta};
