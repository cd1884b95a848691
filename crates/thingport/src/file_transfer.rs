//! Secure file transfer: who may use the S3-compatible endpoint, and the
//! built-in issuer that hands a device a short-lived pre-signed URL.
//!
//! A device asks on the request topic (`presigned-url/requests` by default,
//! bound through a rule) for `putObject` or `getObject` of a bucket and key.
//! The issuer asks the *device's own* policy (`s3:PutObject` /
//! `s3:GetObject` on `arn:aws:s3:::BUCKET/KEY`, with the connection's policy
//! variables), answers only on a reply topic the device itself may receive,
//! and records a grant: method, bucket, key, size limit, expiry, single use,
//! certificate. The URL is an ordinary SigV4 pre-signed URL whose access key
//! id names the grant and whose secret is derived from a server key, so curl,
//! `requests` or any HTTP client can use it, and the server can still refuse
//! it once used, after the certificate is revoked or deactivated, or for a
//! body over the limit — which S3's own pre-signed URLs cannot do.

use std::sync::{Arc, OnceLock, Weak};

use base64::Engine;
use objects::service::{Access, AccessRequest, Authorized, EventSink, Op};
use objects::S3Error;
use rand::Rng;
use serde_json::{json, Value};
use store::{CertificateStatus, GrantStore, UrlGrant};

use crate::policies::PolicyAuthorizer;
use crate::registry::Registry;

/// Access key ids of URL grants start with this (20 characters in all, like AWS's).
const GRANT_PREFIX: &str = "TPU";

/// Settings of the issuer.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    /// `https://host:port` devices reach the endpoint at.
    pub public_url: String,
    pub region: String,
    pub max_lifetime_secs: u32,
    pub max_upload_bytes: u64,
    pub single_use: bool,
}

pub struct FileTransfer {
    grants: Arc<dyn GrantStore>,
    registry: Arc<Registry>,
    authorizer: Arc<PolicyAuthorizer>,
    admin: Arc<Vec<crate::datadir::AdminCredentials>>,
    /// Server key the grants' secrets are derived from (0600 in the data directory).
    url_key: [u8; 32],
    cfg: IssuerConfig,
    broker: OnceLock<Weak<broker::Broker>>,
    shadows: OnceLock<Weak<crate::shadows::Shadows>>,
    service: OnceLock<Weak<objects::service::S3Service>>,
}

/// Why a request was refused, as sent back to the device.
#[derive(Debug)]
struct Refusal {
    code: &'static str,
    message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal { code, message: message.into() }
}

/// A device's request, as sent on the request topic.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct UrlRequest {
    /// "putObject" or "getObject".
    operation: String,
    bucket: String,
    key: String,
    content_type: Option<String>,
    /// Upload size limit (bytes) the device asks for.
    size: Option<u64>,
    expires_in: Option<u32>,
    single_use: Option<bool>,
    /// "topic" (default) or "shadow" (written to the thing's desired state).
    deliver_to: Option<String>,
    shadow_name: Option<String>,
    /// Field of `desired` the shadow delivery writes (default "presignedUrl").
    field: Option<String>,
}

impl FileTransfer {
    pub fn new(
        grants: Arc<dyn GrantStore>,
        registry: Arc<Registry>,
        authorizer: Arc<PolicyAuthorizer>,
        admin: Arc<Vec<crate::datadir::AdminCredentials>>,
        url_key: [u8; 32],
        cfg: IssuerConfig,
    ) -> Arc<FileTransfer> {
        Arc::new(FileTransfer {
            grants,
            registry,
            authorizer,
            admin,
            url_key,
            cfg,
            broker: OnceLock::new(),
            shadows: OnceLock::new(),
            service: OnceLock::new(),
        })
    }

    pub fn attach(
        &self,
        broker: &Arc<broker::Broker>,
        shadows: &Arc<crate::shadows::Shadows>,
        service: &Arc<objects::service::S3Service>,
    ) {
        let _ = self.broker.set(Arc::downgrade(broker));
        let _ = self.shadows.set(Arc::downgrade(shadows));
        let _ = self.service.set(Arc::downgrade(service));
    }

    pub fn service(&self) -> Option<Arc<objects::service::S3Service>> {
        self.service.get().and_then(Weak::upgrade)
    }

    /// The secret of a grant's access key id.
    fn grant_secret(&self, id: &str) -> String {
        hex::encode(sigv4::hmac_sha256(&self.url_key, id.as_bytes()))
    }

    /// Handle one request message (the output of the binding rule's SELECT)
    /// published by `msg`'s connection.
    pub async fn handle_request(self: Arc<Self>, request: Value, msg: Arc<broker::Message>) {
        let Some(origin) = msg.origin.clone() else {
            tracing::info!(topic = %msg.topic, "pre-signed URL request not from a device connection; ignored");
            return;
        };
        let ctx = origin.0;
        let parsed: Result<UrlRequest, String> = serde_json::from_value(request.clone())
            .map_err(|e| format!("the request is not JSON of the expected shape: {e}"));
        let field = |name: &str| request.get(name).and_then(Value::as_str).map(str::to_string);
        let reply_to = field("replyTo").or_else(|| msg.properties.response_topic.clone());
        // Answer only where the requester itself may receive.
        let reply_to = match reply_to {
            Some(t) if self.may_receive(&ctx, &t) => Some(t),
            Some(t) => {
                tracing::warn!(client_id = %ctx.client_id, reply_to = %t,
                    "pre-signed URL request refused: the requester may not receive on its reply topic");
                return;
            }
            None => None,
        };
        let echo = json!({
            "requestId": request.get("requestId"),
            "clientToken": request.get("clientToken"),
            "bucket": field("bucket"),
            "key": field("key"),
        });
        let result = match &parsed {
            Ok(req) => self.issue(&ctx, req).await,
            Err(e) => Err(refuse("InvalidRequest", e.clone())),
        };
        let mut answer = match &result {
            Ok(grant) => grant.clone(),
            Err(r) => {
                tracing::info!(client_id = %ctx.client_id, code = r.code, reason = %r.message, "pre-signed URL request refused");
                json!({ "error": { "code": r.code, "message": r.message } })
            }
        };
        merge(&mut answer, &echo);
        if let (Ok(req), Ok(_)) = (&parsed, &result) {
            if req.deliver_to.as_deref() == Some("shadow") {
                if let Err(e) = self.deliver_to_shadow(&ctx, req, &answer) {
                    tracing::warn!(client_id = %ctx.client_id, error = %e, "could not write the URL into the shadow");
                }
                if reply_to.is_none() {
                    return;
                }
            }
        }
        match reply_to {
            Some(topic) => self.publish(&topic, &answer, msg.properties.correlation_data.clone()).await,
            None => {
                tracing::info!(client_id = %ctx.client_id, "pre-signed URL request without replyTo (or MQTT 5 response topic); nothing sent")
            }
        }
    }

    fn may_receive(&self, ctx: &broker::ClientCtx, topic: &str) -> bool {
        mqtt::topic::valid_topic_name(topic)
            && !topic.starts_with('$')
            && self.authorizer.decide(ctx, "iot:Receive", "topic", topic)
    }

    async fn publish(&self, topic: &str, answer: &Value, correlation: Option<bytes::Bytes>) {
        let Some(broker) = self.broker.get().and_then(Weak::upgrade) else { return };
        let mut m = broker::Message::system(topic, answer.to_string(), mqtt::QoS::AtLeastOnce);
        m.properties.correlation_data = correlation;
        m.properties.content_type = Some("application/json".into());
        if broker.publish(m).needs_sync {
            broker.sync().await.ok();
        }
    }

    fn deliver_to_shadow(&self, ctx: &broker::ClientCtx, req: &UrlRequest, answer: &Value) -> Result<(), String> {
        let thing = ctx.principal.thing_name.as_deref().ok_or("the certificate is attached to no thing")?;
        let shadows = self.shadows.get().and_then(Weak::upgrade).ok_or("shadow service stopped")?;
        let field = req.field.clone().unwrap_or_else(|| "presignedUrl".into());
        let doc = json!({ "state": { "desired": { field: answer } } });
        let topic = shadow::ShadowTopic {
            thing: thing.to_string(),
            shadow: req.shadow_name.clone(),
            op: shadow::ShadowOp::Update,
        };
        shadows
            .handle(&topic, doc.to_string().as_bytes(), crate::shadows::Origin::Mqtt)
            .map(|_| ())
            .map_err(|e| format!("{e:?}"))
    }

    /// Check a request against the device's policy and make the URL.
    async fn issue(&self, ctx: &broker::ClientCtx, req: &UrlRequest) -> Result<Value, Refusal> {
        let (method, action) = match req.operation.as_str() {
            "putObject" | "PutObject" | "put" => ("PUT", "s3:PutObject"),
            "getObject" | "GetObject" | "get" => ("GET", "s3:GetObject"),
            other => {
                return Err(refuse(
                    "InvalidRequest",
                    format!("operation must be \"putObject\" or \"getObject\", not {other:?}"),
                ))
            }
        };
        if !objects::names::valid_bucket_name(&req.bucket) {
            return Err(refuse("InvalidBucketName", format!("{:?} is not a valid bucket name", req.bucket)));
        }
        objects::names::check_key(&req.key).map_err(|e| refuse("InvalidKey", e.message))?;
        let resource = format!("arn:aws:s3:::{}/{}", req.bucket, req.key);
        if !self.authorizer.decide_arn(ctx, action, &resource) {
            return Err(refuse("AccessDenied", format!("your policy does not allow {action} on {resource}")));
        }
        let service =
            self.service().ok_or_else(|| refuse("ServiceUnavailable", "the object service is not running"))?;
        match service.backend().head_bucket(&req.bucket).await {
            Ok(_) => {}
            Err(e) if e.code == "NoSuchBucket" => {
                return Err(refuse("NoSuchBucket", format!("bucket {} does not exist", req.bucket)))
            }
            Err(e) => return Err(refuse("InternalError", e.message)),
        }
        if method == "GET" {
            match service.backend().head_object(&req.bucket, &req.key).await {
                Ok(_) => {}
                Err(e) if e.code == "NoSuchKey" => {
                    return Err(refuse("NoSuchKey", format!("{} does not exist in {}", req.key, req.bucket)))
                }
                Err(e) => return Err(refuse("InternalError", e.message)),
            }
        }
        let cert_id = ctx.principal.id.to_string();
        let lifetime = req.expires_in.unwrap_or(self.cfg.max_lifetime_secs).clamp(1, self.cfg.max_lifetime_secs);
        let max_size =
            (method == "PUT").then(|| req.size.unwrap_or(self.cfg.max_upload_bytes).min(self.cfg.max_upload_bytes));
        if req.size.is_some_and(|s| s > self.cfg.max_upload_bytes) {
            return Err(refuse(
                "EntityTooLarge",
                format!("uploads are limited to {} bytes", self.cfg.max_upload_bytes),
            ));
        }
        let now = store::now_ms() as i64;
        let grant = UrlGrant {
            id: new_grant_id(),
            thing_name: ctx.principal.thing_name.as_deref().map(str::to_string),
            certificate_id: Some(cert_id),
            client_id: Some(ctx.client_id.to_string()),
            method: method.into(),
            bucket: req.bucket.clone(),
            key: req.key.clone(),
            max_size,
            content_type: req.content_type.clone().filter(|_| method == "PUT"),
            created_ms: now,
            expires_ms: now + i64::from(lifetime) * 1000,
            single_use: req.single_use.unwrap_or(self.cfg.single_use),
            state: "active".into(),
        };
        self.grants.put_grant(&grant).map_err(|e| refuse("InternalError", e.to_string()))?;
        let (url, headers) = self.presign(&grant, now / 1000, lifetime);
        tracing::info!(target: "audit", grant = %grant.id, thing = ?grant.thing_name, client_id = %ctx.client_id,
            method, bucket = %grant.bucket, key = %grant.key, lifetime, "pre-signed URL issued");
        Ok(json!({
            "url": url,
            "method": method,
            "headers": headers,
            "expiresAt": objects::xml::iso8601(grant.expires_ms),
            "expiresIn": lifetime,
            "bucket": grant.bucket,
            "key": grant.key,
            "maxSize": grant.max_size,
            "singleUse": grant.single_use,
        }))
    }

    /// The pre-signed URL of a grant, and the headers the client must send.
    fn presign(&self, grant: &UrlGrant, now_secs: i64, lifetime: u32) -> (String, Value) {
        let base = self.cfg.public_url.trim_end_matches('/');
        let authority = base.split_once("://").map_or(base, |(_, a)| a);
        let path = format!("/{}/{}", grant.bucket, sigv4::uri_encode(&grant.key, false));
        let mut headers = vec![("host".to_string(), authority.to_string())];
        let mut required = serde_json::Map::new();
        if let Some(ct) = &grant.content_type {
            headers.push(("content-type".into(), ct.clone()));
            required.insert("Content-Type".into(), json!(ct));
        }
        let req = sigv4::Request {
            method: &grant.method,
            raw_path: &path,
            raw_query: "",
            headers: &headers,
            payload_hash: sigv4::UNSIGNED_PAYLOAD,
        };
        let creds = sigv4::Credentials::new(grant.id.clone(), self.grant_secret(&grant.id));
        let query =
            sigv4::presign_query(&req, sigv4::UriEncoding::Single, &creds, &self.cfg.region, "s3", now_secs, lifetime);
        (format!("{base}{path}?{query}"), Value::Object(required))
    }

    fn admin_secret(&self, akid: &str) -> Option<String> {
        self.admin.iter().find(|c| c.access_key_id == akid).map(|c| c.secret_access_key.clone())
    }

    fn authorize_grant(&self, req: &AccessRequest<'_>) -> Result<Authorized, S3Error> {
        let grant = self
            .grants
            .get_grant(req.access_key_id)
            .map_err(|e| S3Error::internal(e.to_string()))?
            .ok_or_else(|| S3Error::access_denied("unknown pre-signed URL"))?;
        if !req.presigned {
            return Err(S3Error::access_denied("this key only works as a pre-signed URL"));
        }
        let now = store::now_ms() as i64;
        if now > grant.expires_ms {
            return Err(S3Error::access_denied("Request has expired"));
        }
        match grant.state.as_str() {
            "active" => {}
            "used" | "in-use" => {
                return Err(S3Error::access_denied(
                    "This pre-signed URL was already used and works only once: ask for a new one",
                ))
            }
            _ => return Err(S3Error::access_denied("This pre-signed URL was revoked")),
        }
        let op_ok = match grant.method.as_str() {
            "PUT" => req.op == Op::PutObject,
            "GET" => matches!(req.op, Op::GetObject | Op::HeadObject),
            _ => false,
        };
        if !op_ok || req.bucket != Some(grant.bucket.as_str()) || req.key != Some(grant.key.as_str()) {
            return Err(S3Error::access_denied(format!(
                "This pre-signed URL allows only {} of {}/{}",
                grant.method, grant.bucket, grant.key
            )));
        }
        if let Some(cert) = &grant.certificate_id {
            let active =
                self.registry.get_certificate(cert).map(|c| c.status == CertificateStatus::Active).unwrap_or(false);
            if !active {
                let _ = self.grants.revoke_grants(Some(cert), None);
                return Err(S3Error::access_denied(
                    "This pre-signed URL was revoked: the certificate it was issued to is no longer active",
                ));
            }
        }
        if let (Some(max), Some(len)) = (grant.max_size, req.content_length) {
            if len > max {
                return Err(S3Error::entity_too_large(max));
            }
        }
        // HEAD never uses up a single-use download.
        let claims = grant.single_use && req.op != Op::HeadObject;
        if claims && !self.grants.claim_grant(&grant.id).map_err(|e| S3Error::internal(e.to_string()))? {
            return Err(S3Error::access_denied("This pre-signed URL is in use or was already used: ask for a new one"));
        }
        Ok(Authorized {
            principal_id: grant.certificate_id.clone().unwrap_or_else(|| grant.id.clone()),
            thing_name: grant.thing_name.clone(),
            certificate_id: grant.certificate_id.clone(),
            max_size: grant.max_size,
            token: claims.then(|| grant.id.clone()),
        })
    }
}

fn merge(target: &mut Value, extra: &Value) {
    if let (Some(t), Some(e)) = (target.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            if !v.is_null() {
                t.insert(k.clone(), v.clone());
            }
        }
    }
}

fn new_grant_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::rng();
    let tail: String = (0..17).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect();
    format!("{GRANT_PREFIX}{tail}")
}

impl Access for FileTransfer {
    fn secret_for(&self, access_key_id: &str) -> Option<String> {
        if let Some(s) = self.admin_secret(access_key_id) {
            return Some(s);
        }
        if access_key_id.starts_with(GRANT_PREFIX) && access_key_id.len() == 20 {
            // Only grants that exist have a secret (unknown ids fail as InvalidAccessKeyId).
            if let Ok(Some(_)) = self.grants.get_grant(access_key_id) {
                return Some(self.grant_secret(access_key_id));
            }
        }
        None
    }

    fn authorize(&self, req: &AccessRequest<'_>) -> Result<Authorized, S3Error> {
        if self.admin_secret(req.access_key_id).is_some() {
            return Ok(Authorized { principal_id: req.access_key_id.to_string(), ..Authorized::default() });
        }
        let result = self.authorize_grant(req);
        if let Err(e) = &result {
            tracing::info!(target: "audit", grant = %req.access_key_id, op = ?req.op, error = %e.message, "pre-signed URL refused");
        }
        result
    }

    fn finished(&self, auth: &Authorized, ok: bool) {
        if let Some(id) = &auth.token {
            if let Err(e) = self.grants.release_grant(id, ok) {
                tracing::error!(grant = %id, error = %e, "could not record the use of a pre-signed URL");
            }
        }
    }
}

/// Object events travel through the router like any message.
pub struct RouterEvents(pub OnceLock<Weak<broker::Broker>>);

impl EventSink for RouterEvents {
    fn publish(&self, topic: &str, document: Value) {
        let Some(broker) = self.0.get().and_then(Weak::upgrade) else { return };
        if !mqtt::topic::valid_topic_name(topic) {
            tracing::warn!(topic, "object event topic is not a valid topic name; event dropped");
            return;
        }
        let msg = broker::Message::system(topic, document.to_string(), mqtt::QoS::AtLeastOnce);
        if broker.publish(msg).needs_sync {
            tokio::spawn(async move {
                if let Err(e) = broker.sync().await {
                    tracing::error!(error = %e, "could not persist an object event");
                }
            });
        }
    }
}

/// The server key pre-signed URL secrets derive from: created once, 0600.
pub fn load_or_create_url_key(path: &std::path::Path) -> anyhow::Result<[u8; 32]> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim())?;
        return bytes.try_into().map_err(|_| anyhow::anyhow!("{} must hold 32 bytes (base64)", path.display()));
    }
    let key: [u8; 32] = rand::random();
    crate::datadir::write_secret(path, base64::engine::general_purpose::STANDARD.encode(key).as_bytes())?;
    Ok(key)
}
