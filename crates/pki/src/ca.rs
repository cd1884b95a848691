//! The Thingport certificate authority: one root that signs the broker's TLS
//! server certificate and every device certificate.
//!
//! AWS IoT offers two ways to get a device identity, and so does Thingport:
//! `CreateKeysAndCertificate` ([`CertificateAuthority::issue_device_certificate`],
//! the server makes the key) and `CreateCertificateFromCsr`
//! ([`CertificateAuthority::sign_csr`], the key never leaves the device). Both
//! produce client-auth certificates valid until 2049-12-31T23:59:59Z, as AWS's
//! are. The broker's listeners authenticate devices by chaining to this root.
//!
//! Certificates are built with rcgen; everything rcgen does not check on its own
//! (the CSR's key and signature, the CA key matching the CA certificate, the
//! CA name being reproduced byte for byte) is checked here before signing.

use std::fmt;
use std::net::IpAddr;

use rcgen::string::{BmpString, Ia5String, PrintableString, UniversalString};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName as RcgenDn, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber, SubjectPublicKeyInfo, PKCS_ECDSA_P256_SHA256,
};
use rustls_pki_types::CertificateDer;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

use crate::encoding::{certificate_id, csr_pem_to_der, der_to_pem, pem_to_der};
use crate::inspect::{attribute_string, parse_certificate, CertificateInfo};
use crate::keys::{generate_key_pair, normalize_private_key, KeyType, PrivateKeyPem};
use crate::verify::{parse_x509, verify_signature, verify_signed_by, KeyKind};
use crate::PkiError;

/// How far back `notBefore` is set, so that devices with slightly slow clocks
/// accept a certificate issued a moment ago.
const CLOCK_SKEW: Duration = Duration::hours(1);

/// AWS IoT's device certificates all end here; Thingport's do too.
const DEVICE_NOT_AFTER: OffsetDateTime = datetime!(2049-12-31 23:59:59 UTC);

/// Common name used when a device certificate is requested with an empty subject.
const DEFAULT_DEVICE_CN: &str = "Thingport Device Certificate";

/// Lifetime of a generated root.
const CA_YEARS: i32 = 20;

/// Subject fields for a device certificate. Empty (`None`) fields are left out;
/// a subject with no field at all gets CN "Thingport Device Certificate".
#[derive(Debug, Clone, Default)]
pub struct Subject {
    /// CN
    pub common_name: Option<String>,
    /// O
    pub organization: Option<String>,
    /// OU
    pub organizational_unit: Option<String>,
    /// C, two letters (ISO 3166)
    pub country: Option<String>,
    /// ST
    pub state: Option<String>,
    /// L
    pub locality: Option<String>,
    /// serialNumber attribute (PrintableString characters only)
    pub serial_number: Option<String>,
}

impl Subject {
    /// Subject with only a common name.
    pub fn with_common_name(common_name: impl Into<String>) -> Self {
        Subject { common_name: Some(common_name.into()), ..Subject::default() }
    }

    fn to_rcgen(&self) -> Result<RcgenDn, PkiError> {
        fn value<'a>(field: &'static str, v: &'a Option<String>) -> Result<Option<&'a str>, PkiError> {
            match v.as_deref() {
                None => Ok(None),
                Some(s) if s.trim().is_empty() => {
                    Err(PkiError::InvalidSubject { field, reason: "must not be empty (leave it out instead)".into() })
                }
                Some(s) => Ok(Some(s)),
            }
        }

        let mut dn = RcgenDn::new();
        if let Some(c) = value("country", &self.country)? {
            if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(PkiError::InvalidSubject {
                    field: "country",
                    reason: format!("must be a two-letter ISO 3166 code such as \"DE\" (got {c:?})"),
                });
            }
            dn.push(DnType::CountryName, DnValue::PrintableString(PrintableString::try_from(c.to_ascii_uppercase())?));
        }
        if let Some(v) = value("state", &self.state)? {
            dn.push(DnType::StateOrProvinceName, v);
        }
        if let Some(v) = value("locality", &self.locality)? {
            dn.push(DnType::LocalityName, v);
        }
        if let Some(v) = value("organization", &self.organization)? {
            dn.push(DnType::OrganizationName, v);
        }
        if let Some(v) = value("organizational_unit", &self.organizational_unit)? {
            dn.push(DnType::OrganizationalUnitName, v);
        }
        if let Some(v) = value("common_name", &self.common_name)? {
            dn.push(DnType::CommonName, v);
        }
        if let Some(v) = value("serial_number", &self.serial_number)? {
            let printable = PrintableString::try_from(v).map_err(|_| PkiError::InvalidSubject {
                field: "serial_number",
                reason: "may only contain letters, digits, spaces and '()+,-./:=?".into(),
            })?;
            dn.push(DnType::CustomDnType(vec![2, 5, 4, 5]), DnValue::PrintableString(printable));
        }
        if dn.iter().next().is_none() {
            dn.push(DnType::CommonName, DEFAULT_DEVICE_CN);
        }
        Ok(dn)
    }
}

/// A freshly issued certificate together with its new private key.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The certificate's private key, PKCS#8 PEM.
    pub key: PrivateKeyPem,
}

impl IssuedCertificate {
    /// The certificate as DER.
    pub fn cert_der(&self) -> Result<Vec<u8>, PkiError> {
        pem_to_der(&self.cert_pem)
    }

    /// The AWS-style certificate id (SHA-256 of the DER, lowercase hex).
    pub fn certificate_id(&self) -> Result<String, PkiError> {
        Ok(certificate_id(&self.cert_der()?))
    }
}

/// The root certificate and its key. Cheap to share behind an `Arc`: issuing only
/// needs `&self`.
pub struct CertificateAuthority {
    cert_pem: String,
    cert_der: Vec<u8>,
    key: PrivateKeyPem,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("certificate_id", &certificate_id(&self.cert_der))
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// New self-signed root: EC P-256, CN = common_name, O = "Thingport", basicConstraints CA:true (pathlen 0 is fine), keyUsage keyCertSign+cRLSign, validity 20 years, random 128-bit serial.
    pub fn generate(common_name: &str) -> Result<Self, PkiError> {
        if common_name.trim().is_empty() {
            return Err(PkiError::InvalidSubject {
                field: "common_name",
                reason: "the CA needs a non-empty common name".into(),
            });
        }
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| PkiError::KeyGeneration(e.to_string()))?;

        let now = now();
        let mut params = CertificateParams::default();
        let mut dn = RcgenDn::new();
        dn.push(DnType::OrganizationName, "Thingport");
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.serial_number = Some(random_serial()?);
        params.not_before = now - CLOCK_SKEW;
        params.not_after =
            now.replace_year(now.year() + CA_YEARS).unwrap_or(now + Duration::days(365 * i64::from(CA_YEARS) + 5));
        let cert = params.self_signed(&key)?;

        let key_pem = PrivateKeyPem::from_pkcs8_der(key.serialized_der());
        Self::from_parts(cert.der().to_vec(), key_pem)
    }

    /// Load from PEM (cert + PKCS#8/SEC1/PKCS#1 key); verify the key matches the cert's public key.
    ///
    /// The certificate must be a CA (basicConstraints CA:TRUE, and keyCertSign if
    /// it has a keyUsage extension). If `cert_pem` holds several certificates, the
    /// first is the CA.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let der = pem_to_der(cert_pem)?;
        let key = normalize_private_key(key_pem)?;
        Self::from_parts(der, key)
    }

    fn from_parts(cert_der: Vec<u8>, key: PrivateKeyPem) -> Result<Self, PkiError> {
        let key_pair = key.key_pair()?;
        {
            let cert = parse_x509(&cert_der)?;
            let is_ca = cert
                .basic_constraints()
                .map_err(|e| PkiError::MalformedCertificate(format!("basicConstraints: {e}")))?
                .is_some_and(|bc| bc.value.ca);
            if !is_ca {
                return Err(PkiError::NotCertificateAuthority("basicConstraints CA:TRUE is missing".into()));
            }
            let key_usage = cert.key_usage().map_err(|e| PkiError::MalformedCertificate(format!("keyUsage: {e}")))?;
            if key_usage.is_some_and(|ku| !ku.value.key_cert_sign()) {
                return Err(PkiError::NotCertificateAuthority("its keyUsage does not include keyCertSign".into()));
            }
            if key_pair.public_key_raw() != cert.public_key().subject_public_key.data.as_ref() {
                return Err(PkiError::KeyMismatch);
            }
        }

        let issuer = Issuer::from_ca_cert_der(&CertificateDer::from(cert_der.as_slice()), key_pair)
            .map_err(|e| {
                PkiError::UnsupportedCaCertificate(format!(
                    "its subject name cannot be reproduced ({e}); multi-valued RDNs and non-string attributes are not supported"
                ))
            })?;

        let ca = CertificateAuthority { cert_pem: der_to_pem(&cert_der), cert_der, key, issuer };
        ca.self_test()?;
        Ok(ca)
    }

    /// Issues a throw-away certificate and checks that it chains to our root:
    /// same issuer name bytes as the root's subject, and a valid signature.
    fn self_test(&self) -> Result<(), PkiError> {
        let mut params =
            self.leaf_params(RcgenDn::new(), now() + Duration::minutes(5), ExtendedKeyUsagePurpose::ClientAuth, false)?;
        params.distinguished_name.push(DnType::CommonName, "Thingport CA self-test");
        let probe = params.signed_by(self.issuer.key(), &self.issuer)?;
        let probe_der = probe.der().to_vec();
        {
            let probe_cert = parse_x509(&probe_der)?;
            let ca_cert = parse_x509(&self.cert_der)?;
            if probe_cert.issuer().as_raw() != ca_cert.subject().as_raw() {
                return Err(PkiError::UnsupportedCaCertificate(format!(
                    "its subject name \"{}\" would not be reproduced byte for byte in issued certificates (repeated attributes are not supported)",
                    ca_cert.subject()
                )));
            }
        }
        if !verify_signed_by(&probe_der, &self.cert_der)? {
            return Err(PkiError::KeyMismatch);
        }
        Ok(())
    }

    /// The root certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The root certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The root's private key, PKCS#8 PEM.
    pub fn key_pem(&self) -> &PrivateKeyPem {
        &self.key
    }

    /// The root certificate's id (SHA-256 of its DER).
    pub fn certificate_id(&self) -> String {
        certificate_id(&self.cert_der)
    }

    /// Parsed facts about the root certificate (validity, subject, key).
    pub fn info(&self) -> Result<CertificateInfo, PkiError> {
        parse_certificate(&self.cert_der)
    }

    /// Server certificate for the TLS listeners: new EC P-256 key, SANs: each entry parsed as an IP address (v4/v6) becomes an IP SAN, others DNS SANs; CN = first hostname; EKU serverAuth; validity `days`.
    ///
    /// IPv6 addresses may be written with brackets (`[::1]`).
    pub fn issue_server_certificate(&self, hostnames: &[String], days: u32) -> Result<IssuedCertificate, PkiError> {
        if hostnames.is_empty() {
            return Err(PkiError::NoHostnames);
        }
        if days == 0 {
            return Err(PkiError::InvalidValidity("a server certificate must be valid for at least 1 day".into()));
        }
        let not_after = now()
            .checked_add(Duration::days(i64::from(days)))
            .filter(|t| t.year() <= 9999)
            .ok_or_else(|| PkiError::InvalidValidity(format!("{days} days reaches past the year 9999")))?;

        let mut sans = Vec::with_capacity(hostnames.len());
        for hostname in hostnames {
            sans.push(san_for(hostname)?);
        }

        let mut dn = RcgenDn::new();
        dn.push(DnType::CommonName, hostnames[0].trim());
        let mut params = self.leaf_params(dn, not_after, ExtendedKeyUsagePurpose::ServerAuth, false)?;
        params.subject_alt_names = sans;

        let key = generate_key_pair(KeyType::EcP256)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCertificate {
            cert_pem: der_to_pem(cert.der()),
            key: PrivateKeyPem::from_pkcs8_der(key.serialized_der()),
        })
    }

    /// One-click device identity (AWS CreateKeysAndCertificate): new key of `kind`, certificate with the given subject, EKU clientAuth, validity until 2049-12-31T23:59:59Z as AWS does.
    pub fn issue_device_certificate(&self, kind: KeyType, subject: &Subject) -> Result<IssuedCertificate, PkiError> {
        let dn = subject.to_rcgen()?;
        let params = self.leaf_params(dn, DEVICE_NOT_AFTER, ExtendedKeyUsagePurpose::ClientAuth, kind.is_rsa())?;
        let key = generate_key_pair(kind)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCertificate {
            cert_pem: der_to_pem(cert.der()),
            key: PrivateKeyPem::from_pkcs8_der(key.serialized_der()),
        })
    }

    /// Sign a device CSR (AWS CreateCertificateFromCsr).
    ///
    /// Checks, in order: the PEM holds a `CERTIFICATE REQUEST`; the key is RSA
    /// 2048-8192 bits or EC P-256/P-384/P-521; the CSR's self-signature verifies.
    /// The certificate keeps the CSR's subject (every string attribute, in order;
    /// when an attribute type repeats, the first value is kept) and the CSR's
    /// public key. Everything else is ours: no SANs, clientAuth, CA:FALSE,
    /// random serial, valid until 2049-12-31T23:59:59Z. Requested extensions are
    /// ignored. Returns the certificate as PEM.
    pub fn sign_csr(&self, csr_pem: &str) -> Result<String, PkiError> {
        let csr_der = csr_pem_to_der(csr_pem)?;
        let (rest, csr) =
            X509CertificationRequest::from_der(&csr_der).map_err(|e| PkiError::MalformedCsr(e.to_string()))?;
        if !rest.is_empty() {
            return Err(PkiError::MalformedCsr(format!("{} unexpected bytes after the request", rest.len())));
        }
        let info = &csr.certification_request_info;
        let spki = &info.subject_pki;

        let kind = KeyKind::of(spki);
        kind.check_device_key()?;
        if !verify_signature(spki, &csr.signature_algorithm, csr.signature_value.data.as_ref(), info.raw)? {
            return Err(PkiError::CsrSignatureInvalid);
        }

        // rcgen matches the SPKI's own algorithm identifier (curve included), so
        // the public key is written back exactly as the device sent it.
        let public_key = SubjectPublicKeyInfo::from_der(spki.raw)
            .map_err(|e| PkiError::UnsupportedKeyAlgorithm(format!("{} ({e})", kind.algorithm_name())))?;

        let dn = csr_subject(&info.subject)?;
        let params = self.leaf_params(
            dn,
            DEVICE_NOT_AFTER,
            ExtendedKeyUsagePurpose::ClientAuth,
            matches!(kind, KeyKind::Rsa { .. }),
        )?;
        let cert = params.signed_by(&public_key, &self.issuer)?;

        // Belt and braces: the certificate must carry the CSR's key unchanged.
        let issued = parse_x509(cert.der())?;
        if issued.public_key().raw != spki.raw {
            return Err(PkiError::Generation(
                "the issued certificate's public key differs from the CSR's; refusing to return it".into(),
            ));
        }
        Ok(der_to_pem(cert.der()))
    }

    /// Parameters shared by all leaf certificates.
    fn leaf_params(
        &self,
        dn: RcgenDn,
        not_after: OffsetDateTime,
        eku: ExtendedKeyUsagePurpose,
        rsa_key: bool,
    ) -> Result<CertificateParams, PkiError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = dn;
        params.serial_number = Some(random_serial()?);
        params.not_before = now() - CLOCK_SKEW;
        params.not_after = not_after;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = if rsa_key {
            vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment]
        } else {
            vec![KeyUsagePurpose::DigitalSignature]
        };
        params.extended_key_usages = vec![eku];
        params.use_authority_key_identifier_extension = true;
        Ok(params)
    }
}

fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

/// 16 random bytes, top bit clear (positive, no DER padding) and next bit set
/// (always 16 bytes long).
fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| PkiError::Generation("the system random generator failed".into()))?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

/// One server hostname to a SAN: IP addresses (optionally in brackets) become
/// IP SANs, everything else must be a DNS name (a leading `*.` is allowed).
fn san_for(hostname: &str) -> Result<SanType, PkiError> {
    let h = hostname.trim();
    let invalid = |reason: &str| PkiError::InvalidHostname { hostname: hostname.to_owned(), reason: reason.to_owned() };
    if h.is_empty() {
        return Err(invalid("empty"));
    }
    let unbracketed = h.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(h);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let name = h.strip_suffix('.').unwrap_or(h);
    if name.len() > 253 {
        return Err(invalid("longer than 253 characters"));
    }
    for (i, label) in name.split('.').enumerate() {
        if label.is_empty() {
            return Err(invalid("contains an empty label"));
        }
        if label == "*" && i == 0 {
            continue;
        }
        if label.len() > 63 {
            return Err(invalid("a label is longer than 63 characters"));
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(invalid(
                "only letters, digits, '-', '_' and '.' are allowed (use punycode for international names)",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid("a label starts or ends with '-'"));
        }
    }
    let ia5 = Ia5String::try_from(name).map_err(|e| invalid(&e.to_string()))?;
    Ok(SanType::DnsName(ia5))
}

/// Copies a CSR's subject into an rcgen name, keeping the order and string types.
fn csr_subject(name: &X509Name<'_>) -> Result<RcgenDn, PkiError> {
    let mut dn = RcgenDn::new();
    for attr in name.iter_attributes() {
        let oid = attr.attr_type();
        let invalid = |reason: String| PkiError::InvalidSubject { field: "CSR subject", reason };
        let components: Vec<u64> =
            oid.iter().ok_or_else(|| invalid(format!("attribute type {oid} is not a valid OID")))?.collect();
        let ty = DnType::from_oid(&components);
        if dn.get(&ty).is_some() {
            // rcgen keeps one value per attribute type; the first one wins.
            continue;
        }
        let value = attr.attr_value();
        let text = || attribute_string(attr).ok_or_else(|| invalid(format!("attribute {oid} is not a valid string")));
        let dn_value = match value.header.tag() {
            Tag::Utf8String => DnValue::Utf8String(text()?),
            Tag::PrintableString => DnValue::PrintableString(
                PrintableString::try_from(text()?).map_err(|e| invalid(format!("attribute {oid}: {e}")))?,
            ),
            Tag::Ia5String => {
                DnValue::Ia5String(Ia5String::try_from(text()?).map_err(|e| invalid(format!("attribute {oid}: {e}")))?)
            }
            Tag::BmpString => DnValue::BmpString(
                BmpString::from_utf16be(value.data.to_vec()).map_err(|e| invalid(format!("attribute {oid}: {e}")))?,
            ),
            Tag::UniversalString => DnValue::UniversalString(
                UniversalString::from_utf32be(value.data.to_vec())
                    .map_err(|e| invalid(format!("attribute {oid}: {e}")))?,
            ),
            // NumericString, VisibleString, T61String: rcgen cannot write these
            // tags, so the text is kept as UTF8String.
            Tag::NumericString | Tag::VisibleString | Tag::T61String => DnValue::Utf8String(text()?),
            other => return Err(invalid(format!("attribute {oid} has a non-string value ({other})"))),
        };
        dn.push(ty, dn_value);
    }
    Ok(dn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_are_checked() {
        assert!(matches!(san_for("localhost"), Ok(SanType::DnsName(_))));
        assert!(matches!(san_for("*.example.com"), Ok(SanType::DnsName(_))));
        assert!(matches!(san_for("[::1]"), Ok(SanType::IpAddress(_))));
        assert!(matches!(san_for("10.0.0.1"), Ok(SanType::IpAddress(_))));
        for bad in ["", "a..b", "exa mple.com", "-a.com", "a.*.com", "bücher.de"] {
            let err = san_for(bad).unwrap_err();
            assert!(matches!(err, PkiError::InvalidHostname { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn serials_are_sixteen_positive_bytes() {
        for _ in 0..64 {
            let s = random_serial().unwrap();
            assert_eq!(s.len(), 16);
            assert_eq!(s.as_ref()[0] & 0xc0, 0x40);
        }
    }

    #[test]
    fn subject_validation() {
        let bad_country = Subject { country: Some("Germany".into()), ..Subject::default() };
        assert!(bad_country.to_rcgen().unwrap_err().to_string().contains("two-letter"));
        let empty_cn = Subject::with_common_name("  ");
        assert!(empty_cn.to_rcgen().is_err());
        let default = Subject::default().to_rcgen().unwrap();
        assert_eq!(default.get(&DnType::CommonName), Some(&DnValue::Utf8String(DEFAULT_DEVICE_CN.into())));
    }
}
