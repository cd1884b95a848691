//! The rules engine: every routed message is matched against the enabled
//! topic rules (`SELECT … FROM 'filter' WHERE …`, the pure `rules` crate), and
//! each action of a matching rule becomes a durable job.
//!
//! Delivery is at-least-once: a job is written through the broker's batching
//! writer before the publisher's acknowledgement (the broker waits for it),
//! runs on the executor task, is retried with backoff while its target is
//! down, survives restarts, and after its last attempt goes to the rule's
//! error action with AWS's error payload.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::http::StatusCode;
use base64::Engine;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use store::{BrokerOp, BrokerStore, RuleRecord, RuleStore};

use crate::api::error::ApiError;

/// Attempts before a job is handed to the error action (backoff 1 s … 60 s).
const MAX_ATTEMPTS: u32 = 8;
/// HTTP action timeout (AWS: 3 s).
const HTTP_TIMEOUT: Duration = Duration::from_secs(3);
/// Most jobs waiting before new ones are refused (and counted as failures).
const MAX_BACKLOG: u64 = 100_000;

/// An action as configured (AWS `Action` shapes; Thingport maps a few).
#[derive(Debug, Clone)]
enum ActionSpec {
    /// `republish: {topic, qos, headers: {userProperties: [{key, value}]}}`
    Republish { topic: rules::Template, qos: u8, user_properties: Vec<(String, rules::Template)> },
    /// `http: {url, headers: [{key, value}]}` — the self-hosted stand-in for
    /// Lambda. Thingport extensions: `hmacSecret` signs the body
    /// (`x-thingport-signature-256: sha256=HEX`), `replyTopic` publishes the
    /// function's 2xx response body there (the function answers the device).
    Http {
        url: rules::Template,
        headers: Vec<(String, rules::Template)>,
        hmac_secret: Option<String>,
        reply_topic: Option<rules::Template>,
    },
    /// `kinesis: {streamName}` (the stream action) or Thingport's `nats: {subject}`:
    /// publish to a NATS subject (template) on the configured NATS server.
    Nats { subject: rules::Template },
    /// `dynamoDB: {tableName, hashKeyField, hashKeyValue, rangeKeyField, rangeKeyValue, payloadField}`
    Table {
        table: String,
        hash_key_field: String,
        hash_key_value: rules::Template,
        range_key_field: Option<String>,
        range_key_value: Option<rules::Template>,
        payload_field: Option<String>,
    },
    /// `cloudwatchLogs: {logGroupName}` — a structured log line.
    Log { group: String },
    /// `s3: {bucketName, key}`: store the output as an object (with its object-created event).
    Objects { bucket: String, key: rules::Template },
    /// Thingport's `thingportPresignedUrl: {}`: the built-in pre-signed URL
    /// issuer answers the request (runs at once, not as a durable job: the
    /// answer is only useful to the connection that asked).
    PresignedUrl,
    /// Thingport's `thingportDataKey: {}`: the built-in data-key issuer
    /// answers the request (at once, like the URL issuer).
    DataKey,
}

/// A job: one action to run for one message, with its templates rendered.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Job {
    rule: String,
    /// Index of the action in the rule, or None for the error action.
    action: Option<usize>,
    kind: String,
    /// Rendered parameters.
    params: HashMap<String, Value>,
    /// The rule's output (what the action sends), base64.
    output_b64: String,
    topic: String,
    client_id: Option<String>,
    /// The message as published, base64 (for the error payload).
    original_b64: String,
    attempts: u32,
    last_error: Option<String>,
}

struct CompiledRule {
    name: String,
    rule: rules::Rule,
    actions: Vec<ActionSpec>,
    error_action: Option<ActionSpec>,
    disabled: bool,
}

/// Per-rule counters (metrics).
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleMetrics {
    pub matched: u64,
    pub actions_succeeded: u64,
    pub actions_failed: u64,
    pub actions_retried: u64,
    pub total_latency_ms: u64,
}

pub struct RulesEngine {
    /// NATS server for the stream action (`[rules] nats_url`), connected lazily.
    nats_url: Option<String>,
    nats: tokio::sync::OnceCell<async_nats::Client>,
    store: Arc<dyn RuleStore>,
    durable: Arc<dyn BrokerStore>,
    rules: ArcSwap<Vec<Arc<CompiledRule>>>,
    next_job: AtomicU64,
    backlog: AtomicU64,
    tx: tokio::sync::mpsc::UnboundedSender<(u64, Job)>,
    rx: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<(u64, Job)>>>,
    broker: OnceLock<Weak<broker::Broker>>,
    shadows: OnceLock<Weak<crate::shadows::Shadows>>,
    metrics: Mutex<HashMap<String, RuleMetrics>>,
    /// Rules that come from configuration rather than the API (the
    /// pre-signed URL issuer's binding); not listed, not editable.
    builtin: Mutex<Vec<Arc<CompiledRule>>>,
    file_transfer: OnceLock<Weak<crate::file_transfer::FileTransfer>>,
    payload_keys: OnceLock<Weak<crate::payload_keys::PayloadKeys>>,
    pub region: String,
    pub account_id: String,
}

fn invalid(m: impl Into<String>) -> ApiError {
    ApiError::invalid(m)
}

fn sql_error(e: rules::RuleError) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "SqlParseException", e.to_string())
}

fn template(v: &Value, field: &str) -> Result<rules::Template, ApiError> {
    let s = v.get(field).and_then(Value::as_str).ok_or_else(|| invalid(format!("action field {field} is required")))?;
    rules::Template::parse(s).map_err(|e| invalid(format!("{field}: {e}")))
}

fn parse_action(a: &Value) -> Result<ActionSpec, ApiError> {
    let obj = a.as_object().ok_or_else(|| invalid("each action must be an object"))?;
    let (kind, v) = obj.iter().next().ok_or_else(|| invalid("empty action"))?;
    if obj.len() != 1 {
        return Err(invalid("each action must have exactly one action type"));
    }
    Ok(match kind.as_str() {
        "republish" => {
            let user_properties = v
                .pointer("/headers/userProperties")
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .map(|p| Ok((p["key"].as_str().unwrap_or("").to_string(), template(p, "value")?)))
                        .collect::<Result<Vec<_>, ApiError>>()
                })
                .transpose()?
                .unwrap_or_default();
            ActionSpec::Republish {
                topic: template(v, "topic")?,
                qos: v.get("qos").and_then(Value::as_u64).unwrap_or(0).min(1) as u8,
                user_properties,
            }
        }
        "http" => {
            let headers = v
                .get("headers")
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .map(|h| Ok((h["key"].as_str().unwrap_or("").to_string(), template(h, "value")?)))
                        .collect::<Result<Vec<_>, ApiError>>()
                })
                .transpose()?
                .unwrap_or_default();
            let url = template(v, "url")?;
            let hmac_secret = v.get("hmacSecret").and_then(Value::as_str).map(str::to_string);
            let reply_topic = v.get("replyTopic").map(|_| template(v, "replyTopic")).transpose()?;
            ActionSpec::Http { url, headers, hmac_secret, reply_topic }
        }
        "dynamoDB" => ActionSpec::Table {
            table: v["tableName"].as_str().ok_or_else(|| invalid("dynamoDB.tableName is required"))?.to_string(),
            hash_key_field: v["hashKeyField"]
                .as_str()
                .ok_or_else(|| invalid("dynamoDB.hashKeyField is required"))?
                .into(),
            hash_key_value: template(v, "hashKeyValue")?,
            range_key_field: v["rangeKeyField"].as_str().map(str::to_string),
            range_key_value: v.get("rangeKeyValue").map(|_| template(v, "rangeKeyValue")).transpose()?,
            payload_field: v["payloadField"].as_str().map(str::to_string),
        },
        "kinesis" => ActionSpec::Nats { subject: template(v, "streamName")? },
        "nats" => ActionSpec::Nats { subject: template(v, "subject")? },
        "cloudwatchLogs" => ActionSpec::Log { group: v["logGroupName"].as_str().unwrap_or("rules").to_string() },
        "s3" => {
            let bucket = v["bucketName"].as_str().ok_or_else(|| invalid("s3.bucketName is required"))?.to_string();
            if !objects::names::valid_bucket_name(&bucket) {
                return Err(invalid(format!("s3.bucketName {bucket:?} is not a valid bucket name")));
            }
            ActionSpec::Objects { bucket, key: template(v, "key")? }
        }
        "thingportPresignedUrl" => ActionSpec::PresignedUrl,
        "thingportDataKey" => ActionSpec::DataKey,
        other => {
            return Err(invalid(format!(
                "action type {other:?} is not supported; use republish, http, dynamoDB, kinesis (NATS), nats, cloudwatchLogs, s3, thingportPresignedUrl or thingportDataKey"
            )))
        }
    })
}

/// What a job needs from the message and the rule's output.
struct Ctx<'a> {
    input: &'a rules::Input<'a>,
}

struct EnvImpl<'a> {
    shadows: Option<Arc<crate::shadows::Shadows>>,
    _p: std::marker::PhantomData<&'a ()>,
}

impl rules::Env for EnvImpl<'_> {
    fn new_uuid(&self) -> String {
        uuid::Uuid::new_v4().to_string()
    }
    fn trace_id(&self) -> String {
        uuid::Uuid::new_v4().to_string()
    }
    fn get_thing_shadow(&self, thing: &str, shadow: Option<&str>) -> Option<Value> {
        let s = self.shadows.as_ref()?;
        let t = shadow::ShadowTopic {
            thing: thing.to_string(),
            shadow: shadow.map(str::to_string),
            op: shadow::ShadowOp::Get,
        };
        s.handle(&t, b"", crate::shadows::Origin::Http).ok()
    }
}

impl RulesEngine {
    pub fn new(
        store: Arc<dyn RuleStore>,
        durable: Arc<dyn BrokerStore>,
        region: String,
        account_id: String,
        nats_url: Option<String>,
    ) -> anyhow::Result<Arc<RulesEngine>> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let engine = Arc::new(RulesEngine {
            nats_url,
            nats: tokio::sync::OnceCell::new(),
            store,
            durable,
            rules: ArcSwap::from_pointee(Vec::new()),
            next_job: AtomicU64::new(1),
            backlog: AtomicU64::new(0),
            tx,
            rx: Mutex::new(Some(rx)),
            broker: OnceLock::new(),
            shadows: OnceLock::new(),
            metrics: Mutex::new(HashMap::new()),
            builtin: Mutex::new(Vec::new()),
            file_transfer: OnceLock::new(),
            payload_keys: OnceLock::new(),
            region,
            account_id,
        });
        engine.reload().map_err(|e| anyhow::anyhow!(e.message))?;
        Ok(engine)
    }

    /// Hook into the broker, reload pending jobs and start the executor.
    pub fn start(
        self: &Arc<Self>,
        broker: &Arc<broker::Broker>,
        shadows: &Arc<crate::shadows::Shadows>,
    ) -> anyhow::Result<()> {
        let _ = self.broker.set(Arc::downgrade(broker));
        let _ = self.shadows.set(Arc::downgrade(shadows));
        broker.add_hook(Arc::new(Hook(Arc::downgrade(self))));
        let pending = self.store.pending_jobs()?;
        let mut max = 0;
        for (id, body) in pending {
            max = max.max(id);
            match serde_json::from_str::<Job>(&body) {
                Ok(job) => {
                    self.backlog.fetch_add(1, Ordering::Relaxed);
                    let _ = self.tx.send((id, job));
                }
                Err(e) => tracing::error!(job = id, error = %e, "unreadable rule job dropped"),
            }
        }
        if max > 0 {
            tracing::info!(up_to = max, "resuming pending rule actions");
        }
        self.next_job.store(max.max(store::now_ms() * 1000) + 1, Ordering::Relaxed);
        let rx = self.rx.lock().take().expect("started once");
        tokio::spawn(executor(Arc::downgrade(self), rx));
        Ok(())
    }

    /// Bind the built-in services: the file transfer service, and a rule
    /// `SELECT * FROM 'request_topic'` feeding its URL issuer (none when the
    /// topic is empty).
    pub fn set_file_transfer(
        &self,
        ft: &Arc<crate::file_transfer::FileTransfer>,
        request_topic: &str,
    ) -> anyhow::Result<()> {
        let _ = self.file_transfer.set(Arc::downgrade(ft));
        self.add_builtin("$thingport_presigned_url", "objects.request_topic", request_topic, "thingportPresignedUrl")
    }

    /// Bind the payload-key service and its data-key issuer's topic.
    pub fn set_payload_keys(
        &self,
        pk: &Arc<crate::payload_keys::PayloadKeys>,
        request_topic: &str,
    ) -> anyhow::Result<()> {
        let _ = self.payload_keys.set(Arc::downgrade(pk));
        self.add_builtin("$thingport_data_key", "keys.request_topic", request_topic, "thingportDataKey")
    }

    /// A built-in rule `SELECT * FROM 'topic'` feeding a built-in service (none when the topic is empty).
    fn add_builtin(&self, name: &str, setting: &str, topic: &str, action: &str) -> anyhow::Result<()> {
        if topic.is_empty() {
            return Ok(());
        }
        if !mqtt::topic::valid_topic_filter(topic) || topic.contains('\'') {
            anyhow::bail!("{setting} {topic:?} is not a valid topic filter");
        }
        let payload = json!({ "sql": format!("SELECT * FROM '{topic}'"), "actions": [{ action: {} }] });
        let rule = Self::compile(name, &payload).map_err(|e| anyhow::anyhow!(e.message))?;
        self.builtin.lock().push(Arc::new(rule));
        self.reload().map_err(|e| anyhow::anyhow!(e.message))
    }

    pub fn rule_arn(&self, name: &str) -> String {
        format!("arn:aws:iot:{}:{}:rule/{}", self.region, self.account_id, name)
    }

    fn compile(name: &str, payload: &Value) -> Result<CompiledRule, ApiError> {
        let sql =
            payload.get("sql").and_then(Value::as_str).ok_or_else(|| invalid("topicRulePayload.sql is required"))?;
        let version = payload.get("awsIotSqlVersion").and_then(Value::as_str).unwrap_or("2016-03-23");
        if version != "2016-03-23" && version != "2015-10-08" && version != "beta" {
            return Err(invalid(format!("awsIotSqlVersion {version:?} is not supported")));
        }
        let rule = rules::Rule::parse(sql).map_err(sql_error)?;
        let actions = payload
            .get("actions")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("topicRulePayload.actions is required"))?
            .iter()
            .map(parse_action)
            .collect::<Result<Vec<_>, _>>()?;
        if actions.len() > 10 {
            return Err(invalid("a rule has at most 10 actions"));
        }
        let error_action = payload.get("errorAction").filter(|v| !v.is_null()).map(parse_action).transpose()?;
        let disabled = payload.get("ruleDisabled").and_then(Value::as_bool).unwrap_or(false);
        Ok(CompiledRule { name: name.to_string(), rule, actions, error_action, disabled })
    }

    fn reload(&self) -> Result<(), ApiError> {
        let mut list: Vec<Arc<CompiledRule>> = self.builtin.lock().clone();
        for rec in self.store.list_rules()? {
            let payload: Value = serde_json::from_str(&rec.payload).unwrap_or(Value::Null);
            match Self::compile(&rec.name, &payload) {
                Ok(r) => list.push(Arc::new(r)),
                Err(e) => {
                    tracing::error!(rule = %rec.name, error = %e.message, "stored rule does not compile; skipped")
                }
            }
        }
        self.rules.store(Arc::new(list));
        Ok(())
    }

    fn valid_name(name: &str) -> bool {
        !name.is_empty() && name.len() <= 128 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    }

    /// CreateTopicRule / ReplaceTopicRule.
    pub fn put(&self, name: &str, payload: Value, replace: bool) -> Result<(), ApiError> {
        if !Self::valid_name(name) {
            return Err(invalid(format!("rule name {name:?} must be 1-128 characters of [a-zA-Z0-9_]")));
        }
        Self::compile(name, &payload)?;
        let existing = self.store.get_rule(name)?;
        match (&existing, replace) {
            (Some(_), false) => return Err(ApiError::conflict(format!("rule {name} already exists"))),
            (None, true) => return Err(ApiError::not_found(format!("rule {name} does not exist"))),
            _ => {}
        }
        let now = store::now_ms();
        self.store.put_rule(&RuleRecord {
            name: name.to_string(),
            payload: payload.to_string(),
            created_at_ms: existing.map(|e| e.created_at_ms).unwrap_or(now),
            updated_at_ms: now,
        })?;
        self.reload()
    }

    pub fn get(&self, name: &str) -> Result<(RuleRecord, Value), ApiError> {
        let rec =
            self.store.get_rule(name)?.ok_or_else(|| ApiError::not_found(format!("rule {name} does not exist")))?;
        let payload = serde_json::from_str(&rec.payload).unwrap_or(Value::Null);
        Ok((rec, payload))
    }

    pub fn list(&self) -> Result<Vec<(RuleRecord, Value)>, ApiError> {
        Ok(self
            .store
            .list_rules()?
            .into_iter()
            .map(|r| {
                let v = serde_json::from_str(&r.payload).unwrap_or(Value::Null);
                (r, v)
            })
            .collect())
    }

    pub fn delete(&self, name: &str) -> Result<(), ApiError> {
        self.store.delete_rule(name)?;
        self.metrics.lock().remove(name);
        self.reload()
    }

    pub fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), ApiError> {
        let (mut rec, mut payload) = self.get(name)?;
        payload["ruleDisabled"] = json!(!enabled);
        rec.payload = payload.to_string();
        rec.updated_at_ms = store::now_ms();
        self.store.put_rule(&rec)?;
        self.reload()
    }

    pub fn metrics(&self) -> HashMap<String, RuleMetrics> {
        self.metrics.lock().clone()
    }

    pub fn backlog(&self) -> u64 {
        self.backlog.load(Ordering::Relaxed)
    }

    /// Rows of the embedded table store (the `dynamoDB` action's target).
    pub fn query_table(&self, table: &str, hash_key: Option<&str>, limit: usize) -> Result<Vec<Value>, ApiError> {
        Ok(self
            .store
            .query_items(table, hash_key, limit)?
            .into_iter()
            .map(|(_, _, item)| serde_json::from_str(&item).unwrap_or(Value::Null))
            .collect())
    }

    fn env(&self) -> EnvImpl<'static> {
        EnvImpl { shadows: self.shadows.get().and_then(Weak::upgrade), _p: std::marker::PhantomData }
    }

    /// Match one message; returns true when durable jobs were submitted.
    fn on_message(&self, msg: &Arc<broker::Message>) -> bool {
        let rules = self.rules.load();
        if rules.is_empty() {
            return false;
        }
        let input = rules::Input {
            topic: &msg.topic,
            payload: &msg.payload,
            client_id: msg.publisher.as_deref(),
            principal: msg.principal.as_deref(),
            timestamp_ms: msg.received_at_ms as i64,
        };
        let env = self.env();
        let mut submitted = false;
        for r in rules.iter().filter(|r| !r.disabled && r.rule.matches_topic(&msg.topic)) {
            let Some(output) = r.rule.evaluate(&input, &env) else { continue };
            self.metrics.lock().entry(r.name.clone()).or_default().matched += 1;
            let output_b64 = base64::engine::general_purpose::STANDARD.encode(output.to_bytes());
            for (i, a) in r.actions.iter().enumerate() {
                match a {
                    ActionSpec::PresignedUrl => {
                        self.presigned_url(&output, msg);
                        continue;
                    }
                    ActionSpec::DataKey => {
                        self.data_key(&output, msg);
                        continue;
                    }
                    _ => {}
                }
                let job = render_job(&r.name, Some(i), a, &output_b64, &Ctx { input: &input });
                submitted |= self.submit(job);
            }
        }
        submitted
    }

    /// Hand a request to the built-in URL issuer (on its own task).
    fn presigned_url(&self, output: &rules::Output, msg: &Arc<broker::Message>) {
        let Some(ft) = self.file_transfer.get().and_then(Weak::upgrade) else {
            tracing::warn!("pre-signed URL request but the object service is not running");
            return;
        };
        let request: Value = serde_json::from_slice(&output.to_bytes()).unwrap_or(Value::Null);
        tokio::spawn(ft.handle_request(request, msg.clone()));
    }

    /// Hand a request to the built-in data-key issuer (on its own task).
    fn data_key(&self, output: &rules::Output, msg: &Arc<broker::Message>) {
        let Some(pk) = self.payload_keys.get().and_then(Weak::upgrade) else {
            tracing::warn!("data key request but the key service is not running");
            return;
        };
        let request: Value = serde_json::from_slice(&output.to_bytes()).unwrap_or(Value::Null);
        tokio::spawn(pk.handle_request(request, msg.clone()));
    }

    fn submit(&self, job: Job) -> bool {
        if self.backlog.load(Ordering::Relaxed) >= MAX_BACKLOG {
            tracing::error!(rule = %job.rule, "rule action backlog full; action dropped");
            self.metrics.lock().entry(job.rule.clone()).or_default().actions_failed += 1;
            return false;
        }
        let id = self.next_job.fetch_add(1, Ordering::Relaxed);
        if let Ok(body) = serde_json::to_string(&job) {
            self.durable.submit(BrokerOp::PutJob { id, body });
        }
        self.backlog.fetch_add(1, Ordering::Relaxed);
        let _ = self.tx.send((id, job));
        true
    }
}

fn render_job(rule: &str, action: Option<usize>, a: &ActionSpec, output_b64: &str, ctx: &Ctx<'_>) -> Job {
    let env = EnvImpl { shadows: None, _p: std::marker::PhantomData };
    let r = |t: &rules::Template| t.render(ctx.input, &env);
    let mut params = HashMap::new();
    let kind = match a {
        ActionSpec::Republish { topic, qos, user_properties } => {
            params.insert("topic".into(), json!(r(topic)));
            params.insert("qos".into(), json!(qos));
            let ups: Vec<Value> = user_properties.iter().map(|(k, v)| json!([k, r(v)])).collect();
            params.insert("userProperties".into(), json!(ups));
            "republish"
        }
        ActionSpec::Http { url, headers, hmac_secret, reply_topic } => {
            params.insert("url".into(), json!(r(url)));
            let hs: Vec<Value> = headers.iter().map(|(k, v)| json!([k, r(v)])).collect();
            params.insert("headers".into(), json!(hs));
            params.insert("hmacSecret".into(), json!(hmac_secret));
            params.insert("replyTopic".into(), json!(reply_topic.as_ref().map(r)));
            "http"
        }
        ActionSpec::Nats { subject } => {
            params.insert("subject".into(), json!(r(subject)));
            "nats"
        }
        ActionSpec::Table {
            table,
            hash_key_field,
            hash_key_value,
            range_key_field,
            range_key_value,
            payload_field,
        } => {
            params.insert("tableName".into(), json!(table));
            params.insert("hashKeyField".into(), json!(hash_key_field));
            params.insert("hashKeyValue".into(), json!(r(hash_key_value)));
            params.insert("rangeKeyField".into(), json!(range_key_field));
            params.insert("rangeKeyValue".into(), json!(range_key_value.as_ref().map(r)));
            params.insert("payloadField".into(), json!(payload_field));
            "dynamoDB"
        }
        ActionSpec::Log { group } => {
            params.insert("logGroupName".into(), json!(group));
            "cloudwatchLogs"
        }
        ActionSpec::Objects { bucket, key } => {
            params.insert("bucketName".into(), json!(bucket));
            params.insert("key".into(), json!(r(key)));
            "s3"
        }
        ActionSpec::PresignedUrl => "thingportPresignedUrl",
        ActionSpec::DataKey => "thingportDataKey",
    };
    Job {
        rule: rule.to_string(),
        action,
        kind: kind.to_string(),
        params,
        output_b64: output_b64.to_string(),
        topic: ctx.input.topic.to_string(),
        client_id: ctx.input.client_id.map(str::to_string),
        original_b64: base64::engine::general_purpose::STANDARD.encode(ctx.input.payload),
        attempts: 0,
        last_error: None,
    }
}

struct Hook(Weak<RulesEngine>);

impl broker::broker::MessageHook for Hook {
    fn on_message(&self, msg: &Arc<broker::Message>) -> bool {
        // Messages the rules engine republished do not run rules again (no loops).
        if msg.publisher.as_deref() == Some(REPUBLISHER) {
            return false;
        }
        self.0.upgrade().is_some_and(|e| e.on_message(msg))
    }
}

/// Marks an action error that retrying cannot fix.
const PERMANENT: &str = "permanent: ";

/// Publisher id of messages republished by rules.
const REPUBLISHER: &str = "$rules";

async fn executor(engine: Weak<RulesEngine>, mut rx: tokio::sync::mpsc::UnboundedReceiver<(u64, Job)>) {
    let http: hyper_util::client::legacy::Client<_, http_body_util::Full<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    while let Some((id, job)) = rx.recv().await {
        let Some(e) = engine.upgrade() else { return };
        let e2 = e.clone();
        let http = http.clone();
        // Each job runs (and retries) on its own task so a slow target does not stall others.
        tokio::spawn(async move { run_job(e2, http, id, job).await });
        drop(e);
    }
}

async fn run_job(
    e: Arc<RulesEngine>,
    http: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<bytes::Bytes>,
    >,
    id: u64,
    mut job: Job,
) {
    loop {
        let started = std::time::Instant::now();
        let result = execute(&e, &http, &job).await;
        let elapsed = started.elapsed().as_millis() as u64;
        match result {
            Ok(()) => {
                let mut m = e.metrics.lock();
                let m = m.entry(job.rule.clone()).or_default();
                m.actions_succeeded += 1;
                m.total_latency_ms += elapsed;
                break;
            }
            Err(err) => {
                let (permanent, err) = match err.strip_prefix(PERMANENT) {
                    Some(e) => (true, e.to_string()),
                    None => (false, err),
                };
                job.attempts += 1;
                job.last_error = Some(err.clone());
                if job.attempts >= MAX_ATTEMPTS || permanent {
                    tracing::warn!(rule = %job.rule, action = %job.kind, attempts = job.attempts, error = %err, "rule action failed for good");
                    e.metrics.lock().entry(job.rule.clone()).or_default().actions_failed += 1;
                    if job.action.is_some() {
                        error_action(&e, &job);
                    }
                    break;
                }
                e.metrics.lock().entry(job.rule.clone()).or_default().actions_retried += 1;
                tracing::info!(rule = %job.rule, action = %job.kind, attempt = job.attempts, error = %err, "rule action failed; will retry");
                if let Ok(body) = serde_json::to_string(&job) {
                    e.durable.submit(BrokerOp::PutJob { id, body });
                }
                let backoff = Duration::from_millis((500u64 << job.attempts.min(7)).min(60_000));
                tokio::time::sleep(backoff).await;
            }
        }
    }
    e.durable.submit(BrokerOp::DeleteJob { id });
    e.backlog.fetch_sub(1, Ordering::Relaxed);
}

/// Hand a failed job to its rule's error action, with AWS's error payload.
fn error_action(e: &RulesEngine, job: &Job) {
    let rules = e.rules.load();
    let Some(rule) = rules.iter().find(|r| r.name == job.rule) else { return };
    let Some(spec) = &rule.error_action else { return };
    let payload = json!({
        "ruleName": job.rule,
        "topic": job.topic,
        "cloudwatchTraceId": uuid::Uuid::new_v4().to_string(),
        "clientId": job.client_id,
        "base64OriginalPayload": job.original_b64,
        "failures": [{
            "failedAction": format!("{}Action", job.kind),
            "failedResource": job.params.get("url").or(job.params.get("topic")).or(job.params.get("tableName")).cloned(),
            "errorMessage": job.last_error,
        }],
    });
    let original = base64::engine::general_purpose::STANDARD.decode(&job.original_b64).unwrap_or_default();
    let input = rules::Input {
        topic: &job.topic,
        payload: &original,
        client_id: job.client_id.as_deref(),
        principal: None,
        timestamp_ms: store::now_ms() as i64,
    };
    let output_b64 = base64::engine::general_purpose::STANDARD.encode(payload.to_string());
    let err_job = render_job(&job.rule, None, spec, &output_b64, &Ctx { input: &input });
    e.submit(err_job);
}

async fn execute(
    e: &RulesEngine,
    http: &hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<bytes::Bytes>,
    >,
    job: &Job,
) -> Result<(), String> {
    let output = base64::engine::general_purpose::STANDARD.decode(&job.output_b64).map_err(|e| e.to_string())?;
    let p = |k: &str| job.params.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    match job.kind.as_str() {
        "republish" => {
            let broker = e.broker.get().and_then(Weak::upgrade).ok_or("broker stopped")?;
            let topic = p("topic");
            if !mqtt::topic::valid_topic_name(&topic) {
                return Err(format!("invalid republish topic {topic:?}"));
            }
            let qos = if job.params.get("qos").and_then(Value::as_u64) == Some(1) {
                mqtt::QoS::AtLeastOnce
            } else {
                mqtt::QoS::AtMostOnce
            };
            let mut msg = broker::Message::system(&topic, output, qos);
            msg.publisher = Some(REPUBLISHER.into());
            if let Some(list) = job.params.get("userProperties").and_then(Value::as_array) {
                for kv in list {
                    msg.properties
                        .user_properties
                        .push((kv[0].as_str().unwrap_or("").into(), kv[1].as_str().unwrap_or("").into()));
                }
            }
            if broker.publish(msg).needs_sync {
                broker.sync().await.map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        "http" => {
            let url = p("url");
            let mut req = hyper::Request::post(&url).header("content-type", "application/json");
            if let Some(secret) = job.params.get("hmacSecret").and_then(Value::as_str) {
                let mac = sigv4::hmac_sha256(secret.as_bytes(), &output);
                req = req.header("x-thingport-signature-256", format!("sha256={}", hex::encode(mac)));
            }
            if let Some(list) = job.params.get("headers").and_then(Value::as_array) {
                for kv in list {
                    req = req.header(kv[0].as_str().unwrap_or(""), kv[1].as_str().unwrap_or(""));
                }
            }
            let req = req
                .body(http_body_util::Full::new(bytes::Bytes::from(output)))
                .map_err(|e| format!("bad request for {url}: {e}"))?;
            let resp = tokio::time::timeout(HTTP_TIMEOUT, http.request(req))
                .await
                .map_err(|_| format!("{url}: timed out after {HTTP_TIMEOUT:?}"))?
                .map_err(|e| format!("{url}: {e}"))?;
            if !resp.status().is_success() {
                return Err(format!("{url}: HTTP {}", resp.status()));
            }
            if let Some(topic) = job.params.get("replyTopic").and_then(Value::as_str) {
                use http_body_util::BodyExt;
                let body = resp.into_body().collect().await.map_err(|e| format!("{url}: {e}"))?.to_bytes();
                if !body.is_empty() {
                    let broker = e.broker.get().and_then(Weak::upgrade).ok_or("broker stopped")?;
                    if !mqtt::topic::valid_topic_name(topic) {
                        return Err(format!("invalid reply topic {topic:?}"));
                    }
                    let mut msg = broker::Message::system(topic, body, mqtt::QoS::AtLeastOnce);
                    msg.publisher = Some(REPUBLISHER.into());
                    if broker.publish(msg).needs_sync {
                        broker.sync().await.map_err(|e| e.to_string())?;
                    }
                }
            }
            Ok(())
        }
        "dynamoDB" => {
            let mut item = match serde_json::from_slice::<Value>(&output) {
                Ok(v) if v.is_object() && job.params.get("payloadField").is_none_or(Value::is_null) => v,
                Ok(v) => json!({ job.params.get("payloadField").and_then(Value::as_str).unwrap_or("payload"): v }),
                Err(_) => json!({ job.params.get("payloadField").and_then(Value::as_str).unwrap_or("payload"):
                                 base64::engine::general_purpose::STANDARD.encode(&output) }),
            };
            let hash = p("hashKeyValue");
            item[p("hashKeyField")] = json!(hash);
            let range = job.params.get("rangeKeyValue").and_then(Value::as_str).unwrap_or("").to_string();
            if let Some(f) = job.params.get("rangeKeyField").and_then(Value::as_str) {
                item[f] = json!(range);
            }
            e.store.put_item(&p("tableName"), &hash, &range, &item.to_string()).map_err(|e| e.to_string())
        }
        "nats" => {
            let url = e.nats_url.as_deref().ok_or("no NATS server configured (set rules.nats_url)")?;
            let client = e
                .nats
                .get_or_try_init(|| async { async_nats::connect(url).await })
                .await
                .map_err(|err| format!("NATS {url}: {err}"))?;
            let subject = p("subject");
            client
                .publish(subject.clone(), output.into())
                .await
                .map_err(|err| format!("NATS publish to {subject}: {err}"))?;
            client.flush().await.map_err(|err| format!("NATS flush: {err}"))?;
            Ok(())
        }
        "cloudwatchLogs" => {
            tracing::info!(target: "rules", rule = %job.rule, group = %p("logGroupName"), topic = %job.topic,
                payload = %String::from_utf8_lossy(&output), "rule log action");
            Ok(())
        }
        "s3" => {
            let ft = e.file_transfer.get().and_then(Weak::upgrade).ok_or("the object service is not running")?;
            let svc = ft.service().ok_or("the object service is not running")?;
            let (bucket, key) = (p("bucketName"), p("key"));
            match svc.put_bytes(&bucket, &key, &output, None, &format!("rule/{}", job.rule)).await {
                Ok(_) => Ok(()),
                // A missing bucket or a bad key will not fix itself: straight to the error action.
                Err(err) if err.status < 500 => Err(format!("{PERMANENT}s3://{bucket}/{key}: {err}")),
                Err(err) => Err(format!("s3://{bucket}/{key}: {err}")),
            }
        }
        other => Err(format!("unknown action {other}")),
    }
}
