//! Payload keys: a KMS-like service whose data keys are also wrapped with
//! the requesting device's own certificate public key, so only that device
//! can unwrap them — and every key issued and every use is recorded.
//!
//! - Master keys: AES-256 material in versions (rotation keeps old versions
//!   for decryption), sealed at rest by the root key (`DATA/root.key`, 0600,
//!   or `THINGPORT_ROOT_KEY`), never logged or returned.
//! - The KMS-compatible API (`api::kms`) calls [`PayloadKeys`] with the
//!   caller's access key as principal.
//! - Devices ask on the request topic (`payload-keys/requests` by default,
//!   bound through a rule): the public key comes from the certificate the
//!   device connected with, the device's policy must allow
//!   `thingport:GenerateDataKey` on the master key, and the answer goes only
//!   to a topic the device may receive.
//! - Cloud consumers decrypt a data key's ciphertext blob through KMS
//!   `Decrypt` (or a whole envelope through `/thingport/payloads/decrypt`);
//!   a revoked data key no longer decrypts.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock, Weak};

use axum::http::StatusCode;
use base64::Engine;
use parking_lot::Mutex;
use serde_json::{json, Value};
use store::{DataKeyRecord, KeyAuditRecord, KeyStore, KeyVersionRecord, MasterKeyRecord};
use zeroize::Zeroizing;

use crate::api::error::ApiError;
use crate::policies::PolicyAuthorizer;
use crate::registry::Registry;

/// The alias of the master key device data keys come from by default.
pub const DEVICE_KEY_ALIAS: &str = "alias/thingport-devices";
/// Encryption-context entries bound to every device data key.
pub const CTX_DATA_KEY: &str = "thingport:dataKeyId";
pub const CTX_THING: &str = "thingport:thingName";

/// Key material or a plaintext data key, wiped when dropped.
type Secret = Zeroizing<Vec<u8>>;

/// A generated data key: plaintext, ciphertext blob, and the master key it is under.
pub type DataKey = (Secret, Vec<u8>, MasterKeyRecord);

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

fn kms_error(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

fn now_ms() -> i64 {
    store::now_ms() as i64
}

pub struct PayloadKeys {
    store: Arc<dyn KeyStore>,
    root: Zeroizing<[u8; 32]>,
    pub region: String,
    pub account_id: String,
    registry: Arc<Registry>,
    authorizer: Arc<PolicyAuthorizer>,
    data_key_lifetime_secs: u64,
    broker: OnceLock<Weak<broker::Broker>>,
    /// Opened material by (key id, version).
    materials: Mutex<HashMap<(String, u32), Secret>>,
    /// Serialises changes to master key records (rotation, state).
    changes: Mutex<()>,
}

impl PayloadKeys {
    pub fn new(
        store: Arc<dyn KeyStore>,
        root: [u8; 32],
        region: String,
        account_id: String,
        registry: Arc<Registry>,
        authorizer: Arc<PolicyAuthorizer>,
        data_key_lifetime_secs: u64,
    ) -> anyhow::Result<Arc<PayloadKeys>> {
        let pk = Arc::new(PayloadKeys {
            store,
            root: Zeroizing::new(root),
            region,
            account_id,
            registry,
            authorizer,
            data_key_lifetime_secs,
            broker: OnceLock::new(),
            materials: Mutex::new(HashMap::new()),
            changes: Mutex::new(()),
        });
        if !pk.store.list_aliases()?.iter().any(|(a, _)| a == DEVICE_KEY_ALIAS) {
            let k = pk.create_key("Thingport device data keys", "thingport").map_err(|e| anyhow::anyhow!(e.message))?;
            pk.store.put_alias(DEVICE_KEY_ALIAS, &k.id)?;
        }
        Ok(pk)
    }

    pub fn attach(&self, broker: &Arc<broker::Broker>) {
        let _ = self.broker.set(Arc::downgrade(broker));
    }

    pub fn key_arn(&self, id: &str) -> String {
        format!("arn:aws:kms:{}:{}:key/{id}", self.region, self.account_id)
    }

    fn audit(&self, event: &str, key_id: Option<&str>, data_key_id: Option<&str>, principal: &str, detail: Value) {
        let rec = KeyAuditRecord {
            seq: 0,
            time_ms: now_ms(),
            event: event.into(),
            key_id: key_id.map(str::to_string),
            data_key_id: data_key_id.map(str::to_string),
            principal: principal.into(),
            detail: detail.to_string(),
        };
        if let Err(e) = self.store.append_audit(&rec) {
            tracing::error!(error = %e, event, "could not write the key audit log");
        }
        tracing::info!(target: "audit", event, key_id, data_key_id, principal, "key use");
    }

    // ---- master keys ---------------------------------------------------

    pub fn create_key(&self, description: &str, principal: &str) -> Result<MasterKeyRecord, ApiError> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = now_ms();
        let rec = MasterKeyRecord {
            id: id.clone(),
            description: description.into(),
            state: "Enabled".into(),
            created_ms: now,
            deletion_ms: None,
            rotation_enabled: false,
            rotation_period_days: 365,
            rotated_ms: now,
            current_version: 1,
        };
        self.store.put_master_key(&rec)?;
        self.add_version(&id, 1)?;
        self.audit("CreateKey", Some(&id), None, principal, json!({ "description": description }));
        Ok(rec)
    }

    fn add_version(&self, id: &str, version: u32) -> Result<(), ApiError> {
        let material: Zeroizing<[u8; 32]> = Zeroizing::new(rand::random());
        let sealed = keys::sealed::seal(&self.root, material.as_ref(), format!("{id}:{version}").as_bytes());
        self.store.add_key_version(&KeyVersionRecord { key_id: id.into(), version, sealed, created_ms: now_ms() })?;
        Ok(())
    }

    fn material(&self, id: &str, version: u32) -> Result<Zeroizing<Vec<u8>>, ApiError> {
        if let Some(m) = self.materials.lock().get(&(id.to_string(), version)) {
            return Ok(m.clone());
        }
        let v = self.store.key_versions(id)?.into_iter().find(|v| v.version == version).ok_or_else(|| {
            kms_error("InvalidCiphertextException", "the ciphertext refers to an unknown key version")
        })?;
        let m = keys::sealed::open(&self.root, &v.sealed, format!("{id}:{version}").as_bytes()).map_err(|_| {
            ApiError::internal("master key material could not be opened: is the root key the one it was sealed with?")
        })?;
        self.materials.lock().insert((id.to_string(), version), m.clone());
        Ok(m)
    }

    /// A key by id, ARN, alias or alias ARN.
    pub fn resolve(&self, key: &str) -> Result<MasterKeyRecord, ApiError> {
        let not_found = || kms_error("NotFoundException", format!("Key '{key}' does not exist"));
        let tail = key.strip_prefix("arn:aws:kms:").and_then(|r| r.splitn(3, ':').nth(2)).unwrap_or(key);
        let id = if let Some(alias) = tail.strip_prefix("alias/") {
            let alias = format!("alias/{alias}");
            self.store.list_aliases()?.into_iter().find(|(a, _)| *a == alias).map(|(_, id)| id).ok_or_else(not_found)?
        } else {
            tail.strip_prefix("key/").unwrap_or(tail).to_string()
        };
        let rec = self.store.get_master_key(&id)?.ok_or_else(not_found)?;
        if rec.state == "Deleted" {
            return Err(not_found());
        }
        Ok(rec)
    }

    fn usable(&self, rec: &MasterKeyRecord) -> Result<(), ApiError> {
        match rec.state.as_str() {
            "Enabled" => Ok(()),
            "Disabled" => Err(kms_error("DisabledException", format!("{} is disabled.", self.key_arn(&rec.id)))),
            other => Err(kms_error(
                "KMSInvalidStateException",
                format!("{} is pending deletion ({other}).", self.key_arn(&rec.id)),
            )),
        }
    }

    pub fn metadata(&self, rec: &MasterKeyRecord) -> Value {
        let mut m = json!({
            "AWSAccountId": self.account_id,
            "KeyId": rec.id,
            "Arn": self.key_arn(&rec.id),
            "CreationDate": rec.created_ms as f64 / 1000.0,
            "Enabled": rec.state == "Enabled",
            "Description": rec.description,
            "KeyUsage": "ENCRYPT_DECRYPT",
            "KeyState": rec.state,
            "Origin": "AWS_KMS",
            "KeyManager": "CUSTOMER",
            "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT",
            "KeySpec": "SYMMETRIC_DEFAULT",
            "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
            "MultiRegion": false,
        });
        if let Some(d) = rec.deletion_ms {
            m["DeletionDate"] = json!(d as f64 / 1000.0);
        }
        m
    }

    pub fn list_keys(&self) -> Result<Vec<MasterKeyRecord>, ApiError> {
        Ok(self.store.list_master_keys()?.into_iter().filter(|k| k.state != "Deleted").collect())
    }

    pub fn list_aliases(&self) -> Result<Vec<(String, String)>, ApiError> {
        Ok(self.store.list_aliases()?)
    }

    pub fn create_alias(&self, alias: &str, key: &str, principal: &str) -> Result<(), ApiError> {
        if !alias.starts_with("alias/") || alias.starts_with("alias/aws/") || alias.len() > 256 {
            return Err(kms_error("ValidationException", "AliasName must start with alias/ (and not alias/aws/)"));
        }
        if self.store.list_aliases()?.iter().any(|(a, _)| a == alias) {
            return Err(kms_error("AlreadyExistsException", format!("An alias with the name {alias} already exists")));
        }
        let rec = self.resolve(key)?;
        self.store.put_alias(alias, &rec.id)?;
        self.audit("CreateAlias", Some(&rec.id), None, principal, json!({ "alias": alias }));
        Ok(())
    }

    /// Change a key's record under the change lock.
    fn update(
        &self,
        key: &str,
        principal: &str,
        event: &str,
        f: impl FnOnce(&mut MasterKeyRecord) -> Result<(), ApiError>,
    ) -> Result<MasterKeyRecord, ApiError> {
        let _g = self.changes.lock();
        let mut rec = self.resolve(key)?;
        f(&mut rec)?;
        self.store.put_master_key(&rec)?;
        self.audit(event, Some(&rec.id), None, principal, json!({ "state": rec.state }));
        Ok(rec)
    }

    pub fn set_enabled(&self, key: &str, enabled: bool, principal: &str) -> Result<(), ApiError> {
        let event = if enabled { "EnableKey" } else { "DisableKey" };
        self.update(key, principal, event, |r| {
            if r.state == "PendingDeletion" {
                return Err(kms_error("KMSInvalidStateException", "the key is pending deletion: cancel it first"));
            }
            r.state = if enabled { "Enabled" } else { "Disabled" }.into();
            Ok(())
        })
        .map(|_| ())
    }

    pub fn schedule_deletion(&self, key: &str, days: u32, principal: &str) -> Result<MasterKeyRecord, ApiError> {
        if !(7..=30).contains(&days) {
            return Err(kms_error("ValidationException", "PendingWindowInDays must be between 7 and 30"));
        }
        self.update(key, principal, "ScheduleKeyDeletion", |r| {
            r.state = "PendingDeletion".into();
            r.deletion_ms = Some(now_ms() + i64::from(days) * 86_400_000);
            Ok(())
        })
    }

    pub fn cancel_deletion(&self, key: &str, principal: &str) -> Result<MasterKeyRecord, ApiError> {
        self.update(key, principal, "CancelKeyDeletion", |r| {
            if r.state != "PendingDeletion" {
                return Err(kms_error("KMSInvalidStateException", "the key is not pending deletion"));
            }
            r.state = "Disabled".into();
            r.deletion_ms = None;
            Ok(())
        })
    }

    pub fn set_rotation(&self, key: &str, enabled: bool, days: Option<u32>, principal: &str) -> Result<(), ApiError> {
        let event = if enabled { "EnableKeyRotation" } else { "DisableKeyRotation" };
        self.update(key, principal, event, |r| {
            if let Some(d) = days {
                if !(90..=2560).contains(&d) {
                    return Err(kms_error("ValidationException", "RotationPeriodInDays must be between 90 and 2560"));
                }
                r.rotation_period_days = d;
            }
            r.rotation_enabled = enabled;
            Ok(())
        })
        .map(|_| ())
    }

    /// A new version becomes current; older versions keep decrypting.
    pub fn rotate(&self, key: &str, principal: &str) -> Result<MasterKeyRecord, ApiError> {
        let _g = self.changes.lock();
        let mut rec = self.resolve(key)?;
        self.usable(&rec)?;
        let next = rec.current_version + 1;
        self.add_version(&rec.id, next)?;
        rec.current_version = next;
        rec.rotated_ms = now_ms();
        self.store.put_master_key(&rec)?;
        self.audit("RotateKey", Some(&rec.id), None, principal, json!({ "version": next }));
        Ok(rec)
    }

    pub fn next_rotation_ms(rec: &MasterKeyRecord) -> Option<i64> {
        rec.rotation_enabled.then(|| rec.rotated_ms + i64::from(rec.rotation_period_days) * 86_400_000)
    }

    /// Rotate keys whose period is over; finish deletions whose window is over.
    pub fn housekeeping(&self) {
        let Ok(list) = self.store.list_master_keys() else { return };
        let now = now_ms();
        for k in list {
            if k.state == "Enabled" && Self::next_rotation_ms(&k).is_some_and(|t| t <= now) {
                if let Err(e) = self.rotate(&k.id, "thingport") {
                    tracing::error!(key = %k.id, error = %e.message, "automatic key rotation failed");
                }
            }
            if k.state == "PendingDeletion" && k.deletion_ms.is_some_and(|t| t <= now) {
                let _ = self.update(&k.id, "thingport", "DeleteKey", |r| {
                    r.state = "Deleted".into();
                    Ok(())
                });
            }
        }
    }

    // ---- cryptographic operations --------------------------------------

    /// KMS Encrypt (audited).
    pub fn encrypt(
        &self,
        key: &str,
        plaintext: &[u8],
        ctx: &BTreeMap<String, String>,
        principal: &str,
    ) -> Result<(Vec<u8>, MasterKeyRecord), ApiError> {
        let (blob, rec) = self.seal_blob(key, plaintext, ctx)?;
        self.audit("Encrypt", Some(&rec.id), None, principal, json!({ "encryptionContext": ctx }));
        Ok((blob, rec))
    }

    fn seal_blob(
        &self,
        key: &str,
        plaintext: &[u8],
        ctx: &BTreeMap<String, String>,
    ) -> Result<(Vec<u8>, MasterKeyRecord), ApiError> {
        let rec = self.resolve(key)?;
        self.usable(&rec)?;
        let material = self.material(&rec.id, rec.current_version)?;
        let blob = keys::sealed::encrypt_blob(&rec.id, rec.current_version, &material, plaintext, ctx)
            .map_err(|e| kms_error("ValidationException", e.to_string()))?;
        Ok((blob, rec))
    }

    /// Decrypt a ciphertext blob. A blob of a device data key (its context
    /// names the data key) stops decrypting once that data key is revoked.
    /// Every attempt is audited, refused ones with the reason.
    pub fn decrypt(
        &self,
        blob: &[u8],
        ctx: &BTreeMap<String, String>,
        key: Option<&str>,
        principal: &str,
    ) -> Result<(Secret, MasterKeyRecord), ApiError> {
        let result = self.try_decrypt(blob, ctx, key);
        let data_key_id = ctx.get(CTX_DATA_KEY).map(String::as_str);
        let key_id = keys::sealed::blob_key(blob).ok().map(|(id, _)| id);
        let detail = match &result {
            Ok(_) => json!({ "encryptionContext": ctx }),
            Err(e) => {
                json!({ "encryptionContext": ctx, "outcome": format!("refused: {}", e.code), "reason": e.message })
            }
        };
        self.audit("Decrypt", key_id.as_deref(), data_key_id, principal, detail);
        result
    }

    fn try_decrypt(
        &self,
        blob: &[u8],
        ctx: &BTreeMap<String, String>,
        key: Option<&str>,
    ) -> Result<(Secret, MasterKeyRecord), ApiError> {
        let invalid = || {
            kms_error(
                "InvalidCiphertextException",
                "The ciphertext is invalid or was not made under this encryption context.",
            )
        };
        let (id, version) = keys::sealed::blob_key(blob).map_err(|_| invalid())?;
        let rec = self.store.get_master_key(&id)?.filter(|r| r.state != "Deleted").ok_or_else(invalid)?;
        if let Some(k) = key {
            if self.resolve(k)?.id != rec.id {
                return Err(kms_error(
                    "IncorrectKeyException",
                    "The key ID in the request does not identify the key that encrypted the ciphertext.",
                ));
            }
        }
        self.usable(&rec)?;
        if let Some(dk) = ctx.get(CTX_DATA_KEY) {
            let status = self.store.get_data_key(dk)?.map(|d| d.status);
            if status.as_deref() != Some("active") {
                return Err(kms_error(
                    "AccessDeniedException",
                    format!("data key {dk} was revoked: it no longer decrypts"),
                ));
            }
        }
        let material = self.material(&rec.id, version)?;
        let plain = keys::sealed::decrypt_blob(&material, blob, ctx).map_err(|_| invalid())?;
        Ok((plain, rec))
    }

    pub fn generate_data_key(
        &self,
        key: &str,
        bytes: usize,
        ctx: &BTreeMap<String, String>,
        principal: &str,
    ) -> Result<DataKey, ApiError> {
        let mut plain = Zeroizing::new(vec![0u8; bytes]);
        rand::fill(&mut plain[..]);
        let (blob, rec) = self.seal_blob(key, &plain, ctx)?;
        self.audit(
            "GenerateDataKey",
            Some(&rec.id),
            None,
            principal,
            json!({ "numberOfBytes": bytes, "encryptionContext": ctx }),
        );
        Ok((plain, blob, rec))
    }

    // ---- device data keys ----------------------------------------------

    pub fn list_data_keys(&self, thing: Option<&str>, limit: usize) -> Result<Vec<DataKeyRecord>, ApiError> {
        Ok(self.store.list_data_keys(thing, limit)?)
    }

    /// Revoke one data key or all of a thing's; each revoked key gets its own audit entry.
    pub fn revoke(&self, id: Option<&str>, thing: Option<&str>, principal: &str) -> Result<usize, ApiError> {
        let targets: Vec<DataKeyRecord> = match (id, thing) {
            (Some(id), _) => self.store.get_data_key(id)?.into_iter().collect(),
            (None, Some(t)) => self.store.list_data_keys(Some(t), 1 << 30)?,
            (None, None) => Vec::new(),
        };
        let n = self.store.revoke_data_keys(id, thing)?;
        for k in targets.iter().filter(|k| k.status == "active") {
            self.audit(
                "RevokeDataKey",
                Some(&k.master_key_id),
                Some(&k.id),
                principal,
                json!({ "thing": k.thing_name }),
            );
        }
        Ok(n)
    }

    pub fn audit_log(&self, key: Option<&str>, limit: usize) -> Result<Vec<KeyAuditRecord>, ApiError> {
        Ok(self.store.list_audit(key, limit)?)
    }

    pub fn data_key(&self, id: &str) -> Result<DataKeyRecord, ApiError> {
        self.store.get_data_key(id)?.ok_or_else(|| ApiError::not_found(format!("data key {id} does not exist")))
    }

    /// The encryption context a device data key's blob is bound to.
    pub fn data_key_context(id: &str, thing: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(CTX_DATA_KEY.to_string(), id.to_string()), (CTX_THING.to_string(), thing.to_string())])
    }

    /// Handle a device's request message (the binding rule's output).
    pub async fn handle_request(self: Arc<Self>, request: Value, msg: Arc<broker::Message>) {
        let Some(origin) = msg.origin.clone() else {
            tracing::info!(topic = %msg.topic, "data key request not from a device connection; ignored");
            return;
        };
        let ctx = origin.0;
        let reply_to = request
            .get("replyTo")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| msg.properties.response_topic.clone());
        let Some(reply_to) = reply_to else {
            tracing::info!(client_id = %ctx.client_id, "data key request without replyTo (or MQTT 5 response topic)");
            return;
        };
        if !mqtt::topic::valid_topic_name(&reply_to)
            || reply_to.starts_with('$')
            || !self.authorizer.decide(&ctx, "iot:Receive", "topic", &reply_to)
        {
            tracing::warn!(client_id = %ctx.client_id, %reply_to, "data key request refused: the requester may not receive on its reply topic");
            return;
        }
        let mut answer = match self.issue(&ctx, &request) {
            Ok(a) => a,
            Err((code, message)) => {
                tracing::info!(client_id = %ctx.client_id, code, reason = %message, "data key request refused");
                json!({ "error": { "code": code, "message": message } })
            }
        };
        if let Some(id) = request.get("requestId") {
            answer["requestId"] = id.clone();
        }
        let Some(broker) = self.broker.get().and_then(Weak::upgrade) else { return };
        let mut m = broker::Message::system(&reply_to, answer.to_string(), mqtt::QoS::AtLeastOnce);
        m.properties.correlation_data = msg.properties.correlation_data.clone();
        m.properties.content_type = Some("application/json".into());
        if broker.publish(m).needs_sync {
            broker.sync().await.ok();
        }
    }

    fn issue(&self, ctx: &broker::ClientCtx, request: &Value) -> Result<Value, (&'static str, String)> {
        let fail = |code: &'static str| move |e: ApiError| (code, e.message);
        let cert_id = ctx.principal.id.to_string();
        let thing = ctx.principal.thing_name.as_deref().ok_or((
            "InvalidRequest",
            "the certificate is attached to no thing: data keys are issued to things".to_string(),
        ))?;
        let cert = self.registry.get_certificate(&cert_id).map_err(fail("AccessDenied"))?;
        let der = pki::pem_to_der(&cert.pem).map_err(|e| ("InternalError", e.to_string()))?;
        let spki = keys::wrap::spki_from_certificate(&der).map_err(|e| ("InternalError", e.to_string()))?;
        keys::wrap::algorithm_for(&spki)
            .map_err(|e| ("UnsupportedKey", format!("this certificate's key cannot receive data keys: {e}")))?;
        // Claims in the payload are checked against the connection, never trusted instead of it.
        if let Some(claimed) = request.get("certificateId").and_then(Value::as_str) {
            if claimed != cert_id {
                return Err((
                    "AccessDenied",
                    "certificateId is not the certificate this connection authenticated with".into(),
                ));
            }
        }
        if let Some(pem) = request.get("publicKey").and_then(Value::as_str) {
            if public_key_der(pem).as_deref() != Some(spki.as_slice()) {
                return Err((
                    "AccessDenied",
                    "publicKey is not the public key of this connection's certificate".into(),
                ));
            }
        }
        let key_ref = request.get("keyId").and_then(Value::as_str).unwrap_or(DEVICE_KEY_ALIAS);
        let master = self.resolve(key_ref).map_err(fail("NotFound"))?;
        let arn = self.key_arn(&master.id);
        if !self.authorizer.decide_arn(ctx, "thingport:GenerateDataKey", &arn) {
            return Err(("AccessDenied", format!("your policy does not allow thingport:GenerateDataKey on {arn}")));
        }
        self.usable(&master)
            .map_err(|e| (if e.code == "DisabledException" { "Disabled" } else { "KeyUnavailable" }, e.message))?;
        let id = format!("dk-{}", uuid::Uuid::new_v4().simple());
        let context = Self::data_key_context(&id, thing);
        let (plain, blob, _) =
            self.generate_data_key(&master.id, 32, &context, &cert_id).map_err(fail("InternalError"))?;
        let (algorithm, wrapped) = keys::wrap::wrap(&spki, &plain).map_err(|e| ("UnsupportedKey", e.to_string()))?;
        let now = now_ms();
        let rec = DataKeyRecord {
            id: id.clone(),
            master_key_id: master.id.clone(),
            thing_name: Some(thing.to_string()),
            certificate_id: Some(cert_id.clone()),
            algorithm: algorithm.name().to_string(),
            issued_ms: now,
            expires_ms: now + (self.data_key_lifetime_secs as i64) * 1000,
            status: "active".into(),
        };
        self.store.put_data_key(&rec).map_err(|e| ("InternalError", e.to_string()))?;
        self.audit(
            "IssueDataKey",
            Some(&master.id),
            Some(&id),
            &cert_id,
            json!({ "thing": thing, "algorithm": rec.algorithm }),
        );
        Ok(json!({
            "keyId": id,
            "wrappedKey": b64().encode(&wrapped),
            "algorithm": rec.algorithm,
            "expiresAt": objects::xml::iso8601(rec.expires_ms),
            "ciphertextBlob": b64().encode(&blob),
            "encryptionContext": context,
            "masterKeyId": arn,
        }))
    }
}

/// SubjectPublicKeyInfo DER of a PEM public key (or of a PEM certificate).
fn public_key_der(pem_text: &str) -> Option<Vec<u8>> {
    let block = pem::parse(pem_text.trim()).ok()?;
    match block.tag() {
        "PUBLIC KEY" => Some(block.contents().to_vec()),
        "CERTIFICATE" => keys::wrap::spki_from_certificate(block.contents()).ok(),
        _ => None,
    }
}

/// The root key master key material is sealed with: `THINGPORT_ROOT_KEY`
/// (base64 of 32 bytes) or the file (created 0600 on first start).
pub fn load_root_key(path: &std::path::Path) -> anyhow::Result<[u8; 32]> {
    let text = match std::env::var("THINGPORT_ROOT_KEY") {
        Ok(v) if !v.is_empty() => v,
        _ => match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = rand::random();
                crate::datadir::write_secret(path, b64().encode(key).as_bytes())?;
                return Ok(key);
            }
            Err(e) => return Err(anyhow::anyhow!("cannot read the root key {}: {e}", path.display())),
        },
    };
    let bytes = b64().decode(text.trim()).map_err(|_| anyhow::anyhow!("the root key must be base64 of 32 bytes"))?;
    bytes.try_into().map_err(|_| anyhow::anyhow!("the root key must be base64 of 32 bytes"))
}
