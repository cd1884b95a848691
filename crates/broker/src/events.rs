//! AWS IoT lifecycle events (`$aws/events/presence/...`), published through
//! the router like any message so subscriptions and policies apply.

use serde_json::json;

/// Why a connection ended, as AWS spells it in `disconnectReason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    ClientInitiated,
    ConnectionLost,
    DuplicateClientId,
    KeepAliveTimeout,
    ClientError,
    ServerInitiated,
    ForbiddenAccess,
    ServerError,
}

impl DisconnectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::ClientInitiated => "CLIENT_INITIATED_DISCONNECT",
            DisconnectReason::ConnectionLost => "CONNECTION_LOST",
            DisconnectReason::DuplicateClientId => "DUPLICATE_CLIENTID",
            DisconnectReason::KeepAliveTimeout => "MQTT_KEEP_ALIVE_TIMEOUT",
            DisconnectReason::ClientError => "CLIENT_ERROR",
            DisconnectReason::ServerInitiated => "SERVER_INITIATED_DISCONNECT",
            DisconnectReason::ForbiddenAccess => "FORBIDDEN_ACCESS",
            DisconnectReason::ServerError => "SERVER_ERROR",
        }
    }
}

/// Whether a client id gets lifecycle events (AWS skips ids with wildcards).
pub fn has_events(client_id: &str) -> bool {
    !client_id.contains(['#', '+'])
}

pub fn connected_topic(client_id: &str) -> String {
    format!("$aws/events/presence/connected/{client_id}")
}

pub fn disconnected_topic(client_id: &str) -> String {
    format!("$aws/events/presence/disconnected/{client_id}")
}

pub fn connected_payload(
    client_id: &str,
    ts_ms: u64,
    session_id: &str,
    principal: &str,
    ip: &str,
    version: u64,
) -> String {
    json!({
        "clientId": client_id,
        "timestamp": ts_ms,
        "eventType": "connected",
        "sessionIdentifier": session_id,
        "principalIdentifier": principal,
        "ipAddress": ip,
        "versionNumber": version,
    })
    .to_string()
}

pub fn disconnected_payload(
    client_id: &str,
    ts_ms: u64,
    session_id: &str,
    principal: &str,
    reason: DisconnectReason,
    version: u64,
) -> String {
    json!({
        "clientId": client_id,
        "timestamp": ts_ms,
        "eventType": "disconnected",
        "clientInitiatedDisconnect": reason == DisconnectReason::ClientInitiated,
        "sessionIdentifier": session_id,
        "principalIdentifier": principal,
        "disconnectReason": reason.as_str(),
        "versionNumber": version,
    })
    .to_string()
}
