//! The device HTTPS data plane (port 8443): requests authenticated by the
//! client certificate of the TLS connection, as on AWS IoT.
//!
//! A short accept loop (tokio-rustls, then hyper) puts the peer's certificate
//! chain into each request's extensions; handlers turn it into a principal
//! through the same authenticator and authorizer as MQTT.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use broker::{Broker, ClientCtx, PeerInfo};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// A data-plane error: status, AWS error type, message, trace id.
struct DataError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl DataError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        DataError { status, code, message: message.into() }
    }
}

impl IntoResponse for DataError {
    fn into_response(self) -> Response {
        let trace = uuid::Uuid::new_v4().to_string();
        let mut r = (self.status, Json(json!({ "message": self.message, "traceId": trace }))).into_response();
        if let Ok(v) = HeaderValue::from_str(&format!("{}:", self.code)) {
            r.headers_mut().insert("x-amzn-ErrorType", v);
        }
        r
    }
}

pub fn router(broker: Arc<Broker>) -> Router {
    Router::new().route("/topics/{*topic}", post(publish)).with_state(broker)
}

/// `POST /topics/{topic}?qos=0|1&retain=true|false`: publish as the certificate's principal.
async fn publish(
    State(broker): State<Arc<Broker>>,
    Extension(peer): Extension<PeerInfo>,
    Path(topic): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Result<Response, DataError> {
    let principal = broker.authenticator.authenticate(&peer).map_err(|e| {
        let why = match e {
            broker::auth::AuthFailure::NotAuthorized(w) | broker::auth::AuthFailure::BadCredentials(w) => w,
        };
        DataError::new(StatusCode::FORBIDDEN, "ForbiddenException", why)
    })?;
    let qos = match q.get("qos").map(String::as_str) {
        None | Some("0") => mqtt::QoS::AtMostOnce,
        Some("1") => mqtt::QoS::AtLeastOnce,
        Some(other) => {
            return Err(DataError::new(
                StatusCode::BAD_REQUEST,
                "InvalidRequestException",
                format!("qos must be 0 or 1, not {other}"),
            ))
        }
    };
    let retain = q.get("retain").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let limits = &broker.limits;
    if !mqtt::topic::valid_topic_name(&topic) || !limits.topic_within_limits(&topic) {
        return Err(DataError::new(StatusCode::BAD_REQUEST, "InvalidRequestException", "invalid topic name"));
    }
    if body.len() > limits.max_payload {
        return Err(DataError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLargeException",
            format!("payload exceeds {} bytes", limits.max_payload),
        ));
    }
    let client_id: Arc<str> = principal.thing_name.clone().unwrap_or_else(|| principal.id.clone());
    let ctx = ClientCtx { principal, client_id, source_ip: peer.addr.ip() };
    let authz = broker.authorizer();
    if !authz.publish(&ctx, &topic) || (retain && !authz.retain(&ctx, &topic)) {
        return Err(DataError::new(
            StatusCode::FORBIDDEN,
            "ForbiddenException",
            "not authorized to publish to this topic",
        ));
    }
    drop(authz);
    let mut msg = broker::Message::system(&topic, body, qos);
    msg.retain = retain;
    msg.publisher = Some(ctx.client_id.clone());
    let routed = broker.publish(msg);
    if routed.needs_sync && qos > mqtt::QoS::AtMostOnce {
        broker.sync().await.map_err(|_| {
            DataError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalFailureException", "could not store the message")
        })?;
    }
    let trace = uuid::Uuid::new_v4().to_string();
    Ok(Json(json!({ "message": "OK", "traceId": trace })).into_response())
}

/// Serve HTTPS with client certificates: each request carries the connection's [`PeerInfo`].
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ArcSwap<rustls::ServerConfig>>,
    app: Router,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let (tcp, addr): (_, SocketAddr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let acceptor = TlsAcceptor::from(tls.load_full());
        let app = app.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                _ => {
                    tracing::debug!(peer = %addr, "HTTPS TLS handshake failed");
                    return;
                }
            };
            let (_, conn) = stream.get_ref();
            let peer = PeerInfo {
                addr,
                cert_chain: conn.peer_certificates().map(|c| c.to_vec()).unwrap_or_default(),
                sni: conn.server_name().map(str::to_string),
                listener: "https",
            };
            let svc = app
                .layer(Extension(peer))
                .into_service()
                .map_request(|r: hyper::Request<hyper::body::Incoming>| r.map(axum::body::Body::new));
            let svc = TowerToHyperService::new(svc);
            if let Err(e) = auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), svc).await {
                tracing::debug!(peer = %addr, error = %e, "HTTPS connection ended with an error");
            }
        });
    }
}
