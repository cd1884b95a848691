//! S3's error model: every failure is an HTTP status, an S3 error code and a
//! message, rendered once at the edge as S3's `<Error>` XML.

use std::fmt;

/// An S3 error response. `extra` holds the additional elements some errors
/// carry (`<BucketName>`, `<Key>`, `<X-Amz-Expires>`, `<ServerTime>`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Error {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub extra: Vec<(&'static str, String)>,
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for S3Error {}

impl S3Error {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> S3Error {
        S3Error { status, code, message: message.into(), extra: Vec::new() }
    }

    /// Add an element to the error body.
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> S3Error {
        self.extra.push((name, value.into()));
        self
    }

    pub fn no_such_bucket(bucket: &str) -> S3Error {
        S3Error::new(404, "NoSuchBucket", "The specified bucket does not exist").with("BucketName", bucket)
    }
    pub fn no_such_key(key: &str) -> S3Error {
        S3Error::new(404, "NoSuchKey", "The specified key does not exist.").with("Key", key)
    }
    pub fn no_such_upload(upload_id: &str) -> S3Error {
        S3Error::new(
            404,
            "NoSuchUpload",
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
        )
        .with("UploadId", upload_id)
    }
    pub fn access_denied(message: impl Into<String>) -> S3Error {
        S3Error::new(403, "AccessDenied", message)
    }
    pub fn invalid_argument(message: impl Into<String>) -> S3Error {
        S3Error::new(400, "InvalidArgument", message)
    }
    pub fn invalid_request(message: impl Into<String>) -> S3Error {
        S3Error::new(400, "InvalidRequest", message)
    }
    pub fn invalid_bucket_name(bucket: &str) -> S3Error {
        S3Error::new(400, "InvalidBucketName", "The specified bucket is not valid.").with("BucketName", bucket)
    }
    pub fn bucket_not_empty(bucket: &str) -> S3Error {
        S3Error::new(409, "BucketNotEmpty", "The bucket you tried to delete is not empty").with("BucketName", bucket)
    }
    pub fn bucket_already_owned(bucket: &str) -> S3Error {
        S3Error::new(
            409,
            "BucketAlreadyOwnedByYou",
            "Your previous request to create the named bucket succeeded and you already own it.",
        )
        .with("BucketName", bucket)
    }
    pub fn entity_too_large(max: u64) -> S3Error {
        S3Error::new(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
            .with("MaxSizeAllowed", max.to_string())
    }
    pub fn entity_too_small() -> S3Error {
        S3Error::new(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.")
    }
    pub fn incomplete_body() -> S3Error {
        S3Error::new(
            400,
            "IncompleteBody",
            "You did not provide the number of bytes specified by the Content-Length HTTP header.",
        )
    }
    pub fn bad_digest(message: impl Into<String>) -> S3Error {
        S3Error::new(400, "BadDigest", message)
    }
    pub fn invalid_digest() -> S3Error {
        S3Error::new(400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
    }
    pub fn invalid_range(size: u64) -> S3Error {
        S3Error::new(416, "InvalidRange", "The requested range is not satisfiable")
            .with("ActualObjectSize", size.to_string())
    }
    pub fn invalid_part(message: impl Into<String>) -> S3Error {
        S3Error::new(400, "InvalidPart", message)
    }
    pub fn invalid_part_order() -> S3Error {
        S3Error::new(
            400,
            "InvalidPartOrder",
            "The list of parts was not in ascending order. Parts must be ordered by part number.",
        )
    }
    pub fn malformed_xml() -> S3Error {
        S3Error::new(
            400,
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our published schema",
        )
    }
    pub fn not_implemented(message: impl Into<String>) -> S3Error {
        S3Error::new(501, "NotImplemented", message)
    }
    pub fn method_not_allowed(message: impl Into<String>) -> S3Error {
        S3Error::new(405, "MethodNotAllowed", message)
    }
    pub fn internal(message: impl Into<String>) -> S3Error {
        S3Error::new(500, "InternalError", message)
    }

    /// S3's `<Error>` document.
    pub fn to_xml(&self, request_id: &str) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>");
        crate::xml::element(&mut out, "Code", self.code);
        crate::xml::element(&mut out, "Message", &self.message);
        for (name, value) in &self.extra {
            crate::xml::element(&mut out, name, value);
        }
        crate::xml::element(&mut out, "RequestId", request_id);
        crate::xml::element(&mut out, "HostId", request_id);
        out.push_str("</Error>");
        out
    }
}

impl From<std::io::Error> for S3Error {
    fn from(e: std::io::Error) -> S3Error {
        S3Error::internal(format!("storage I/O error: {e}"))
    }
}
