//! The one error type of the crate.
//!
//! Messages say what was wrong with the input and, where it helps, what is
//! accepted instead. No message ever carries key material, plaintext or a
//! decrypted byte; failures of authenticated decryption are deliberately
//! uninformative (one variant, no detail) so that they cannot serve as an
//! oracle.

/// Everything that can go wrong while wrapping, sealing or enveloping.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// A public or private key uses an algorithm, curve or size this crate does not wrap for or sign with.
    #[error("unsupported key: {0}; supported: RSA 2048-4096 bits, EC P-256, EC P-384")]
    UnsupportedKey(String),

    /// A certificate could not be parsed as X.509 DER.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),

    /// A SubjectPublicKeyInfo could not be parsed or holds an invalid key.
    #[error("invalid public key: {0}")]
    InvalidPublicKey(String),

    /// A private key could not be read (not PEM, encrypted, malformed).
    #[error("invalid private key: {0}")]
    InvalidPrivateKey(String),

    /// A data key or key material has the wrong length.
    #[error("invalid key length: {0}")]
    InvalidKeyLength(String),

    /// A wrapped data key could not be unwrapped: wrong private key, altered or malformed wrapped bytes.
    #[error("the wrapped key could not be unwrapped (wrong private key, or the wrapped bytes were altered)")]
    UnwrapFailed,

    /// A ciphertext blob or sealed value is malformed, was altered, or the key or encryption context is wrong.
    #[error("invalid ciphertext (malformed, altered, or the key or encryption context does not match)")]
    InvalidCiphertext,

    /// A plaintext is longer than the operation allows.
    #[error("plaintext too large: {len} bytes (at most {max})")]
    TooLarge {
        /// Length that was offered.
        len: usize,
        /// The largest length accepted.
        max: usize,
    },

    /// An argument is out of range (a key id too long, a chunk size out of bounds, …).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// An envelope's structure is wrong: bad magic, unknown flags, a length out of range, a chunk after the final one.
    #[error("malformed envelope: {0}")]
    MalformedEnvelope(String),

    /// A chunk of an envelope failed authentication: wrong data key, altered, reordered or out of place.
    #[error("envelope authentication failed (wrong data key, or the envelope was altered or reordered)")]
    AuthenticationFailed,

    /// The envelope ended before its final chunk (or before its signature).
    #[error("envelope truncated: it ended before the final chunk or the signature")]
    Truncated,

    /// Bytes follow the end of the envelope.
    #[error("unexpected data after the end of the envelope")]
    TrailingData,

    /// The envelope is signed (or the header asks for a signature) but no signer key was given.
    #[error("the envelope is signed: a signer is required (the device's certificate public key to verify, its private key to sign)")]
    SignatureRequired,

    /// A signer key was given but the envelope is not signed (or the header does not ask for a signature).
    #[error("the envelope is not signed, but a signer key was given")]
    NotSigned,

    /// The envelope's signature does not verify with the given public key.
    #[error("envelope signature does not verify with the given public key")]
    SignatureInvalid,

    /// The crypto library failed internally (random number generation, key schedule).
    #[error("internal crypto failure: {0}")]
    Crypto(&'static str),
}
