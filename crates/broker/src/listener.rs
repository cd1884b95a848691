//! Accept loops: MQTT over TLS (mutual authentication) and, for development
//! only, plain TCP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::auth::PeerInfo;
use crate::broker::Broker;
use crate::connection;

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The next connection, or None once `shutdown` turns true. Accept errors
/// (e.g. out of file descriptors) are logged and retried after a pause.
pub async fn accept(listener: &TcpListener, shutdown: &mut watch::Receiver<bool>) -> Option<(TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((tcp, addr)) => {
                    let _ = tcp.set_nodelay(true);
                    return Some((tcp, addr));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => return None,
        }
    }
}

/// Accept MQTT over TLS until `shutdown` turns true. The server config is
/// read per connection, so replacing it (new CA, rotated server certificate)
/// applies to new connections without touching existing ones.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<ArcSwap<rustls::ServerConfig>>,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let Some((tcp, addr)) = accept(&listener, &mut shutdown).await else { return };
        let acceptor = TlsAcceptor::from(tls.load_full());
        let broker = broker.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::info!(peer = %addr, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::info!(peer = %addr, "TLS handshake timed out");
                    return;
                }
            };
            let (_, conn) = tls.get_ref();
            let peer = PeerInfo {
                addr,
                cert_chain: conn.peer_certificates().map(|c| c.to_vec()).unwrap_or_default(),
                sni: conn.server_name().map(str::to_string),
                listener: "mqtts",
            };
            connection::serve(broker, tls, peer).await;
        });
    }
}

/// Accept plain MQTT over TCP (insecure; development and interoperability only).
pub async fn serve_tcp(listener: TcpListener, broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let Some((tcp, addr)) = accept(&listener, &mut shutdown).await else { return };
        let broker = broker.clone();
        tokio::spawn(async move {
            let peer = PeerInfo { addr, cert_chain: Vec::new(), sni: None, listener: "mqtt" };
            connection::serve(broker, tcp, peer).await;
        });
    }
}
