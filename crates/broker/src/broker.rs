//! The broker: session registry, router and retained store.
//!
//! Lock order (never taken the other way round): the session map, then a
//! session's state, then the subscription tree or the retained map.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use mqtt::QoS;
use parking_lot::{Mutex, RwLock};
use store::{BrokerOp, BrokerStore, StoredSubscription};

use crate::auth::{Authenticator, Authorizer};
use crate::config::Limits;
use crate::message::Message;
use crate::session::{ConnLink, Control, Queued, Session};
use crate::tree::{Match, SubEntry, SubscriptionTree};

/// Something that sees every routed message (the rules engine, metrics, …).
pub trait MessageHook: Send + Sync + 'static {
    /// Called for every routed message. Returns true when it submitted durable
    /// work to the store, so the publisher's acknowledgement waits for it.
    fn on_message(&self, msg: &Arc<Message>) -> bool;
}

/// Counters exposed as metrics.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub messages_dropped: AtomicU64,
}

/// What routing one message did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Routed {
    /// Sessions the message was queued for.
    pub matched: usize,
    /// Durable state changed: call [`Broker::sync`] before acknowledging.
    pub needs_sync: bool,
    /// Some subscriber's queue is filling up: the publisher should slow down.
    pub congested: bool,
}

pub struct Broker {
    pub limits: Limits,
    pub authenticator: Arc<dyn Authenticator>,
    authorizer: ArcSwap<Box<dyn Authorizer>>,
    store: Arc<dyn BrokerStore>,
    sessions: Mutex<HashMap<Arc<str>, Arc<Session>>>,
    tree: RwLock<SubscriptionTree>,
    retained: RwLock<HashMap<Arc<str>, Arc<Message>>>,
    hooks: RwLock<Vec<Arc<dyn MessageHook>>>,
    next_conn_id: AtomicU64,
    /// When the last "queue full" warning was logged (rate limit).
    last_drop_warning_ms: AtomicU64,
    pub stats: Stats,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl Broker {
    /// Build a broker and reload persistent sessions and retained messages
    /// from `store`. Must be called inside a tokio runtime (expiry timers).
    pub fn new(
        limits: Limits,
        authenticator: Arc<dyn Authenticator>,
        authorizer: Box<dyn Authorizer>,
        store: Arc<dyn BrokerStore>,
    ) -> store::Result<Arc<Broker>> {
        let snapshot = store.load()?;
        let broker = Arc::new(Broker {
            limits,
            authenticator,
            authorizer: ArcSwap::from_pointee(authorizer),
            store,
            sessions: Mutex::new(HashMap::new()),
            tree: RwLock::new(SubscriptionTree::new()),
            retained: RwLock::new(HashMap::new()),
            hooks: RwLock::new(Vec::new()),
            // Connection ids grow across restarts too (lifecycle events'
            // versionNumber orders a client's connections by it).
            next_conn_id: AtomicU64::new((store::now_ms() / 1000) * 1_000_000 + 1),
            last_drop_warning_ms: AtomicU64::new(0),
            stats: Stats::default(),
        });
        let now = store::now_ms();
        {
            let mut retained = broker.retained.write();
            for m in snapshot.retained {
                let m = Message::from_stored(m);
                if !m.is_expired(now) {
                    retained.insert(m.topic.clone(), Arc::new(m));
                }
            }
        }
        let n_sessions = snapshot.sessions.len();
        for s in snapshot.sessions {
            let client: Arc<str> = s.client_id.as_str().into();
            let session = Session::new(client.clone(), s.expiry_interval);
            {
                let mut st = session.state.lock();
                let mut tree = broker.tree.write();
                for sub in &s.subscriptions {
                    let entry = entry_from_stored(sub);
                    st.subscriptions.insert(sub.filter.clone(), entry);
                    tree.insert(&client, &sub.filter, entry);
                }
                for (seq, m) in s.messages {
                    st.set_seq_floor(seq);
                    let released = m.released_packet_id;
                    let ids = m.subscription_ids.clone();
                    let m = Arc::new(Message::from_stored(m));
                    let q = Queued { qos: m.qos, retain: m.retain, subscription_ids: ids, msg: m, seq, dup: true };
                    match released {
                        // PUBREC was received: only the PUBREL is still owed.
                        Some(pid) => {
                            st.inflight.insert(pid, crate::session::Inflight { queued: q, released: true });
                        }
                        None => st.queue.push_back(q),
                    }
                }
            }
            broker.sessions.lock().insert(client, session.clone());
            let since = if s.disconnected_at_ms == 0 { now } else { s.disconnected_at_ms };
            let left_ms = (u64::from(s.expiry_interval) * 1000).saturating_sub(now.saturating_sub(since));
            broker.schedule_expiry(session, 0, Duration::from_millis(left_ms), s.expiry_interval);
        }
        tracing::info!(sessions = n_sessions, retained = broker.retained.read().len(), "broker state loaded");
        Ok(broker)
    }

    pub fn authorizer(&self) -> arc_swap::Guard<Arc<Box<dyn Authorizer>>> {
        self.authorizer.load()
    }

    /// Replace the authorizer; applies to the next operation of every client.
    pub fn set_authorizer(&self, a: Box<dyn Authorizer>) {
        self.authorizer.store(Arc::new(a));
    }

    pub fn add_hook(&self, hook: Arc<dyn MessageHook>) {
        self.hooks.write().push(hook);
    }

    pub fn next_conn_id(&self) -> u64 {
        self.next_conn_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Wait until every durable change made so far is committed.
    pub async fn sync(&self) -> store::Result<()> {
        self.store.sync().await
    }

    /// Number of sessions (connected or not).
    pub fn session_count(&self) -> usize {
        self.sessions.lock().len()
    }

    /// Number of retained messages.
    pub fn retained_count(&self) -> usize {
        self.retained.read().len()
    }

    /// Route a message: update the retained store, queue it for every
    /// matching session and hand it to the hooks.
    pub fn publish(&self, msg: Message) -> Routed {
        let msg = Arc::new(msg);
        let mut routed = Routed::default();
        self.stats.messages_in.fetch_add(1, Ordering::Relaxed);
        if msg.retain {
            routed.needs_sync |= self.set_retained(&msg);
        }
        let mut matches: Vec<Match> = Vec::new();
        self.tree.read().matches(&msg.topic, &mut matches);
        if !matches.is_empty() {
            // Ordinary subscriptions: one delivery per session with the
            // highest QoS and every subscription id. Each shared group: one
            // delivery, to the first member (round robin) that is online.
            let (mut plain, shared): (Vec<Match>, Vec<Match>) = matches.into_iter().partition(|m| !m.shared());
            plain.sort_by(|a, b| a.client_id.cmp(&b.client_id));
            let mut deliveries: Vec<(Arc<str>, QoS, bool, Vec<u32>)> = Vec::new();
            let mut i = 0;
            while i < plain.len() {
                let client = plain[i].client_id.clone();
                let mut qos = None::<QoS>;
                let mut rap = false;
                let mut ids = Vec::new();
                while i < plain.len() && plain[i].client_id == client {
                    let m = &plain[i];
                    i += 1;
                    if m.entry.options.no_local && msg.publisher.as_deref() == Some(&*client) {
                        continue;
                    }
                    let q = m.entry.options.qos.min(msg.qos);
                    qos = Some(qos.map_or(q, |old| old.max(q)));
                    rap |= m.entry.options.retain_as_published;
                    ids.extend(m.entry.subscription_id);
                }
                if let Some(qos) = qos {
                    deliveries.push((client, qos, rap && msg.retain, ids));
                }
            }
            // Look the sessions up under the map lock, deliver without it.
            let mut targets: Vec<(Arc<Session>, QoS, bool, Vec<u32>)> = Vec::new();
            {
                let sessions = self.sessions.lock();
                for (c, q, r, ids) in deliveries {
                    if let Some(s) = sessions.get(&c) {
                        targets.push((s.clone(), q, r, ids));
                    }
                }
                let mut j = 0;
                while j < shared.len() {
                    let group = shared[j].group;
                    let members: Vec<&Match> = shared[j..].iter().take_while(|m| m.group == group).collect();
                    j += members.len();
                    let online =
                        |m: &&&Match| sessions.get(&m.client_id).is_some_and(|s| s.state.lock().conn.is_some());
                    let chosen = members.iter().find(online).or_else(|| members.first());
                    if let Some(m) = chosen {
                        if let Some(s) = sessions.get(&m.client_id) {
                            let q = m.entry.options.qos.min(msg.qos);
                            let ids = m.entry.subscription_id.into_iter().collect();
                            targets.push((s.clone(), q, m.entry.options.retain_as_published && msg.retain, ids));
                        }
                    }
                }
            }
            for (session, qos, retain, ids) in targets {
                if let Some((durable, queued)) = self.enqueue(&session, &msg, qos, retain, ids) {
                    routed.matched += 1;
                    routed.needs_sync |= durable;
                    routed.congested |= queued > self.limits.max_queued_messages / 4;
                }
            }
        }
        for h in self.hooks.read().iter() {
            routed.needs_sync |= h.on_message(&msg);
        }
        routed
    }

    fn set_retained(&self, msg: &Arc<Message>) -> bool {
        if msg.payload.is_empty() {
            if self.retained.write().remove(&msg.topic).is_some() {
                self.store.submit(BrokerOp::ClearRetained { topic: msg.topic.to_string() });
                return true;
            }
            false
        } else {
            self.retained.write().insert(msg.topic.clone(), msg.clone());
            self.store.submit(BrokerOp::SetRetained(msg.to_stored()));
            true
        }
    }

    /// Every retained message, sorted by topic.
    pub fn retained_messages(&self) -> Vec<Arc<Message>> {
        let mut v: Vec<_> = self.retained.read().values().cloned().collect();
        v.sort_by(|a, b| a.topic.cmp(&b.topic));
        v
    }

    /// The retained message on `topic`, if any.
    pub fn retained(&self, topic: &str) -> Option<Arc<Message>> {
        self.retained.read().get(topic).cloned()
    }

    /// Queue a message for one session. None if dropped; otherwise whether a
    /// durable write was made (the caller must sync before acknowledging) and
    /// how many messages the session now has queued.
    pub(crate) fn enqueue(
        &self,
        session: &Session,
        msg: &Arc<Message>,
        qos: QoS,
        retain: bool,
        subscription_ids: Vec<u32>,
    ) -> Option<(bool, usize)> {
        let mut st = session.state.lock();
        let online = st.conn.is_some();
        if st.discarded || (!online && (qos == QoS::AtMostOnce || !st.durable())) {
            return None;
        }
        if st.queue.len() >= self.limits.max_queued_messages {
            drop(st);
            let dropped = self.stats.messages_dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // One line per second at most, with the running count.
            let now = store::now_ms();
            let last = self.last_drop_warning_ms.load(Ordering::Relaxed);
            if now >= last + 1000
                && self.last_drop_warning_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
            {
                tracing::warn!(client_id = %session.client_id, dropped_total = dropped,
                    "session queue full (limits.max_queued_messages): messages dropped");
            }
            return None;
        }
        let seq = if qos > QoS::AtMostOnce && st.durable() {
            let seq = st.next_seq();
            // Stored as it is to be delivered: this session's QoS, RETAIN flag
            // and subscription identifiers.
            let mut message = msg.to_stored();
            message.qos = qos as u8;
            message.retain = retain;
            message.subscription_ids = subscription_ids.clone();
            self.store.submit(BrokerOp::Enqueue { client_id: session.client_id.to_string(), seq, message });
            seq
        } else {
            0
        };
        st.queue.push_back(Queued { msg: msg.clone(), qos, retain, subscription_ids, seq, dup: false });
        let queued = st.queue.len();
        drop(st);
        if online {
            session.notify.notify_one();
        }
        Some((seq != 0, queued))
    }

    /// Record that a persisted QoS 2 message was released (PUBREC received).
    pub(crate) fn release_seq(&self, client_id: &str, seq: u64, packet_id: u16) {
        if seq != 0 {
            self.store.submit(BrokerOp::Release { client_id: client_id.to_string(), seq, packet_id });
        }
    }

    /// Forget a persisted message (delivered, expired or refused).
    pub(crate) fn ack_seq(&self, client_id: &str, seq: u64) {
        if seq != 0 {
            self.store.submit(BrokerOp::Ack { client_id: client_id.to_string(), seq });
        }
    }

    /// Attach a new connection to the session for `client_id`, taking it over
    /// from a previous connection. Returns the session and whether it existed.
    pub(crate) fn attach(
        &self,
        client_id: &Arc<str>,
        clean_start: bool,
        expiry_interval: u32,
        link: ConnLink,
    ) -> (Arc<Session>, bool) {
        let mut sessions = self.sessions.lock();
        if let Some(existing) = sessions.get(client_id).cloned() {
            let mut st = existing.state.lock();
            if let Some(old) = st.conn.take() {
                let _ = old.control.send(Control::Kick(mqtt::reason::SESSION_TAKEN_OVER));
            }
            if !clean_start {
                st.conn = Some(link);
                st.generation += 1;
                st.expiry_interval = expiry_interval;
                if st.durable() {
                    self.store.submit(BrokerOp::PutSession {
                        client_id: client_id.to_string(),
                        expiry_interval,
                        disconnected_at_ms: 0,
                    });
                } else {
                    self.store.submit(BrokerOp::DeleteSession { client_id: client_id.to_string() });
                }
                drop(st);
                return (existing, true);
            }
            self.discard_locked(&existing, &mut st);
            drop(st);
            sessions.remove(client_id);
        }
        let session = Session::new(client_id.clone(), expiry_interval);
        {
            let mut st = session.state.lock();
            st.conn = Some(link);
            st.generation = 1;
        }
        if expiry_interval > 0 {
            self.store.submit(BrokerOp::PutSession {
                client_id: client_id.to_string(),
                expiry_interval,
                disconnected_at_ms: 0,
            });
        }
        sessions.insert(client_id.clone(), session.clone());
        (session, false)
    }

    /// Remove a session's subscriptions and durable state (caller holds the locks).
    fn discard_locked(&self, session: &Session, st: &mut crate::session::SessionState) {
        let mut tree = self.tree.write();
        for filter in st.subscriptions.keys() {
            tree.remove(&session.client_id, filter);
        }
        drop(tree);
        st.subscriptions.clear();
        st.queue.clear();
        st.inflight.clear();
        st.discarded = true;
        self.store.submit(BrokerOp::DeleteSession { client_id: session.client_id.to_string() });
    }

    /// The connection `conn_id` ended. A session that does not outlive its
    /// connection is removed; a persistent one gets an expiry timer.
    pub(crate) fn detach(self: &Arc<Self>, session: &Arc<Session>, conn_id: u64) {
        let mut sessions = self.sessions.lock();
        let mut st = session.state.lock();
        if st.conn.as_ref().map(|c| c.conn_id) != Some(conn_id) {
            return; // taken over: the session belongs to the new connection
        }
        st.conn = None;
        if st.expiry_interval == 0 {
            self.discard_locked(session, &mut st);
            drop(st);
            sessions.remove(&session.client_id);
            return;
        }
        // Undelivered QoS 0 messages die with the connection.
        st.queue.retain(|q| q.qos > QoS::AtMostOnce);
        let expiry = st.expiry_interval;
        let generation = st.generation;
        self.store.submit(BrokerOp::PutSession {
            client_id: session.client_id.to_string(),
            expiry_interval: expiry,
            disconnected_at_ms: store::now_ms(),
        });
        drop(st);
        drop(sessions);
        self.schedule_expiry(session.clone(), generation, Duration::from_secs(u64::from(expiry)), expiry);
    }

    fn schedule_expiry(self: &Arc<Self>, session: Arc<Session>, generation: u64, after: Duration, expiry: u32) {
        if expiry == u32::MAX {
            return; // never expires
        }
        let broker = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let Some(broker) = broker.upgrade() else {
                return;
            };
            let mut sessions = broker.sessions.lock();
            let mut st = session.state.lock();
            if st.conn.is_some() || st.generation != generation {
                return;
            }
            tracing::debug!(client_id = %session.client_id, "session expired");
            broker.discard_locked(&session, &mut st);
            drop(st);
            if sessions.get(&session.client_id).is_some_and(|s| Arc::ptr_eq(s, &session)) {
                sessions.remove(&session.client_id);
            }
        });
    }

    /// Add or replace a subscription; returns true if it is new.
    pub(crate) fn subscribe(&self, session: &Session, filter: &str, entry: SubEntry) -> bool {
        let mut st = session.state.lock();
        let new = st.subscriptions.insert(filter.to_string(), entry).is_none();
        self.tree.write().insert(&session.client_id, filter, entry);
        if st.durable() {
            self.store.submit(BrokerOp::PutSubscription {
                client_id: session.client_id.to_string(),
                subscription: StoredSubscription {
                    filter: filter.to_string(),
                    qos: entry.options.qos as u8,
                    no_local: entry.options.no_local,
                    retain_as_published: entry.options.retain_as_published,
                    retain_handling: entry.options.retain_handling,
                    subscription_id: entry.subscription_id,
                },
            });
        }
        new
    }

    /// Remove a subscription; returns true if it existed.
    pub(crate) fn unsubscribe(&self, session: &Session, filter: &str) -> bool {
        let mut st = session.state.lock();
        if st.subscriptions.remove(filter).is_none() {
            return false;
        }
        self.tree.write().remove(&session.client_id, filter);
        if st.durable() {
            self.store.submit(BrokerOp::DeleteSubscription {
                client_id: session.client_id.to_string(),
                filter: filter.to_string(),
            });
        }
        true
    }

    /// Queue the retained messages matching `filter` for `session`.
    pub(crate) fn deliver_retained(&self, session: &Session, filter: &str, entry: SubEntry) {
        let now = store::now_ms();
        let msgs: Vec<Arc<Message>> = self
            .retained
            .read()
            .values()
            .filter(|m| !m.is_expired(now) && mqtt::topic::matches(filter, &m.topic))
            .cloned()
            .collect();
        for m in msgs {
            let qos = m.qos.min(entry.options.qos);
            self.enqueue(session, &m, qos, true, entry.subscription_id.into_iter().collect());
        }
    }

    /// Close every connection authenticated as `principal_id` (its
    /// certificate was deactivated or revoked). Returns how many.
    pub fn kick_principal(&self, principal_id: &str, reason: u8) -> usize {
        let sessions = self.sessions.lock();
        let mut n = 0;
        for s in sessions.values() {
            let st = s.state.lock();
            if let Some(link) = &st.conn {
                if &*link.principal_id == principal_id {
                    let _ = link.control.send(Control::Kick(reason));
                    n += 1;
                }
            }
        }
        n
    }

    /// Close every connection (shutdown).
    pub fn kick_all(&self, reason: u8) {
        for s in self.sessions.lock().values() {
            if let Some(link) = &s.state.lock().conn {
                let _ = link.control.send(Control::Kick(reason));
            }
        }
    }

    /// Number of connected clients.
    pub fn connected_count(&self) -> usize {
        self.sessions.lock().values().filter(|s| s.state.lock().conn.is_some()).count()
    }
}

fn entry_from_stored(s: &StoredSubscription) -> SubEntry {
    SubEntry {
        options: mqtt::SubOptions {
            qos: QoS::from_u8(s.qos).unwrap_or(QoS::AtMostOnce),
            no_local: s.no_local,
            retain_as_published: s.retain_as_published,
            retain_handling: s.retain_handling,
        },
        subscription_id: s.subscription_id,
    }
}
