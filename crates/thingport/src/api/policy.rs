//! Policy operations of the AWS IoT control plane: policies and versions,
//! attachments, TestAuthorization and GetEffectivePolicies.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use store::PolicyRecord;

use super::error::ApiError;
use super::ApiState;

type ApiResult = Result<Json<Value>, ApiError>;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/policies", get(list_policies))
        .route("/policies/{name}", post(create_policy).get(get_policy).delete(delete_policy))
        .route("/policies/{name}/version", post(create_version).get(list_versions))
        .route("/policies/{name}/version/{version}", get(get_version).patch(set_default_version).delete(delete_version))
        .route("/target-policies/{name}", put(attach_policy).post(detach_policy))
        .route("/attached-policies/{target}", post(list_attached_policies))
        .route("/policy-targets/{name}", post(list_targets_for_policy))
        .route("/principal-policies/{name}", put(attach_principal_policy).delete(detach_principal_policy))
        .route("/principal-policies", get(list_principal_policies))
        .route("/test-authorization", post(test_authorization))
        .route("/effective-policies", post(get_effective_policies))
}

fn parse<T: for<'de> Deserialize<'de> + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("request body is not valid JSON: {e}")))
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DocumentBody {
    policy_document: Option<String>,
}

fn document(b: DocumentBody) -> Result<String, ApiError> {
    b.policy_document.ok_or_else(|| ApiError::invalid("policyDocument is required"))
}

async fn create_policy(State(s): State<ApiState>, Path(name): Path<String>, body: Bytes) -> ApiResult {
    let doc = document(parse(&body)?)?;
    let p = s.policies.create(&name, &doc)?;
    Ok(Json(json!({
        "policyName": p.name,
        "policyArn": s.policies.policy_arn(&p.name),
        "policyDocument": doc,
        "policyVersionId": p.default_version,
    })))
}

fn policy_json(s: &ApiState, p: &PolicyRecord) -> Value {
    let d = p.default_document();
    json!({
        "policyName": p.name,
        "policyArn": s.policies.policy_arn(&p.name),
        "policyDocument": d.map(|v| v.document.clone()),
        "defaultVersionId": p.default_version,
        "creationDate": secs(p.created_at_ms),
        "lastModifiedDate": secs(p.updated_at_ms),
        "generationId": format!("{}-{}", p.name.len(), p.updated_at_ms),
    })
}

async fn get_policy(State(s): State<ApiState>, Path(name): Path<String>) -> ApiResult {
    Ok(Json(policy_json(&s, &s.policies.get(&name)?)))
}

async fn list_policies(State(s): State<ApiState>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let mut all = s.policies.list()?;
    if q.get("isAscendingOrder").is_some_and(|v| v == "false") {
        all.reverse();
    }
    let (items, next) = super::page_by_marker(&all, &q)?;
    let list: Vec<Value> =
        items.iter().map(|p| json!({ "policyName": p.name, "policyArn": s.policies.policy_arn(&p.name) })).collect();
    let mut v = json!({ "policies": list });
    if let Some(n) = next {
        v["nextMarker"] = json!(n);
    }
    Ok(Json(v))
}

async fn delete_policy(State(s): State<ApiState>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    s.policies.delete(&name)?;
    Ok(StatusCode::OK)
}

async fn create_version(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> ApiResult {
    let doc = document(parse(&body)?)?;
    let set_default = q.get("setAsDefault").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let id = s.policies.create_version(&name, &doc, set_default)?;
    Ok(Json(json!({
        "policyArn": s.policies.policy_arn(&name),
        "policyDocument": doc,
        "policyVersionId": id,
        "isDefaultVersion": set_default,
    })))
}

async fn list_versions(State(s): State<ApiState>, Path(name): Path<String>) -> ApiResult {
    let p = s.policies.get(&name)?;
    let list: Vec<Value> = p
        .versions
        .iter()
        .rev()
        .map(|v| {
            json!({
                "versionId": v.version_id,
                "isDefaultVersion": v.version_id == p.default_version,
                "createDate": secs(v.created_at_ms),
            })
        })
        .collect();
    Ok(Json(json!({ "policyVersions": list })))
}

async fn get_version(State(s): State<ApiState>, Path((name, version)): Path<(String, String)>) -> ApiResult {
    let p = s.policies.get(&name)?;
    let v = p
        .versions
        .iter()
        .find(|v| v.version_id == version)
        .ok_or_else(|| ApiError::not_found(format!("version {version} of policy {name} does not exist")))?;
    Ok(Json(json!({
        "policyArn": s.policies.policy_arn(&name),
        "policyName": name,
        "policyDocument": v.document,
        "policyVersionId": v.version_id,
        "isDefaultVersion": v.version_id == p.default_version,
        "creationDate": secs(v.created_at_ms),
        "lastModifiedDate": secs(p.updated_at_ms),
        "generationId": format!("{}-{}", v.version_id, v.created_at_ms),
    })))
}

async fn set_default_version(
    State(s): State<ApiState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.policies.set_default_version(&name, &version)?;
    Ok(StatusCode::OK)
}

async fn delete_version(
    State(s): State<ApiState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.policies.delete_version(&name, &version)?;
    Ok(StatusCode::OK)
}

#[derive(Default, Deserialize)]
struct TargetBody {
    target: Option<String>,
}

fn target(b: TargetBody) -> Result<String, ApiError> {
    b.target.ok_or_else(|| ApiError::invalid("target is required"))
}

async fn attach_policy(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    s.policies.attach(&name, &target(parse(&body)?)?)?;
    Ok(StatusCode::OK)
}

async fn detach_policy(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    s.policies.detach(&name, &target(parse(&body)?)?)?;
    Ok(StatusCode::OK)
}

async fn list_attached_policies(
    State(s): State<ApiState>,
    Path(t): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let recursive = q.get("recursive").is_some_and(|v| v == "true");
    let list: Vec<Value> = s
        .policies
        .attached(&t, recursive)?
        .iter()
        .map(|n| json!({ "policyName": n, "policyArn": s.policies.policy_arn(n) }))
        .collect();
    Ok(Json(json!({ "policies": list })))
}

async fn list_targets_for_policy(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let all = s.policies.targets(&name)?;
    let (items, next) = super::page_by_marker(&all, &q)?;
    let mut v = json!({ "targets": items });
    if let Some(n) = next {
        v["nextMarker"] = json!(n);
    }
    Ok(Json(v))
}

fn principal(headers: &HeaderMap) -> Result<String, ApiError> {
    headers
        .get("x-amzn-iot-principal")
        .or_else(|| headers.get("x-amzn-principal"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| ApiError::invalid("missing x-amzn-iot-principal header"))
}

async fn attach_principal_policy(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    s.policies.attach(&name, &principal(&headers)?)?;
    Ok(StatusCode::OK)
}

async fn detach_principal_policy(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    s.policies.detach(&name, &principal(&headers)?)?;
    Ok(StatusCode::OK)
}

async fn list_principal_policies(State(s): State<ApiState>, headers: HeaderMap) -> ApiResult {
    let list: Vec<Value> = s
        .policies
        .attached(&principal(&headers)?, false)?
        .iter()
        .map(|n| json!({ "policyName": n, "policyArn": s.policies.policy_arn(n) }))
        .collect();
    Ok(Json(json!({ "policies": list })))
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TestAuthBody {
    principal: Option<String>,
    #[serde(default)]
    auth_infos: Vec<AuthInfo>,
    #[serde(default)]
    policy_names_to_add: Vec<String>,
    #[serde(default)]
    policy_names_to_skip: Vec<String>,
}

#[derive(Default, Deserialize, serde::Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct AuthInfo {
    action_type: Option<String>,
    #[serde(default)]
    resources: Vec<String>,
}

/// AWS TestAuthorization: evaluate actions for a certificate principal as it
/// would be evaluated on a connection with `clientId`.
async fn test_authorization(
    State(s): State<ApiState>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> ApiResult {
    let b: TestAuthBody = parse(&body)?;
    let principal = b.principal.ok_or_else(|| ApiError::invalid("principal is required"))?;
    let key = s.policies.target_key(&principal)?;
    let client_id = q.get("clientId").cloned().unwrap_or_default();
    let cert_id = key.strip_prefix("cert/").map(str::to_string);
    let cert_info = match &cert_id {
        Some(id) => s
            .registry
            .get_certificate(id)
            .ok()
            .and_then(|c| pki::pem_to_der(&c.pem).ok())
            .and_then(|d| pki::parse_certificate(&d).ok())
            .map(std::sync::Arc::new),
        None => None,
    };
    let mut docs = Vec::new();
    let (thing, _) = match &cert_id {
        Some(id) => s.policies.thing_for(id, &client_id)?,
        None => (None, false),
    };
    for (n, v, d) in s.policies.effective(&key, thing.as_ref())? {
        if !b.policy_names_to_skip.contains(&n) {
            docs.push((n, v, d));
        }
    }
    for n in &b.policy_names_to_add {
        let p = s.policies.get(n)?;
        if let Some(v) = p.default_document() {
            let d = policy::PolicyDocument::parse(&v.document, &policy::ParseOptions::default())
                .map_err(|e| ApiError::invalid(e.to_string()))?;
            docs.push((n.clone(), v.version_id.clone(), std::sync::Arc::new(d)));
        }
    }
    let auth = cert_id.map(|id| crate::policies::ConnAuth::new(id, cert_info));
    let vars = s.policies.variables(auth.as_deref(), &client_id, "0.0.0.0", thing.as_ref());
    let refs: Vec<(String, String, &policy::PolicyDocument)> =
        docs.iter().map(|(n, v, d)| (n.clone(), v.clone(), d.as_ref())).collect();
    let compiled = policy::CompiledPolicies::compile(&refs, &vars);
    let mut results = Vec::new();
    for info in b.auth_infos {
        let action = match info.action_type.as_deref() {
            Some("PUBLISH") => "iot:Publish",
            Some("SUBSCRIBE") => "iot:Subscribe",
            Some("RECEIVE") => "iot:Receive",
            Some("CONNECT") => "iot:Connect",
            other => {
                return Err(ApiError::invalid(format!(
                    "actionType {other:?} must be PUBLISH, SUBSCRIBE, RECEIVE or CONNECT"
                )))
            }
        };
        let mut decision = "ALLOWED";
        let mut allowed = Vec::new();
        let mut explicit = Vec::new();
        let mut missing = Vec::new();
        for r in &info.resources {
            let e = compiled.explain(action, r, &policy::NoRequestContext);
            let arn = |n: &String| json!({ "policyName": n, "policyArn": s.policies.policy_arn(n) });
            match e.decision {
                policy::Decision::Allowed => allowed.extend(e.policies.iter().map(arn)),
                policy::Decision::ExplicitDeny => {
                    decision = "EXPLICIT_DENY";
                    explicit.extend(e.policies.iter().map(arn));
                }
                policy::Decision::ImplicitDeny => {
                    if decision == "ALLOWED" {
                        decision = "IMPLICIT_DENY";
                    }
                }
            }
            missing.extend(e.missing_context_keys.iter().cloned());
        }
        results.push(json!({
            "authInfo": info,
            "allowed": { "policies": if decision == "ALLOWED" { allowed } else { Vec::new() } },
            "denied": {
                "implicitDeny": { "policies": [] },
                "explicitDeny": { "policies": explicit },
            },
            "authDecision": decision,
            "missingContextValues": missing,
        }));
    }
    Ok(Json(json!({ "authResults": results })))
}

#[derive(Default, Deserialize)]
struct EffectiveBody {
    principal: Option<String>,
}

/// AWS GetEffectivePolicies.
async fn get_effective_policies(
    State(s): State<ApiState>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> ApiResult {
    let b: EffectiveBody = parse(&body)?;
    let principal = b.principal.ok_or_else(|| ApiError::invalid("principal is required"))?;
    let key = s.policies.target_key(&principal)?;
    let thing = match q.get("thingName") {
        Some(t) => Some(s.registry.get_thing(t)?),
        None => None,
    };
    let list: Vec<Value> = s
        .policies
        .effective(&key, thing.as_ref())?
        .iter()
        .map(|(n, _, d)| json!({ "policyName": n, "policyArn": s.policies.policy_arn(n), "policyDocument": d.text() }))
        .collect();
    Ok(Json(json!({ "effectivePolicies": list })))
}
