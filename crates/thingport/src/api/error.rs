//! API errors, mapped once to HTTP status + AWS-style error body.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// An error as AWS IoT's REST-JSON protocol reports it: HTTP status, an
/// error type (`x-amzn-ErrorType` header and `__type` in the body) and a message.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into() }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidRequestException", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "ResourceAlreadyExistsException", message)
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalFailureException", message)
    }
}

impl From<store::StoreError> for ApiError {
    fn from(e: store::StoreError) -> Self {
        match e {
            store::StoreError::NotFound(what) => ApiError::not_found(format!("{what} does not exist")),
            store::StoreError::AlreadyExists(what) => ApiError::conflict(format!("{what} already exists")),
            other => {
                tracing::error!(error = %other, "storage error");
                ApiError::internal("internal storage error")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "__type": self.code, "message": self.message });
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(self.code) {
            resp.headers_mut().insert("x-amzn-ErrorType", v);
        }
        resp
    }
}
