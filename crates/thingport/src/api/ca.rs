//! Bring-your-own-CA operations of the AWS IoT control plane:
//! registration code, CA certificates, registering device certificates.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use store::CertificateStatus;

use super::error::ApiError;
use super::ApiState;

type ApiResult = Result<Json<Value>, ApiError>;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/registrationcode", get(get_registration_code).delete(delete_registration_code))
        .route("/cacertificate", post(register_ca))
        .route("/cacertificates", get(list_cas))
        .route("/cacertificate/{id}", get(describe_ca).put(update_ca).delete(delete_ca))
        .route("/certificate/register", post(register_certificate))
        .route("/certificate/register-no-ca", post(register_certificate_without_ca))
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("request body is not valid JSON: {e}")))
}

fn flag(q: &HashMap<String, String>, name: &str) -> bool {
    q.get(name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

async fn get_registration_code(State(s): State<ApiState>) -> ApiResult {
    Ok(Json(json!({ "registrationCode": s.registry.registration_code()? })))
}

async fn delete_registration_code(State(s): State<ApiState>) -> ApiResult {
    s.registry.delete_registration_code()?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterCaBody {
    ca_certificate: String,
    verification_certificate: Option<String>,
    set_as_active: Option<bool>,
    allow_auto_registration: Option<bool>,
    certificate_mode: Option<String>,
}

async fn register_ca(State(s): State<ApiState>, Query(q): Query<HashMap<String, String>>, body: Bytes) -> ApiResult {
    let b: RegisterCaBody = parse(&body)?;
    let sni_only = match b.certificate_mode.as_deref() {
        None | Some("DEFAULT") => false,
        Some("SNI_ONLY") => true,
        Some(other) => return Err(ApiError::invalid(format!("certificateMode {other:?} must be DEFAULT or SNI_ONLY"))),
    };
    let active = flag(&q, "setAsActive") || b.set_as_active.unwrap_or(false);
    let auto = flag(&q, "allowAutoRegistration") || b.allow_auto_registration.unwrap_or(false);
    let rec =
        s.registry.register_ca(&b.ca_certificate, b.verification_certificate.as_deref(), active, auto, sni_only)?;
    Ok(Json(json!({ "certificateArn": s.registry.ca_arn(&rec.id), "certificateId": rec.id })))
}

fn ca_status(active: bool) -> &'static str {
    if active {
        "ACTIVE"
    } else {
        "INACTIVE"
    }
}

async fn list_cas(State(s): State<ApiState>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let all = s.registry.list_cas();
    let (items, next) = super::page_by_marker(&all, &q)?;
    let list: Vec<Value> = items
        .iter()
        .map(|c| {
            json!({
                "certificateArn": s.registry.ca_arn(&c.id),
                "certificateId": c.id,
                "status": ca_status(c.active),
                "creationDate": secs(c.created_at_ms),
            })
        })
        .collect();
    let mut v = json!({ "certificates": list });
    if let Some(n) = next {
        v["nextMarker"] = json!(n);
    }
    Ok(Json(v))
}

async fn describe_ca(State(s): State<ApiState>, Path(id): Path<String>) -> ApiResult {
    let c = s.registry.get_ca(&id)?;
    let validity = super::validity_json(&c.pem);
    Ok(Json(json!({
        "certificateDescription": {
            "certificateArn": s.registry.ca_arn(&c.id),
            "certificateId": c.id,
            "status": ca_status(c.active),
            "certificatePem": c.pem,
            "ownedBy": s.registry.account_id,
            "creationDate": secs(c.created_at_ms),
            "lastModifiedDate": secs(c.updated_at_ms),
            "autoRegistrationStatus": if c.auto_registration { "ENABLE" } else { "DISABLE" },
            "customerVersion": 1,
            "generationId": c.id.get(..8),
            "validity": validity,
            "certificateMode": "DEFAULT",
        },
        "registrationConfig": {},
    })))
}

async fn update_ca(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    let active = match q.get("newStatus").map(String::as_str) {
        None => None,
        Some("ACTIVE") => Some(true),
        Some("INACTIVE") => Some(false),
        Some(other) => return Err(ApiError::invalid(format!("newStatus {other:?} must be ACTIVE or INACTIVE"))),
    };
    let auto = match q.get("newAutoRegistrationStatus").map(String::as_str) {
        None => None,
        Some("ENABLE") => Some(true),
        Some("DISABLE") => Some(false),
        Some(other) => {
            return Err(ApiError::invalid(format!("newAutoRegistrationStatus {other:?} must be ENABLE or DISABLE")))
        }
    };
    s.registry.update_ca(&id, active, auto)?;
    Ok(StatusCode::OK)
}

async fn delete_ca(State(s): State<ApiState>, Path(id): Path<String>) -> ApiResult {
    s.registry.delete_ca(&id)?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterCertBody {
    certificate_pem: String,
    ca_certificate_pem: Option<String>,
    set_as_active: Option<bool>,
    status: Option<String>,
}

fn registration_status(b: &RegisterCertBody) -> Result<CertificateStatus, ApiError> {
    match b.status.as_deref() {
        None => {
            Ok(if b.set_as_active.unwrap_or(false) { CertificateStatus::Active } else { CertificateStatus::Inactive })
        }
        Some(s) => match CertificateStatus::parse(s) {
            Some(
                st @ (CertificateStatus::Active
                | CertificateStatus::Inactive
                | CertificateStatus::RegisterInactive
                | CertificateStatus::PendingActivation),
            ) => Ok(st),
            _ => Err(ApiError::invalid(format!(
                "status {s:?} must be ACTIVE, INACTIVE, REGISTER_INACTIVE or PENDING_ACTIVATION"
            ))),
        },
    }
}

async fn register_certificate(
    State(s): State<ApiState>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> ApiResult {
    let mut b: RegisterCertBody = parse(&body)?;
    // botocore sends setAsActive in the query string.
    if flag(&q, "setAsActive") {
        b.set_as_active = Some(true);
    }
    let status = registration_status(&b)?;
    let rec = s.registry.register_certificate(&b.certificate_pem, b.ca_certificate_pem.as_deref(), status)?;
    Ok(Json(json!({ "certificateArn": s.registry.cert_arn(&rec.id), "certificateId": rec.id })))
}

async fn register_certificate_without_ca(State(s): State<ApiState>, body: Bytes) -> ApiResult {
    let b: RegisterCertBody = parse(&body)?;
    let status = registration_status(&b)?;
    let rec = s.registry.register_certificate_without_ca(&b.certificate_pem, status)?;
    Ok(Json(json!({ "certificateArn": s.registry.cert_arn(&rec.id), "certificateId": rec.id })))
}
