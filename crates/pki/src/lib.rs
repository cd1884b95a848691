//! Thingport's public-key infrastructure: a private certificate authority that
//! issues the broker's TLS server certificate and device client certificates the
//! way AWS IoT does, plus the certificate parsing the broker needs to turn a
//! client certificate into policy variables.
//!
//! Crypto is aws-lc-rs only (through rcgen for building certificates and
//! x509-parser for reading them), the same provider rustls uses in the server.
//! Private keys only ever leave this crate as [`PrivateKeyPem`], whose `Debug`
//! prints `<private key>`, and no error message carries key material.
//!
//! ```
//! # fn main() -> Result<(), pki::PkiError> {
//! let ca = pki::CertificateAuthority::generate("Thingport Root CA")?;
//! let device = ca.issue_device_certificate(
//!     pki::KeyType::EcP256,
//!     &pki::Subject::with_common_name("sensor-1"),
//! )?;
//! let der = pki::pem_to_der(&device.cert_pem)?;
//! assert!(pki::verify_signed_by(&der, ca.cert_der())?);
//! let info = pki::parse_certificate(&der)?;
//! assert_eq!(info.subject.common_name.as_deref(), Some("sensor-1"));
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod ca;
mod encoding;
mod error;
mod inspect;
mod keys;
mod verify;

pub use ca::{CertificateAuthority, IssuedCertificate, Subject};
pub use encoding::{certificate_id, csr_pem_to_der, der_to_pem, pem_to_der};
pub use error::PkiError;
pub use inspect::{parse_certificate, CertificateInfo, DistinguishedName};
pub use keys::{generate_key, make_csr, normalize_private_key, KeyType, PrivateKeyPem};
pub use verify::verify_signed_by;
