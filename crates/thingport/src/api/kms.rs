//! The KMS-compatible API (AWS KMS JSON 1.1: `POST /` with
//! `X-Amz-Target: TrentService.<Operation>`, SigV4), so
//! `boto3.client("kms", endpoint_url=…)` and the AWS CLI manage master keys
//! and data keys; plus Thingport's data-key tracking and audit routes.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use base64::Engine;
use serde_json::{json, Value};

use super::auth::AccessKey;
use super::error::ApiError;
use super::ApiState;
use crate::payload_keys::PayloadKeys;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", post(trent))
        .route("/thingport/data-keys", get(list_data_keys))
        .route("/thingport/data-keys/{id}/revoke", post(revoke_data_key))
        .route("/thingport/things/{thing}/data-keys/revoke", post(revoke_thing_keys))
        .route("/thingport/key-audit", get(audit_log))
        .route("/thingport/payloads/decrypt", post(decrypt_envelope))
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn err(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

fn kms_json(v: Value) -> Response {
    let mut r = Json(v).into_response();
    r.headers_mut().insert("content-type", axum::http::HeaderValue::from_static("application/x-amz-json-1.1"));
    r
}

fn str_field<'a>(body: &'a Value, name: &str) -> Result<&'a str, ApiError> {
    body.get(name).and_then(Value::as_str).ok_or_else(|| err("ValidationException", format!("{name} is required")))
}

fn blob_field(body: &Value, name: &str) -> Result<Vec<u8>, ApiError> {
    b64().decode(str_field(body, name)?).map_err(|_| err("ValidationException", format!("{name} must be base64")))
}

fn context(body: &Value, name: &str) -> Result<BTreeMap<String, String>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                v.as_str()
                    .map(|v| (k.clone(), v.to_string()))
                    .ok_or_else(|| err("ValidationException", format!("{name} values must be strings")))
            })
            .collect(),
        Some(_) => Err(err("ValidationException", format!("{name} must be a map of strings"))),
    }
}

fn data_key_bytes(body: &Value) -> Result<usize, ApiError> {
    match (body.get("KeySpec").and_then(Value::as_str), body.get("NumberOfBytes").and_then(Value::as_u64)) {
        (Some(_), Some(_)) => Err(err("ValidationException", "specify either KeySpec or NumberOfBytes, not both")),
        (Some("AES_256"), None) => Ok(32),
        (Some("AES_128"), None) => Ok(16),
        (Some(other), None) => Err(err("ValidationException", format!("KeySpec {other:?} must be AES_256 or AES_128"))),
        (None, Some(n)) if (1..=1024).contains(&n) => Ok(n as usize),
        (None, Some(_)) => Err(err("ValidationException", "NumberOfBytes must be between 1 and 1024")),
        (None, None) => Err(err("ValidationException", "KeySpec or NumberOfBytes is required")),
    }
}

async fn trent(
    State(s): State<ApiState>,
    Extension(caller): Extension<AccessKey>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(op) = target.strip_prefix("TrentService.") else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            "POST / needs X-Amz-Target: TrentService.<Operation>",
        ));
    };
    let body: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&body).map_err(|e| err("SerializationException", format!("invalid JSON: {e}")))?
    };
    let k = &s.keys;
    let who = caller.0.as_str();
    let out = match op {
        "CreateKey" => {
            if let Some(spec) = body.get("KeySpec").or(body.get("CustomerMasterKeySpec")).and_then(Value::as_str) {
                if spec != "SYMMETRIC_DEFAULT" {
                    return Err(err(
                        "UnsupportedOperationException",
                        format!("KeySpec {spec} is not supported: only SYMMETRIC_DEFAULT"),
                    ));
                }
            }
            let rec = k.create_key(body.get("Description").and_then(Value::as_str).unwrap_or(""), who)?;
            json!({ "KeyMetadata": k.metadata(&rec) })
        }
        "DescribeKey" => json!({ "KeyMetadata": k.metadata(&k.resolve(str_field(&body, "KeyId")?)?) }),
        "ListKeys" => {
            let keys: Vec<Value> =
                k.list_keys()?.iter().map(|r| json!({ "KeyId": r.id, "KeyArn": k.key_arn(&r.id) })).collect();
            page(keys, &body, "Keys")?
        }
        "EnableKey" | "DisableKey" => {
            k.set_enabled(str_field(&body, "KeyId")?, op == "EnableKey", who)?;
            json!({})
        }
        "ScheduleKeyDeletion" => {
            let days = body.get("PendingWindowInDays").and_then(Value::as_u64).unwrap_or(30) as u32;
            let rec = k.schedule_deletion(str_field(&body, "KeyId")?, days, who)?;
            json!({ "KeyId": k.key_arn(&rec.id), "DeletionDate": rec.deletion_ms.unwrap_or(0) as f64 / 1000.0,
                    "KeyState": rec.state, "PendingWindowInDays": days })
        }
        "CancelKeyDeletion" => {
            let rec = k.cancel_deletion(str_field(&body, "KeyId")?, who)?;
            json!({ "KeyId": k.key_arn(&rec.id) })
        }
        "EnableKeyRotation" | "DisableKeyRotation" => {
            let days = body.get("RotationPeriodInDays").and_then(Value::as_u64).map(|d| d as u32);
            k.set_rotation(str_field(&body, "KeyId")?, op == "EnableKeyRotation", days, who)?;
            json!({})
        }
        "GetKeyRotationStatus" => {
            let rec = k.resolve(str_field(&body, "KeyId")?)?;
            let mut v = json!({ "KeyRotationEnabled": rec.rotation_enabled, "KeyId": k.key_arn(&rec.id),
                                "RotationPeriodInDays": rec.rotation_period_days });
            if let Some(t) = PayloadKeys::next_rotation_ms(&rec) {
                v["NextRotationDate"] = json!(t as f64 / 1000.0);
            }
            v
        }
        "RotateKeyOnDemand" => {
            let rec = k.rotate(str_field(&body, "KeyId")?, who)?;
            json!({ "KeyId": k.key_arn(&rec.id) })
        }
        "CreateAlias" => {
            k.create_alias(str_field(&body, "AliasName")?, str_field(&body, "TargetKeyId")?, who)?;
            json!({})
        }
        "ListAliases" => {
            let only = body.get("KeyId").and_then(Value::as_str).map(|key| k.resolve(key)).transpose()?;
            let aliases: Vec<Value> = k
                .list_aliases()?
                .into_iter()
                .filter(|(_, id)| only.as_ref().is_none_or(|o| o.id == *id))
                .map(|(a, id)| json!({ "AliasName": a, "AliasArn": format!("arn:aws:kms:{}:{}:{a}", k.region, k.account_id), "TargetKeyId": id }))
                .collect();
            page(aliases, &body, "Aliases")?
        }
        "Encrypt" => {
            let plain = blob_field(&body, "Plaintext")?;
            if plain.is_empty() || plain.len() > 4096 {
                return Err(err("ValidationException", "Plaintext must be 1 to 4096 bytes"));
            }
            let (blob, rec) =
                k.encrypt(str_field(&body, "KeyId")?, &plain, &context(&body, "EncryptionContext")?, who)?;
            json!({ "CiphertextBlob": b64().encode(blob), "KeyId": k.key_arn(&rec.id), "EncryptionAlgorithm": "SYMMETRIC_DEFAULT" })
        }
        "Decrypt" => {
            let blob = blob_field(&body, "CiphertextBlob")?;
            let key = body.get("KeyId").and_then(Value::as_str);
            let (plain, rec) = k.decrypt(&blob, &context(&body, "EncryptionContext")?, key, who)?;
            json!({ "Plaintext": b64().encode(&plain[..]), "KeyId": k.key_arn(&rec.id), "EncryptionAlgorithm": "SYMMETRIC_DEFAULT" })
        }
        "ReEncrypt" => {
            let blob = blob_field(&body, "CiphertextBlob")?;
            let src = body.get("SourceKeyId").and_then(Value::as_str);
            let (plain, from) = k.decrypt(&blob, &context(&body, "SourceEncryptionContext")?, src, who)?;
            let (out, to) = k.encrypt(
                str_field(&body, "DestinationKeyId")?,
                &plain,
                &context(&body, "DestinationEncryptionContext")?,
                who,
            )?;
            json!({ "CiphertextBlob": b64().encode(out), "SourceKeyId": k.key_arn(&from.id), "KeyId": k.key_arn(&to.id),
                    "SourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT", "DestinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT" })
        }
        "GenerateDataKey" | "GenerateDataKeyWithoutPlaintext" => {
            let (plain, blob, rec) = k.generate_data_key(
                str_field(&body, "KeyId")?,
                data_key_bytes(&body)?,
                &context(&body, "EncryptionContext")?,
                who,
            )?;
            let mut v = json!({ "CiphertextBlob": b64().encode(blob), "KeyId": k.key_arn(&rec.id) });
            if op == "GenerateDataKey" {
                v["Plaintext"] = json!(b64().encode(&plain[..]));
            }
            v
        }
        other => {
            return Err(err(
                "UnsupportedOperationException",
                format!("TrentService.{other} is not supported by Thingport"),
            ))
        }
    };
    Ok(kms_json(out))
}

/// KMS pagination: `Limit` (1–1000, default 100) and an opaque `Marker` (the offset).
fn page(items: Vec<Value>, body: &Value, field: &str) -> Result<Value, ApiError> {
    let limit = match body.get("Limit").and_then(Value::as_u64) {
        Some(l) if (1..=1000).contains(&l) => l as usize,
        Some(_) => return Err(err("ValidationException", "Limit must be between 1 and 1000")),
        None => 100,
    };
    let start = match body.get("Marker").and_then(Value::as_str) {
        Some(m) => m.parse::<usize>().map_err(|_| err("InvalidMarkerException", "the Marker is not valid"))?,
        None => 0,
    };
    let end = (start + limit).min(items.len());
    let mut out = json!({ field: items.get(start..end).unwrap_or_default(), "Truncated": end < items.len() });
    if end < items.len() {
        out["NextMarker"] = json!(end.to_string());
    }
    Ok(out)
}

async fn list_data_keys(
    State(s): State<ApiState>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(250usize).clamp(1, 1000);
    let keys = s.keys.list_data_keys(q.get("thingName").map(String::as_str), limit)?;
    Ok(Json(json!({ "dataKeys": keys })))
}

async fn revoke_data_key(
    State(s): State<ApiState>,
    Extension(caller): Extension<AccessKey>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    s.keys.data_key(&id)?;
    let n = s.keys.revoke(Some(&id), None, &caller.0)?;
    Ok(Json(json!({ "revoked": n })))
}

/// Revoke every active data key of a thing (the device asks for a new one: rotation).
async fn revoke_thing_keys(
    State(s): State<ApiState>,
    Extension(caller): Extension<AccessKey>,
    Path(thing): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let n = s.keys.revoke(None, Some(&thing), &caller.0)?;
    Ok(Json(json!({ "revoked": n })))
}

async fn audit_log(
    State(s): State<ApiState>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100usize).clamp(1, 1000);
    let entries = s.keys.audit_log(q.get("keyId").map(String::as_str), limit)?;
    let entries: Vec<Value> = entries
        .into_iter()
        .map(|e| {
            let detail: Value = serde_json::from_str(&e.detail).unwrap_or(Value::Null);
            json!({ "seq": e.seq, "timeMs": e.time_ms, "event": e.event, "keyId": e.key_id,
                    "dataKeyId": e.data_key_id, "principal": e.principal, "detail": detail })
        })
        .collect();
    Ok(Json(json!({ "entries": entries })))
}

/// Decrypt a whole envelope (the request body) as an authorised cloud
/// consumer: the data key comes from the envelope's KMS blob (refused once
/// the data key is revoked), and a signed envelope is verified against the
/// certificate of the device the data key was issued to.
async fn decrypt_envelope(
    State(s): State<ApiState>,
    Extension(caller): Extension<AccessKey>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let bad = |m: String| err("InvalidCiphertextException", m);
    let (header, _) = keys::envelope::parse_header(&body)
        .map_err(|e| bad(format!("not a Thingport envelope: {e}")))?
        .ok_or_else(|| bad("the envelope header is incomplete".into()))?;
    let record = s.keys.data_key(&header.key_id)?;
    let thing = record.thing_name.clone().unwrap_or_default();
    let ctx = PayloadKeys::data_key_context(&record.id, &thing);
    let (data_key, _) = s.keys.decrypt(&header.kms_blob, &ctx, None, &caller.0)?;
    let mut signer_status = None;
    let signer = match (&header.signed, &record.certificate_id) {
        (true, Some(cert)) => {
            let cert = s.registry.get_certificate(cert)?;
            signer_status = Some(cert.status);
            let der = pki::pem_to_der(&cert.pem).map_err(|e| ApiError::internal(e.to_string()))?;
            Some(keys::wrap::spki_from_certificate(&der).map_err(|e| ApiError::internal(e.to_string()))?)
        }
        _ => None,
    };
    let (header, plain, signature_ok) = keys::envelope::decrypt(&data_key, &body, signer.as_deref())
        .map_err(|e| bad(format!("the envelope does not decrypt: {e}")))?;
    // A signature proves the upload came from the device only while its certificate is trusted.
    let verified = signature_ok && signer_status == Some(store::CertificateStatus::Active);
    let mut resp = Response::new(axum::body::Body::from(plain));
    let h = resp.headers_mut();
    h.insert("content-type", axum::http::HeaderValue::from_static("application/octet-stream"));
    for (name, value) in [
        ("x-thingport-data-key-id", record.id.clone()),
        ("x-thingport-thing-name", thing),
        ("x-thingport-signature-verified", verified.to_string()),
        ("x-thingport-signer-certificate-status", signer_status.map(|c| c.as_str().to_string()).unwrap_or_default()),
        ("x-thingport-aad", b64().encode(&header.aad)),
    ] {
        if let Ok(v) = axum::http::HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    Ok(resp)
}
