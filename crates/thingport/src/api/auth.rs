//! SigV4 authentication for every management call.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::ApiState;

/// Largest request body the management API reads.
const MAX_BODY: usize = 1024 * 1024;
/// Clock skew tolerated on header-signed requests (AWS: 15 minutes).
const MAX_SKEW_SECS: i64 = 15 * 60;

/// The access key id that signed the request (for audit logs).
#[derive(Debug, Clone)]
pub struct AccessKey(pub String);

pub async fn require_sigv4(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "InvalidRequestException",
                "request body larger than 1 MiB",
            )
            .into_response()
        }
    };
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str().to_string(), v.to_string())))
        .collect();
    let declared = parts.headers.get("x-amz-content-sha256").and_then(|v| v.to_str().ok());
    let actual = sigv4::sha256_hex(&bytes);
    if let Some(d) = declared {
        if d != actual && d != "UNSIGNED-PAYLOAD" {
            return ApiError::forbidden("InvalidSignatureException", "x-amz-content-sha256 does not match the body")
                .into_response();
        }
    }
    let payload_hash = declared.filter(|d| *d == "UNSIGNED-PAYLOAD").unwrap_or(&actual);
    let creds = state.credentials.clone();
    let sreq = sigv4::Request {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        payload_hash,
    };
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let secret_for = |akid: &str| creds.iter().find(|c| c.access_key_id == akid).map(|c| c.secret_access_key.clone());
    match sigv4::verify(&sreq, sigv4::UriEncoding::Double, secret_for, now, MAX_SKEW_SECS) {
        Ok(v) => {
            let (method, path) = (parts.method.clone(), parts.uri.path().to_string());
            let mut parts = parts;
            parts.extensions.insert(AccessKey(v.access_key_id.clone()));
            let resp = next.run(Request::from_parts(parts, Body::from(bytes))).await;
            // Any successful change may alter authorization decisions (policies,
            // attachments, groups, attributes): connections recompile lazily.
            if method != axum::http::Method::GET && resp.status().is_success() {
                state.policies.invalidate();
            }
            // Audit trail of every management call.
            tracing::info!(target: "audit", access_key_id = %v.access_key_id, %method, %path,
                status = resp.status().as_u16(), "management API call");
            resp
        }
        Err(e) => {
            tracing::info!(error = %short(&e), path = %parts.uri.path(), "management API request refused");
            auth_error(&e).into_response()
        }
    }
}

fn short(e: &sigv4::AuthError) -> String {
    match e {
        sigv4::AuthError::SignatureDoesNotMatch { .. } => "signature does not match".into(),
        other => other.to_string(),
    }
}

fn auth_error(e: &sigv4::AuthError) -> ApiError {
    use sigv4::AuthError as E;
    match e {
        E::MissingAuthentication => ApiError::forbidden(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token: sign requests with SigV4 using the admin access key (see admin-credentials.json in the data directory)",
        ),
        E::UnknownAccessKey(_) => {
            ApiError::forbidden("UnrecognizedClientException", "The security token included in the request is invalid.")
        }
        E::SignatureDoesNotMatch { .. } => ApiError::forbidden(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
        ),
        other => ApiError::forbidden("InvalidSignatureException", other.to_string()),
    }
}
