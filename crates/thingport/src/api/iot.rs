//! AWS IoT control-plane operations: things, certificates, principals.
//! Paths, methods and JSON shapes follow the botocore `iot` service model.

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use store::{CertificateRecord, CertificateStatus, ThingRecord};

use super::error::ApiError;
use super::ApiState;

type ApiResult = Result<Json<Value>, ApiError>;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/things", get(list_things))
        .route("/things/{name}", post(create_thing).get(describe_thing).patch(update_thing).delete(delete_thing))
        .route("/things/{name}/principals", put(attach_principal).delete(detach_principal).get(list_thing_principals))
        .route("/principals/things", get(list_principal_things))
        .route("/keys-and-certificate", post(create_keys_and_certificate))
        .route("/certificates", post(create_certificate_from_csr).get(list_certificates))
        .route("/certificates/{id}", get(describe_certificate).put(update_certificate).delete(delete_certificate))
        .route("/endpoint", get(describe_endpoint))
        .route("/thingport/info", get(server_info))
        .route("/thingport/server-certificate/rotate", post(rotate_server_certificate))
}

fn parse_json<T: for<'de> Deserialize<'de> + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("request body is not valid JSON: {e}")))
}

fn principal_header(headers: &HeaderMap) -> Result<String, ApiError> {
    headers
        .get("x-amzn-principal")
        .or_else(|| headers.get("x-amzn-iot-principal"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| ApiError::invalid("missing x-amzn-principal header"))
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// Paginate by offset: `next` is the opaque token (the offset, decimal).
fn page<T: Clone>(items: &[T], token: Option<&str>, max: Option<usize>) -> Result<(Vec<T>, Option<String>), ApiError> {
    let start: usize = match token {
        Some(t) if !t.is_empty() => t.parse().map_err(|_| ApiError::invalid("invalid nextToken"))?,
        _ => 0,
    };
    let max = max.unwrap_or(250).clamp(1, 250);
    let end = (start + max).min(items.len());
    let slice = items.get(start..end).map(<[T]>::to_vec).unwrap_or_default();
    let next = (end < items.len()).then(|| end.to_string());
    Ok((slice, next))
}

// ---- things ----

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateThingBody {
    thing_type_name: Option<String>,
    attribute_payload: Option<AttributePayload>,
}

#[derive(Debug, Default, Deserialize)]
struct AttributePayload {
    #[serde(default)]
    attributes: BTreeMap<String, String>,
}

async fn create_thing(State(s): State<ApiState>, Path(name): Path<String>, body: Bytes) -> ApiResult {
    let b: CreateThingBody = parse_json(&body)?;
    let attrs = b.attribute_payload.map(|a| a.attributes).unwrap_or_default();
    super::groups::check_new_thing(&s, b.thing_type_name.as_deref(), &attrs)?;
    let t = s.registry.create_thing(&name, b.thing_type_name, attrs)?;
    super::groups::thing_event(&s, "CREATED", &t);
    Ok(Json(json!({ "thingName": t.name, "thingArn": s.registry.thing_arn(&t.name), "thingId": t.id })))
}

fn thing_json(s: &ApiState, t: &ThingRecord) -> Value {
    let mut v = json!({
        "thingName": t.name,
        "thingId": t.id,
        "thingArn": s.registry.thing_arn(&t.name),
        "attributes": t.attributes,
        "version": t.version,
    });
    if let Some(tt) = &t.type_name {
        v["thingTypeName"] = json!(tt);
    }
    v
}

async fn describe_thing(State(s): State<ApiState>, Path(name): Path<String>) -> ApiResult {
    let t = s.registry.get_thing(&name)?;
    let mut v = thing_json(&s, &t);
    v["defaultClientId"] = json!(t.name);
    Ok(Json(v))
}

async fn list_things(State(s): State<ApiState>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let mut things = s.registry.list_things()?;
    if let Some(tt) = q.get("thingTypeName") {
        things.retain(|t| t.type_name.as_deref() == Some(tt));
    }
    if let Some(an) = q.get("attributeName") {
        let av = q.get("attributeValue");
        things.retain(|t| t.attributes.get(an).is_some_and(|v| av.is_none_or(|want| want == v)));
    }
    let max = q.get("maxResults").and_then(|m| m.parse().ok());
    let (items, next) = page(&things, q.get("nextToken").map(String::as_str), max)?;
    let list: Vec<Value> = items.iter().map(|t| thing_json(&s, t)).collect();
    let mut v = json!({ "things": list });
    if let Some(n) = next {
        v["nextToken"] = json!(n);
    }
    Ok(Json(v))
}

/// AWS DeleteThing: deleting a thing that does not exist succeeds; a wrong
/// `expectedVersion` is a 409 VersionConflictException.
async fn delete_thing(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let t = match s.registry.get_thing(&name) {
        Ok(t) => t,
        Err(e) if e.status == StatusCode::NOT_FOUND => return Ok(Json(json!({}))),
        Err(e) => return Err(e),
    };
    if let Some(v) = q.get("expectedVersion") {
        let v: i64 = v.parse().map_err(|_| ApiError::invalid(format!("expectedVersion {v:?} is not a number")))?;
        if v != t.version {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "VersionConflictException",
                format!("thing {name} is at version {}, not {v}", t.version),
            ));
        }
    }
    s.registry.delete_thing(&name)?;
    super::groups::thing_event(&s, "DELETED", &t);
    Ok(Json(json!({})))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateThingBody {
    thing_type_name: Option<String>,
    attribute_payload: Option<super::groups::AttributePayloadBody>,
    expected_version: Option<i64>,
    #[serde(default)]
    remove_thing_type: bool,
}

/// AWS UpdateThing (the rules live in `crate::groups`).
async fn update_thing(State(s): State<ApiState>, Path(name): Path<String>, body: Bytes) -> ApiResult {
    let b: UpdateThingBody = parse_json(&body)?;
    s.groups.update_thing(
        &name,
        crate::groups::ThingUpdate {
            type_name: b.thing_type_name.filter(|t| !t.is_empty()),
            remove_type: b.remove_thing_type,
            attributes: b.attribute_payload.map(Into::into),
            expected_version: b.expected_version,
        },
    )?;
    Ok(Json(json!({})))
}

async fn attach_principal(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult {
    let exclusive = match q.get("thingPrincipalType").map(String::as_str) {
        None | Some("NON_EXCLUSIVE_THING") => false,
        Some("EXCLUSIVE_THING") => true,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "thingPrincipalType {other:?} must be EXCLUSIVE_THING or NON_EXCLUSIVE_THING"
            )))
        }
    };
    s.registry.attach(&name, &principal_header(&headers)?, exclusive)?;
    Ok(Json(json!({})))
}

async fn detach_principal(State(s): State<ApiState>, Path(name): Path<String>, headers: HeaderMap) -> ApiResult {
    s.registry.detach(&name, &principal_header(&headers)?)?;
    Ok(Json(json!({})))
}

async fn list_thing_principals(State(s): State<ApiState>, Path(name): Path<String>) -> ApiResult {
    Ok(Json(json!({ "principals": s.registry.thing_principals(&name)? })))
}

async fn list_principal_things(State(s): State<ApiState>, headers: HeaderMap) -> ApiResult {
    Ok(Json(json!({ "things": s.registry.principal_things(&principal_header(&headers)?)? })))
}

// ---- certificates ----

fn set_as_active(q: &HashMap<String, String>) -> bool {
    q.get("setAsActive").is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

async fn create_keys_and_certificate(State(s): State<ApiState>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    // AWS issues RSA 2048; `keyType` is a Thingport extension (ec, rsa, …).
    let key_type = match q.get("keyType") {
        Some(k) => k.parse::<pki::KeyType>().map_err(|e| ApiError::invalid(e.to_string()))?,
        None => pki::KeyType::Rsa2048,
    };
    let (rec, key) = s.registry.create_keys_and_certificate(key_type, set_as_active(&q))?;
    let public = public_key_pem(&rec.pem).unwrap_or_default();
    Ok(Json(json!({
        "certificateArn": s.registry.cert_arn(&rec.id),
        "certificateId": rec.id,
        "certificatePem": rec.pem,
        "keyPair": { "PublicKey": public, "PrivateKey": key.expose() },
    })))
}

fn public_key_pem(cert_pem: &str) -> Option<String> {
    let der = pki::pem_to_der(cert_pem).ok()?;
    let info = pki::parse_certificate(&der).ok()?;
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&info.subject_public_key_info_der);
    let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).ok()?);
        out.push('\n');
    }
    out.push_str("-----END PUBLIC KEY-----\n");
    Some(out)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CsrBody {
    certificate_signing_request: Option<String>,
}

async fn create_certificate_from_csr(
    State(s): State<ApiState>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> ApiResult {
    let b: CsrBody = parse_json(&body)?;
    let csr =
        b.certificate_signing_request.ok_or_else(|| ApiError::invalid("certificateSigningRequest is required"))?;
    if csr.len() > 4096 {
        return Err(ApiError::invalid("certificateSigningRequest is longer than 4096 characters"));
    }
    let rec = s.registry.create_certificate_from_csr(&csr, set_as_active(&q))?;
    Ok(Json(json!({
        "certificateArn": s.registry.cert_arn(&rec.id),
        "certificateId": rec.id,
        "certificatePem": rec.pem,
    })))
}

fn cert_summary(s: &ApiState, c: &CertificateRecord) -> Value {
    json!({
        "certificateArn": s.registry.cert_arn(&c.id),
        "certificateId": c.id,
        "status": c.status.as_str(),
        "certificateMode": "DEFAULT",
        "creationDate": secs(c.created_at_ms),
    })
}

async fn list_certificates(State(s): State<ApiState>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let mut certs = s.registry.list_certificates()?;
    if q.get("isAscendingOrder").is_some_and(|v| v == "false") {
        certs.reverse();
    }
    let max = q.get("pageSize").and_then(|m| m.parse().ok());
    let (items, next) = page(&certs, q.get("marker").map(String::as_str), max)?;
    let list: Vec<Value> = items.iter().map(|c| cert_summary(&s, c)).collect();
    let mut v = json!({ "certificates": list });
    if let Some(n) = next {
        v["nextMarker"] = json!(n);
    }
    Ok(Json(v))
}

async fn describe_certificate(State(s): State<ApiState>, Path(id): Path<String>) -> ApiResult {
    let c = s.registry.get_certificate(&id)?;
    let validity = super::validity_json(&c.pem);
    Ok(Json(json!({
        "certificateDescription": {
            "certificateArn": s.registry.cert_arn(&c.id),
            "certificateId": c.id,
            "caCertificateId": c.ca_certificate_id,
            "status": c.status.as_str(),
            "certificatePem": c.pem,
            "ownedBy": s.registry.account_id,
            "creationDate": secs(c.created_at_ms),
            "lastModifiedDate": secs(c.updated_at_ms),
            "customerVersion": 1,
            "generationId": c.id.get(..8),
            "validity": validity,
            "certificateMode": "DEFAULT",
        }
    })))
}

async fn update_certificate(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    let status = q.get("newStatus").ok_or_else(|| ApiError::invalid("newStatus is required"))?;
    let status = CertificateStatus::parse(status)
        .ok_or_else(|| ApiError::invalid(format!("newStatus {status:?} is not a certificate status")))?;
    s.registry.update_certificate_status(&id, status)?;
    Ok(StatusCode::OK)
}

/// AWS DeleteCertificate: refused while policies are attached, unless
/// `forceDelete=true`, which detaches them.
async fn delete_certificate(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    let force = q.get("forceDelete").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    s.registry.check_deletable(&id)?;
    let policies = s.policies.attached(&id, false)?;
    if !policies.is_empty() && !force {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "DeleteConflictException",
            format!("certificate {id} has policies attached ({}); detach them first", policies.join(", ")),
        ));
    }
    s.registry.delete_certificate(&id)?;
    s.policies.forget_target(&id)?;
    Ok(StatusCode::OK)
}

async fn describe_endpoint(State(s): State<ApiState>) -> ApiResult {
    let _ = &s;
    let host = std::env::var("THINGPORT_PUBLIC_HOST").unwrap_or_else(|_| "localhost".into());
    Ok(Json(json!({ "endpointAddress": host })))
}

/// Thingport extension: what a device needs besides its certificate.
async fn server_info(State(s): State<ApiState>) -> ApiResult {
    Ok(Json(json!({
        "rootCaPem": s.registry.ca.cert_pem(),
        "mqttAddress": s.mqtt_address,
        "s3Url": s.s3_url,
        "region": s.registry.region,
        "accountId": s.registry.account_id,
        "connectedClients": s.broker.connected_count(),
        "sessions": s.broker.session_count(),
        "retainedMessages": s.broker.retained_count(),
    })))
}

/// Thingport extension: issue (or re-read) the server certificate and serve
/// it to new connections without dropping existing ones.
async fn rotate_server_certificate(State(s): State<ApiState>) -> ApiResult {
    let id = s.server_identity.rotate().map_err(|e| ApiError::internal(format!("{e:#}")))?;
    Ok(Json(json!({ "certificateId": id })))
}
