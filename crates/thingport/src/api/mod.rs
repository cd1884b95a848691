//! The management API: AWS IoT's control-plane REST-JSON protocol, signed
//! with SigV4, so boto3 and the AWS CLI work with an endpoint override.

pub mod auth;
pub mod ca;
pub mod error;
pub mod groups;
pub mod iot;
pub mod kms;
pub mod policy;
pub mod rules;

use std::sync::Arc;

use axum::Router;

use crate::registry::Registry;

/// Shared state of the API handlers.
#[derive(Clone)]
pub struct ApiState {
    pub registry: Arc<Registry>,
    pub credentials: Arc<Vec<crate::datadir::AdminCredentials>>,
    pub broker: Arc<broker::Broker>,
    /// MQTT over TLS address devices should use (host:port).
    pub mqtt_address: String,
    /// Topic rules.
    pub rules: Arc<crate::rules_engine::RulesEngine>,
    /// Policies and their evaluation.
    pub policies: Arc<crate::policies::Policies>,
    /// The server certificate (rotation).
    pub server_identity: Arc<crate::server::ServerIdentity>,
    /// Payload keys (the KMS-compatible API).
    pub keys: Arc<crate::payload_keys::PayloadKeys>,
    /// S3-compatible endpoint URL devices and tools use.
    pub s3_url: String,
    /// Thing types, thing groups, UpdateThing and registry events.
    pub groups: Arc<crate::groups::Groups>,
}

/// The whole management API, authentication included: the AWS IoT control
/// plane and, for administrators, the IoT Data plane (`boto3.client("iot-data")`).
pub fn router(state: ApiState, data: crate::dataplane::DataState) -> Router {
    let data_routes =
        crate::dataplane::routes().layer(axum::Extension(crate::dataplane::Caller::Admin)).with_state(data);
    let authed = iot::routes()
        .merge(ca::routes())
        .merge(policy::routes())
        .merge(groups::routes())
        .merge(rules::routes())
        .merge(kms::routes())
        .with_state(state.clone())
        .merge(data_routes)
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_sigv4));
    Router::new().route("/health", axum::routing::get(|| async { "ok\n" })).merge(authed)
}

/// AWS-style `pageSize` / `marker` pagination over an in-memory list: the
/// marker is the offset of the next page.
pub fn page_by_marker<T: Clone>(
    items: &[T],
    q: &std::collections::HashMap<String, String>,
) -> Result<(Vec<T>, Option<String>), error::ApiError> {
    let start: usize = match q.get("marker").filter(|m| !m.is_empty()) {
        Some(m) => m.parse().map_err(|_| error::ApiError::invalid("invalid marker"))?,
        None => 0,
    };
    let size = match q.get("pageSize") {
        Some(p) => p.parse::<usize>().map_err(|_| error::ApiError::invalid("invalid pageSize"))?.clamp(1, 250),
        None => 250,
    };
    let end = (start + size).min(items.len());
    let page = items.get(start..end).map(<[T]>::to_vec).unwrap_or_default();
    Ok((page, (end < items.len()).then(|| end.to_string())))
}

/// A certificate's `validity` as AWS describes it (`notBefore`, `notAfter`, epoch seconds).
pub fn validity_json(pem: &str) -> Option<serde_json::Value> {
    let info = pki::parse_certificate(&pki::pem_to_der(pem).ok()?).ok()?;
    Some(serde_json::json!({ "notBefore": info.not_before, "notAfter": info.not_after }))
}
