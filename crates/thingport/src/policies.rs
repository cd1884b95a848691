//! Authorization: AWS IoT policies stored with versions and attachments, and
//! the broker's [`broker::Authorizer`] that evaluates them.
//!
//! Every decision — connect, publish, subscribe, receive, retained publish,
//! HTTPS publish — goes through [`PolicyAuthorizer`]. Deny by default;
//! explicit Deny beats Allow. Policies are compiled once per connection (with
//! that connection's variables substituted) and recompiled lazily after any
//! change to policies, attachments or the registry, so a change applies to
//! the next operation of every connected device without reconnecting.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use axum::http::StatusCode;
use parking_lot::RwLock;
use policy::{CompiledPolicies, Decision, PolicyDocument, VarValue};
use store::registry::GroupStore;
use store::{PolicyRecord, PolicyStore, RegistryStore};

use crate::api::error::ApiError;

/// Most versions a policy keeps (AWS: 5).
pub const MAX_VERSIONS: usize = 5;
/// Most policies attached to one target (AWS: 10 per certificate).
pub const MAX_POLICIES_PER_TARGET: usize = 10;

/// A name for the least-privilege policy `thingport provision` attaches.
pub const DEFAULT_DEVICE_POLICY: &str = "ThingportDefaultDevicePolicy";

/// The default fleet policy: a device may connect with its thing name (or
/// `NAME-suffix`), publish, receive and subscribe under its own `NAME/…`
/// topics and its own shadow topics, and use its own shadow.
pub fn default_device_policy(region: &str, account: &str) -> String {
    let arn = format!("arn:aws:iot:{region}:{account}");
    let t = "${iot:Connection.Thing.ThingName}";
    serde_json::to_string_pretty(&serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            { "Effect": "Allow", "Action": "iot:Connect",
              "Resource": [format!("{arn}:client/{t}"), format!("{arn}:client/{t}-*")] },
            { "Effect": "Allow", "Action": ["iot:Publish", "iot:Receive", "iot:RetainPublish"],
              "Resource": [format!("{arn}:topic/{t}/*"), format!("{arn}:topic/$aws/things/{t}/shadow/*")] },
            { "Effect": "Allow", "Action": "iot:Subscribe",
              "Resource": [format!("{arn}:topicfilter/{t}/*"), format!("{arn}:topicfilter/$aws/things/{t}/shadow/*")] },
            { "Effect": "Allow",
              "Action": ["iot:GetThingShadow", "iot:UpdateThingShadow", "iot:DeleteThingShadow", "iot:ListNamedShadowsForThing"],
              "Resource": [format!("{arn}:thing/{t}"), format!("{arn}:thing/{t}/*")] }
        ]
    }))
    .unwrap_or_default()
}

/// Per-connection authorization state, carried in `Principal::ext`.
pub struct ConnAuth {
    pub cert_id: String,
    pub cert: Option<Arc<pki::CertificateInfo>>,
    /// (generation, client id, compiled policies) of the last compile.
    compiled: ArcSwapOption<(u64, Arc<str>, Arc<CompiledPolicies>)>,
}

impl ConnAuth {
    pub fn new(cert_id: String, cert: Option<Arc<pki::CertificateInfo>>) -> Arc<ConnAuth> {
        Arc::new(ConnAuth { cert_id, cert, compiled: ArcSwapOption::empty() })
    }
}

/// Policy storage and evaluation.
pub struct Policies {
    store: Arc<dyn PolicyStore>,
    groups: Arc<dyn GroupStore>,
    registry: Arc<dyn RegistryStore>,
    pub region: String,
    pub account_id: String,
    /// Bumped on every change that can alter a decision.
    generation: AtomicU64,
    /// Parsed documents by (policy, version).
    parsed: RwLock<HashMap<(String, String), Arc<PolicyDocument>>>,
}

fn parse_options() -> policy::ParseOptions {
    policy::ParseOptions::default()
}

fn malformed(e: policy::PolicyError) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "MalformedPolicyException", format!("invalid policy document: {e}"))
}

fn valid_policy_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 128 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@-_".contains(&b))
}

impl Policies {
    pub fn new(
        store: Arc<dyn PolicyStore>,
        groups: Arc<dyn GroupStore>,
        registry: Arc<dyn RegistryStore>,
        region: String,
        account_id: String,
    ) -> Arc<Policies> {
        Arc::new(Policies {
            store,
            groups,
            registry,
            region,
            account_id,
            generation: AtomicU64::new(1),
            parsed: RwLock::new(HashMap::new()),
        })
    }

    /// Something changed: every connection recompiles before its next decision.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::Release);
    }

    pub fn policy_arn(&self, name: &str) -> String {
        format!("arn:aws:iot:{}:{}:policy/{}", self.region, self.account_id, name)
    }

    /// Normalise a target: a certificate ARN or id → `cert/ID`; a thing-group
    /// ARN → `thinggroup/NAME`; anything else is kept (e.g. the plain-TCP principal).
    pub fn target_key(&self, target: &str) -> Result<String, ApiError> {
        if let Some((_, id)) = target.rsplit_once(":cert/") {
            return Ok(format!("cert/{}", id.to_ascii_lowercase()));
        }
        if let Some((_, g)) = target.rsplit_once(":thinggroup/") {
            return Ok(format!("thinggroup/{g}"));
        }
        if target.len() == 64 && target.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(format!("cert/{}", target.to_ascii_lowercase()));
        }
        if target.is_empty() {
            return Err(ApiError::invalid("target is required"));
        }
        Ok(target.to_string())
    }

    /// The ARN form of a stored target key.
    pub fn target_arn(&self, key: &str) -> String {
        match key.split_once('/') {
            Some(("cert" | "thinggroup", _)) => format!("arn:aws:iot:{}:{}:{}", self.region, self.account_id, key),
            _ => key.to_string(),
        }
    }

    fn check_target_exists(&self, key: &str) -> Result<(), ApiError> {
        if let Some(id) = key.strip_prefix("cert/") {
            if self.registry.get_certificate(id)?.is_none() {
                return Err(ApiError::not_found(format!("certificate {id} does not exist")));
            }
        } else if let Some(g) = key.strip_prefix("thinggroup/") {
            if self.groups.get_thing_group(g)?.is_none() {
                return Err(ApiError::not_found(format!("thing group {g} does not exist")));
            }
        }
        Ok(())
    }

    fn document(&self, name: &str, version: &str, text: &str) -> Result<Arc<PolicyDocument>, ApiError> {
        let key = (name.to_string(), version.to_string());
        if let Some(d) = self.parsed.read().get(&key) {
            return Ok(d.clone());
        }
        let d = Arc::new(PolicyDocument::parse(text, &parse_options()).map_err(malformed)?);
        self.parsed.write().insert(key, d.clone());
        Ok(d)
    }

    pub fn create(&self, name: &str, document: &str) -> Result<PolicyRecord, ApiError> {
        if !valid_policy_name(name) {
            return Err(ApiError::invalid(format!(
                "policy name {name:?} must be 1-128 characters of [a-zA-Z0-9+=,.@-_]"
            )));
        }
        PolicyDocument::parse(document, &parse_options()).map_err(malformed)?;
        let rec = self.store.create_policy(name, document, store::now_ms()).map_err(|e| match e {
            store::StoreError::AlreadyExists(_) => ApiError::conflict(format!("policy {name} already exists")),
            other => other.into(),
        })?;
        self.invalidate();
        Ok(rec)
    }

    pub fn get(&self, name: &str) -> Result<PolicyRecord, ApiError> {
        self.store.get_policy(name)?.ok_or_else(|| ApiError::not_found(format!("policy {name} does not exist")))
    }

    pub fn list(&self) -> Result<Vec<PolicyRecord>, ApiError> {
        Ok(self.store.list_policies()?)
    }

    /// AWS DeletePolicy: refused while attached or while it has non-default versions.
    pub fn delete(&self, name: &str) -> Result<(), ApiError> {
        let p = self.get(name)?;
        if !self.store.policy_targets(name)?.is_empty() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "DeleteConflictException",
                format!("policy {name} is attached; detach it first"),
            ));
        }
        if p.versions.len() > 1 {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "DeleteConflictException",
                format!("policy {name} has non-default versions; delete them first"),
            ));
        }
        self.store.delete_policy(name)?;
        self.parsed.write().retain(|(n, _), _| n != name);
        self.invalidate();
        Ok(())
    }

    pub fn create_version(&self, name: &str, document: &str, set_default: bool) -> Result<String, ApiError> {
        let p = self.get(name)?;
        if p.versions.len() >= MAX_VERSIONS {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "VersionsLimitExceededException",
                format!("policy {name} already has {MAX_VERSIONS} versions; delete one first"),
            ));
        }
        PolicyDocument::parse(document, &parse_options()).map_err(malformed)?;
        let id = self.store.create_policy_version(name, document, set_default, store::now_ms())?;
        self.invalidate();
        Ok(id)
    }

    pub fn set_default_version(&self, name: &str, version: &str) -> Result<(), ApiError> {
        self.get(name)?;
        self.store.set_default_policy_version(name, version, store::now_ms())?;
        self.invalidate();
        Ok(())
    }

    pub fn delete_version(&self, name: &str, version: &str) -> Result<(), ApiError> {
        let p = self.get(name)?;
        if p.default_version == version {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "DeleteConflictException",
                "the default version cannot be deleted; set another version as default first",
            ));
        }
        self.store.delete_policy_version(name, version)?;
        self.parsed.write().remove(&(name.to_string(), version.to_string()));
        self.invalidate();
        Ok(())
    }

    pub fn attach(&self, name: &str, target: &str) -> Result<(), ApiError> {
        self.get(name)?;
        let key = self.target_key(target)?;
        self.check_target_exists(&key)?;
        let attached = self.store.target_policies(&key)?;
        if !attached.iter().any(|p| p == name) && attached.len() >= MAX_POLICIES_PER_TARGET {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "LimitExceededException",
                format!("{target} already has {MAX_POLICIES_PER_TARGET} policies attached"),
            ));
        }
        self.store.attach_policy(name, &key)?;
        self.invalidate();
        Ok(())
    }

    pub fn detach(&self, name: &str, target: &str) -> Result<(), ApiError> {
        self.get(name)?;
        let key = self.target_key(target)?;
        self.store.detach_policy(name, &key)?;
        self.invalidate();
        Ok(())
    }

    /// The target was deleted: drop its attachments.
    pub fn forget_target(&self, target: &str) -> Result<(), ApiError> {
        let key = self.target_key(target)?;
        self.store.forget_target(&key)?;
        self.invalidate();
        Ok(())
    }

    pub fn targets(&self, name: &str) -> Result<Vec<String>, ApiError> {
        self.get(name)?;
        Ok(self.store.policy_targets(name)?.iter().map(|k| self.target_arn(k)).collect())
    }

    /// Policies attached directly to `target`, and with `recursive` for a
    /// thing group, those of its ancestors.
    pub fn attached(&self, target: &str, recursive: bool) -> Result<Vec<String>, ApiError> {
        let key = self.target_key(target)?;
        let mut names = self.store.target_policies(&key)?;
        if recursive {
            if let Some(g) = key.strip_prefix("thinggroup/") {
                for ancestor in self.ancestors(g)?.into_iter().skip(1) {
                    names.extend(self.store.target_policies(&format!("thinggroup/{ancestor}"))?);
                }
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// `group` and its ancestors, nearest first.
    fn ancestors(&self, group: &str) -> Result<Vec<String>, ApiError> {
        let mut out = vec![group.to_string()];
        let mut cur = self.groups.get_thing_group(group)?.and_then(|g| g.parent);
        while let Some(p) = cur {
            if out.contains(&p) || out.len() > 16 {
                break;
            }
            out.push(p.clone());
            cur = self.groups.get_thing_group(&p)?.and_then(|g| g.parent);
        }
        Ok(out)
    }

    /// Which thing a connection acts as: the exclusively attached thing, or
    /// else the thing named by the client id if it is attached (AWS rule).
    pub fn thing_for(&self, cert_id: &str, client_id: &str) -> Result<(Option<store::ThingRecord>, bool), ApiError> {
        let attachments = self.registry.principal_attachments(cert_id)?;
        let name = attachments
            .iter()
            .find(|(_, exclusive)| *exclusive)
            .map(|(t, _)| t.clone())
            .or_else(|| attachments.iter().find(|(t, _)| t == client_id).map(|(t, _)| t.clone()));
        match name {
            Some(n) => Ok((self.registry.get_thing(&n)?, true)),
            None => Ok((None, false)),
        }
    }

    /// The (name, version, document) of every policy in force for a principal
    /// connecting as `client_id`: those attached to its certificate and to the
    /// thing groups (with ancestors) of its thing.
    pub fn effective(
        &self,
        principal_key: &str,
        thing: Option<&store::ThingRecord>,
    ) -> Result<Vec<(String, String, Arc<PolicyDocument>)>, ApiError> {
        let mut names = self.store.target_policies(principal_key)?;
        if let Some(t) = thing {
            for m in self.groups.thing_memberships(&t.name)? {
                for g in self.ancestors(&m.group)? {
                    names.extend(self.store.target_policies(&format!("thinggroup/{g}"))?);
                }
            }
        }
        names.sort();
        names.dedup();
        let mut out = Vec::new();
        for n in names {
            let Some(p) = self.store.get_policy(&n)? else { continue };
            let Some(v) = p.default_document() else { continue };
            out.push((n.clone(), v.version_id.clone(), self.document(&n, &v.version_id, &v.document)?));
        }
        Ok(out)
    }

    /// Compile the policies in force for one connection.
    pub fn compile(
        &self,
        auth: Option<&ConnAuth>,
        principal_id: &str,
        client_id: &str,
        source_ip: &str,
    ) -> CompiledPolicies {
        let result = (|| -> Result<CompiledPolicies, ApiError> {
            let (key, cert_id) = match auth {
                Some(a) => (format!("cert/{}", a.cert_id), Some(a.cert_id.as_str())),
                None => (principal_id.to_string(), None),
            };
            let (thing, attached) = match cert_id {
                Some(id) => self.thing_for(id, client_id)?,
                None => (None, false),
            };
            let vars = ConnVars {
                client_id,
                source_ip,
                thing: thing.as_ref(),
                attached,
                cert: auth.and_then(|a| a.cert.as_deref()),
                cert_id,
            }
            .collect();
            let docs = self.effective(&key, thing.as_ref())?;
            let refs: Vec<(String, String, &PolicyDocument)> =
                docs.iter().map(|(n, v, d)| (n.clone(), v.clone(), d.as_ref())).collect();
            Ok(CompiledPolicies::compile(&refs, &vars))
        })();
        result.unwrap_or_else(|e| {
            tracing::error!(error = %e.message, "could not load policies; denying");
            CompiledPolicies::compile(&[], &HashMap::<String, VarValue>::new())
        })
    }

    /// The variables of a connection (or of a TestAuthorization request).
    pub fn variables(
        &self,
        auth: Option<&ConnAuth>,
        client_id: &str,
        source_ip: &str,
        thing: Option<&store::ThingRecord>,
    ) -> HashMap<String, VarValue> {
        ConnVars {
            client_id,
            source_ip,
            thing,
            attached: thing.is_some(),
            cert: auth.and_then(|a| a.cert.as_deref()),
            cert_id: auth.map(|a| a.cert_id.as_str()),
        }
        .collect()
    }

    pub fn resource(&self, kind: &str, name: &str) -> String {
        format!("arn:aws:iot:{}:{}:{kind}/{name}", self.region, self.account_id)
    }
}

/// The policy variables of one connection.
struct ConnVars<'a> {
    client_id: &'a str,
    source_ip: &'a str,
    thing: Option<&'a store::ThingRecord>,
    attached: bool,
    cert: Option<&'a pki::CertificateInfo>,
    cert_id: Option<&'a str>,
}

impl ConnVars<'_> {
    fn collect(&self) -> HashMap<String, VarValue> {
        let mut m = HashMap::new();
        let one = |s: &str| VarValue::One(s.to_string());
        m.insert("iot:ClientId".into(), one(self.client_id));
        m.insert("aws:SourceIp".into(), one(self.source_ip));
        m.insert("iot:Connection.Thing.IsAttached".into(), one(if self.attached { "true" } else { "false" }));
        if let Some(t) = self.thing {
            m.insert("iot:Connection.Thing.ThingName".into(), one(&t.name));
            if let Some(tt) = &t.type_name {
                m.insert("iot:Connection.Thing.ThingTypeName".into(), one(tt));
            }
            for (k, v) in &t.attributes {
                m.insert(format!("iot:Connection.Thing.Attributes[{k}]"), one(v));
            }
        }
        if let Some(id) = self.cert_id {
            m.insert("iot:Certificate.Id".into(), one(id));
        }
        if let Some(c) = self.cert {
            m.insert("iot:Certificate.SerialNumber".into(), one(&c.serial_number));
            for (prefix, dn) in [("iot:Certificate.Subject", &c.subject), ("iot:Certificate.Issuer", &c.issuer)] {
                let fields = [
                    ("Country", &dn.country),
                    ("Organization", &dn.organization),
                    ("OrganizationalUnit", &dn.organizational_unit),
                    ("DistinguishedNameQualifier", &dn.dn_qualifier),
                    ("State", &dn.state),
                    ("CommonName", &dn.common_name),
                    ("SerialNumber", &dn.serial_number),
                    ("Title", &dn.title),
                    ("Surname", &dn.surname),
                    ("GivenName", &dn.given_name),
                    ("Initials", &dn.initials),
                    ("Pseudonym", &dn.pseudonym),
                    ("GenerationQualifier", &dn.generation_qualifier),
                ];
                for (name, value) in fields {
                    if let Some(v) = value {
                        m.insert(format!("{prefix}.{name}"), one(v));
                    }
                }
            }
            let sans = [
                ("DNSName", &c.san_dns),
                ("IPAddress", &c.san_ip),
                ("UniformResourceIdentifier", &c.san_uri),
                ("RFC822Name", &c.san_email),
            ];
            for (name, values) in sans {
                if let Some(first) = values.first() {
                    m.insert(format!("iot:Certificate.Subject.AlternativeName.{name}"), one(first));
                    m.insert(
                        format!("iot:Certificate.Subject.AlternativeName.{name}.List"),
                        VarValue::Many(values.clone()),
                    );
                }
            }
        }
        m
    }
}

/// The broker's authorizer: every decision is a policy evaluation.
pub struct PolicyAuthorizer {
    pub policies: Arc<Policies>,
}

impl PolicyAuthorizer {
    fn compiled(&self, ctx: &broker::ClientCtx) -> Arc<CompiledPolicies> {
        let auth = ctx.principal.ext.as_ref().and_then(|e| e.clone().downcast::<ConnAuth>().ok());
        let generation = self.policies.generation.load(Ordering::Acquire);
        if let Some(a) = &auth {
            if let Some(c) = a.compiled.load().as_ref() {
                if c.0 == generation && c.1 == ctx.client_id {
                    return c.2.clone();
                }
            }
        }
        let compiled = Arc::new(self.policies.compile(
            auth.as_deref(),
            &ctx.principal.id,
            &ctx.client_id,
            &ctx.source_ip.to_string(),
        ));
        if let Some(a) = &auth {
            a.compiled.store(Some(Arc::new((generation, ctx.client_id.clone(), compiled.clone()))));
        }
        compiled
    }

    pub fn decide(&self, ctx: &broker::ClientCtx, action: &str, kind: &str, name: &str) -> bool {
        self.decide_arn(ctx, action, &self.policies.resource(kind, name))
    }

    /// Decide an action on any resource ARN (`arn:aws:s3:::bucket/key`, key ARNs, …).
    pub fn decide_arn(&self, ctx: &broker::ClientCtx, action: &str, resource: &str) -> bool {
        let decision = self.compiled(ctx).evaluate(action, resource, &policy::NoRequestContext);
        if decision != Decision::Allowed {
            tracing::debug!(client_id = %ctx.client_id, action, resource, ?decision, "denied by policy");
        }
        decision == Decision::Allowed
    }
}

impl broker::Authorizer for PolicyAuthorizer {
    fn connect(&self, principal: &broker::Principal, client_id: &str, peer: &broker::PeerInfo) -> bool {
        let ctx =
            broker::ClientCtx { principal: principal.clone(), client_id: client_id.into(), source_ip: peer.addr.ip() };
        self.decide(&ctx, "iot:Connect", "client", client_id)
    }
    fn publish(&self, ctx: &broker::ClientCtx, topic: &str) -> bool {
        self.decide(ctx, "iot:Publish", "topic", topic)
    }
    fn retain(&self, ctx: &broker::ClientCtx, topic: &str) -> bool {
        self.decide(ctx, "iot:RetainPublish", "topic", topic)
    }
    fn subscribe(&self, ctx: &broker::ClientCtx, filter: &str) -> bool {
        self.decide(ctx, "iot:Subscribe", "topicfilter", filter)
    }
    fn receive(&self, ctx: &broker::ClientCtx, topic: &str) -> bool {
        self.decide(ctx, "iot:Receive", "topic", topic)
    }
}

/// Lets the broker and the HTTP data plane share one [`PolicyAuthorizer`].
pub struct SharedAuthorizer(pub Arc<PolicyAuthorizer>);

impl broker::Authorizer for SharedAuthorizer {
    fn connect(&self, principal: &broker::Principal, client_id: &str, peer: &broker::PeerInfo) -> bool {
        self.0.connect(principal, client_id, peer)
    }
    fn publish(&self, ctx: &broker::ClientCtx, topic: &str) -> bool {
        self.0.publish(ctx, topic)
    }
    fn retain(&self, ctx: &broker::ClientCtx, topic: &str) -> bool {
        self.0.retain(ctx, topic)
    }
    fn subscribe(&self, ctx: &broker::ClientCtx, filter: &str) -> bool {
        self.0.subscribe(ctx, filter)
    }
    fn receive(&self, ctx: &broker::ClientCtx, topic: &str) -> bool {
        self.0.receive(ctx, topic)
    }
}
