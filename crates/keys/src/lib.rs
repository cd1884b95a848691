//! The cryptographic core of Thingport's payload keys: data keys that only
//! one device can unwrap, KMS-style master keys, and an envelope format for
//! payloads and files.
//!
//! * [`wrap`](mod@wrap) — wraps a data key for a device's certificate public
//!   key (RSA-OAEP-SHA-256, or ECIES v1 on P-256 / P-384) and unwraps it with
//!   the device's private key.
//! * [`sealed`] — seals master key material at rest under the root key, and
//!   makes / opens KMS-style ciphertext blobs bound to an encryption context.
//! * [`envelope`] — a versioned, chunked, streaming AES-256-GCM envelope,
//!   optionally signed with the device's key.
//!
//! All crypto is aws-lc-rs (the one provider of the workspace). The crate does
//! no I/O. Key material is held in [`zeroize::Zeroizing`] buffers and never
//! appears in `Debug` output or in errors. The byte formats are specified in
//! `docs/payload-keys.md`; `examples/python/payload_keys.py` is a reference
//! implementation for devices.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use keys::envelope::{self, EnvelopeHeader, Signer};
//!
//! // A device identity (in production: the device's certificate and key).
//! let ca = pki::CertificateAuthority::generate("Example CA")?;
//! let device = ca.issue_device_certificate(pki::KeyType::EcP256, &pki::Subject::with_common_name("cam-7"))?;
//! let spki = keys::wrap::spki_from_certificate(&device.cert_der()?)?;
//!
//! // Server: a data key, wrapped so that only the device can unwrap it.
//! let data_key = [42u8; 32];
//! let (algorithm, wrapped) = keys::wrap::wrap(&spki, &data_key)?;
//! assert_eq!(algorithm.name(), "ECIES_P256_HKDF_SHA256_AES_256_GCM");
//!
//! // Device: unwrap, encrypt and sign a payload.
//! let key = keys::wrap::unwrap(device.key.expose(), &wrapped)?;
//! let mut header = EnvelopeHeader::new("dk-1", br#"{"thing":"cam-7"}"#.to_vec());
//! header.signed = true;
//! let signer = Signer::from_pem(device.key.expose())?;
//! let sealed = envelope::encrypt(&key, header, b"frame", Some(&signer))?;
//!
//! // Cloud consumer: decrypt and check the device's signature.
//! let (header, plaintext, signed) = envelope::decrypt(&data_key, &sealed, Some(&spki))?;
//! assert_eq!((header.key_id.as_str(), plaintext.as_slice(), signed), ("dk-1", &b"frame"[..], true));
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod envelope;
mod error;
mod gcm;
mod keyinfo;
pub mod sealed;
pub mod wrap;

pub use envelope::{decrypt, encrypt, parse_header, Decryptor, Encryptor, EnvelopeHeader, Signer};
pub use error::KeyError;
pub use sealed::{blob_key, decrypt_blob, encrypt_blob, open, seal, EncryptionContext};
pub use wrap::{algorithm_for, spki_from_certificate, unwrap, wrap, WrapAlgorithm};
pub use zeroize::Zeroizing;
