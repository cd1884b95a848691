//! Reading certificates: the facts the broker needs about a connecting device.
//!
//! AWS IoT policies can refer to `iot:Certificate.Subject.CommonName`,
//! `iot:Certificate.SerialNumber`, `iot:Certificate.Validity.NotAfter`,
//! `iot:Certificate.SubjectAlternativeName.DNSName` and friends. The broker
//! parses a client certificate once per connection with [`parse_certificate`]
//! and keeps the resulting [`CertificateInfo`], so that policy evaluation never
//! touches ASN.1.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::extensions::GeneralName;
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

use crate::encoding::certificate_id;
use crate::verify::{parse_x509, KeyKind};
use crate::PkiError;

/// Everything later policy variables need (AWS iot:Certificate.* variables).
#[derive(Debug, Clone, Serialize)]
pub struct CertificateInfo {
    /// SHA-256 of the DER in lowercase hex (the AWS certificate id).
    pub id: String,
    /// Serial number as lowercase hex, without DER sign padding.
    pub serial_number: String,
    /// Start of validity, unix seconds.
    pub not_before: i64,
    /// End of validity, unix seconds.
    pub not_after: i64,
    /// Subject attributes.
    pub subject: DistinguishedName,
    /// Issuer attributes.
    pub issuer: DistinguishedName,
    /// DNS names of the subjectAltName extension.
    pub san_dns: Vec<String>,
    /// IP addresses of the subjectAltName extension, in textual form.
    pub san_ip: Vec<String>,
    /// URIs of the subjectAltName extension.
    pub san_uri: Vec<String>,
    /// E-mail addresses (rfc822Name) of the subjectAltName extension.
    pub san_email: Vec<String>,
    /// "RSA" or "EC" ("Ed25519" or an OID description for other keys).
    pub key_algorithm: String,
    /// RSA modulus bits or EC curve bits (256, 384, 521); 0 when unknown.
    pub key_bits: u32,
    /// basicConstraints CA:TRUE.
    pub is_ca: bool,
    /// The DER SubjectPublicKeyInfo (to compare keys across certificates).
    pub subject_public_key_info_der: Vec<u8>,
}

/// The common attributes of an X.501 name. When an attribute occurs more than
/// once, the first occurrence is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DistinguishedName {
    /// CN (2.5.4.3)
    pub common_name: Option<String>,
    /// O (2.5.4.10)
    pub organization: Option<String>,
    /// OU (2.5.4.11)
    pub organizational_unit: Option<String>,
    /// C (2.5.4.6)
    pub country: Option<String>,
    /// ST (2.5.4.8)
    pub state: Option<String>,
    /// L (2.5.4.7)
    pub locality: Option<String>,
    /// serialNumber (2.5.4.5), the subject attribute, not the certificate serial
    pub serial_number: Option<String>,
    /// title (2.5.4.12)
    pub title: Option<String>,
    /// SN, surname (2.5.4.4)
    pub surname: Option<String>,
    /// GN, givenName (2.5.4.42)
    pub given_name: Option<String>,
    /// initials (2.5.4.43)
    pub initials: Option<String>,
    /// pseudonym (2.5.4.65)
    pub pseudonym: Option<String>,
    /// generationQualifier (2.5.4.44)
    pub generation_qualifier: Option<String>,
    /// dnQualifier (2.5.4.46)
    pub dn_qualifier: Option<String>,
    /// emailAddress (1.2.840.113549.1.9.1)
    pub email: Option<String>,
}

impl DistinguishedName {
    fn slot(&mut self, oid: &str) -> Option<&mut Option<String>> {
        Some(match oid {
            "2.5.4.3" => &mut self.common_name,
            "2.5.4.10" => &mut self.organization,
            "2.5.4.11" => &mut self.organizational_unit,
            "2.5.4.6" => &mut self.country,
            "2.5.4.8" => &mut self.state,
            "2.5.4.7" => &mut self.locality,
            "2.5.4.5" => &mut self.serial_number,
            "2.5.4.12" => &mut self.title,
            "2.5.4.4" => &mut self.surname,
            "2.5.4.42" => &mut self.given_name,
            "2.5.4.43" => &mut self.initials,
            "2.5.4.65" => &mut self.pseudonym,
            "2.5.4.44" => &mut self.generation_qualifier,
            "2.5.4.46" => &mut self.dn_qualifier,
            "1.2.840.113549.1.9.1" => &mut self.email,
            _ => return None,
        })
    }

    pub(crate) fn from_x509(name: &X509Name<'_>) -> Self {
        let mut dn = DistinguishedName::default();
        for attr in name.iter_attributes() {
            let oid = attr.attr_type().to_id_string();
            if let Some(slot) = dn.slot(&oid) {
                if slot.is_none() {
                    *slot = attribute_string(attr);
                }
            }
        }
        dn
    }
}

/// Decodes an attribute value of any ASN.1 string type. `None` for non-strings
/// or invalid encodings.
pub(crate) fn attribute_string(attr: &AttributeTypeAndValue<'_>) -> Option<String> {
    let value = attr.attr_value();
    let data = value.data;
    match value.header.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::NumericString | Tag::VisibleString => {
            std::str::from_utf8(data).ok().map(str::to_owned)
        }
        // T.61 is treated as Latin-1, which is what it holds in practice.
        Tag::T61String => Some(data.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString => {
            if data.len() % 2 != 0 {
                return None;
            }
            let units = data.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units).collect::<Result<String, _>>().ok()
        }
        Tag::UniversalString => {
            if data.len() % 4 != 0 {
                return None;
            }
            data.chunks_exact(4).map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))).collect()
        }
        _ => None,
    }
}

/// Parses a DER certificate into the facts policies and the API need.
pub fn parse_certificate(der: &[u8]) -> Result<CertificateInfo, PkiError> {
    let cert = parse_x509(der)?;

    let mut info = CertificateInfo {
        id: certificate_id(der),
        serial_number: serial_hex(cert.raw_serial()),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        subject: DistinguishedName::from_x509(cert.subject()),
        issuer: DistinguishedName::from_x509(cert.issuer()),
        san_dns: Vec::new(),
        san_ip: Vec::new(),
        san_uri: Vec::new(),
        san_email: Vec::new(),
        key_algorithm: String::new(),
        key_bits: 0,
        is_ca: false,
        subject_public_key_info_der: cert.public_key().raw.to_vec(),
    };

    let kind = KeyKind::of(cert.public_key());
    info.key_algorithm = kind.algorithm_name();
    info.key_bits = kind.bits();

    info.is_ca = cert
        .basic_constraints()
        .map_err(|e| PkiError::MalformedCertificate(format!("basicConstraints: {e}")))?
        .is_some_and(|bc| bc.value.ca);

    let san =
        cert.subject_alternative_name().map_err(|e| PkiError::MalformedCertificate(format!("subjectAltName: {e}")))?;
    if let Some(san) = san {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(s) => info.san_dns.push((*s).to_owned()),
                GeneralName::URI(s) => info.san_uri.push((*s).to_owned()),
                GeneralName::RFC822Name(s) => info.san_email.push((*s).to_owned()),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        info.san_ip.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    Ok(info)
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        16 => <[u8; 16]>::try_from(bytes).ok().map(|b| IpAddr::V6(Ipv6Addr::from(b))),
        _ => None,
    }
}

/// Serial number bytes as lowercase hex, leading zero bytes (DER sign padding) removed.
fn serial_hex(raw: &[u8]) -> String {
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len().saturating_sub(1));
    hex::encode(&raw[start..])
}
