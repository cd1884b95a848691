//! Published AWS vectors:
//!
//! * the SigV4 test suite ("aws-sig-v4-test-suite", 2015-08-30 edition:
//!   `AKIDEXAMPLE`, `20150830T123600Z`, `us-east-1`, service `service`),
//!   requests as in its `.req` files, expected signatures from its `.authz`
//!   files;
//! * the S3 SigV4 documentation examples (`AKIAIOSFODNN7EXAMPLE`,
//!   `20130524T000000Z`): header-signed GETs and PUT, the presigned URL and
//!   the `aws-chunked` streaming upload with its chunk signatures.

use sigv4::{
    canonical_request, chunk_signature, credential_scope, presign_query, sha256_hex, sign_headers, signature,
    signing_key, string_to_sign, verify, Credentials, Request, UriEncoding, Verified, EMPTY_PAYLOAD_SHA256,
    STREAMING_PAYLOAD,
};

const SUITE_KEY: &str = "AKIDEXAMPLE";
const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SUITE_TIME: i64 = 1_440_938_160; // 20150830T123600Z
const SUITE_DATE: &str = "20150830T123600Z";
const SECURITY_TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

const S3_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const S3_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const S3_TIME: i64 = 1_369_353_600; // 20130524T000000Z

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
}

struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    query: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    uri: UriEncoding,
    signature: &'static str,
}

const fn case(
    name: &'static str,
    method: &'static str,
    path: &'static str,
    query: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    signature: &'static str,
) -> Case {
    Case { name, method, path, query, headers, body, uri: UriEncoding::Double, signature }
}

const VANILLA: &str = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
const POST_VANILLA: &str = "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b";
const POST_QUERY: &str = "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11";

const SUITE: &[Case] = &[
    case("get-vanilla", "GET", "/", "", &[], "", VANILLA),
    case("get-vanilla-query", "GET", "/", "", &[], "", VANILLA),
    case(
        "get-vanilla-empty-query-key",
        "GET",
        "/",
        "Param1=value1",
        &[],
        "",
        "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb",
    ),
    case(
        "get-vanilla-query-order-key-case",
        "GET",
        "/",
        "Param2=value2&Param1=value1",
        &[],
        "",
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    ),
    case(
        "get-vanilla-query-order-value",
        "GET",
        "/",
        "Param1=value2&Param1=value1",
        &[],
        "",
        "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694",
    ),
    case(
        "get-vanilla-query-unreserved",
        "GET",
        "/",
        "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        &[],
        "",
        "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
    ),
    case(
        "get-vanilla-utf8-query",
        "GET",
        "/",
        "ሴ=bar",
        &[],
        "",
        "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
    ),
    case(
        "get-vanilla-utf8-query (percent-encoded on the wire)",
        "GET",
        "/",
        "%E1%88%B4=bar",
        &[],
        "",
        "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
    ),
    case(
        "get-utf8",
        "GET",
        "/ሴ",
        "",
        &[],
        "",
        "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
    ),
    case(
        "get-unreserved",
        "GET",
        "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        "",
        &[],
        "",
        "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
    ),
    case(
        "get-header-key-duplicate",
        "GET",
        "/",
        "",
        &[
            ("My-Header1", "value2"),
            ("My-Header1", "value2"),
            ("My-Header1", "value1"),
        ],
        "",
        "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
    ),
    case(
        "get-header-value-order",
        "GET",
        "/",
        "",
        &[
            ("My-Header1", "value4"),
            ("My-Header1", "value1"),
            ("My-Header1", "value3"),
            ("My-Header1", "value2"),
        ],
        "",
        "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
    ),
    case(
        "get-header-value-trim",
        "GET",
        "/",
        "",
        &[("My-Header1", " value1"), ("My-Header2", "\"a   b   c\"")],
        "",
        "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    ),
    case(
        // The suite's obs-folded lines, as an HTTP parser unfolds them.
        "get-header-value-multiline",
        "GET",
        "/",
        "",
        &[("My-Header1", "value1,value2,value3")],
        "",
        "ba17b383a53190154eb5fa66a1b836cc297cc0a3d70a5d00705980573d8ff790",
    ),
    case("post-header-key-case", "POST", "/", "", &[], "", POST_VANILLA),
    case(
        "post-header-key-sort",
        "POST",
        "/",
        "",
        &[("My-Header1", "value1")],
        "",
        "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
    ),
    case(
        "post-header-value-case",
        "POST",
        "/",
        "",
        &[("My-Header1", "VALUE1")],
        "",
        "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
    ),
    case("post-vanilla", "POST", "/", "", &[], "", POST_VANILLA),
    case(
        "post-vanilla-empty-query-value",
        "POST",
        "/",
        "Param1=value1",
        &[],
        "",
        POST_QUERY,
    ),
    case("post-vanilla-query", "POST", "/", "Param1=value1", &[], "", POST_QUERY),
    case(
        // Request line `POST /?@#$%^&+=/,?><`";:\|][{} HTTP/1.1`: `%^` is no
        // escape (a literal `%`), and `+` is a literal plus (`%2B`).
        "post-vanilla-query-nonunreserved",
        "POST",
        "/",
        "@#$%^&+=/,?><`\";:\\|][{}",
        &[],
        "",
        "66c82657c86e26fb25238d0e69f011edc4c6df5ae71119d7cb98ed9b87393c1e",
    ),
    case(
        "post-vanilla-query-nonunreserved (percent-encoded on the wire)",
        "POST",
        "/",
        "%40%23%24%25%5E&%2B=%2F%2C%3F%3E%3C%60%22%3B%3A%5C%7C%5D%5B%7B%7D",
        &[],
        "",
        "66c82657c86e26fb25238d0e69f011edc4c6df5ae71119d7cb98ed9b87393c1e",
    ),
    case(
        "post-x-www-form-urlencoded",
        "POST",
        "/",
        "",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "Param1=value1",
        "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
    ),
    case(
        "post-x-www-form-urlencoded-parameters",
        "POST",
        "/",
        "",
        &[(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf8",
        )],
        "Param1=value1",
        "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe",
    ),
    case(
        "post-sts-header-before",
        "POST",
        "/",
        "",
        &[("X-Amz-Security-Token", SECURITY_TOKEN)],
        "",
        "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
    ),
    // normalize-path/
    case("get-relative", "GET", "/example/..", "", &[], "", VANILLA),
    case(
        "get-relative-relative",
        "GET",
        "/example1/example2/../..",
        "",
        &[],
        "",
        VANILLA,
    ),
    case("get-slash", "GET", "//", "", &[], "", VANILLA),
    case("get-slash-dot-slash", "GET", "/./", "", &[], "", VANILLA),
    case(
        "get-slashes",
        "GET",
        "//example//",
        "",
        &[],
        "",
        "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84",
    ),
    case(
        "get-slash-pointless-dot",
        "GET",
        "/./example",
        "",
        &[],
        "",
        "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5",
    ),
    case(
        "get-space",
        "GET",
        "/example space/",
        "",
        &[],
        "",
        "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
    ),
    // The unnormalised (S3) variant, from the aws-c-auth edition of the suite.
    Case {
        uri: UriEncoding::Single,
        ..case(
            "get-slashes-unnormalized",
            "GET",
            "//example//",
            "",
            &[],
            "",
            "87cca117541a147f6df867677d98a7d80dff226d2bfca9e4ffa899665623c7e5",
        )
    },
];

fn suite_secret(key: &str) -> Option<String> {
    (key == SUITE_KEY).then(|| SUITE_SECRET.to_owned())
}

#[test]
fn official_suite_signatures_are_reproduced_and_verified() {
    for c in SUITE {
        let mut headers = h(&[("Host", "example.amazonaws.com")]);
        headers.extend(h(c.headers));
        headers.extend(h(&[("X-Amz-Date", SUITE_DATE)]));
        let payload_hash = sha256_hex(c.body.as_bytes());
        let mut signed: Vec<String> = headers.iter().map(|(n, _)| n.to_lowercase()).collect();
        signed.sort();
        signed.dedup();
        let signed: Vec<&str> = signed.iter().map(String::as_str).collect();
        let req = Request {
            method: c.method,
            raw_path: c.path,
            raw_query: c.query,
            headers: &headers,
            payload_hash: &payload_hash,
        };

        // The building blocks reproduce the published signature...
        let creq = canonical_request(&req, c.uri, &signed).unwrap();
        let scope = credential_scope("20150830", "us-east-1", "service");
        let sts = string_to_sign(SUITE_DATE, &scope, &creq);
        let key = signing_key(SUITE_SECRET, "20150830", "us-east-1", "service");
        assert_eq!(signature(&key, &sts), c.signature, "{}\n{creq}", c.name);

        // ...and verify() accepts the published Authorization header.
        let mut headers = headers.clone();
        headers.push((
            "Authorization".to_owned(),
            format!(
                "AWS4-HMAC-SHA256 Credential={SUITE_KEY}/{scope}, SignedHeaders={}, Signature={}",
                signed.join(";"),
                c.signature
            ),
        ));
        let req = Request { headers: &headers, ..req };
        let verified =
            verify(&req, c.uri, suite_secret, SUITE_TIME, 900).unwrap_or_else(|e| panic!("{}: {e:?}", c.name));
        assert_eq!(
            verified,
            Verified {
                access_key_id: SUITE_KEY.to_owned(),
                region: "us-east-1".to_owned(),
                service: "service".to_owned(),
                signed_at: SUITE_TIME,
                presigned: false,
                signature: c.signature.to_owned(),
            }
        );
    }
}

#[test]
fn official_suite_canonical_requests() {
    // Spot checks of whole canonical requests from the suite's .creq files.
    let headers = h(&[("Host", "example.amazonaws.com"), ("X-Amz-Date", SUITE_DATE)]);
    let req = Request {
        method: "GET",
        raw_path: "/",
        raw_query: "Param1=value2&Param1=value1",
        headers: &headers,
        payload_hash: EMPTY_PAYLOAD_SHA256,
    };
    assert_eq!(
        canonical_request(&req, UriEncoding::Double, &["host", "x-amz-date"]).unwrap(),
        "GET\n/\nParam1=value1&Param1=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let req = Request { raw_path: "/example space/", raw_query: "", ..req };
    let creq = canonical_request(&req, UriEncoding::Double, &["host", "x-amz-date"]).unwrap();
    assert!(creq.starts_with("GET\n/example%20space/\n\n"), "{creq}");
    assert_eq!(
        string_to_sign(
            SUITE_DATE,
            &credential_scope("20150830", "us-east-1", "service"),
            &creq
        ),
        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86"
    );
    let req = Request { raw_path: "/ሴ", ..req };
    let creq = canonical_request(&req, UriEncoding::Double, &["host", "x-amz-date"]).unwrap();
    assert!(creq.starts_with("GET\n/%E1%88%B4\n\n"), "{creq}");
    let sts = string_to_sign(SUITE_DATE, &credential_scope("20150830", "us-east-1", "service"), &creq);
    assert!(sts.ends_with("\n2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102"));
}

fn s3_creds() -> Credentials {
    Credentials::new(S3_KEY, S3_SECRET)
}

fn s3_secret(key: &str) -> Option<String> {
    (key == S3_KEY).then(|| S3_SECRET.to_owned())
}

/// S3 docs, "Signature Calculations for the Authorization Header:
/// Transferring Payload in a Single Chunk": the four examples.
#[test]
fn s3_documentation_header_examples() {
    struct S3Case {
        method: &'static str,
        path: &'static str,
        query: &'static str,
        headers: &'static [(&'static str, &'static str)],
        body: &'static str,
        authorization: &'static str,
    }
    let cases = [
        S3Case {
            method: "GET",
            path: "/test.txt",
            query: "",
            headers: &[("Range", "bytes=0-9")],
            body: "",
            authorization: "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
        },
        S3Case {
            method: "PUT",
            path: "/test$file.text",
            query: "",
            headers: &[
                ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ],
            body: "Welcome to Amazon S3.",
            authorization: "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
        },
        S3Case {
            method: "GET",
            path: "/",
            query: "lifecycle",
            headers: &[],
            body: "",
            authorization: "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
        },
        S3Case {
            method: "GET",
            path: "/",
            query: "max-keys=2&prefix=J",
            headers: &[],
            body: "",
            authorization: "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        },
    ];
    for c in cases {
        let mut headers = h(&[("Host", "examplebucket.s3.amazonaws.com")]);
        headers.extend(h(c.headers));
        let payload_hash = sha256_hex(c.body.as_bytes());
        let req = Request {
            method: c.method,
            raw_path: c.path,
            raw_query: c.query,
            headers: &headers,
            payload_hash: &payload_hash,
        };
        let added = sign_headers(&req, UriEncoding::Single, &s3_creds(), "us-east-1", "s3", S3_TIME);
        assert_eq!(added[0].0, "authorization");
        assert_eq!(added[0].1, c.authorization, "{} {}", c.method, c.path);
        assert_eq!(added[1], ("x-amz-date".into(), "20130524T000000Z".into()));
        assert_eq!(added[2], ("x-amz-content-sha256".into(), payload_hash.clone()));

        let mut headers = headers.clone();
        headers.extend(added);
        let req = Request { headers: &headers, ..req };
        let v = verify(&req, UriEncoding::Single, s3_secret, S3_TIME + 60, 900).unwrap();
        assert_eq!((v.region.as_str(), v.service.as_str()), ("us-east-1", "s3"));
    }
}

/// S3 docs, "Authenticating Requests: Using Query Parameters".
#[test]
fn s3_documentation_presigned_example() {
    let headers = h(&[("host", "examplebucket.s3.amazonaws.com")]);
    let req = Request {
        method: "GET",
        raw_path: "/test.txt",
        raw_query: "",
        headers: &headers,
        payload_hash: EMPTY_PAYLOAD_SHA256,
    };
    let query = presign_query(&req, UriEncoding::Single, &s3_creds(), "us-east-1", "s3", S3_TIME, 86_400);
    assert_eq!(
        query,
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    );
    let req = Request { raw_query: &query, ..req };
    let v = verify(&req, UriEncoding::Single, s3_secret, S3_TIME + 86_400, 900).unwrap();
    assert!(v.presigned);
    assert_eq!(verify(&req, UriEncoding::Single, s3_secret, S3_TIME + 86_401, 900), Err(sigv4::AuthError::Expired));
}

/// S3 docs, "Signature Calculations for the Authorization Header:
/// Transferring Payload in Multiple Chunks (Chunked Upload)".
#[test]
fn s3_documentation_streaming_example() {
    let seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
    let headers = h(&[
        ("Host", "s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("Authorization", &format!("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature={seed}")),
        ("x-amz-content-sha256", STREAMING_PAYLOAD),
        ("Content-Encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "66560"),
        ("Content-Length", "66824"),
    ]);
    let req = Request {
        method: "PUT",
        raw_path: "/examplebucket/chunkObject.txt",
        raw_query: "",
        headers: &headers,
        payload_hash: STREAMING_PAYLOAD,
    };
    let v = verify(&req, UriEncoding::Single, s3_secret, S3_TIME, 900).unwrap();
    assert_eq!(v.signature, seed);

    let key = signing_key(S3_SECRET, "20130524", &v.region, &v.service);
    let scope = credential_scope("20130524", &v.region, &v.service);
    let chunks: [(Vec<u8>, &str); 3] = [
        (vec![b'a'; 65_536], "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"),
        (vec![b'a'; 1024], "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"),
        (Vec::new(), "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"),
    ];
    let mut prev = v.signature.clone();
    for (data, expected) in chunks {
        let sig = chunk_signature(&key, &prev, "20130524T000000Z", &scope, &sha256_hex(&data));
        assert!(sigv4::signatures_equal(&sig, expected));
        prev = sig;
    }
}
