//! The registry service: certificates and things, with the rules AWS IoT
//! applies to them, and the in-memory certificate cache every connection is
//! checked against.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock, Weak};

use axum::http::StatusCode;
use parking_lot::RwLock;
use store::{CertificateRecord, CertificateStatus, RegistryStore, ThingRecord};

use crate::api::error::ApiError;

/// What a connection needs to know about its certificate, cached.
#[derive(Debug, Clone)]
struct CachedCert {
    status: CertificateStatus,
    thing: Option<Arc<str>>,
}

pub struct Registry {
    store: Arc<dyn RegistryStore>,
    pub ca: Arc<pki::CertificateAuthority>,
    pub region: String,
    pub account_id: String,
    cache: RwLock<HashMap<String, CachedCert>>,
    broker: OnceLock<Weak<broker::Broker>>,
    plain_principal: broker::Principal,
}

/// AWS's thing name pattern: 1–128 of `[a-zA-Z0-9:_-]`.
pub fn valid_thing_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'))
}

impl Registry {
    pub fn new(
        store: Arc<dyn RegistryStore>,
        ca: Arc<pki::CertificateAuthority>,
        region: String,
        account_id: String,
        plain_principal: broker::Principal,
    ) -> anyhow::Result<Arc<Registry>> {
        let r = Arc::new(Registry {
            store,
            ca,
            region,
            account_id,
            cache: RwLock::new(HashMap::new()),
            broker: OnceLock::new(),
            plain_principal,
        });
        r.reload_cache()?;
        Ok(r)
    }

    /// Connect the registry to the broker so status changes close connections.
    pub fn set_broker(&self, broker: &Arc<broker::Broker>) {
        let _ = self.broker.set(Arc::downgrade(broker));
    }

    fn reload_cache(&self) -> anyhow::Result<()> {
        let mut map = HashMap::new();
        for c in self.store.list_certificates()? {
            let thing = self
                .store
                .principal_things(&c.id)?
                .into_iter()
                .next()
                .map(Arc::from);
            map.insert(
                c.id.clone(),
                CachedCert {
                    status: c.status,
                    thing,
                },
            );
        }
        *self.cache.write() = map;
        Ok(())
    }

    fn refresh_cert(&self, id: &str) -> Result<(), ApiError> {
        match self.store.get_certificate(id)? {
            Some(c) => {
                let thing = self
                    .store
                    .principal_things(id)?
                    .into_iter()
                    .next()
                    .map(Arc::from);
                self.cache.write().insert(
                    id.to_string(),
                    CachedCert {
                        status: c.status,
                        thing,
                    },
                );
            }
            None => {
                self.cache.write().remove(id);
            }
        }
        Ok(())
    }

    pub fn cert_arn(&self, id: &str) -> String {
        format!(
            "arn:aws:iot:{}:{}:cert/{}",
            self.region, self.account_id, id
        )
    }

    pub fn thing_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:iot:{}:{}:thing/{}",
            self.region, self.account_id, name
        )
    }

    /// A principal given as a certificate ARN or a bare certificate id.
    pub fn parse_principal(&self, principal: &str) -> Result<String, ApiError> {
        let id = principal
            .rsplit_once(":cert/")
            .map(|(_, id)| id)
            .unwrap_or(principal);
        if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(id.to_ascii_lowercase())
        } else {
            Err(ApiError::invalid(format!(
                "principal {principal:?} is not a certificate ARN (arn:aws:iot:REGION:ACCOUNT:cert/ID) or id"
            )))
        }
    }

    // ---- things ----

    pub fn create_thing(
        &self,
        name: &str,
        type_name: Option<String>,
        attributes: BTreeMap<String, String>,
    ) -> Result<ThingRecord, ApiError> {
        if !valid_thing_name(name) {
            return Err(ApiError::invalid(format!(
                "thing name {name:?} must be 1-128 characters of [a-zA-Z0-9:_-]"
            )));
        }
        validate_attributes(&attributes)?;
        let rec = ThingRecord {
            name: name.to_string(),
            id: uuid::Uuid::new_v4().to_string(),
            type_name,
            attributes,
            version: 1,
            created_at_ms: store::now_ms(),
        };
        self.store.create_thing(&rec).map_err(|e| match e {
            store::StoreError::AlreadyExists(_) => {
                ApiError::conflict(format!("thing {name} already exists"))
            }
            other => other.into(),
        })?;
        Ok(rec)
    }

    pub fn get_thing(&self, name: &str) -> Result<ThingRecord, ApiError> {
        self.store
            .get_thing(name)?
            .ok_or_else(|| ApiError::not_found(format!("thing {name} does not exist")))
    }

    pub fn list_things(&self) -> Result<Vec<ThingRecord>, ApiError> {
        Ok(self.store.list_things()?)
    }

    pub fn delete_thing(&self, name: &str) -> Result<(), ApiError> {
        self.get_thing(name)?;
        let principals = self.store.thing_principals(name)?;
        if !principals.is_empty() {
            return Err(ApiError::invalid(format!(
                "thing {name} has {} attached principal(s); detach them before deleting it",
                principals.len()
            )));
        }
        self.store.delete_thing(name)?;
        Ok(())
    }

    pub fn attach(&self, thing: &str, principal: &str) -> Result<(), ApiError> {
        let id = self.parse_principal(principal)?;
        self.get_thing(thing)?;
        self.get_certificate(&id)?;
        self.store.attach_principal(thing, &id)?;
        self.refresh_cert(&id)
    }

    pub fn detach(&self, thing: &str, principal: &str) -> Result<(), ApiError> {
        let id = self.parse_principal(principal)?;
        self.get_thing(thing)?;
        self.store.detach_principal(thing, &id)?;
        self.refresh_cert(&id)
    }

    pub fn thing_principals(&self, thing: &str) -> Result<Vec<String>, ApiError> {
        self.get_thing(thing)?;
        Ok(self
            .store
            .thing_principals(thing)?
            .iter()
            .map(|id| self.cert_arn(id))
            .collect())
    }

    pub fn principal_things(&self, principal: &str) -> Result<Vec<String>, ApiError> {
        let id = self.parse_principal(principal)?;
        Ok(self.store.principal_things(&id)?)
    }

    // ---- certificates ----

    fn register_issued(&self, pem: &str, active: bool) -> Result<CertificateRecord, ApiError> {
        let der = pki::pem_to_der(pem).map_err(|e| ApiError::internal(e.to_string()))?;
        let now = store::now_ms();
        let rec = CertificateRecord {
            id: pki::certificate_id(&der),
            pem: pem.to_string(),
            status: if active {
                CertificateStatus::Active
            } else {
                CertificateStatus::Inactive
            },
            ca_certificate_id: Some(self.ca.certificate_id()),
            created_at_ms: now,
            updated_at_ms: now,
        };
        self.store.insert_certificate(&rec)?;
        self.refresh_cert(&rec.id)?;
        tracing::info!(certificate_id = %rec.id, status = rec.status.as_str(), "certificate issued");
        Ok(rec)
    }

    /// AWS CreateKeysAndCertificate: the private key is returned once and not kept.
    pub fn create_keys_and_certificate(
        &self,
        key_type: pki::KeyType,
        active: bool,
    ) -> Result<(CertificateRecord, pki::PrivateKeyPem), ApiError> {
        let issued = self
            .ca
            .issue_device_certificate(
                key_type,
                &pki::Subject::with_common_name("AWS IoT Certificate"),
            )
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let rec = self.register_issued(&issued.cert_pem, active)?;
        Ok((rec, issued.key))
    }

    /// AWS CreateCertificateFromCsr: the device keeps its private key.
    pub fn create_certificate_from_csr(
        &self,
        csr_pem: &str,
        active: bool,
    ) -> Result<CertificateRecord, ApiError> {
        let pem = self
            .ca
            .sign_csr(csr_pem)
            .map_err(|e| ApiError::invalid(format!("invalid CSR: {e}")))?;
        self.register_issued(&pem, active)
    }

    pub fn get_certificate(&self, id: &str) -> Result<CertificateRecord, ApiError> {
        self.store
            .get_certificate(id)?
            .ok_or_else(|| ApiError::not_found(format!("certificate {id} does not exist")))
    }

    pub fn list_certificates(&self) -> Result<Vec<CertificateRecord>, ApiError> {
        Ok(self.store.list_certificates()?)
    }

    /// AWS UpdateCertificate. REVOKED is final; connections of a certificate
    /// that stops being ACTIVE are closed at once.
    pub fn update_certificate_status(
        &self,
        id: &str,
        new: CertificateStatus,
    ) -> Result<(), ApiError> {
        let cert = self.get_certificate(id)?;
        let allowed = match (cert.status, new) {
            (CertificateStatus::Revoked, _) => false,
            (
                _,
                CertificateStatus::Active
                | CertificateStatus::Inactive
                | CertificateStatus::Revoked,
            ) => true,
            _ => false,
        };
        if !allowed {
            return Err(ApiError::new(
                StatusCode::NOT_ACCEPTABLE,
                "CertificateStateException",
                format!(
                    "certificate {id} cannot change from {} to {}",
                    cert.status.as_str(),
                    new.as_str()
                ),
            ));
        }
        self.store
            .set_certificate_status(id, new, store::now_ms())?;
        self.refresh_cert(id)?;
        tracing::info!(certificate_id = %id, status = new.as_str(), "certificate status changed");
        if new != CertificateStatus::Active {
            if let Some(b) = self.broker.get().and_then(Weak::upgrade) {
                let n = b.kick_principal(id, mqtt::reason::ADMINISTRATIVE_ACTION);
                if n > 0 {
                    tracing::info!(certificate_id = %id, connections = n, "closed connections of certificate");
                }
            }
        }
        Ok(())
    }

    /// AWS DeleteCertificate: only when not ACTIVE and attached to no thing.
    pub fn delete_certificate(&self, id: &str) -> Result<(), ApiError> {
        let cert = self.get_certificate(id)?;
        if cert.status == CertificateStatus::Active {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "CertificateStateException",
                format!("certificate {id} is ACTIVE; deactivate it first"),
            ));
        }
        if !self.store.principal_things(id)?.is_empty() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "DeleteConflictException",
                format!("certificate {id} is attached to a thing; detach it first"),
            ));
        }
        self.store.delete_certificate(id)?;
        self.refresh_cert(id)
    }
}

fn validate_attributes(attrs: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if attrs.len() > 50 {
        return Err(ApiError::invalid("a thing has at most 50 attributes"));
    }
    for (k, v) in attrs {
        let key_ok = !k.is_empty()
            && k.len() <= 128
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.,@/:#-".contains(&b));
        if !key_ok {
            return Err(ApiError::invalid(format!(
                "attribute name {k:?} must be 1-128 characters of [a-zA-Z0-9_.,@/:#-]"
            )));
        }
        if v.len() > 800 {
            return Err(ApiError::invalid(format!(
                "attribute {k} is longer than 800 characters"
            )));
        }
    }
    Ok(())
}

impl broker::Authenticator for Registry {
    fn authenticate(
        &self,
        peer: &broker::PeerInfo,
    ) -> Result<broker::Principal, broker::auth::AuthFailure> {
        use broker::auth::AuthFailure;
        if peer.listener == "mqtt" {
            return Ok(self.plain_principal.clone());
        }
        let Some(leaf) = peer.cert_chain.first() else {
            return Err(AuthFailure::BadCredentials("no client certificate".into()));
        };
        let id = pki::certificate_id(leaf.as_ref());
        let cache = self.cache.read();
        match cache.get(&id) {
            Some(c) if c.status == CertificateStatus::Active => Ok(broker::Principal {
                id: id.into(),
                thing_name: c.thing.clone(),
                ext: None,
            }),
            Some(c) => Err(AuthFailure::NotAuthorized(format!(
                "certificate {id} is {}",
                c.status.as_str()
            ))),
            None => Err(AuthFailure::NotAuthorized(format!(
                "certificate {id} is not registered"
            ))),
        }
    }
}
