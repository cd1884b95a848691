//! The AWS IoT data plane over HTTP: publish, device shadows and retained
//! messages. Served twice: on the device HTTPS listener (8443), where the
//! client certificate is the caller and policies decide, and on the
//! management API (SigV4, `boto3.client("iot-data")`), where the caller is an
//! administrator.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use base64::Engine;
use serde_json::{json, Value};
use shadow::{ShadowOp, ShadowTopic};

use crate::policies::PolicyAuthorizer;
use crate::shadows::{Origin, Shadows};

/// Who is calling.
#[derive(Clone)]
pub enum Caller {
    /// An administrator authenticated with SigV4: everything is allowed.
    Admin,
    /// A device authenticated by its certificate: policies decide.
    Device(broker::ClientCtx),
}

#[derive(Clone)]
pub struct DataState {
    pub broker: Arc<broker::Broker>,
    pub shadows: Arc<Shadows>,
    pub authz: Arc<PolicyAuthorizer>,
}

/// A data-plane error: status, AWS error type (`x-amzn-ErrorType`), message.
pub struct DataError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl DataError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        DataError { status, code, message: message.into() }
    }
    fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "ForbiddenException", message)
    }
    fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidRequestException", message)
    }
}

impl From<shadow::ShadowError> for DataError {
    fn from(e: shadow::ShadowError) -> Self {
        let code = match e.code {
            400 => "InvalidRequestException",
            401 => "UnauthorizedException",
            403 => "ForbiddenException",
            404 => "ResourceNotFoundException",
            409 => "ConflictException",
            413 => "RequestEntityTooLargeException",
            415 => "UnsupportedDocumentEncodingException",
            429 => "ThrottlingException",
            _ => "InternalFailureException",
        };
        let status = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        DataError::new(status, code, e.message)
    }
}

impl IntoResponse for DataError {
    fn into_response(self) -> Response {
        let trace = uuid::Uuid::new_v4().to_string();
        let body = json!({ "message": self.message, "traceId": trace, "__type": self.code });
        let mut r = (self.status, Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(&format!("{}:", self.code)) {
            r.headers_mut().insert("x-amzn-ErrorType", v);
        }
        r
    }
}

pub fn routes() -> Router<DataState> {
    Router::new()
        .route("/topics/{*topic}", post(publish))
        .route("/things/{name}/shadow", get(get_shadow).post(update_shadow).delete(delete_shadow))
        .route("/api/things/shadow/ListNamedShadowsForThing/{name}", get(list_named_shadows))
        .route("/retainedMessage", get(list_retained))
        .route("/retainedMessage/{*topic}", get(get_retained))
}

fn allow(s: &DataState, caller: &Caller, action: &str, kind: &str, name: &str) -> Result<(), DataError> {
    match caller {
        Caller::Admin => Ok(()),
        Caller::Device(ctx) if s.authz.decide(ctx, action, kind, name) => Ok(()),
        Caller::Device(_) => Err(DataError::forbidden(format!("not authorized to {action} on {kind}/{name}"))),
    }
}

/// `POST /topics/{topic}?qos=0|1&retain=…`: publish (AWS IoT Data `Publish`).
async fn publish(
    State(s): State<DataState>,
    Extension(caller): Extension<Caller>,
    Path(topic): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, DataError> {
    let qos = match q.get("qos").map(String::as_str) {
        None | Some("0") => mqtt::QoS::AtMostOnce,
        Some("1") => mqtt::QoS::AtLeastOnce,
        Some(other) => return Err(DataError::invalid(format!("qos must be 0 or 1, not {other}"))),
    };
    let retain = q.get("retain").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let limits = &s.broker.limits;
    if !mqtt::topic::valid_topic_name(&topic) || !limits.topic_within_limits(&topic) {
        return Err(DataError::invalid("invalid topic name"));
    }
    if body.len() > limits.max_payload {
        return Err(DataError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLargeException",
            format!("payload exceeds {} bytes", limits.max_payload),
        ));
    }
    if !broker::reserved::may_publish(&topic) {
        return Err(DataError::forbidden("reserved topic: clients may not publish here"));
    }
    if retain && topic.starts_with('$') {
        return Err(DataError::invalid("retained messages are not allowed on reserved topics"));
    }
    allow(&s, &caller, "iot:Publish", "topic", &topic)?;
    if retain {
        allow(&s, &caller, "iot:RetainPublish", "topic", &topic)?;
    }
    let mut msg = broker::Message::system(&topic, body, qos);
    msg.retain = retain;
    if let Caller::Device(ctx) = &caller {
        msg.publisher = Some(ctx.client_id.clone());
        msg.principal = Some(ctx.principal.id.clone());
    } else {
        msg.publisher = Some("iot-data".into());
    }
    if let Some(ct) = q.get("contentType") {
        msg.properties.content_type = Some(ct.clone());
    }
    if let Some(rt) = q.get("responseTopic") {
        msg.properties.response_topic = Some(rt.clone());
    }
    if let Some(exp) = q.get("messageExpiry").and_then(|v| v.parse::<u64>().ok()) {
        msg.expires_at_ms = Some(store::now_ms() + exp * 1000);
    }
    if let Some(up) = headers.get("x-amz-mqtt5-user-properties").and_then(|v| v.to_str().ok()) {
        // base64 of a JSON array of {"key": value} objects, as the AWS SDKs send it.
        // botocore sends base64 of a JSON array, or of a JSON string holding one.
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(up)
            .map_err(|_| DataError::invalid("x-amz-mqtt5-user-properties is not base64"))?;
        let mut v: Value = serde_json::from_slice(&decoded)
            .map_err(|_| DataError::invalid("x-amz-mqtt5-user-properties is not JSON"))?;
        if let Value::String(s) = &v {
            v = serde_json::from_str(s).map_err(|_| DataError::invalid("userProperties is not a JSON array"))?;
        }
        let list: Vec<serde_json::Map<String, Value>> = serde_json::from_value(v)
            .map_err(|_| DataError::invalid("userProperties must be a JSON array of objects"))?;
        {
            for obj in list {
                for (k, v) in obj {
                    msg.properties.user_properties.push((k, v.as_str().map(str::to_string).unwrap_or(v.to_string())));
                }
            }
        }
    }
    let routed = s.broker.publish(msg);
    if routed.needs_sync && qos > mqtt::QoS::AtMostOnce {
        s.broker.sync().await.map_err(|_| {
            DataError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalFailureException", "could not store the message")
        })?;
    }
    let trace = uuid::Uuid::new_v4().to_string();
    Ok(Json(json!({ "message": "OK", "traceId": trace })).into_response())
}

fn shadow_topic(thing: &str, q: &HashMap<String, String>, op: ShadowOp) -> Result<ShadowTopic, DataError> {
    if !shadow::valid_thing_name(thing) {
        return Err(DataError::invalid(format!("invalid thing name {thing:?}")));
    }
    let name = q.get("name").cloned().filter(|n| !n.is_empty());
    if let Some(n) = &name {
        if !shadow::valid_shadow_name(n) {
            return Err(DataError::invalid(format!("invalid shadow name {n:?}")));
        }
    }
    Ok(ShadowTopic { thing: thing.to_string(), shadow: name, op })
}

fn shadow_resource(t: &ShadowTopic) -> String {
    match &t.shadow {
        Some(n) => format!("{}/{n}", t.thing),
        None => t.thing.clone(),
    }
}

async fn shadow_op(
    s: DataState,
    caller: Caller,
    thing: String,
    q: HashMap<String, String>,
    op: ShadowOp,
    action: &'static str,
    body: Bytes,
) -> Result<Response, DataError> {
    let t = shadow_topic(&thing, &q, op)?;
    allow(&s, &caller, action, "thing", &shadow_resource(&t))?;
    let shadows = s.shadows.clone();
    let v = tokio::task::spawn_blocking(move || shadows.handle(&t, &body, Origin::Http)).await.map_err(|_| {
        DataError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalFailureException", "shadow task failed")
    })??;
    Ok(Json(v).into_response())
}

/// GetThingShadow.
async fn get_shadow(
    State(s): State<DataState>,
    Extension(caller): Extension<Caller>,
    Path(thing): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, DataError> {
    shadow_op(s, caller, thing, q, ShadowOp::Get, "iot:GetThingShadow", Bytes::new()).await
}

/// UpdateThingShadow (the seed's `curl -X POST -d '{"state":…}' …/shadow`).
async fn update_shadow(
    State(s): State<DataState>,
    Extension(caller): Extension<Caller>,
    Path(thing): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Result<Response, DataError> {
    shadow_op(s, caller, thing, q, ShadowOp::Update, "iot:UpdateThingShadow", body).await
}

/// DeleteThingShadow.
async fn delete_shadow(
    State(s): State<DataState>,
    Extension(caller): Extension<Caller>,
    Path(thing): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, DataError> {
    shadow_op(s, caller, thing, q, ShadowOp::Delete, "iot:DeleteThingShadow", Bytes::new()).await
}

/// ListNamedShadowsForThing.
async fn list_named_shadows(
    State(s): State<DataState>,
    Extension(caller): Extension<Caller>,
    Path(thing): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, DataError> {
    allow(&s, &caller, "iot:ListNamedShadowsForThing", "thing", &thing)?;
    let names = s.shadows.list_named(&thing)?;
    let size = q.get("pageSize").and_then(|p| p.parse::<usize>().ok()).unwrap_or(25).clamp(1, 100);
    let start = q.get("nextToken").and_then(|t| t.parse::<usize>().ok()).unwrap_or(0);
    let end = (start + size).min(names.len());
    let mut v = json!({
        "results": names.get(start..end).unwrap_or_default(),
        "timestamp": store::now_ms() / 1000,
    });
    if end < names.len() {
        v["nextToken"] = json!(end.to_string());
    }
    Ok(Json(v).into_response())
}

/// ListRetainedMessages.
async fn list_retained(
    State(s): State<DataState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, DataError> {
    allow(&s, &caller, "iot:ListRetainedMessages", "topic", "*")?;
    let all = s.broker.retained_messages();
    let size = q.get("maxResults").and_then(|p| p.parse::<usize>().ok()).unwrap_or(50).clamp(1, 200);
    let start = q.get("nextToken").and_then(|t| t.parse::<usize>().ok()).unwrap_or(0);
    let end = (start + size).min(all.len());
    let list: Vec<Value> = all
        .get(start..end)
        .unwrap_or_default()
        .iter()
        .map(|m| {
            json!({
                "topic": &*m.topic,
                "payloadSize": m.payload.len(),
                "qos": m.qos as u8,
                "lastModifiedTime": m.received_at_ms,
            })
        })
        .collect();
    let mut v = json!({ "retainedTopics": list });
    if end < all.len() {
        v["nextToken"] = json!(end.to_string());
    }
    Ok(Json(v).into_response())
}

/// GetRetainedMessage.
async fn get_retained(
    State(s): State<DataState>,
    Extension(caller): Extension<Caller>,
    Path(topic): Path<String>,
) -> Result<Response, DataError> {
    allow(&s, &caller, "iot:GetRetainedMessage", "topic", &topic)?;
    let m = s.broker.retained(&topic).ok_or_else(|| {
        DataError::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", "no retained message on this topic")
    })?;
    Ok(Json(json!({
        "topic": &*m.topic,
        "payload": base64::engine::general_purpose::STANDARD.encode(&m.payload),
        "qos": m.qos as u8,
        "lastModifiedTime": m.received_at_ms,
    }))
    .into_response())
}
