//! AWS IoT Device Shadow documents for Thingport: the pure algebra behind
//! the shadow service.
//!
//! Bytes and timestamps in, documents out: no I/O, no clocks (every "now" is
//! an argument), no async. The server loads the stored [`Shadow`] (or a
//! tombstone, or nothing), calls [`apply_update`], [`get_response`] or
//! [`delete()`] with the request payload, stores the returned shadow and
//! publishes the returned payloads on the topics [`ShadowTopic::response`]
//! names.
//!
//! ```
//! use shadow::{apply_update, get_response, Limits};
//!
//! let limits = Limits::default();
//! let out = apply_update(None, br#"{"state":{"desired":{"color":"RED"}},"clientToken":"t1"}"#, 100, &limits).unwrap();
//! assert_eq!(out.shadow.version, 1);
//! assert_eq!(out.accepted["metadata"]["desired"]["color"]["timestamp"], 100);
//! // desired differs from (absent) reported: a delta goes to /update/delta.
//! assert_eq!(out.delta.as_ref().unwrap()["state"]["color"], "RED");
//!
//! let out = apply_update(Some(&out.shadow), br#"{"state":{"reported":{"color":"RED"}}}"#, 101, &limits).unwrap();
//! assert!(out.delta.is_none());
//! let got = get_response(Some(&out.shadow), b"", 102, None).unwrap();
//! assert_eq!(got["version"], 2);
//! assert!(got["state"].get("delta").is_none());
//! ```
//!
//! # Semantics, and where the AWS documentation left a choice
//!
//! The rules follow the AWS IoT Developer Guide pages "Device Shadow service
//! documents", "Device Shadow MQTT topics", "Simulating Device Shadow service
//! communications" (the `ColorRGB` light bulb), "Device Shadow error
//! messages", and the shadow manager AWS ships for Greengrass (an AWS-written
//! local implementation of the same service). Decisions where they are silent
//! or disagree are recorded next to the code that makes them; in short:
//!
//! * **Delta on update** ([`delta`](mod@delta)): `/update/delta` is published after
//!   *every* accepted update whose resulting document has a non-empty delta,
//!   and carries the *whole* current delta, not only the keys the update
//!   touched ("It contains all of these attributes, regardless of whether
//!   these attributes were contained in the current update message or were
//!   already stored"). So a device reporting a value that still differs from
//!   `desired` gets the delta again, with the new version.
//! * **Metadata of arrays** ([`metadata`]): an array of per-element metadata,
//!   as in the `ColorRGB` example (`[{"timestamp":…},{"timestamp":…},…]`).
//! * **`{"state": null}`** clears both sections but keeps the shadow; it is an
//!   accepted update (version + 1) answered with
//!   `{"state":null,"metadata":{"timestamp":…},…}` as AWS does.
//! * **Empty objects** are never stored: a key whose object loses its last
//!   member disappears, and so does an empty section; an update that sends
//!   `{}` for a key changes nothing (it is still echoed in `/accepted`).
//! * **Nesting depth** is counted inside `desired`/`reported`, the section
//!   object itself being level 1 and every object or array below it one more;
//!   the limit is [`Limits::max_depth`] (6, as the error message says).
//! * **State size** is the compact JSON of the resulting `desired` plus
//!   `reported` (metadata excluded), checked against
//!   [`Limits::max_state_bytes`] after merging, since AWS rejects a small
//!   update that would grow a stored shadow past the limit.
//! * **Version continuity**: [`delete()`] returns a tombstone keeping the
//!   version; an update within [`Limits::version_retention_secs`] (48 h)
//!   continues from it, a later one starts again from 0.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod delete;
pub mod delta;
pub mod document;
pub mod errors;
pub mod get;
pub mod limits;
pub mod metadata;
pub mod request;
pub mod topic;
pub mod update;

/// A JSON object, as stored in the state and metadata sections.
pub type Map = serde_json::Map<String, serde_json::Value>;

pub use delete::delete;
pub use delta::{delta, delta_with_metadata};
pub use document::Shadow;
pub use errors::ShadowError;
pub use get::get_response;
pub use limits::{valid_shadow_name, valid_thing_name, Limits};
pub use request::request_client_token;
pub use topic::{parse_topic, ShadowOp, ShadowTopic};
pub use update::{apply_update, UpdateOutcome};
