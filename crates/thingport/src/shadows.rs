//! The Device Shadow service: shadow documents over the reserved MQTT topics
//! (`$aws/things/{thing}/shadow/…`) and over HTTPS, persisted in the store.
//!
//! MQTT requests reach the service as ordinary messages (a broker hook sees
//! the request topics) and are handled in order on one worker thread, so a
//! device's updates apply in the order it sent them; responses travel back
//! through the router like any message, so subscriptions and policies apply.
//! HTTPS requests call [`Shadows::handle`] directly. The document algebra
//! lives in the pure `shadow` crate.

use std::sync::mpsc;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use serde_json::Value;
use shadow::{ShadowError, ShadowOp, ShadowTopic};
use store::ShadowStore;

/// Where a shadow request came from (MQTT requests answer on `/accepted` and
/// `/rejected`; HTTPS requests answer in the response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Mqtt,
    Http,
}

pub struct Shadows {
    store: Arc<dyn ShadowStore>,
    broker: std::sync::OnceLock<Weak<broker::Broker>>,
    limits: shadow::Limits,
    /// Serialises read-modify-write of documents.
    lock: Mutex<()>,
    worker: Mutex<Option<mpsc::Sender<(ShadowTopic, bytes::Bytes)>>>,
}

fn now_secs() -> i64 {
    (store::now_ms() / 1000) as i64
}

impl Shadows {
    pub fn new(store: Arc<dyn ShadowStore>, limits: shadow::Limits) -> Arc<Shadows> {
        Arc::new(Shadows {
            store,
            broker: std::sync::OnceLock::new(),
            limits,
            lock: Mutex::new(()),
            worker: Mutex::new(None),
        })
    }

    /// Connect to the broker: register the hook that picks up MQTT requests.
    pub fn attach(self: &Arc<Self>, broker: &Arc<broker::Broker>) {
        let _ = self.broker.set(Arc::downgrade(broker));
        let (tx, rx) = mpsc::channel::<(ShadowTopic, bytes::Bytes)>();
        *self.worker.lock() = Some(tx);
        let me = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("shadow-worker".into())
            .spawn(move || {
                while let Ok((topic, payload)) = rx.recv() {
                    let Some(s) = me.upgrade() else { return };
                    s.handle(&topic, &payload, Origin::Mqtt).ok();
                }
            })
            .expect("start shadow worker");
        broker.add_hook(Arc::new(Hook(Arc::downgrade(self))));
    }

    fn publish(&self, topic: &str, payload: &Value) {
        if let Some(b) = self.broker.get().and_then(Weak::upgrade) {
            b.publish(broker::Message::system(topic, payload.to_string(), mqtt::QoS::AtLeastOnce));
        }
    }

    fn load(&self, t: &ShadowTopic) -> Result<Option<shadow::Shadow>, ShadowError> {
        let doc = self.store.get_shadow(&t.thing, t.shadow.as_deref().unwrap_or("")).map_err(internal)?;
        match doc {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text).map(Some).map_err(|e| internal(e.to_string())),
        }
    }

    fn save(&self, t: &ShadowTopic, s: &shadow::Shadow) -> Result<(), ShadowError> {
        let text = serde_json::to_string(s).map_err(|e| internal(e.to_string()))?;
        self.store
            .put_shadow(&t.thing, t.shadow.as_deref().unwrap_or(""), &text, s.deleted_at.is_some(), store::now_ms())
            .map_err(internal)
    }

    /// Handle one request. MQTT requests get their `/accepted` or `/rejected`
    /// message; every accepted update also publishes `/update/documents` and,
    /// when desired and reported differ, `/update/delta` (as AWS does for
    /// HTTPS updates too). Returns the accepted document or the error.
    pub fn handle(&self, t: &ShadowTopic, payload: &[u8], origin: Origin) -> Result<Value, ShadowError> {
        let now = now_secs();
        let result = {
            let _guard = self.lock.lock();
            self.apply(t, payload, now)
        };
        let op = match t.op {
            ShadowOp::Get => "get",
            ShadowOp::Update => "update",
            ShadowOp::Delete => "delete",
        };
        match result {
            Ok((accepted, extra)) => {
                if origin == Origin::Mqtt {
                    self.publish(&t.response(&format!("{op}/accepted")), &accepted);
                }
                for (suffix, v) in extra {
                    self.publish(&t.response(suffix), &v);
                }
                Ok(accepted)
            }
            Err(e) => {
                if origin == Origin::Mqtt {
                    let token = shadow::request_client_token(payload);
                    self.publish(&t.response(&format!("{op}/rejected")), &e.to_json(token.as_deref(), now));
                }
                Err(e)
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn apply(
        &self,
        t: &ShadowTopic,
        payload: &[u8],
        now: i64,
    ) -> Result<(Value, Vec<(&'static str, Value)>), ShadowError> {
        let current = self.load(t)?;
        let display = t.display_name();
        let name = Some(display);
        match t.op {
            ShadowOp::Get => Ok((shadow::get_response(current.as_ref(), payload, now, name)?, Vec::new())),
            ShadowOp::Delete => {
                let (tombstone, accepted) = shadow::delete(current.as_ref(), payload, now, name)?;
                self.save(t, &tombstone)?;
                Ok((accepted, Vec::new()))
            }
            ShadowOp::Update => {
                let out = shadow::apply_update(current.as_ref(), payload, now, &self.limits)?;
                self.save(t, &out.shadow)?;
                let mut extra = vec![("update/documents", out.documents)];
                if let Some(d) = out.delta {
                    extra.push(("update/delta", d));
                }
                Ok((out.accepted, extra))
            }
        }
    }

    /// Named shadows of a thing (ListNamedShadowsForThing).
    pub fn list_named(&self, thing: &str) -> Result<Vec<String>, ShadowError> {
        self.store.list_named_shadows(thing).map_err(internal)
    }
}

fn internal(e: impl ToString) -> ShadowError {
    tracing::error!(error = %e.to_string(), "shadow storage error");
    ShadowError { code: 500, message: "Internal service failure".into() }
}

/// Picks shadow requests out of the message stream.
struct Hook(Weak<Shadows>);

impl broker::broker::MessageHook for Hook {
    fn on_message(&self, msg: &Arc<broker::Message>) -> bool {
        if !msg.topic.starts_with("$aws/things/") || msg.publisher.is_none() {
            return false; // not a request, or our own response
        }
        let Some(t) = shadow::parse_topic(&msg.topic) else { return false };
        if let Some(s) = self.0.upgrade() {
            if let Some(tx) = s.worker.lock().as_ref() {
                let _ = tx.send((t, msg.payload.clone()));
            }
        }
        false
    }
}
