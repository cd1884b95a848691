//! The registry service: certificates and things, with the rules AWS IoT
//! applies to them, and the in-memory certificate cache every connection is
//! checked against.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock, Weak};

use axum::http::StatusCode;
use parking_lot::RwLock;
use store::{CaCertificateRecord, CertificateRecord, CertificateStatus, RegistryStore, ThingRecord};

use crate::api::error::ApiError;

/// What a connection needs to know about its certificate, cached.
#[derive(Debug, Clone)]
struct CachedCert {
    status: CertificateStatus,
    thing: Option<Arc<str>>,
    /// Registered CA that signed it (None: Thingport's own CA or no CA).
    ca_id: Option<String>,
}

pub struct Registry {
    store: Arc<dyn RegistryStore>,
    pub ca: Arc<pki::CertificateAuthority>,
    pub region: String,
    pub account_id: String,
    cache: RwLock<HashMap<String, CachedCert>>,
    /// Registered (bring-your-own) CA certificates.
    cas: RwLock<HashMap<String, CaCertificateRecord>>,
    /// Which client certificates pass the TLS handshake.
    verifier: Arc<crate::tls::DeviceCertVerifier>,
    broker: OnceLock<Weak<broker::Broker>>,
    /// Pre-signed URL grants, revoked with their certificate.
    grants: OnceLock<Arc<dyn store::GrantStore>>,
    plain_principal: broker::Principal,
}

/// AWS's thing name pattern: 1–128 of `[a-zA-Z0-9:_-]`.
pub fn valid_thing_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'))
}

impl Registry {
    pub fn new(
        store: Arc<dyn RegistryStore>,
        ca: Arc<pki::CertificateAuthority>,
        region: String,
        account_id: String,
        plain_principal: broker::Principal,
    ) -> anyhow::Result<Arc<Registry>> {
        let verifier = crate::tls::DeviceCertVerifier::new(&[ca.cert_der().to_vec()], Default::default())?;
        let r = Arc::new(Registry {
            store,
            ca,
            region,
            account_id,
            cache: RwLock::new(HashMap::new()),
            cas: RwLock::new(HashMap::new()),
            verifier,
            broker: OnceLock::new(),
            grants: OnceLock::new(),
            plain_principal,
        });
        r.reload_cache()?;
        Ok(r)
    }

    /// Revoke a certificate's outstanding pre-signed URLs when it stops being active.
    pub fn set_grants(&self, grants: Arc<dyn store::GrantStore>) {
        let _ = self.grants.set(grants);
    }

    /// Connect the registry to the broker so status changes close connections.
    pub fn set_broker(&self, broker: &Arc<broker::Broker>) {
        let _ = self.broker.set(Arc::downgrade(broker));
    }

    /// The TLS client-certificate verifier this registry keeps up to date.
    pub fn verifier(&self) -> Arc<crate::tls::DeviceCertVerifier> {
        self.verifier.clone()
    }

    fn cached(&self, c: &CertificateRecord) -> Result<CachedCert, store::StoreError> {
        let thing = self.store.principal_things(&c.id)?.into_iter().next().map(Arc::from);
        let own = self.ca.certificate_id();
        let ca_id = c.ca_certificate_id.clone().filter(|id| *id != own);
        Ok(CachedCert { status: c.status, thing, ca_id })
    }

    fn reload_cache(&self) -> anyhow::Result<()> {
        let mut map = HashMap::new();
        for c in self.store.list_certificates()? {
            map.insert(c.id.clone(), self.cached(&c)?);
        }
        *self.cache.write() = map;
        *self.cas.write() = self.store.list_ca_certificates()?.into_iter().map(|c| (c.id.clone(), c)).collect();
        self.refresh_trust()?;
        Ok(())
    }

    /// Rebuild the TLS trust: our CA, every ACTIVE registered CA, and the
    /// certificates registered without a CA.
    fn refresh_trust(&self) -> anyhow::Result<()> {
        let mut roots = vec![self.ca.cert_der().to_vec()];
        for ca in self.cas.read().values().filter(|c| c.active) {
            roots.push(pki::pem_to_der(&ca.pem)?);
        }
        let pinned = self
            .store
            .list_certificates()?
            .into_iter()
            .filter(|c| c.ca_certificate_id.is_none())
            .map(|c| c.id)
            .collect();
        self.verifier.update(&roots, pinned)
    }

    fn refresh_cert(&self, id: &str) -> Result<(), ApiError> {
        match self.store.get_certificate(id)? {
            Some(c) => {
                let cached = self.cached(&c)?;
                self.cache.write().insert(id.to_string(), cached);
            }
            None => {
                self.cache.write().remove(id);
            }
        }
        Ok(())
    }

    fn broker(&self) -> Option<Arc<broker::Broker>> {
        self.broker.get().and_then(Weak::upgrade)
    }

    pub fn cert_arn(&self, id: &str) -> String {
        format!("arn:aws:iot:{}:{}:cert/{}", self.region, self.account_id, id)
    }

    pub fn thing_arn(&self, name: &str) -> String {
        format!("arn:aws:iot:{}:{}:thing/{}", self.region, self.account_id, name)
    }

    /// A principal given as a certificate ARN or a bare certificate id.
    pub fn parse_principal(&self, principal: &str) -> Result<String, ApiError> {
        let id = principal.rsplit_once(":cert/").map(|(_, id)| id).unwrap_or(principal);
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
            return Err(ApiError::invalid(format!("thing name {name:?} must be 1-128 characters of [a-zA-Z0-9:_-]")));
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
            store::StoreError::AlreadyExists(_) => ApiError::conflict(format!("thing {name} already exists")),
            other => other.into(),
        })?;
        Ok(rec)
    }

    pub fn get_thing(&self, name: &str) -> Result<ThingRecord, ApiError> {
        self.store.get_thing(name)?.ok_or_else(|| ApiError::not_found(format!("thing {name} does not exist")))
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

    pub fn attach(&self, thing: &str, principal: &str, exclusive: bool) -> Result<(), ApiError> {
        let id = self.parse_principal(principal)?;
        self.get_thing(thing)?;
        self.get_certificate(&id)?;
        self.store.attach_principal(thing, &id, exclusive).map_err(|e| match e {
            store::StoreError::AlreadyExists(_) => ApiError::invalid(format!(
                "principal {principal} is exclusively attached to another thing, or attached elsewhere while an exclusive attachment was asked"
            )),
            other => other.into(),
        })?;
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
        Ok(self.store.thing_principals(thing)?.iter().map(|id| self.cert_arn(id)).collect())
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
            status: if active { CertificateStatus::Active } else { CertificateStatus::Inactive },
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
            .issue_device_certificate(key_type, &pki::Subject::with_common_name("AWS IoT Certificate"))
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let rec = self.register_issued(&issued.cert_pem, active)?;
        Ok((rec, issued.key))
    }

    /// AWS CreateCertificateFromCsr: the device keeps its private key.
    pub fn create_certificate_from_csr(&self, csr_pem: &str, active: bool) -> Result<CertificateRecord, ApiError> {
        let pem = self.ca.sign_csr(csr_pem).map_err(|e| ApiError::invalid(format!("invalid CSR: {e}")))?;
        self.register_issued(&pem, active)
    }

    pub fn get_certificate(&self, id: &str) -> Result<CertificateRecord, ApiError> {
        self.store.get_certificate(id)?.ok_or_else(|| ApiError::not_found(format!("certificate {id} does not exist")))
    }

    pub fn list_certificates(&self) -> Result<Vec<CertificateRecord>, ApiError> {
        Ok(self.store.list_certificates()?)
    }

    /// AWS UpdateCertificate. REVOKED is final; connections of a certificate
    /// that stops being ACTIVE are closed at once.
    pub fn update_certificate_status(&self, id: &str, new: CertificateStatus) -> Result<(), ApiError> {
        let cert = self.get_certificate(id)?;
        let allowed = match (cert.status, new) {
            (CertificateStatus::Revoked, _) => false,
            (_, CertificateStatus::Active | CertificateStatus::Inactive | CertificateStatus::Revoked) => true,
            _ => false,
        };
        if !allowed {
            return Err(ApiError::new(
                StatusCode::NOT_ACCEPTABLE,
                "CertificateStateException",
                format!("certificate {id} cannot change from {} to {}", cert.status.as_str(), new.as_str()),
            ));
        }
        self.store.set_certificate_status(id, new, store::now_ms())?;
        self.refresh_cert(id)?;
        tracing::info!(certificate_id = %id, status = new.as_str(), "certificate status changed");
        if new != CertificateStatus::Active {
            if let Some(g) = self.grants.get() {
                let n = g.revoke_grants(Some(id), None)?;
                if n > 0 {
                    tracing::info!(certificate_id = %id, urls = n, "revoked the certificate's pre-signed URLs");
                }
            }
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
    /// Why a certificate cannot be deleted now (ACTIVE, or attached to a thing).
    pub fn check_deletable(&self, id: &str) -> Result<(), ApiError> {
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
        Ok(())
    }

    pub fn delete_certificate(&self, id: &str) -> Result<(), ApiError> {
        self.check_deletable(id)?;
        let cert = self.get_certificate(id)?;
        self.store.delete_certificate(id)?;
        self.refresh_cert(id)?;
        if cert.ca_certificate_id.is_none() {
            self.refresh_trust().map_err(|e| ApiError::internal(e.to_string()))?;
        }
        Ok(())
    }
}

/// Bring your own CA: registration code, CA certificates, device
/// certificates they signed, certificates without a CA, and just-in-time
/// registration on first connect.
impl Registry {
    pub fn ca_arn(&self, id: &str) -> String {
        format!("arn:aws:iot:{}:{}:cacert/{}", self.region, self.account_id, id)
    }

    /// AWS GetRegistrationCode: the verification certificate's CN must equal it.
    pub fn registration_code(&self) -> Result<String, ApiError> {
        if let Some(code) = self.store.get_setting("registration_code")?.filter(|c| !c.is_empty()) {
            return Ok(code);
        }
        let mut bytes = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut bytes[..]);
        let code: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        self.store.put_setting("registration_code", &code)?;
        Ok(code)
    }

    /// AWS DeleteRegistrationCode: the next GetRegistrationCode makes a new one.
    pub fn delete_registration_code(&self) -> Result<(), ApiError> {
        self.store.put_setting("registration_code", "")?;
        Ok(())
    }

    /// AWS RegisterCACertificate. In DEFAULT mode the caller proves it holds
    /// the CA key with a verification certificate whose CN is the
    /// registration code, signed by that CA.
    pub fn register_ca(
        &self,
        ca_pem: &str,
        verification_pem: Option<&str>,
        active: bool,
        auto_registration: bool,
        sni_only: bool,
    ) -> Result<CaCertificateRecord, ApiError> {
        let invalid_cert = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "CertificateValidationException", m);
        let der = pki::pem_to_der(ca_pem).map_err(|e| invalid_cert(format!("caCertificate: {e}")))?;
        let info = pki::parse_certificate(&der).map_err(|e| invalid_cert(format!("caCertificate: {e}")))?;
        if !info.is_ca {
            return Err(invalid_cert("caCertificate is not a CA certificate (basicConstraints CA:TRUE)".into()));
        }
        if !sni_only {
            let v = verification_pem.ok_or_else(|| {
                ApiError::invalid("verificationCertificate is required (or certificateMode SNI_ONLY)")
            })?;
            let vder = pki::pem_to_der(v).map_err(|e| invalid_cert(format!("verificationCertificate: {e}")))?;
            let vinfo =
                pki::parse_certificate(&vder).map_err(|e| invalid_cert(format!("verificationCertificate: {e}")))?;
            let code = self.registration_code()?;
            if vinfo.subject.common_name.as_deref() != Some(code.as_str()) {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "RegistrationCodeValidationException",
                    "the verification certificate's common name is not the registration code (GetRegistrationCode)",
                ));
            }
            if !pki::verify_signed_by(&vder, &der).unwrap_or(false) {
                return Err(invalid_cert("the verification certificate is not signed by the CA's key".into()));
            }
        }
        let now = store::now_ms();
        let rec = CaCertificateRecord {
            id: pki::certificate_id(&der),
            pem: ca_pem.to_string(),
            active,
            auto_registration,
            created_at_ms: now,
            updated_at_ms: now,
        };
        if rec.id == self.ca.certificate_id() {
            return Err(ApiError::conflict("this is Thingport's own CA; it is always trusted"));
        }
        self.store.insert_ca_certificate(&rec).map_err(|e| match e {
            store::StoreError::AlreadyExists(_) => {
                ApiError::conflict(format!("CA certificate {} is already registered", rec.id))
            }
            other => other.into(),
        })?;
        self.cas.write().insert(rec.id.clone(), rec.clone());
        self.refresh_trust().map_err(|e| ApiError::internal(e.to_string()))?;
        tracing::info!(ca_certificate_id = %rec.id, active, auto_registration, "CA certificate registered");
        Ok(rec)
    }

    pub fn get_ca(&self, id: &str) -> Result<CaCertificateRecord, ApiError> {
        self.cas
            .read()
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("CA certificate {id} does not exist")))
    }

    pub fn list_cas(&self) -> Vec<CaCertificateRecord> {
        let mut v: Vec<_> = self.cas.read().values().cloned().collect();
        v.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        v
    }

    /// AWS UpdateCACertificate. Deactivating a CA closes its devices' connections.
    pub fn update_ca(&self, id: &str, active: Option<bool>, auto_registration: Option<bool>) -> Result<(), ApiError> {
        let mut rec = self.get_ca(id)?;
        if let Some(a) = active {
            rec.active = a;
        }
        if let Some(a) = auto_registration {
            rec.auto_registration = a;
        }
        rec.updated_at_ms = store::now_ms();
        self.store.update_ca_certificate(&rec)?;
        self.cas.write().insert(id.to_string(), rec.clone());
        self.refresh_trust().map_err(|e| ApiError::internal(e.to_string()))?;
        if !rec.active {
            if let Some(b) = self.broker() {
                let ids: Vec<String> = self
                    .cache
                    .read()
                    .iter()
                    .filter(|(_, c)| c.ca_id.as_deref() == Some(id))
                    .map(|(k, _)| k.clone())
                    .collect();
                for cert in ids {
                    b.kick_principal(&cert, mqtt::reason::ADMINISTRATIVE_ACTION);
                }
            }
        }
        Ok(())
    }

    /// AWS DeleteCACertificate: only an INACTIVE CA.
    pub fn delete_ca(&self, id: &str) -> Result<(), ApiError> {
        let rec = self.get_ca(id)?;
        if rec.active {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "CertificateStateException",
                format!("CA certificate {id} is ACTIVE; deactivate it first"),
            ));
        }
        self.store.delete_ca_certificate(id)?;
        self.cas.write().remove(id);
        self.refresh_trust().map_err(|e| ApiError::internal(e.to_string()))
    }

    fn insert_registered(
        &self,
        pem: &str,
        status: CertificateStatus,
        ca_id: Option<String>,
    ) -> Result<CertificateRecord, ApiError> {
        let der = pki::pem_to_der(pem).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "CertificateValidationException", format!("certificatePem: {e}"))
        })?;
        pki::parse_certificate(&der).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "CertificateValidationException", format!("certificatePem: {e}"))
        })?;
        let now = store::now_ms();
        let rec = CertificateRecord {
            id: pki::certificate_id(&der),
            pem: pem.to_string(),
            status,
            ca_certificate_id: ca_id,
            created_at_ms: now,
            updated_at_ms: now,
        };
        self.store.insert_certificate(&rec).map_err(|e| match e {
            store::StoreError::AlreadyExists(_) => {
                ApiError::conflict(format!("certificate {} is already registered", rec.id))
            }
            other => other.into(),
        })?;
        self.refresh_cert(&rec.id)?;
        Ok(rec)
    }

    /// The registered (or own) CA that directly signed `der`, if any.
    fn signing_ca(&self, der: &[u8]) -> Option<String> {
        if pki::verify_signed_by(der, self.ca.cert_der()).unwrap_or(false) {
            return Some(self.ca.certificate_id());
        }
        self.cas.read().values().find_map(|ca| {
            let ca_der = pki::pem_to_der(&ca.pem).ok()?;
            pki::verify_signed_by(der, &ca_der).unwrap_or(false).then(|| ca.id.clone())
        })
    }

    /// AWS RegisterCertificate: a device certificate signed by a registered CA.
    pub fn register_certificate(
        &self,
        pem: &str,
        ca_pem: Option<&str>,
        status: CertificateStatus,
    ) -> Result<CertificateRecord, ApiError> {
        let der = pki::pem_to_der(pem).and_then(|d| pki::parse_certificate(&d).map(|_| d)).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "CertificateValidationException", format!("certificatePem: {e}"))
        })?;
        let ca_id = match ca_pem {
            Some(ca_pem) => {
                let ca_der = pki::pem_to_der(ca_pem).map_err(|e| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "CertificateValidationException",
                        format!("caCertificatePem: {e}"),
                    )
                })?;
                let id = pki::certificate_id(&ca_der);
                if id != self.ca.certificate_id() && !self.cas.read().contains_key(&id) {
                    return Err(ApiError::not_found(format!(
                        "CA certificate {id} is not registered; use RegisterCACertificate first"
                    )));
                }
                if !pki::verify_signed_by(&der, &ca_der).unwrap_or(false) {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "CertificateValidationException",
                        "the certificate is not signed by caCertificatePem",
                    ));
                }
                id
            }
            None => self.signing_ca(&der).ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "CertificateValidationException",
                    "no registered CA signed this certificate; register its CA or use RegisterCertificateWithoutCA",
                )
            })?,
        };
        self.insert_registered(pem, status, Some(ca_id))
    }

    /// AWS RegisterCertificateWithoutCA: trusted on its own (its issuer is unknown).
    pub fn register_certificate_without_ca(
        &self,
        pem: &str,
        status: CertificateStatus,
    ) -> Result<CertificateRecord, ApiError> {
        let rec = self.insert_registered(pem, status, None)?;
        self.refresh_trust().map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(rec)
    }

    /// Just-in-time registration: an unknown certificate signed by an ACTIVE
    /// CA with auto-registration becomes PENDING_ACTIVATION and an event is
    /// published on `$aws/events/certificates/registered/{caCertificateId}`.
    fn just_in_time_register(&self, id: &str, der: &[u8]) -> Option<String> {
        let ca = self
            .cas
            .read()
            .values()
            .find(|ca| {
                ca.active
                    && ca.auto_registration
                    && pki::pem_to_der(&ca.pem).is_ok_and(|ca_der| pki::verify_signed_by(der, &ca_der).unwrap_or(false))
            })?
            .clone();
        let rec = self
            .insert_registered(&pki::der_to_pem(der), CertificateStatus::PendingActivation, Some(ca.id.clone()))
            .ok()?;
        tracing::info!(certificate_id = %id, ca_certificate_id = %ca.id, "certificate registered just in time (PENDING_ACTIVATION)");
        if let Some(b) = self.broker() {
            let payload = serde_json::json!({
                "certificateId": rec.id,
                "caCertificateId": ca.id,
                "timestamp": rec.created_at_ms,
                "certificateStatus": "PENDING_ACTIVATION",
                "awsAccountId": self.account_id,
                "certificateRegistrationTimestamp": rec.created_at_ms,
            });
            b.publish(broker::Message::system(
                &format!("$aws/events/certificates/registered/{}", ca.id),
                payload.to_string(),
                mqtt::QoS::AtLeastOnce,
            ));
        }
        Some(ca.id)
    }
}

fn validate_attributes(attrs: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if attrs.len() > 50 {
        return Err(ApiError::invalid("a thing has at most 50 attributes"));
    }
    for (k, v) in attrs {
        let key_ok =
            !k.is_empty() && k.len() <= 128 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.,@/:#-".contains(&b));
        if !key_ok {
            return Err(ApiError::invalid(format!(
                "attribute name {k:?} must be 1-128 characters of [a-zA-Z0-9_.,@/:#-]"
            )));
        }
        if v.len() > 800 {
            return Err(ApiError::invalid(format!("attribute {k} is longer than 800 characters")));
        }
    }
    Ok(())
}

impl broker::Authenticator for Registry {
    fn authenticate(&self, peer: &broker::PeerInfo) -> Result<broker::Principal, broker::auth::AuthFailure> {
        use broker::auth::AuthFailure;
        if peer.listener == "mqtt" {
            return Ok(self.plain_principal.clone());
        }
        let Some(leaf) = peer.cert_chain.first() else {
            return Err(AuthFailure::BadCredentials("no client certificate".into()));
        };
        let id = pki::certificate_id(leaf.as_ref());
        let cached = self.cache.read().get(&id).cloned();
        match cached {
            Some(c) if c.status == CertificateStatus::Active => {
                if let Some(ca) = &c.ca_id {
                    if !self.cas.read().get(ca).is_some_and(|r| r.active) {
                        return Err(AuthFailure::NotAuthorized(format!(
                            "the CA {ca} that signed certificate {id} is not ACTIVE"
                        )));
                    }
                }
                let info = pki::parse_certificate(leaf.as_ref()).ok().map(Arc::new);
                let auth: Arc<dyn std::any::Any + Send + Sync> = crate::policies::ConnAuth::new(id.clone(), info);
                Ok(broker::Principal { id: id.into(), thing_name: c.thing.clone(), ext: Some(auth) })
            }
            Some(c) => Err(AuthFailure::NotAuthorized(format!("certificate {id} is {}", c.status.as_str()))),
            None => match self.just_in_time_register(&id, leaf.as_ref()) {
                Some(_) => Err(AuthFailure::NotAuthorized(format!(
                    "certificate {id} was registered as PENDING_ACTIVATION; activate it, then reconnect"
                ))),
                None => Err(AuthFailure::NotAuthorized(format!("certificate {id} is not registered"))),
            },
        }
    }
}
