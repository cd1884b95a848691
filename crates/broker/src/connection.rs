//! One client connection: MQTT 3.1.1 / 5 from CONNECT to the end.
//!
//! A single task per connection reads packets, handles them, and writes what
//! the session has queued; writes are batched into one buffer and flushed
//! once per wake-up, so a burst of deliveries costs one TLS record flush.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use mqtt::{reason, ConnAck, Connect, Disconnect, Packet, Properties, Protocol, PubResp, Publish, QoS, SubAck};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::auth::{AuthFailure, ClientCtx, PeerInfo};
use crate::broker::Broker;
use crate::events::{self, DisconnectReason};
use crate::message::Message;
use crate::session::{ConnLink, Control, Inflight, Session};
use crate::tree::SubEntry;

/// Why the main loop stopped.
enum End {
    Reason(DisconnectReason),
}

/// Serve one connection until it ends. `peer` says who is on the other side.
pub async fn serve<S>(broker: Arc<Broker>, stream: S, peer: PeerInfo)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut conn = Pending { broker, stream, rbuf: BytesMut::with_capacity(4096) };
    let connect = match tokio::time::timeout(conn.broker.limits.connect_timeout, conn.read_connect()).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            tracing::debug!(peer = %peer.addr, error = %e, "connection closed before CONNECT completed");
            return;
        }
        Err(_) => {
            tracing::debug!(peer = %peer.addr, "no CONNECT within the timeout");
            return;
        }
    };
    conn.handle_connect(connect, peer).await;
}

/// A connection before its CONNECT was accepted.
struct Pending<S> {
    broker: Arc<Broker>,
    stream: S,
    rbuf: BytesMut,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Pending<S> {
    async fn read_connect(&mut self) -> std::io::Result<Connect> {
        let max = self.broker.limits.max_packet_size();
        loop {
            match mqtt::decode(&mut self.rbuf, Protocol::V5, max) {
                Ok(Some(Packet::Connect(c))) => return Ok(c),
                Ok(Some(other)) => {
                    return Err(std::io::Error::other(format!("first packet was not CONNECT: {other:?}")))
                }
                Ok(None) => {}
                Err(mqtt::DecodeError::UnsupportedProtocolVersion(v)) => {
                    // 3.1.1-style CONNACK "unacceptable protocol version".
                    let _ = self.stream.write_all(&[0x20, 0x02, 0x00, 0x01]).await;
                    let _ = self.stream.flush().await;
                    return Err(std::io::Error::other(format!("unsupported MQTT protocol level {v}")));
                }
                Err(e) => return Err(std::io::Error::other(format!("malformed CONNECT: {e}"))),
            }
            if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    async fn refuse(&mut self, protocol: Protocol, code: u8, why: &str) {
        let mut properties = Properties::default();
        if protocol == Protocol::V5 {
            properties.reason_string = Some(why.to_string());
        }
        let mut buf = BytesMut::new();
        let ack = Packet::ConnAck(ConnAck { session_present: false, code, properties });
        if mqtt::encode(&ack, protocol, &mut buf).is_ok() {
            let _ = self.stream.write_all(&buf).await;
            let _ = self.stream.flush().await;
        }
        let _ = self.stream.shutdown().await;
    }

    async fn handle_connect(mut self, c: Connect, peer: PeerInfo) {
        let broker = self.broker.clone();
        let limits = &broker.limits;
        let protocol = c.protocol;
        let principal = match broker.authenticator.authenticate(&peer) {
            Ok(p) => p,
            Err(AuthFailure::NotAuthorized(why)) => {
                tracing::info!(peer = %peer.addr, client_id = %c.client_id, %why, "connection refused: not authorized");
                return self.refuse(protocol, reason::NOT_AUTHORIZED, &why).await;
            }
            Err(AuthFailure::BadCredentials(why)) => {
                tracing::info!(peer = %peer.addr, client_id = %c.client_id, %why, "connection refused: bad credentials");
                return self.refuse(protocol, reason::BAD_USER_NAME_OR_PASSWORD, &why).await;
            }
        };

        if c.properties.authentication_method.is_some() {
            return self
                .refuse(
                    protocol,
                    reason::BAD_AUTHENTICATION_METHOD,
                    "enhanced authentication is not supported; use a client certificate",
                )
                .await;
        }

        // Client identifier.
        let mut assigned = None;
        let client_id: Arc<str> = if c.client_id.is_empty() {
            if protocol == Protocol::V311 && !c.clean_start {
                return self
                    .refuse(protocol, reason::CLIENT_IDENTIFIER_NOT_VALID, "empty client id needs a clean session")
                    .await;
            }
            let id = format!("tp-{}", uuid::Uuid::new_v4().simple());
            assigned = Some(id.clone());
            id.into()
        } else {
            c.client_id.as_str().into()
        };
        if client_id.len() > limits.max_client_id {
            let why = format!("client id longer than {} bytes", limits.max_client_id);
            return self.refuse(protocol, reason::CLIENT_IDENTIFIER_NOT_VALID, &why).await;
        }
        if assigned.is_none() && client_id.starts_with('$') {
            return self
                .refuse(protocol, reason::CLIENT_IDENTIFIER_NOT_VALID, "client ids starting with $ are reserved")
                .await;
        }
        if !broker.authorizer().connect(&principal, &client_id, &peer) {
            tracing::info!(peer = %peer.addr, %client_id, principal = %principal.id, "connect denied by policy");
            return self
                .refuse(protocol, reason::NOT_AUTHORIZED, "not authorized to connect with this client id")
                .await;
        }
        if let Some(w) = &c.will {
            if !mqtt::topic::valid_topic_name(&w.topic) || !limits.topic_within_limits(&w.topic) {
                return self.refuse(protocol, reason::TOPIC_NAME_INVALID, "invalid will topic").await;
            }
            if w.payload.len() > limits.max_payload {
                return self.refuse(protocol, reason::PACKET_TOO_LARGE, "will payload too large").await;
            }
        }

        // Session expiry.
        let requested_expiry = match protocol {
            Protocol::V5 => c.properties.session_expiry_interval.unwrap_or(0),
            Protocol::V311 => {
                if c.clean_start {
                    0
                } else {
                    limits.default_session_expiry
                }
            }
        };
        let expiry = requested_expiry.min(limits.max_session_expiry);
        let keep_alive = limits.clamp_keep_alive(c.keep_alive);

        let conn_id = broker.next_conn_id();
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let link = ConnLink { conn_id, control: control_tx, principal_id: principal.id.clone() };
        let (session, present) = broker.attach(&client_id, c.clean_start, expiry, link);

        let mut props = Properties::default();
        if protocol == Protocol::V5 {
            props.receive_maximum = Some(limits.receive_maximum);
            props.maximum_packet_size = Some(limits.max_packet_size() as u32);
            props.topic_alias_maximum = Some(limits.topic_alias_maximum);
            props.retain_available = Some(1);
            props.wildcard_subscription_available = Some(1);
            props.subscription_identifier_available = Some(1);
            props.shared_subscription_available = Some(1);
            props.assigned_client_identifier = assigned;
            if keep_alive != c.keep_alive {
                props.server_keep_alive = Some(keep_alive);
            }
            if expiry != requested_expiry {
                props.session_expiry_interval = Some(expiry);
            }
        }
        let mut wbuf = BytesMut::with_capacity(4096);
        let ack = Packet::ConnAck(ConnAck { session_present: present, code: reason::SUCCESS, properties: props });
        let _ = mqtt::encode(&ack, protocol, &mut wbuf);

        let ctx = Arc::new(ClientCtx { principal, client_id: client_id.clone(), source_ip: peer.addr.ip() });
        let version = conn_id;
        let session_id = uuid::Uuid::new_v4().to_string();
        tracing::info!(%client_id, principal = %ctx.principal.id, peer = %peer.addr, ?protocol, session_present = present, "client connected");
        broker.stats.connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);

        let client_max_packet = c.properties.maximum_packet_size.map(|m| m as usize).unwrap_or(usize::MAX);
        let client_receive_max = c.properties.receive_maximum.unwrap_or(u16::MAX).max(1);
        let mut live = Live {
            broker: broker.clone(),
            stream: self.stream,
            rbuf: self.rbuf,
            wbuf,
            protocol,
            ctx,
            session: session.clone(),
            conn_id,
            keep_alive: Duration::from_millis(u64::from(keep_alive) * 1500),
            client_max_packet,
            max_inflight: client_receive_max.min(limits.max_inflight).max(1) as usize,
            aliases: HashMap::new(),
            will: c.will,
            problem_info: c.properties.request_problem_information != Some(0),
            control_rx,
            rate: RateLimiter::new(limits.max_publish_rate),
            session_id: session_id.clone(),
        };

        if events::has_events(&client_id) {
            let payload = events::connected_payload(
                &client_id,
                store::now_ms(),
                &session_id,
                &live.ctx.principal.id,
                &peer.addr.ip().to_string(),
                version,
            );
            broker.publish(Message::system(&events::connected_topic(&client_id), payload, QoS::AtLeastOnce));
        }

        let end = live.run(present).await;
        let End::Reason(why) = end;
        live.finish(why, &session_id, version).await;
    }
}

/// An accepted connection.
struct Live<S> {
    broker: Arc<Broker>,
    stream: S,
    rbuf: BytesMut,
    wbuf: BytesMut,
    protocol: Protocol,
    ctx: Arc<ClientCtx>,
    session: Arc<Session>,
    conn_id: u64,
    /// 1.5 × the negotiated keep-alive.
    keep_alive: Duration,
    client_max_packet: usize,
    max_inflight: usize,
    /// Topic aliases the client set (MQTT 5).
    aliases: HashMap<u16, Arc<str>>,
    will: Option<mqtt::Will>,
    /// MQTT 5 Request Problem Information: may we send reason strings on acks?
    problem_info: bool,
    control_rx: mpsc::UnboundedReceiver<Control>,
    rate: RateLimiter,
    /// Lifecycle events' sessionIdentifier.
    session_id: String,
}

/// What handling one packet means for the connection.
enum Flow {
    Continue,
    Close(DisconnectReason),
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Live<S> {
    async fn run(&mut self, session_present: bool) -> End {
        if session_present {
            self.resend_inflight();
        }
        self.drain();
        if self.flush().await.is_err() {
            return End::Reason(DisconnectReason::ConnectionLost);
        }
        let max = self.broker.limits.max_packet_size();
        let mut deadline = Instant::now() + self.keep_alive;
        loop {
            let flow = tokio::select! {
                biased;
                ctrl = self.control_rx.recv() => match ctrl {
                    Some(Control::Kick(code)) => {
                        self.send_disconnect(code, None);
                        Flow::Close(if code == reason::SESSION_TAKEN_OVER {
                            DisconnectReason::DuplicateClientId
                        } else {
                            DisconnectReason::ServerInitiated
                        })
                    }
                    None => Flow::Continue,
                },
                r = self.stream.read_buf(&mut self.rbuf) => match r {
                    Ok(0) | Err(_) => Flow::Close(DisconnectReason::ConnectionLost),
                    Ok(_) => {
                        deadline = Instant::now() + self.keep_alive;
                        self.handle_input(max).await
                    }
                },
                _ = self.session.notify.notified() => {
                    self.drain();
                    Flow::Continue
                }
                _ = tokio::time::sleep_until(deadline) => {
                    self.send_disconnect(reason::KEEP_ALIVE_TIMEOUT, None);
                    Flow::Close(DisconnectReason::KeepAliveTimeout)
                }
            };
            let flushed = self.flush().await;
            match flow {
                Flow::Close(why) => return End::Reason(why),
                Flow::Continue if flushed.is_err() => return End::Reason(DisconnectReason::ConnectionLost),
                Flow::Continue => {}
            }
        }
    }

    async fn handle_input(&mut self, max: usize) -> Flow {
        loop {
            match mqtt::decode(&mut self.rbuf, self.protocol, max) {
                Ok(Some(p)) => {
                    if let Flow::Close(why) = self.handle(p).await {
                        return Flow::Close(why);
                    }
                }
                Ok(None) => return Flow::Continue,
                Err(e) => {
                    tracing::info!(client_id = %self.ctx.client_id, error = %e, "closing connection: bad packet");
                    self.send_disconnect(e.reason_code(), Some(e.to_string()));
                    return Flow::Close(DisconnectReason::ClientError);
                }
            }
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let r = async {
            self.stream.write_all(&self.wbuf).await?;
            self.stream.flush().await
        }
        .await;
        self.wbuf.clear();
        r
    }

    fn write(&mut self, p: &Packet) {
        if let Err(e) = mqtt::encode(p, self.protocol, &mut self.wbuf) {
            tracing::warn!(client_id = %self.ctx.client_id, error = %e, "could not encode packet");
        }
    }

    /// MQTT 5 DISCONNECT from the server (3.1.1 has none: the socket just closes).
    fn send_disconnect(&mut self, code: u8, why: Option<String>) {
        if self.protocol == Protocol::V5 {
            let properties = Properties { reason_string: why, ..Properties::default() };
            self.write(&Packet::Disconnect(Disconnect { reason: code, properties }));
        }
    }

    fn protocol_error(&mut self, code: u8, why: &str) -> Flow {
        tracing::info!(client_id = %self.ctx.client_id, code, why, "closing connection: protocol error");
        self.send_disconnect(code, Some(why.to_string()));
        Flow::Close(DisconnectReason::ClientError)
    }

    async fn handle(&mut self, p: Packet) -> Flow {
        match p {
            Packet::Publish(p) => self.on_publish(p).await,
            Packet::PubAck(r) => {
                self.complete(r.packet_id, false);
                Flow::Continue
            }
            Packet::PubRec(r) => {
                let mut persisted_release = false;
                let known = {
                    let mut st = self.session.state.lock();
                    match st.inflight.get_mut(&r.packet_id) {
                        Some(f) if r.reason >= 0x80 => {
                            let seq = f.queued.seq;
                            st.inflight.remove(&r.packet_id);
                            self.broker.ack_seq(&self.session.client_id, seq);
                            false
                        }
                        Some(f) => {
                            if !f.released {
                                f.released = true;
                                persisted_release = f.queued.seq != 0;
                                self.broker.release_seq(&self.session.client_id, f.queued.seq, r.packet_id);
                            }
                            true
                        }
                        None => true,
                    }
                };
                if known {
                    // After PUBREL the message must never be sent again, even
                    // after a crash: the release is durable before PUBREL goes out.
                    if persisted_release {
                        if let Err(e) = self.broker.sync().await {
                            tracing::error!(error = %e, "could not persist a QoS 2 release");
                        }
                    }
                    let code = if self.session.state.lock().inflight.contains_key(&r.packet_id) {
                        reason::SUCCESS
                    } else {
                        reason::PACKET_IDENTIFIER_NOT_FOUND
                    };
                    self.write(&Packet::PubRel(PubResp::with_reason(r.packet_id, code)));
                } else {
                    self.drain();
                }
                Flow::Continue
            }
            Packet::PubComp(r) => {
                self.complete(r.packet_id, true);
                Flow::Continue
            }
            Packet::PubRel(r) => {
                let found = self.session.state.lock().incoming_qos2.remove(&r.packet_id);
                let code = if found { reason::SUCCESS } else { reason::PACKET_IDENTIFIER_NOT_FOUND };
                self.write(&Packet::PubComp(PubResp::with_reason(r.packet_id, code)));
                Flow::Continue
            }
            Packet::Subscribe(s) => self.on_subscribe(s),
            Packet::Unsubscribe(u) => {
                let mut reasons = Vec::with_capacity(u.filters.len());
                for f in &u.filters {
                    let existed = self.broker.unsubscribe(&self.session, f);
                    reasons.push(if existed { reason::SUCCESS } else { reason::NO_SUBSCRIPTION_EXISTED });
                }
                self.subscription_event("unsubscribed", u.filters.clone());
                self.write(&Packet::UnsubAck(mqtt::UnsubAck {
                    packet_id: u.packet_id,
                    reasons,
                    properties: Properties::default(),
                }));
                Flow::Continue
            }
            Packet::PingReq => {
                self.write(&Packet::PingResp);
                Flow::Continue
            }
            Packet::Disconnect(d) => {
                if self.protocol == Protocol::V5 {
                    if let Some(exp) = d.properties.session_expiry_interval {
                        let mut st = self.session.state.lock();
                        if st.expiry_interval == 0 && exp != 0 {
                            drop(st);
                            return self.protocol_error(
                                reason::PROTOCOL_ERROR,
                                "session expiry cannot be set on DISCONNECT after 0",
                            );
                        }
                        st.expiry_interval = exp.min(self.broker.limits.max_session_expiry);
                    }
                }
                if !(self.protocol == Protocol::V5 && d.reason == reason::DISCONNECT_WITH_WILL) {
                    self.will = None;
                }
                Flow::Close(DisconnectReason::ClientInitiated)
            }
            Packet::Auth(_) => {
                self.protocol_error(reason::BAD_AUTHENTICATION_METHOD, "enhanced authentication is not supported")
            }
            Packet::Connect(_) => self.protocol_error(reason::PROTOCOL_ERROR, "second CONNECT"),
            _ => self.protocol_error(reason::PROTOCOL_ERROR, "packet type not allowed from a client"),
        }
    }

    /// A QoS 1 PUBACK or QoS 2 PUBCOMP arrived for `pid`.
    fn complete(&mut self, pid: u16, qos2: bool) {
        let mut st = self.session.state.lock();
        let matches = st.inflight.get(&pid).is_some_and(|f| (f.queued.qos == QoS::ExactlyOnce) == qos2);
        if matches {
            if let Some(f) = st.inflight.remove(&pid) {
                self.broker.ack_seq(&self.session.client_id, f.queued.seq);
            }
        }
        drop(st);
        self.drain();
    }

    /// Reject a publish: v5 QoS>0 gets an ack with `code`; v5 QoS 0 is
    /// dropped; 3.1.1 has no way to say no, so the connection closes.
    fn reject_publish(&mut self, p: &Publish, code: u8, why: &str) -> Flow {
        tracing::info!(client_id = %self.ctx.client_id, topic = %p.topic, code, why, "publish refused");
        match (self.protocol, p.qos) {
            (Protocol::V5, QoS::AtMostOnce) => Flow::Continue,
            (Protocol::V5, qos) => {
                let mut r = PubResp::with_reason(p.packet_id, code);
                if self.problem_info {
                    r.properties.reason_string = Some(why.to_string());
                }
                self.write(&if qos == QoS::AtLeastOnce { Packet::PubAck(r) } else { Packet::PubRec(r) });
                Flow::Continue
            }
            (Protocol::V311, _) => Flow::Close(DisconnectReason::ForbiddenAccess),
        }
    }

    async fn on_publish(&mut self, mut p: Publish) -> Flow {
        let limits = &self.broker.limits;
        // Topic alias (MQTT 5).
        let topic: Arc<str> = match p.properties.topic_alias.take() {
            Some(alias) => {
                if alias == 0 || alias > limits.topic_alias_maximum {
                    return self.protocol_error(reason::TOPIC_ALIAS_INVALID, "topic alias out of range");
                }
                if p.topic.is_empty() {
                    match self.aliases.get(&alias) {
                        Some(t) => t.clone(),
                        None => return self.protocol_error(reason::PROTOCOL_ERROR, "unknown topic alias"),
                    }
                } else {
                    let t: Arc<str> = p.topic.as_str().into();
                    self.aliases.insert(alias, t.clone());
                    t
                }
            }
            None if p.topic.is_empty() => return self.protocol_error(reason::PROTOCOL_ERROR, "empty topic"),
            None => p.topic.as_str().into(),
        };
        if !mqtt::topic::valid_topic_name(&topic) {
            return self.protocol_error(reason::TOPIC_NAME_INVALID, "topic name contains wildcards");
        }
        if p.payload.len() > limits.max_payload {
            let why = format!("payload of {} bytes exceeds the limit of {}", p.payload.len(), limits.max_payload);
            self.send_disconnect(reason::PACKET_TOO_LARGE, Some(why));
            return Flow::Close(DisconnectReason::ClientError);
        }
        if p.qos == QoS::ExactlyOnce {
            let st = self.session.state.lock();
            if st.incoming_qos2.contains(&p.packet_id) {
                drop(st);
                self.write(&Packet::PubRec(PubResp::new(p.packet_id)));
                return Flow::Continue;
            }
            if st.incoming_qos2.len() >= usize::from(limits.receive_maximum) {
                drop(st);
                return self.protocol_error(reason::RECEIVE_MAXIMUM_EXCEEDED, "too many QoS 2 publishes in flight");
            }
        }
        if !limits.topic_within_limits(&topic) {
            let why = format!("topic exceeds {} bytes or {} slashes", limits.max_topic_bytes, limits.max_topic_slashes);
            return self.reject_publish(&p, reason::TOPIC_NAME_INVALID, &why);
        }
        if p.properties.payload_format_indicator == Some(1) && std::str::from_utf8(&p.payload).is_err() {
            return self.reject_publish(&p, reason::PAYLOAD_FORMAT_INVALID, "payload is not UTF-8");
        }
        if !self.rate.allow() {
            return self.reject_publish(&p, reason::QUOTA_EXCEEDED, "publish rate limit exceeded");
        }
        if !crate::reserved::may_publish(&topic) {
            return self.reject_publish(&p, reason::NOT_AUTHORIZED, "reserved topic: clients may not publish here");
        }
        if p.retain && topic.starts_with('$') {
            return self.reject_publish(
                &p,
                reason::NOT_AUTHORIZED,
                "retained messages are not allowed on reserved topics",
            );
        }
        let authz = self.broker.authorizer();
        if !authz.publish(&self.ctx, &topic) {
            return self.reject_publish(&p, reason::NOT_AUTHORIZED, "not authorized to publish to this topic");
        }
        if p.retain && !authz.retain(&self.ctx, &topic) {
            return self.reject_publish(&p, reason::NOT_AUTHORIZED, "not authorized to retain on this topic");
        }
        drop(authz);
        let mut msg = Message::from_publish(&p, topic, Some(self.ctx.client_id.clone()), store::now_ms());
        msg.principal = Some(self.ctx.principal.id.clone());
        msg.origin = Some(crate::message::Origin(self.ctx.clone()));
        let routed = self.broker.publish(msg);
        if routed.congested {
            // A subscriber is falling behind: slow this publisher down (TCP
            // backpressure) rather than let queues overflow and drop messages.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if routed.needs_sync && p.qos > QoS::AtMostOnce {
            if let Err(e) = self.broker.sync().await {
                tracing::error!(error = %e, "could not persist message");
                return self.reject_publish(&p, reason::UNSPECIFIED_ERROR, "the server could not store the message");
            }
        }
        match p.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.write(&Packet::PubAck(PubResp::new(p.packet_id))),
            QoS::ExactlyOnce => {
                self.session.state.lock().incoming_qos2.insert(p.packet_id);
                self.write(&Packet::PubRec(PubResp::new(p.packet_id)));
            }
        }
        Flow::Continue
    }

    fn on_subscribe(&mut self, s: mqtt::Subscribe) -> Flow {
        let limits = &self.broker.limits;
        let sub_id = s.properties.subscription_identifiers.first().copied();
        let mut reasons = Vec::with_capacity(s.filters.len());
        let mut granted = Vec::new();
        let authz = self.broker.authorizer();
        for (i, (filter, opts)) in s.filters.iter().enumerate() {
            let shared = mqtt::topic::parse_shared(filter);
            let inner = shared.map(|(_, f)| f).unwrap_or(filter);
            let invalid = !mqtt::topic::valid_topic_filter(filter)
                || !limits.topic_within_limits(inner)
                || (shared.is_some() && opts.no_local);
            let code = if invalid {
                reason::TOPIC_FILTER_INVALID
            } else if i >= limits.max_filters_per_subscribe {
                reason::QUOTA_EXCEEDED
            } else if !crate::reserved::may_subscribe(filter) || !authz.subscribe(&self.ctx, filter) {
                reason::NOT_AUTHORIZED
            } else {
                let st = self.session.state.lock();
                let full = st.subscriptions.len() >= limits.max_subscriptions && !st.subscriptions.contains_key(filter);
                drop(st);
                if full {
                    reason::QUOTA_EXCEEDED
                } else {
                    let entry = SubEntry { options: *opts, subscription_id: sub_id };
                    let new = self.broker.subscribe(&self.session, filter, entry);
                    let send_retained = shared.is_none()
                        && match opts.retain_handling {
                            0 => true,
                            1 => new,
                            _ => false,
                        };
                    if send_retained {
                        granted.push((filter.clone(), entry));
                    }
                    opts.qos as u8
                }
            };
            if code >= 0x80 {
                tracing::info!(client_id = %self.ctx.client_id, %filter, code, "subscription refused");
            }
            reasons.push(code);
        }
        drop(authz);
        let reasons_sent = reasons.clone();
        self.write(&Packet::SubAck(SubAck { packet_id: s.packet_id, reasons, properties: Properties::default() }));
        let subscribed: Vec<String> = s
            .filters
            .iter()
            .zip(&reasons_sent)
            .filter(|(_, code)| **code < 0x80)
            .map(|((f, _), _)| f.clone())
            .collect();
        self.subscription_event("subscribed", subscribed);
        for (filter, entry) in granted {
            self.broker.deliver_retained(&self.session, &filter, entry);
        }
        self.drain();
        Flow::Continue
    }

    /// `$aws/events/subscriptions/subscribed|unsubscribed/{clientId}`.
    fn subscription_event(&self, kind: &str, topics: Vec<String>) {
        if topics.is_empty() || !events::has_events(&self.ctx.client_id) {
            return;
        }
        let payload = serde_json::json!({
            "clientId": &*self.ctx.client_id,
            "timestamp": store::now_ms(),
            "eventType": kind,
            "sessionIdentifier": self.session_id,
            "principalIdentifier": &*self.ctx.principal.id,
            "topics": topics,
        });
        let topic = format!("$aws/events/subscriptions/{kind}/{}", self.ctx.client_id);
        self.broker.publish(Message::system(&topic, payload.to_string(), QoS::AtLeastOnce));
    }

    /// After a reconnect: send again what was in flight (MQTT 4.4).
    fn resend_inflight(&mut self) {
        let st = self.session.state.lock();
        let mut packets = Vec::new();
        for (pid, f) in &st.inflight {
            if f.released {
                packets.push(Packet::PubRel(PubResp::new(*pid)));
            } else if let Some(p) = self.build_publish(&f.queued, *pid, true) {
                packets.push(Packet::Publish(p));
            }
        }
        drop(st);
        for p in &packets {
            self.write(p);
        }
    }

    fn build_publish(&self, q: &crate::session::Queued, pid: u16, dup: bool) -> Option<Publish> {
        let mut properties = q.msg.properties.clone();
        if self.protocol == Protocol::V5 {
            properties.subscription_identifiers = q.subscription_ids.clone();
            if let Some(exp) = q.msg.expires_at_ms {
                let left = exp.saturating_sub(store::now_ms()).div_ceil(1000);
                properties.message_expiry_interval = Some(left.min(u64::from(u32::MAX)) as u32);
            }
        }
        Some(Publish {
            dup: dup || q.dup,
            qos: q.qos,
            retain: q.retain,
            topic: q.msg.topic.to_string(),
            packet_id: pid,
            payload: q.msg.payload.clone(),
            properties,
        })
    }

    /// Write queued messages while the in-flight window allows.
    fn drain(&mut self) {
        /// Messages taken from the queue per lock acquisition: publishers
        /// queueing for this session wait at most this long for the lock.
        const BATCH: usize = 256;
        let now = store::now_ms();
        let authz = self.broker.authorizer();
        let mut sent = 0u64;
        loop {
            // Under the lock: take a batch, give QoS 1/2 ones packet ids and
            // put them in flight. Policy checks and encoding happen outside.
            let batch: Vec<(u16, crate::session::Queued)> = {
                let mut st = self.session.state.lock();
                let mut batch = Vec::with_capacity(BATCH.min(st.queue.len()));
                while batch.len() < BATCH {
                    let Some(front) = st.queue.front() else { break };
                    if front.qos > QoS::AtMostOnce && st.inflight.len() >= self.max_inflight {
                        break;
                    }
                    let Some(q) = st.queue.pop_front() else { break };
                    let pid = if q.qos > QoS::AtMostOnce {
                        let pid = st.alloc_packet_id();
                        st.inflight.insert(pid, Inflight { queued: q.clone(), released: false });
                        pid
                    } else {
                        0
                    };
                    batch.push((pid, q));
                }
                batch
            };
            let full = batch.len() == BATCH;
            for (pid, q) in batch {
                let refused = q.msg.is_expired(now) || !authz.receive(&self.ctx, &q.msg.topic);
                let encoded = !refused && self.encode_delivery(&q, pid);
                if encoded {
                    sent += 1;
                } else {
                    // Not delivered (expired, refused by policy, too large for
                    // the client): forget it as if it had been acknowledged.
                    if pid != 0 {
                        self.session.state.lock().inflight.remove(&pid);
                    }
                    self.broker.ack_seq(&self.session.client_id, q.seq);
                }
            }
            if !full {
                break;
            }
        }
        if sent > 0 {
            self.broker.stats.messages_out.fetch_add(sent, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Encode one delivery into the write buffer; false if it cannot be sent.
    fn encode_delivery(&mut self, q: &crate::session::Queued, pid: u16) -> bool {
        let Some(p) = self.build_publish(q, pid, false) else { return false };
        let packet = Packet::Publish(p);
        if mqtt::encoded_len(&packet, self.protocol) > self.client_max_packet {
            // MQTT-3.1.2-25: too large for the client; discard as if delivered.
            return false;
        }
        if let Err(e) = mqtt::encode(&packet, self.protocol, &mut self.wbuf) {
            tracing::warn!(error = %e, "could not encode a delivery");
            return false;
        }
        true
    }

    async fn finish(mut self, why: DisconnectReason, session_id: &str, version: u64) {
        let _ = self.flush().await;
        let _ = self.stream.shutdown().await;
        let client_id = self.ctx.client_id.clone();
        tracing::info!(%client_id, reason = why.as_str(), "client disconnected");
        self.broker.detach(&self.session, self.conn_id);
        if let Some(will) = self.will.take() {
            self.publish_will(will);
        }
        if events::has_events(&client_id) {
            let payload = events::disconnected_payload(
                &client_id,
                store::now_ms(),
                session_id,
                &self.ctx.principal.id,
                why,
                version,
            );
            self.broker.publish(Message::system(&events::disconnected_topic(&client_id), payload, QoS::AtLeastOnce));
        }
    }

    fn publish_will(&self, will: mqtt::Will) {
        let broker = self.broker.clone();
        let ctx = self.ctx.clone();
        let session = self.session.clone();
        let delay = {
            let st = session.state.lock();
            will.properties.will_delay_interval.unwrap_or(0).min(st.expiry_interval)
        };
        let generation = session.state.lock().generation;
        let send = move || {
            let authz = broker.authorizer();
            if !authz.publish(&ctx, &will.topic) || (will.retain && !authz.retain(&ctx, &will.topic)) {
                tracing::info!(client_id = %ctx.client_id, topic = %will.topic, "will not published: not authorized");
                return;
            }
            drop(authz);
            let p = Publish {
                dup: false,
                qos: will.qos,
                retain: will.retain,
                topic: will.topic.clone(),
                packet_id: 0,
                payload: will.payload.clone(),
                properties: will.properties.clone(),
            };
            let msg =
                Message::from_publish(&p, will.topic.as_str().into(), Some(ctx.client_id.clone()), store::now_ms());
            broker.publish(msg);
        };
        if delay == 0 {
            send();
        } else {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(u64::from(delay))).await;
                let st = session.state.lock();
                let reconnected = st.conn.is_some() || st.generation != generation;
                drop(st);
                if !reconnected {
                    send();
                }
            });
        }
    }
}

/// Token bucket for the optional per-connection publish rate.
struct RateLimiter {
    rate: Option<f64>,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    fn new(rate: Option<u32>) -> Self {
        let rate = rate.map(f64::from);
        RateLimiter { rate, tokens: rate.unwrap_or(0.0), last: Instant::now() }
    }

    fn allow(&mut self) -> bool {
        let Some(rate) = self.rate else { return true };
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * rate).min(rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
