//! Who is connected and what they may do: the seam where certificates and
//! policies plug into the broker.

use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;

/// What the listener knows about a new connection before MQTT starts.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub addr: SocketAddr,
    /// Client certificate chain, leaf first (empty on plain TCP).
    pub cert_chain: Vec<CertificateDer<'static>>,
    /// Server name the client asked for (TLS SNI), if any.
    pub sni: Option<String>,
    /// Which listener accepted it ("mqtts", "mqtt", "wss", …).
    pub listener: &'static str,
}

/// An authenticated identity.
#[derive(Clone)]
pub struct Principal {
    /// Stable id: the certificate id (SHA-256 of its DER) for certificate principals.
    pub id: Arc<str>,
    /// Thing the principal is attached to, if any.
    pub thing_name: Option<Arc<str>>,
    /// Whatever the authorizer needs to decide (certificate fields, policies, …).
    pub ext: Option<Arc<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal").field("id", &self.id).field("thing_name", &self.thing_name).finish()
    }
}

impl Principal {
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Principal { id: id.into(), thing_name: None, ext: None }
    }
}

/// Why a connection was refused before MQTT started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// Unknown, inactive, revoked or pending certificate: CONNACK 0x87 / rc 5.
    NotAuthorized(String),
    /// The client presented no usable identity: CONNACK 0x86 / rc 4.
    BadCredentials(String),
}

/// Turns a connection into a principal.
pub trait Authenticator: Send + Sync + 'static {
    fn authenticate(&self, peer: &PeerInfo) -> Result<Principal, AuthFailure>;
}

/// A connected client as the authorizer sees it.
#[derive(Debug, Clone)]
pub struct ClientCtx {
    pub principal: Principal,
    pub client_id: Arc<str>,
    pub source_ip: std::net::IpAddr,
}

/// The one authorization gate: asked before every action.
pub trait Authorizer: Send + Sync + 'static {
    fn connect(&self, principal: &Principal, client_id: &str, peer: &PeerInfo) -> bool;
    fn publish(&self, ctx: &ClientCtx, topic: &str) -> bool;
    fn retain(&self, ctx: &ClientCtx, topic: &str) -> bool;
    fn subscribe(&self, ctx: &ClientCtx, filter: &str) -> bool;
    fn receive(&self, ctx: &ClientCtx, topic: &str) -> bool;
}

/// The authorizer until policies exist: any authenticated principal may
/// connect and use every non-reserved topic; reserved (`$…`) topics are
/// closed except reading `$aws/events/…`.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowNonReserved;

impl Authorizer for AllowNonReserved {
    fn connect(&self, _principal: &Principal, _client_id: &str, _peer: &PeerInfo) -> bool {
        true
    }
    fn publish(&self, _ctx: &ClientCtx, topic: &str) -> bool {
        !topic.starts_with('$')
    }
    fn retain(&self, _ctx: &ClientCtx, topic: &str) -> bool {
        !topic.starts_with('$')
    }
    fn subscribe(&self, _ctx: &ClientCtx, filter: &str) -> bool {
        let inner = mqtt::topic::parse_shared(filter).map(|(_, f)| f).unwrap_or(filter);
        !inner.starts_with('$') || inner.starts_with("$aws/events/")
    }
    fn receive(&self, _ctx: &ClientCtx, topic: &str) -> bool {
        !topic.starts_with('$') || topic.starts_with("$aws/events/")
    }
}
