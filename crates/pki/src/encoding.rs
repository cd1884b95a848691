//! PEM/DER conversion and the AWS-style certificate id.
//!
//! Certificates travel as PEM over the HTTP API and on disk but are stored,
//! compared and hashed as DER. AWS IoT names a certificate by the SHA-256 of its
//! DER, and devices, policies and the CLI all refer to certificates by that id,
//! so it is computed in exactly one place.

use aws_lc_rs::digest;

use crate::PkiError;

/// SHA-256 of the DER, 64 lowercase hex chars — AWS IoT's certificate id.
pub fn certificate_id(der: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, der).as_ref())
}

/// Parse the first CERTIFICATE block of a PEM string; returns DER bytes.
///
/// Other blocks (keys, parameters) before it are skipped. The DER is not checked
/// to be a valid X.509 certificate; use [`crate::parse_certificate`] for that.
pub fn pem_to_der(pem: &str) -> Result<Vec<u8>, PkiError> {
    first_block(pem, &["CERTIFICATE", "X509 CERTIFICATE"], "certificate")
}

/// DER certificate to PEM (`-----BEGIN CERTIFICATE-----`, LF line endings).
pub fn der_to_pem(der: &[u8]) -> String {
    encode_pem("CERTIFICATE", der)
}

/// Parse the first CERTIFICATE REQUEST block of a PEM string; returns DER bytes.
pub fn csr_pem_to_der(pem: &str) -> Result<Vec<u8>, PkiError> {
    first_block(pem, &["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"], "certificate request")
}

/// Encodes one PEM block with LF line endings (the `pem` crate defaults to CRLF).
pub(crate) fn encode_pem(tag: &str, der: &[u8]) -> String {
    let block = pem::Pem::new(tag, der);
    pem::encode_config(&block, pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF))
}

fn first_block(pem: &str, tags: &[&str], expected: &'static str) -> Result<Vec<u8>, PkiError> {
    let blocks = pem::parse_many(pem).map_err(|e| PkiError::NotPem { expected, reason: e.to_string() })?;
    if let Some(block) = blocks.iter().find(|b| tags.contains(&b.tag())) {
        if block.contents().is_empty() {
            return Err(PkiError::NotPem { expected, reason: format!("the {} block is empty", block.tag()) });
        }
        return Ok(block.contents().to_vec());
    }
    let reason = if blocks.is_empty() {
        format!("no -----BEGIN {}----- block found", tags[0])
    } else {
        let found: Vec<&str> = blocks.iter().map(|b| b.tag()).collect();
        format!("no {} block found (found: {})", tags[0], found.join(", "))
    };
    Err(PkiError::NotPem { expected, reason })
}
