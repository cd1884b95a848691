//! The device HTTPS data plane (port 8443): requests authenticated by the
//! client certificate of the TLS connection, as on AWS IoT.
//!
//! A short accept loop (tokio-rustls, then hyper) puts the peer's certificate
//! chain into each request's extensions; handlers turn it into a principal
//! through the same authenticator and authorizer as MQTT.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use broker::auth::AuthFailure;
use broker::{ClientCtx, PeerInfo};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::dataplane::{Caller, DataError, DataState};
use tower::ServiceExt;

/// The device data plane: who the caller is comes from its certificate.
pub fn router(state: DataState) -> Router {
    crate::dataplane::routes()
        .layer(axum::middleware::from_fn_with_state(state.clone(), authenticate_device))
        .with_state(state)
}

/// Turn the connection's client certificate into a [`Caller::Device`].
async fn authenticate_device(
    State(s): State<DataState>,
    Extension(peer): Extension<PeerInfo>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match s.broker.authenticator.authenticate(&peer) {
        Ok(principal) => {
            // HTTPS has no client id: the thing the certificate belongs to stands in.
            let client_id: Arc<str> = principal.thing_name.clone().unwrap_or_else(|| principal.id.clone());
            let ctx = ClientCtx { principal, client_id, source_ip: peer.addr.ip() };
            req.extensions_mut().insert(Caller::Device(ctx));
            next.run(req).await
        }
        Err(AuthFailure::NotAuthorized(why) | AuthFailure::BadCredentials(why)) => {
            DataError::new(StatusCode::FORBIDDEN, "ForbiddenException", why).into_response()
        }
    }
}

/// How long a client may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Serve HTTPS on `listener` (the device data plane with client certificates, the S3-compatible
/// endpoint without): each request carries the connection's [`PeerInfo`].
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ArcSwap<rustls::ServerConfig>>,
    app: Router,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let Some((tcp, addr)) = broker::listener::accept(&listener, &mut shutdown).await else { return };
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
            let mut builder = auto::Builder::new(TokioExecutor::new());
            // A client that never finishes its request headers does not hold a connection forever.
            builder.http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
            if let Err(e) = builder.serve_connection(TokioIo::new(stream), svc).await {
                tracing::debug!(peer = %addr, error = %e, "HTTPS connection ended with an error");
            }
        });
    }
}
