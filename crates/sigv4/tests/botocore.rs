//! Requests signed by real botocore clients (iot, iot-data, kms, s3; header
//! signing and `generate_presigned_url`), recorded in `vectors.json` by
//! `gen_vectors.py`. Every vector must verify; where botocore signed the
//! same header set our signer does, `sign_headers` / `presign_query` must
//! reproduce its signature exactly. Then the negative cases, mostly by
//! tampering with those requests.

use serde_json::Value;
use sigv4::{
    presign_query, sign_headers, uri_encode, verify, AuthError, Credentials, Request, UriEncoding, Verified,
    DEFAULT_MAX_SKEW_SECS, EMPTY_PAYLOAD_SHA256,
};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

struct Vector {
    name: String,
    service: String,
    region: String,
    uri: UriEncoding,
    presign: bool,
    now: i64,
    method: String,
    raw_path: String,
    raw_query: String,
    headers: Vec<(String, String)>,
    payload_hash: String,
    access_key_id: String,
    authorization: Option<String>,
    compare_sign: bool,
    base_query: String,
    expires: u32,
}

impl Vector {
    fn request(&self) -> Request<'_> {
        Request {
            method: &self.method,
            raw_path: &self.raw_path,
            raw_query: &self.raw_query,
            headers: &self.headers,
            payload_hash: &self.payload_hash,
        }
    }

    fn verify_at(&self, now: i64) -> Result<Verified, AuthError> {
        verify(&self.request(), self.uri, secret_for, now, DEFAULT_MAX_SKEW_SECS)
    }

    fn verify_req(&self, req: &Request) -> Result<Verified, AuthError> {
        verify(req, self.uri, secret_for, self.now, DEFAULT_MAX_SKEW_SECS)
    }

    fn signed_header_names(&self) -> Vec<String> {
        let auth = self.authorization.as_deref().expect("header-signed vector");
        let list = auth.split("SignedHeaders=").nth(1).and_then(|s| s.split(',').next()).expect("SignedHeaders");
        list.split(';').map(str::to_owned).collect()
    }
}

fn secret_for(key: &str) -> Option<String> {
    (key == "AKIDEXAMPLE").then(|| SECRET.to_owned())
}

fn load() -> Vec<Vector> {
    let doc: Value = serde_json::from_str(include_str!("vectors.json")).expect("vectors.json");
    assert_eq!(doc["secret_access_key"], SECRET);
    let s = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    doc["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .map(|v| Vector {
            name: s(v, "name"),
            service: s(v, "service"),
            region: s(v, "region"),
            uri: match v["uri"].as_str() {
                Some("single") => UriEncoding::Single,
                Some("double") => UriEncoding::Double,
                other => panic!("bad uri {other:?}"),
            },
            presign: v["kind"] == "presign",
            now: v["now"].as_i64().expect("now"),
            method: s(v, "method"),
            raw_path: s(v, "raw_path"),
            raw_query: s(v, "raw_query"),
            headers: v["headers"]
                .as_array()
                .expect("headers")
                .iter()
                .map(|h| (h[0].as_str().expect("name").to_owned(), h[1].as_str().expect("value").to_owned()))
                .collect(),
            payload_hash: s(v, "payload_hash"),
            access_key_id: s(v, "access_key_id"),
            authorization: v["authorization"].as_str().map(str::to_owned),
            compare_sign: v["compare_sign"].as_bool().unwrap_or(false),
            base_query: s(v, "base_query"),
            expires: v["expires"].as_u64().unwrap_or(0) as u32,
        })
        .collect()
}

fn vector(name: &str) -> Vector {
    load().into_iter().find(|v| v.name == name).unwrap_or_else(|| panic!("no vector {name}"))
}

fn creds() -> Credentials {
    Credentials::new("AKIDEXAMPLE", SECRET)
}

fn assert_mismatch(result: Result<Verified, AuthError>, what: &str) {
    assert!(matches!(result, Err(AuthError::SignatureDoesNotMatch { .. })), "{what}: {result:?}");
}

fn assert_malformed(result: Result<Verified, AuthError>, what: &str) {
    assert!(matches!(result, Err(AuthError::Malformed(_))), "{what}: {result:?}");
}

fn set_header(headers: &mut [(String, String)], name: &str, value: &str) {
    let h =
        headers.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)).unwrap_or_else(|| panic!("no header {name}"));
    h.1 = value.to_owned();
}

// ---------------------------------------------------------------------------
// Positive: everything botocore signed verifies, and our signer agrees.

#[test]
fn vectors_cover_what_they_should() {
    let vectors = load();
    assert!(vectors.len() >= 80, "{}", vectors.len());
    for service in ["iot", "iotdata", "kms", "s3"] {
        assert!(vectors.iter().any(|v| v.service == service), "{service}");
    }
    assert!(vectors.iter().filter(|v| v.presign).count() >= 8);
    assert!(vectors.iter().filter(|v| v.compare_sign).count() >= 40);
    assert!(vectors.iter().any(|v| v.payload_hash == "UNSIGNED-PAYLOAD"));
    assert!(vectors.iter().any(|v| v.payload_hash == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"));
    assert!(vectors.iter().any(|v| v.raw_path.contains("%2F")));
    assert!(vectors.iter().any(|v| v.raw_path.contains("%3A")));
    assert!(vectors.iter().any(|v| v.raw_path.contains("%20")));
    assert!(vectors.iter().any(|v| v.headers.iter().any(|(n, _)| n == "Date")));
}

#[test]
fn every_botocore_request_verifies() {
    for v in load() {
        let last = if v.presign { i64::from(v.expires) } else { 900 };
        for delay in [0, 1, last] {
            let verified = v.verify_at(v.now + delay).unwrap_or_else(|e| panic!("{}: {e:?}", v.name));
            assert_eq!(verified.access_key_id, v.access_key_id, "{}", v.name);
            assert_eq!(verified.region, v.region, "{}", v.name);
            assert_eq!(verified.service, v.service, "{}", v.name);
            assert_eq!(verified.signed_at, v.now, "{}", v.name);
            assert_eq!(verified.presigned, v.presign, "{}", v.name);
        }
    }
}

#[test]
fn sign_headers_reproduces_botocore() {
    let mut compared = 0;
    for v in load().into_iter().filter(|v| v.compare_sign) {
        let signed = v.signed_header_names();
        assert!(signed.iter().any(|n| n == "x-amz-content-sha256"), "{}", v.name);
        // Give our signer exactly the headers botocore signed (it always
        // adds x-amz-date and x-amz-content-sha256 itself).
        let headers: Vec<(String, String)> = v
            .headers
            .iter()
            .filter(|(n, _)| {
                let n = n.to_ascii_lowercase();
                signed.contains(&n) && n != "x-amz-date" && n != "x-amz-content-sha256"
            })
            .cloned()
            .collect();
        let req = Request { headers: &headers, ..v.request() };
        let added = sign_headers(&req, v.uri, &creds(), &v.region, &v.service, v.now);
        let auth = &added.iter().find(|(n, _)| n == "authorization").expect("authorization").1;
        assert_eq!(Some(auth), v.authorization.as_ref(), "{}", v.name);
        compared += 1;

        // And what we signed verifies.
        let mut all = headers.clone();
        all.extend(added);
        let req = Request { headers: &all, ..v.request() };
        v.verify_req(&req).unwrap_or_else(|e| panic!("{}: {e:?}", v.name));
    }
    assert!(compared >= 40, "{compared}");
}

#[test]
fn presign_query_reproduces_botocore() {
    let mut compared = 0;
    for v in load().into_iter().filter(|v| v.presign) {
        let req = Request { raw_query: &v.base_query, ..v.request() };
        let query = presign_query(&req, v.uri, &creds(), &v.region, &v.service, v.now, v.expires);
        assert_eq!(query, v.raw_query, "{}", v.name);
        compared += 1;
    }
    assert!(compared >= 8, "{compared}");
}

#[test]
fn botocore_date_header_requests_verify() {
    let v = vector("iot-create-thing-json-date-header");
    assert!(v.headers.iter().any(|(n, d)| n == "Date" && d.ends_with("-0000")));
    assert!(!v.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("x-amz-date")));
    v.verify_at(v.now).unwrap();
    assert_eq!(v.verify_at(v.now + 901), Err(AuthError::RequestTimeTooSkewed));
}

// ---------------------------------------------------------------------------
// Tampering with header-signed requests.

#[test]
fn tampered_path_is_rejected() {
    for (name, path) in [
        ("iot-describe-thing-colon-natural", "/things/my%3Athinh"),
        ("iot-describe-thing-colon-natural", "/things/my:thing"),
        ("iot-describe-thing-colon-natural", "/things/my%253Athing"),
        ("iot-describe-thing-odd-natural", "/things/a%3Ab%20c/d%25e%2Bf~g%26h%3Di"),
        (
            "iot-list-attached-policies-arn-natural",
            "/attached-policies/arn%3Aaws%3Aiot%3Aus-east-1%3A123456789012%3Acert/0123abcd",
        ),
        ("s3-get-object-dotdot-https-when-required", "/bkt/b//c/./d"),
        ("s3-get-object-dotdot-https-when-required", "/bkt/a/../b/c/d"),
        ("s3-get-object-https-when-required", "/bkt/dir/my%20file%2Bx%3Ay~z.txtx"),
        ("s3-get-object-https-when-required", "/bkt/dir%2Fmy%20file%2Bx%3Ay~z.txt"),
        ("s3-presign-get", "/bkt/dir/my%20file%2Bx.tx"),
        ("iot-presign-describe-thing", "/things/my%3Athin"),
    ] {
        let v = vector(name);
        let req = Request { raw_path: path, ..v.request() };
        assert_mismatch(v.verify_req(&req), &format!("{name} {path}"));
    }
}

#[test]
fn equivalent_paths_still_verify() {
    // Double encoding normalises duplicate slashes and dot segments of the
    // raw path (as botocore does when signing).
    let v = vector("iot-describe-thing-colon-natural");
    for path in ["/things//my%3Athing", "/things/./my%3Athing", "/x/../things/my%3Athing"] {
        let req = Request { raw_path: path, ..v.request() };
        v.verify_req(&req).unwrap_or_else(|e| panic!("{path}: {e:?}"));
    }
    // S3 re-encodes each segment once: escaping style does not matter.
    let v = vector("s3-get-object-https-when-required");
    for path in ["/bkt/dir/my%20file%2bx%3ay%7Ez.txt", "/bkt/dir/my%20file%2Bx:y~z.txt"] {
        let req = Request { raw_path: path, ..v.request() };
        v.verify_req(&req).unwrap_or_else(|e| panic!("{path}: {e:?}"));
    }
}

#[test]
fn tampered_header_is_rejected() {
    let v = vector("kms-encrypt-natural");
    for (name, value) in [
        ("X-Amz-Target", "TrentService.Decrypt"),
        ("Content-Type", "application/json"),
        ("Host", "127.0.0.1:9001"),
        ("X-Amz-Date", "20150830T123601Z"),
    ] {
        let mut headers = v.headers.clone();
        set_header(&mut headers, name, value);
        let req = Request { headers: &headers, ..v.request() };
        assert_mismatch(v.verify_req(&req), name);
    }
    // A signed header repeated is a different value ("a,b").
    let mut headers = v.headers.clone();
    headers.push(("x-amz-target".into(), "TrentService.Encrypt".into()));
    let req = Request { headers: &headers, ..v.request() };
    assert_mismatch(v.verify_req(&req), "duplicated x-amz-target");
    // A signed header removed.
    let headers: Vec<_> = v.headers.iter().filter(|(n, _)| n != "X-Amz-Target").cloned().collect();
    let req = Request { headers: &headers, ..v.request() };
    assert_malformed(v.verify_req(&req), "missing signed header");
    // Unsigned headers may change or be added; whitespace and case of
    // signed values' surroundings are canonicalised away.
    let mut headers = v.headers.clone();
    set_header(&mut headers, "User-Agent", "something else");
    set_header(&mut headers, "Content-Type", "  application/x-amz-json-1.1 ");
    headers.push(("X-Forwarded-For".into(), "10.0.0.1".into()));
    let req = Request { headers: &headers, ..v.request() };
    v.verify_req(&req).unwrap();
}

#[test]
fn tampered_query_is_rejected() {
    let v = vector("iot-list-things-query-natural");
    let original = v.raw_query.clone();
    for query in [
        original.replace("maxResults=5", "maxResults=6"),
        original.replace("blue%20green", "blue%20gren"),
        format!("{original}&thingTypeName=x"),
        original.replace("&maxResults=5", ""),
        original.replace("%2B", "%20"),
        String::new(),
    ] {
        let req = Request { raw_query: &query, ..v.request() };
        assert_mismatch(v.verify_req(&req), &query);
    }
    // Reordering and re-escaping is not tampering.
    let mut pieces: Vec<&str> = original.split('&').collect();
    pieces.reverse();
    let reordered = pieces.join("&").replace("%2A", "%2a").replace('~', "%7E");
    let req = Request { raw_query: &reordered, ..v.request() };
    v.verify_req(&req).unwrap();
    // Presigned: a changed operation parameter or auth parameter.
    let v = vector("s3-presign-get-disposition");
    for query in [
        v.raw_query.replace("my%20report", "your%20report"),
        v.raw_query.replace("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=host%3Brange"),
        v.raw_query.replace("X-Amz-Expires=604800", "X-Amz-Expires=604799"),
        format!("{}&versionId=3", v.raw_query),
    ] {
        let req = Request { raw_query: &query, ..v.request() };
        let result = v.verify_req(&req);
        assert!(
            matches!(result, Err(AuthError::SignatureDoesNotMatch { .. } | AuthError::Malformed(_))),
            "{query}: {result:?}"
        );
    }
}

#[test]
fn tampered_body_hash_is_rejected() {
    for name in [
        "kms-encrypt-natural",
        "iot-create-thing-json-natural",
        "iotdata-publish-with-sha",
        "s3-put-object-http-when-required",
    ] {
        let v = vector(name);
        let other = sigv4::sha256_hex(b"something else");
        for hash in [other.as_str(), EMPTY_PAYLOAD_SHA256, "UNSIGNED-PAYLOAD"] {
            let req = Request { payload_hash: hash, ..v.request() };
            assert_mismatch(v.verify_req(&req), name);
        }
    }
    // A presigned S3 URL signs UNSIGNED-PAYLOAD, whatever the body.
    let v = vector("s3-presign-put");
    let req = Request { payload_hash: "0000", ..v.request() };
    v.verify_req(&req).unwrap();
}

#[test]
fn wrong_secret_and_unknown_key() {
    let v = vector("iot-describe-thing-plain-natural");
    let wrong = |_: &str| Some("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ".to_owned());
    let result = verify(&v.request(), v.uri, wrong, v.now, 900);
    assert_mismatch(result.clone(), "wrong secret");
    let Err(AuthError::SignatureDoesNotMatch { canonical_request, string_to_sign }) = result else { unreachable!() };
    assert!(canonical_request.starts_with("GET\n/things/thing-1\n\n"));
    assert!(string_to_sign.starts_with("AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iot/aws4_request\n"));

    let none = |_: &str| None;
    assert_eq!(verify(&v.request(), v.uri, none, v.now, 900), Err(AuthError::UnknownAccessKey("AKIDEXAMPLE".into())));
    let p = vector("s3-presign-get");
    assert_eq!(verify(&p.request(), p.uri, none, p.now, 900), Err(AuthError::UnknownAccessKey("AKIDEXAMPLE".into())));
    // The wrong UriEncoding is a mismatch (when the path has escapes).
    let v = vector("iot-describe-thing-colon-natural");
    assert_mismatch(verify(&v.request(), UriEncoding::Single, secret_for, v.now, 900), "iot request checked as S3");
    let v = vector("s3-get-object-https-when-required");
    assert_mismatch(verify(&v.request(), UriEncoding::Double, secret_for, v.now, 900), "S3 request checked as iot");
}

#[test]
fn secret_never_leaks() {
    let c = creds();
    assert!(!format!("{c:?}").contains(SECRET));
    assert!(format!("{c:?}").contains("AKIDEXAMPLE"));
    let v = vector("kms-encrypt-natural");
    let wrong = |_: &str| Some("another-secret".to_owned());
    for secret_fn in [&secret_for as &dyn Fn(&str) -> Option<String>, &wrong] {
        let mut headers = v.headers.clone();
        set_header(&mut headers, "X-Amz-Target", "x");
        let req = Request { headers: &headers, ..v.request() };
        let err = verify(&req, v.uri, secret_fn, v.now, 900).unwrap_err();
        for text in [format!("{err}"), format!("{err:?}")] {
            assert!(!text.contains(SECRET) && !text.contains("another-secret"));
        }
    }
}

// ---------------------------------------------------------------------------
// Time.

#[test]
fn header_signed_clock_skew() {
    let v = vector("iot-describe-thing-plain-natural");
    v.verify_at(v.now + 900).unwrap();
    v.verify_at(v.now - 900).unwrap();
    assert_eq!(v.verify_at(v.now + 901), Err(AuthError::RequestTimeTooSkewed));
    assert_eq!(v.verify_at(v.now - 901), Err(AuthError::RequestTimeTooSkewed));
    assert_eq!(v.verify_at(i64::MAX), Err(AuthError::RequestTimeTooSkewed));
    assert_eq!(v.verify_at(i64::MIN), Err(AuthError::RequestTimeTooSkewed));
    let req = v.request();
    assert_eq!(verify(&req, v.uri, secret_for, v.now + 1, 0), Err(AuthError::RequestTimeTooSkewed));
    verify(&req, v.uri, secret_for, v.now, 0).unwrap();
    verify(&req, v.uri, secret_for, v.now + 3600, 3600).unwrap();
}

#[test]
fn presigned_validity_window() {
    let v = vector("s3-presign-get"); // X-Amz-Expires=3600
    v.verify_at(v.now).unwrap();
    v.verify_at(v.now + 3600).unwrap();
    assert_eq!(v.verify_at(v.now + 3601), Err(AuthError::Expired));
    assert_eq!(v.verify_at(i64::MAX), Err(AuthError::Expired));
    // Slightly early (clock skew) is fine, far in the future is not.
    v.verify_at(v.now - 900).unwrap();
    assert_eq!(v.verify_at(v.now - 901), Err(AuthError::RequestTimeTooSkewed));

    let v = vector("s3-presign-get-disposition"); // the 7-day maximum
    v.verify_at(v.now + 604_800).unwrap();
    assert_eq!(v.verify_at(v.now + 604_801), Err(AuthError::Expired));
}

#[test]
fn presign_expires_over_seven_days_is_rejected() {
    let headers = vec![("host".to_owned(), "s3.localhost".to_owned())];
    let base = Request {
        method: "GET",
        raw_path: "/bkt/key",
        raw_query: "",
        headers: &headers,
        payload_hash: EMPTY_PAYLOAD_SHA256,
    };
    let now = 1_700_000_000;
    for (expires, ok) in [(604_800, true), (604_801, false), (u32::MAX, false)] {
        let query = presign_query(&base, UriEncoding::Single, &creds(), "us-east-1", "s3", now, expires);
        let req = Request { raw_query: &query, ..base };
        let result = verify(&req, UriEncoding::Single, secret_for, now, 900);
        if ok {
            result.unwrap();
        } else {
            assert_eq!(result, Err(AuthError::ExpiresTooLong), "{expires}");
        }
    }
    // Even before the signature is looked at, and with silly spellings.
    let v = vector("s3-presign-get");
    for (expires, expected) in [
        ("604801", Err(AuthError::ExpiresTooLong)),
        ("99999999999999999999999", Err(AuthError::ExpiresTooLong)),
        ("-1", Err(AuthError::Malformed(String::new()))),
        ("", Err(AuthError::Malformed(String::new()))),
        ("1e3", Err(AuthError::Malformed(String::new()))),
    ] {
        let query = v.raw_query.replace("X-Amz-Expires=3600", &format!("X-Amz-Expires={expires}"));
        let req = Request { raw_query: &query, ..v.request() };
        let result = v.verify_req(&req);
        match expected {
            Err(AuthError::Malformed(_)) => assert_malformed(result, expires),
            e => assert_eq!(result, e, "{expires}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Structure.

#[test]
fn host_must_be_signed() {
    // Our signer signs whatever it is given; without host, verify refuses.
    let headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    let req = Request {
        method: "GET",
        raw_path: "/things",
        raw_query: "",
        headers: &headers,
        payload_hash: EMPTY_PAYLOAD_SHA256,
    };
    let now = 1_700_000_000;
    let mut all = headers.clone();
    all.extend(sign_headers(&req, UriEncoding::Double, &creds(), "us-east-1", "iot", now));
    all.push(("host".into(), "localhost".into()));
    let req = Request { headers: &all, ..req };
    assert_malformed(verify(&req, UriEncoding::Double, secret_for, now, 900), "header-signed without host");

    let v = vector("iot-describe-thing-plain-natural");
    let mut headers = v.headers.clone();
    let auth = v.authorization.clone().unwrap();
    set_header(
        &mut headers,
        "Authorization",
        &auth.replace("SignedHeaders=host;x-amz-date", "SignedHeaders=x-amz-date"),
    );
    let req = Request { headers: &headers, ..v.request() };
    assert_malformed(v.verify_req(&req), "SignedHeaders without host");

    let v = vector("s3-presign-put-content-type");
    let query = v.raw_query.replace("X-Amz-SignedHeaders=content-type%3Bhost", "X-Amz-SignedHeaders=content-type");
    let req = Request { raw_query: &query, ..v.request() };
    assert_malformed(v.verify_req(&req), "presigned without host");
}

#[test]
fn malformed_authorization_headers() {
    let v = vector("iot-describe-thing-plain-natural");
    let good = v.authorization.clone().unwrap();
    let sig = good.rsplit("Signature=").next().unwrap().to_owned();
    let malformed = [
        String::new(),
        "   ".to_owned(),
        "AWS4-HMAC-SHA256".to_owned(),
        "AWS4-HMAC-SHA256 ".to_owned(),
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iot/aws4_request".to_owned(),
        good.replace(", Signature=", ", Signature=00"),
        good.replace(&sig, &sig.to_uppercase()),
        good.replace(&sig, "zz"),
        good.replace("/aws4_request", "/aws4_requestx"),
        good.replace("/aws4_request", ""),
        good.replace("Credential=AKIDEXAMPLE/", "Credential=/"),
        good.replace("/us-east-1/", "//"),
        good.replace("/20150830/", "/20150831/"),
        good.replace("/20150830/", "/2015083/"),
        good.replace("SignedHeaders=host;x-amz-date", "SignedHeaders=Host;x-amz-date"),
        good.replace("SignedHeaders=host;x-amz-date", "SignedHeaders=host;;x-amz-date"),
        good.replace("SignedHeaders=host;x-amz-date", "SignedHeaders="),
        good.replace("SignedHeaders=host;x-amz-date", "SignedHeaders=host;x-amz-nope"),
        good.replace(", Signature", ", Signature=x, Signature"),
        format!("{good}, Extra=1"),
        format!("{good},"),
        good.replace("Credential=", "Credential"),
    ];
    for auth in malformed {
        let mut headers = v.headers.clone();
        set_header(&mut headers, "Authorization", &auth);
        let req = Request { headers: &headers, ..v.request() };
        assert_malformed(v.verify_req(&req), &auth);
    }
    for (auth, algorithm) in [
        ("AWS AKIDEXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=", "AWS"),
        ("AWS4-ECDSA-P256-SHA256 Credential=x, SignedHeaders=host, Signature=00", "AWS4-ECDSA-P256-SHA256"),
        ("Bearer abc", "Bearer"),
        ("aws4-hmac-sha256 Credential=x", "aws4-hmac-sha256"),
    ] {
        let mut headers = v.headers.clone();
        set_header(&mut headers, "Authorization", auth);
        let req = Request { headers: &headers, ..v.request() };
        assert_eq!(v.verify_req(&req), Err(AuthError::UnsupportedAlgorithm(algorithm.into())), "{auth}");
    }
    // Whitespace variations of a good header are fine.
    let mut headers = v.headers.clone();
    set_header(
        &mut headers,
        "Authorization",
        &format!("  {}  ", good.replace(", ", ",").replace("AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA256   ")),
    );
    let req = Request { headers: &headers, ..v.request() };
    v.verify_req(&req).unwrap();
}

#[test]
fn missing_or_conflicting_authentication() {
    let v = vector("iot-describe-thing-plain-natural");
    let unsigned: Vec<_> = v.headers.iter().filter(|(n, _)| n != "Authorization").cloned().collect();
    let req = Request { headers: &unsigned, ..v.request() };
    assert_eq!(v.verify_req(&req), Err(AuthError::MissingAuthentication));
    let req = Request {
        headers: &unsigned,
        raw_query: "X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fiot%2Faws4_request",
        ..v.request()
    };
    assert_eq!(v.verify_req(&req), Err(AuthError::MissingAuthentication));

    // Two Authorization headers.
    let mut twice = v.headers.clone();
    twice.push(("authorization".into(), v.authorization.clone().unwrap()));
    let req = Request { headers: &twice, ..v.request() };
    assert_malformed(v.verify_req(&req), "two Authorization headers");

    // Header and query signature at once.
    let p = vector("iot-presign-describe-thing");
    let req = Request { raw_query: &p.raw_query, ..v.request() };
    assert_malformed(v.verify_req(&req), "both");

    // No date.
    let no_date: Vec<_> = v.headers.iter().filter(|(n, _)| n != "X-Amz-Date").cloned().collect();
    let req = Request { headers: &no_date, ..v.request() };
    assert_malformed(v.verify_req(&req), "no date");
    for bad in ["2015-08-30T12:36:00Z", "20150830T123600", "20150830T123600Z ", "yesterday"] {
        let mut headers = v.headers.clone();
        set_header(&mut headers, "X-Amz-Date", bad);
        let req = Request { headers: &headers, ..v.request() };
        let result = v.verify_req(&req);
        // A trailing space is trimmed (and then the signature is right).
        if bad.ends_with(' ') {
            result.unwrap();
        } else {
            assert_malformed(result, bad);
        }
    }

    // Presigned with a parameter missing, repeated or wrong.
    let p = vector("s3-presign-get");
    let without = |name: &str| {
        p.raw_query.split('&').filter(|piece| !piece.starts_with(&format!("{name}="))).collect::<Vec<_>>().join("&")
    };
    for name in ["X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders"] {
        let query = without(name);
        let req = Request { raw_query: &query, ..p.request() };
        assert_malformed(p.verify_req(&req), name);
    }
    let query = without("X-Amz-Algorithm");
    let req = Request { raw_query: &query, ..p.request() };
    assert_malformed(p.verify_req(&req), "no algorithm");
    let query = without("X-Amz-Signature");
    let req = Request { raw_query: &query, ..p.request() };
    assert_malformed(p.verify_req(&req), "no signature");
    let query = format!("{}&X-Amz-Date=20150830T123600Z", p.raw_query);
    let req = Request { raw_query: &query, ..p.request() };
    assert_malformed(p.verify_req(&req), "repeated date");
    let query = p.raw_query.replace("X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256");
    let req = Request { raw_query: &query, ..p.request() };
    assert_eq!(p.verify_req(&req), Err(AuthError::UnsupportedAlgorithm("AWS4-ECDSA-P256-SHA256".into())));
    let query = p.raw_query.replace("%2F20150830%2F", "%2F20150829%2F");
    let req = Request { raw_query: &query, ..p.request() };
    assert_malformed(p.verify_req(&req), "scope date");
}

// ---------------------------------------------------------------------------
// `+` in the query.

#[test]
fn plus_in_query() {
    let headers = vec![("host".to_owned(), "localhost".to_owned())];
    let now = 1_700_000_000;
    let sign = |query: &str| {
        let req = Request {
            method: "GET",
            raw_path: "/things",
            raw_query: query,
            headers: &headers,
            payload_hash: EMPTY_PAYLOAD_SHA256,
        };
        let mut all = headers.clone();
        all.extend(sign_headers(&req, UriEncoding::Double, &creds(), "us-east-1", "iot", now));
        all
    };
    let check = |signed_query: &str, sent_query: &str| {
        let all = sign(signed_query);
        let req = Request {
            method: "GET",
            raw_path: "/things",
            raw_query: sent_query,
            headers: &all,
            payload_hash: EMPTY_PAYLOAD_SHA256,
        };
        verify(&req, UriEncoding::Double, secret_for, now, 900)
    };
    // A raw '+' is a literal plus: it matches %2B...
    check("q=a%2Bb", "q=a+b").unwrap();
    check("q=a+b", "q=a%2Bb").unwrap();
    // ...and, for URLSearchParams-style signers, also a space (%20).
    check("q=a%20b", "q=a+b").unwrap();
    // But %2B and %20 are never the same thing.
    assert_mismatch(check("q=a%20b", "q=a%2Bb"), "%20 vs %2B");
    assert_mismatch(check("q=a%2Bb", "q=a%20b"), "%2B vs %20");
    assert_eq!(sigv4::canonical_query("q=a+b"), "q=a%2Bb");
    assert_eq!(uri_encode("a+b c", true), "a%2Bb%20c");
}
