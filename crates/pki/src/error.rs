//! The one error type of the crate.
//!
//! Every message is written for the person who has to fix the input (an operator
//! loading a CA, a device maker sending a CSR): it says what was wrong and, where it
//! helps, what is accepted instead. No message ever contains key material; at most
//! it names a key's algorithm and size.

/// Everything that can go wrong while generating, loading, issuing or parsing.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// The input is not PEM, or it holds no block of the expected kind.
    #[error("not a PEM {expected}: {reason}")]
    NotPem {
        /// What was looked for, e.g. "certificate" or "certificate request".
        expected: &'static str,
        /// Why the input was refused.
        reason: String,
    },

    /// A certificate's DER could not be parsed as X.509.
    #[error("malformed certificate: {0}")]
    MalformedCertificate(String),

    /// A certificate signing request's DER could not be parsed as PKCS#10.
    #[error("malformed certificate signing request: {0}")]
    MalformedCsr(String),

    /// The CSR's self-signature does not verify with the public key it carries.
    #[error("CSR signature does not verify: the request was altered or was not signed by the key it contains")]
    CsrSignatureInvalid,

    /// An RSA key is shorter than 2048 bits.
    #[error("RSA keys must be at least 2048 bits (got {bits})")]
    RsaKeyTooSmall {
        /// Size of the modulus that was offered.
        bits: u32,
    },

    /// An RSA key is longer than the 8192 bits the TLS stack can verify.
    #[error("RSA keys may be at most 8192 bits (got {bits})")]
    RsaKeyTooLarge {
        /// Size of the modulus that was offered.
        bits: u32,
    },

    /// A public or private key uses an algorithm or curve Thingport does not accept.
    #[error("unsupported key algorithm {0}; accepted: RSA 2048-8192 bits, EC P-256, P-384, P-521")]
    UnsupportedKeyAlgorithm(String),

    /// A signature uses an algorithm Thingport does not verify (e.g. SHA-1 or MD5).
    #[error("unsupported signature algorithm {0}; accepted: RSA PKCS#1 v1.5 or PSS and ECDSA with SHA-256, SHA-384 or SHA-512, Ed25519")]
    UnsupportedSignatureAlgorithm(String),

    /// The PEM holds a password-protected private key.
    #[error("encrypted private keys are not supported; decrypt it first, e.g. `openssl pkey -in key.pem -out key-plain.pem`")]
    EncryptedPrivateKey,

    /// A private key could not be read.
    #[error("invalid private key: {0}")]
    InvalidPrivateKey(String),

    /// The private key given for a CA does not belong to the CA certificate.
    #[error("the private key does not match the CA certificate's public key")]
    KeyMismatch,

    /// A certificate loaded as a CA is not allowed to sign certificates.
    #[error("not a CA certificate: {0}")]
    NotCertificateAuthority(String),

    /// A CA certificate that is a CA but cannot be issued from faithfully.
    #[error("this CA certificate cannot be used for issuing: {0}")]
    UnsupportedCaCertificate(String),

    /// A subject field is empty or not encodable.
    #[error("invalid subject field {field}: {reason}")]
    InvalidSubject {
        /// The offending attribute, e.g. "country".
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },

    /// A hostname for a server certificate is neither an IP address nor a DNS name.
    #[error("invalid hostname {hostname:?}: {reason}")]
    InvalidHostname {
        /// The hostname as given.
        hostname: String,
        /// Why it was refused.
        reason: String,
    },

    /// A server certificate was requested without any hostname.
    #[error("a server certificate needs at least one hostname or IP address")]
    NoHostnames,

    /// A validity period is zero or too long to represent.
    #[error("invalid validity: {0}")]
    InvalidValidity(String),

    /// A key type name was not recognised.
    #[error("unknown key type {given:?}; accepted: {accepted}")]
    UnknownKeyType {
        /// The name as given.
        given: String,
        /// The accepted names, comma separated.
        accepted: &'static str,
    },

    /// Generating a key failed inside the crypto library.
    #[error("key generation failed: {0}")]
    KeyGeneration(String),

    /// Building or signing a certificate or CSR failed.
    #[error("certificate generation failed: {0}")]
    Generation(String),
}

impl From<rcgen::Error> for PkiError {
    fn from(e: rcgen::Error) -> Self {
        // rcgen's messages describe parameters and algorithms, never key bytes.
        PkiError::Generation(e.to_string())
    }
}
