//! The S3 REST endpoint: path-style (and optionally virtual-host-style)
//! requests, authenticated by SigV4 (headers, pre-signed query strings or a
//! signed POST policy), dispatched to a [`Backend`].
//!
//! The endpoint knows nothing about devices: who may do what is the
//! [`Access`] implementation's business (Thingport's admin keys and
//! per-device URL grants), and object events go to an [`EventSink`] (the
//! MQTT router). Every body is staged and verified before it becomes an
//! object, so a refused or broken upload leaves nothing behind.

mod body;
mod ops;
mod post;
mod request;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;

use crate::multipart::Uploads;
use crate::staging::Staging;
use crate::{Backend, S3Error};

pub use request::Op;

/// Settings of the endpoint.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Region reported by GetBucketLocation and in events.
    pub region: String,
    /// Largest object accepted by a single PUT/POST/part (S3: 5 GiB).
    pub max_object_size: u64,
    /// Clock skew tolerated on header-signed requests.
    pub max_skew_secs: i64,
    /// When set, `BUCKET.<suffix>` hosts address buckets (virtual-host style).
    pub virtual_host_suffix: Option<String>,
    /// Owner id shown in listings.
    pub owner_id: String,
    /// Topic prefix of object events: `<prefix>/<bucket>/<ObjectCreated|ObjectRemoved>/<Put|…>`.
    pub event_topic_prefix: String,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            region: "us-east-1".into(),
            max_object_size: 5 * 1024 * 1024 * 1024,
            max_skew_secs: sigv4::DEFAULT_MAX_SKEW_SECS,
            virtual_host_suffix: None,
            owner_id: "thingport".into(),
            event_topic_prefix: "$aws/events/s3".into(),
        }
    }
}

/// What an [`Access`] implementation is asked to decide, after the
/// signature checked out.
#[derive(Debug, Clone)]
pub struct AccessRequest<'a> {
    pub access_key_id: &'a str,
    /// Signed in the query string (a pre-signed URL) or by a POST policy.
    pub presigned: bool,
    pub op: Op,
    /// `GET`, `PUT`, … as sent.
    pub method: &'a str,
    pub bucket: Option<&'a str>,
    pub key: Option<&'a str>,
    /// CopyObject's source (bucket, key).
    pub copy_source: Option<(&'a str, &'a str)>,
    /// The declared body size, when known.
    pub content_length: Option<u64>,
    pub content_type: Option<&'a str>,
    pub source_ip: Option<IpAddr>,
}

/// A positive decision, with what applies to the rest of the request.
#[derive(Debug, Clone, Default)]
pub struct Authorized {
    /// Who acts, for events and logs (an access key id, a certificate id).
    pub principal_id: String,
    /// The thing a device-bound URL was issued to.
    pub thing_name: Option<String>,
    pub certificate_id: Option<String>,
    /// Upper bound for the body, below the endpoint's own limit.
    pub max_size: Option<u64>,
    /// Handed back to [`Access::finished`] (e.g. a single-use grant's id).
    pub token: Option<String>,
}

/// Authentication secrets and authorization decisions.
pub trait Access: Send + Sync + 'static {
    /// The secret of an access key id (admin keys, URL grants); None if unknown.
    fn secret_for(&self, access_key_id: &str) -> Option<String>;
    /// Decide an authenticated request. An `Err` is sent to the client as is.
    fn authorize(&self, req: &AccessRequest<'_>) -> Result<Authorized, S3Error>;
    /// The request ended; `ok` says whether it succeeded (a single-use grant
    /// claimed by `authorize` is released again when it did not).
    fn finished(&self, auth: &Authorized, ok: bool);
}

/// Where object events go.
pub trait EventSink: Send + Sync + 'static {
    /// Publish one S3 notification document (`{"Records":[…]}`) on `topic`.
    fn publish(&self, topic: &str, document: serde_json::Value);
}

/// The client's address, put into request extensions by the listener.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// The endpoint's state.
pub struct S3Service {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) staging: Arc<Staging>,
    pub(crate) uploads: Uploads,
    pub(crate) access: Arc<dyn Access>,
    pub(crate) events: Arc<dyn EventSink>,
    pub(crate) cfg: ServiceConfig,
    next_request: AtomicU64,
    started: u64,
}

impl S3Service {
    pub fn new(
        backend: Arc<dyn Backend>,
        staging: Arc<Staging>,
        uploads: Uploads,
        access: Arc<dyn Access>,
        events: Arc<dyn EventSink>,
        cfg: ServiceConfig,
    ) -> Arc<S3Service> {
        let started =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        Arc::new(S3Service { backend, staging, uploads, access, events, cfg, next_request: AtomicU64::new(1), started })
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.cfg
    }

    /// Store bytes as an object, with its object-created event (the rules
    /// engine's S3 action). `principal_id` names the writer in the event.
    pub async fn put_bytes(
        &self,
        bucket: &str,
        key: &str,
        data: &[u8],
        content_type: Option<&str>,
        principal_id: &str,
    ) -> Result<crate::ObjectMeta, S3Error> {
        if !crate::names::valid_bucket_name(bucket) {
            return Err(S3Error::invalid_bucket_name(bucket));
        }
        crate::names::check_key(key)?;
        self.backend.head_bucket(bucket).await?;
        let mut writer = self.staging.writer(Some(self.cfg.max_object_size)).await?;
        writer.write(data).await?;
        let staged = writer.finish().await?;
        let meta = crate::ObjectMeta {
            key: key.to_string(),
            size: staged.size(),
            etag: staged.md5_hex(),
            content_type: content_type.map(str::to_string),
            ..Default::default()
        };
        let stored = self.backend.put_object(bucket, meta, staged).await?;
        let request_id = self.request_id();
        let ctx = ops::Ctx {
            svc: self,
            auth: Authorized { principal_id: principal_id.to_string(), ..Default::default() },
            request_id: &request_id,
            source_ip: String::new(),
        };
        ops::emit(&ctx, "ObjectCreated:Put", bucket, key, Some(&stored)).await;
        Ok(stored)
    }

    fn request_id(&self) -> String {
        format!("{:08X}{:08X}", self.started & 0xffff_ffff, self.next_request.fetch_add(1, Ordering::Relaxed))
    }
}

/// The endpoint as an axum router (every path, every method).
pub fn router(svc: Arc<S3Service>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(svc)
}

async fn handle(State(svc): State<Arc<S3Service>>, req: Request) -> Response {
    let request_id = svc.request_id();
    let is_head = req.method() == axum::http::Method::HEAD;
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let expects_continue =
        req.headers().get("expect").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let (req, rest) = drainable(req);
    let mut resp = match ops::dispatch(&svc, req, &request_id).await {
        Ok(r) => r,
        Err(e) => {
            if e.status >= 500 && e.status != 501 {
                tracing::error!(%method, %path, code = e.code, error = %e.message, "S3 request failed");
            } else {
                tracing::debug!(%method, %path, code = e.code, error = %e.message, "S3 request refused");
            }
            rest.drain(expects_continue).await;
            error_response(&e, &request_id, is_head)
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-amz-request-id", v.clone());
        resp.headers_mut().insert("x-amz-id-2", v);
    }
    resp
}

/// Most body bytes read and discarded after a refusal so that the client,
/// still sending, reads the error instead of a reset connection.
const MAX_DRAIN: usize = 64 * 1024 * 1024;
/// How long a refusal waits for the rest of the body.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

type SharedBody = Arc<tokio::sync::Mutex<(axum::body::BodyDataStream, bool)>>;

/// What is left of a request body after the handler gave up on it.
struct Rest(SharedBody);

impl Rest {
    /// Read and discard what the client is still sending (up to a limit), so
    /// the error response reaches clients that send the whole body before
    /// reading (`requests`, urllib3). A client waiting for `100 Continue`
    /// whose body was never asked for is not asked now: it reads the error.
    async fn drain(self, expects_continue: bool) {
        use futures_util::StreamExt;
        let mut guard = self.0.lock().await;
        let (stream, started) = &mut *guard;
        if expects_continue && !*started {
            return;
        }
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
            let mut n = 0usize;
            while let Some(Ok(chunk)) = stream.next().await {
                n += chunk.len();
                if n > MAX_DRAIN {
                    break;
                }
            }
        })
        .await;
    }
}

/// Give the handler a body whose unread rest stays reachable afterwards.
fn drainable(req: Request) -> (Request, Rest) {
    use futures_util::StreamExt;
    let (parts, body) = req.into_parts();
    let shared: SharedBody = Arc::new(tokio::sync::Mutex::new((body.into_data_stream(), false)));
    let stream = futures_util::stream::unfold(shared.clone(), |s| async move {
        let next = {
            let mut guard = s.lock().await;
            guard.1 = true;
            guard.0.next().await
        };
        next.map(|item| (item, s))
    });
    (Request::from_parts(parts, Body::from_stream(stream)), Rest(shared))
}

pub(crate) fn error_response(e: &S3Error, request_id: &str, head: bool) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = if head { Body::empty() } else { Body::from(e.to_xml(request_id)) };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert("content-type", HeaderValue::from_static("application/xml"));
    resp
}
