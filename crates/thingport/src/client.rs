//! A small SigV4-signing client for the management API, used by the CLI.

use std::path::Path;

use anyhow::{bail, Context};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::datadir::{AdminCredentials, DataDir, Endpoints};

/// Where the API is and who we are.
pub struct ApiClient {
    base: String,
    authority: String,
    region: String,
    creds: sigv4::Credentials,
    http: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl ApiClient {
    /// Find the API: `THINGPORT_ENDPOINT` or the running server's address file
    /// in `data_dir`; credentials from `THINGPORT_ACCESS_KEY_ID` /
    /// `THINGPORT_SECRET_ACCESS_KEY` (or the admin or AWS variables), else the
    /// data directory's `admin-credentials.json`.
    pub fn discover(data_dir: &Path) -> anyhow::Result<ApiClient> {
        let dir = DataDir::new(data_dir);
        let endpoints: Option<Endpoints> =
            std::fs::read_to_string(dir.endpoints()).ok().and_then(|t| serde_json::from_str(&t).ok());
        let base = match (env("THINGPORT_ENDPOINT"), &endpoints) {
            (Some(e), _) => e,
            (None, Some(e)) => e.api.clone(),
            (None, None) => bail!(
                "no running Thingport found: {} does not exist. Start the server with `thingport serve{}` \
                 or set THINGPORT_ENDPOINT to its management API URL (e.g. http://127.0.0.1:9080)",
                dir.endpoints().display(),
                if data_dir == Path::new("./thingport-data") {
                    String::new()
                } else {
                    format!(" --data-dir {}", data_dir.display())
                }
            ),
        };
        let base = base.trim_end_matches('/').to_string();
        let Some(authority) = base.strip_prefix("http://").map(str::to_string) else {
            bail!("THINGPORT_ENDPOINT must be an http:// URL of the management API, got {base}");
        };
        let region = env("THINGPORT_REGION")
            .or_else(|| endpoints.as_ref().map(|e| e.region.clone()))
            .unwrap_or_else(|| "us-east-1".into());
        let pair = |a: &str, b: &str| Some(AdminCredentials { access_key_id: env(a)?, secret_access_key: env(b)? });
        let creds = pair("THINGPORT_ACCESS_KEY_ID", "THINGPORT_SECRET_ACCESS_KEY")
            .or_else(|| pair("THINGPORT_ADMIN_ACCESS_KEY_ID", "THINGPORT_ADMIN_SECRET_ACCESS_KEY"))
            .or_else(|| pair("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"));
        let creds = match creds {
            Some(c) => c,
            None => AdminCredentials::read(&dir.admin_credentials()).with_context(|| {
                "no API credentials: set THINGPORT_ACCESS_KEY_ID and THINGPORT_SECRET_ACCESS_KEY, \
                 or run on the server machine with --data-dir pointing at its data directory"
            })?,
        };
        Ok(ApiClient {
            base,
            authority,
            region,
            creds: sigv4::Credentials::new(creds.access_key_id, creds.secret_access_key),
            http: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    /// Send a signed request; returns the JSON body, or an error with the API's message.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        query: &str,
        extra_headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let body_bytes = body.map(|b| serde_json::to_vec(b).unwrap_or_default()).unwrap_or_default();
        let mut headers: Vec<(String, String)> = vec![("host".into(), self.authority.clone())];
        if body.is_some() {
            headers.push(("content-type".into(), "application/json".into()));
        }
        for (k, v) in extra_headers {
            headers.push((k.to_string(), v.to_string()));
        }
        let hash = sigv4::sha256_hex(&body_bytes);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
        let req = sigv4::Request { method, raw_path: path, raw_query: query, headers: &headers, payload_hash: &hash };
        let signed = sigv4::sign_headers(&req, sigv4::UriEncoding::Double, &self.creds, &self.region, "iot", now);
        let uri =
            if query.is_empty() { format!("{}{path}", self.base) } else { format!("{}{path}?{query}", self.base) };
        let mut builder = hyper::Request::builder().method(method).uri(&uri);
        for (k, v) in headers.iter().chain(signed.iter()) {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let request = builder.body(Full::new(Bytes::from(body_bytes)))?;
        let resp = self.http.request(request).await.with_context(|| {
            format!("cannot reach the management API at {}: is `thingport serve` running?", self.base)
        })?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        let value: Value =
            if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        if !status.is_success() {
            let msg = value.get("message").and_then(Value::as_str).unwrap_or("");
            let code = value.get("__type").and_then(Value::as_str).unwrap_or("");
            bail!("{method} {path} failed: {status} {code}: {msg}");
        }
        Ok(value)
    }
}
