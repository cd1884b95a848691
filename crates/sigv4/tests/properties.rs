//! Property tests: `verify` never panics on garbage, and whatever our
//! signer signs, `verify` accepts (and a changed byte breaks).

use proptest::prelude::*;
use sigv4::{
    canonical_query, canonical_uri, parse_amz_date, presign_query, sign_headers, uri_encode, verify, Credentials,
    Request, UriEncoding,
};

const KEY: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn secret_for(key: &str) -> Option<String> {
    (key == KEY).then(|| SECRET.to_owned())
}

fn creds() -> Credentials {
    Credentials::new(KEY, SECRET)
}

fn uri_strategy() -> impl Strategy<Value = UriEncoding> {
    prop_oneof![Just(UriEncoding::Single), Just(UriEncoding::Double)]
}

/// Fragments that real signatures are made of, so that generated garbage
/// gets deep into the parser rather than failing at the first byte.
const PIECES: &[&str] = &[
    "AWS4-HMAC-SHA256",
    " ",
    ",",
    ", ",
    "=",
    "/",
    ";",
    "&",
    "%",
    "%2F",
    "%3B",
    "+",
    "Credential=",
    "SignedHeaders=",
    "Signature=",
    "AKIDEXAMPLE",
    "20150830",
    "20150830T123600Z",
    "us-east-1",
    "iot",
    "aws4_request",
    "host",
    "x-amz-date",
    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    "X-Amz-Algorithm=",
    "X-Amz-Credential=",
    "X-Amz-Date=",
    "X-Amz-Expires=",
    "X-Amz-SignedHeaders=",
    "X-Amz-Signature=",
    "604800",
    "99999999999999999999",
    "-1",
    "ሴ",
    "\u{0}",
];

fn garbage() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), prop::collection::vec(prop::sample::select(PIECES), 0..24).prop_map(|p| p.concat()),]
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("host".to_owned()),
        Just("Authorization".to_owned()),
        Just("x-amz-date".to_owned()),
        Just("X-Amz-Date".to_owned()),
        Just("date".to_owned()),
        Just("x-amz-content-sha256".to_owned()),
        "[a-zA-Z-]{0,12}",
        any::<String>(),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((header_name(), garbage()), 0..8)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn verify_never_panics(
        method in garbage(),
        path in garbage(),
        query in garbage(),
        headers in headers(),
        payload in garbage(),
        uri in uri_strategy(),
        now in any::<i64>(),
        skew in any::<i64>(),
    ) {
        let req = Request {
            method: &method,
            raw_path: &path,
            raw_query: &query,
            headers: &headers,
            payload_hash: &payload,
        };
        let _ = verify(&req, uri, secret_for, now, skew);
        let _ = verify(&req, uri, |_| Some(String::new()), now, skew);
    }

    #[test]
    fn verify_never_panics_on_near_valid_signatures(
        credential in garbage(),
        signed_headers in garbage(),
        signature in garbage(),
        date in prop_oneof![Just("20150830T123600Z".to_owned()), garbage()],
        expires in garbage(),
        tail in garbage(),
        uri in uri_strategy(),
        now in prop_oneof![Just(1_440_938_160i64), any::<i64>()],
    ) {
        let headers = vec![
            ("host".to_owned(), "example.amazonaws.com".to_owned()),
            ("x-amz-date".to_owned(), date.clone()),
            (
                "authorization".to_owned(),
                format!("AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders={signed_headers}, Signature={signature}{tail}"),
            ),
        ];
        let req = Request {
            method: "GET",
            raw_path: "/",
            raw_query: "",
            headers: &headers,
            payload_hash: sigv4::EMPTY_PAYLOAD_SHA256,
        };
        let _ = verify(&req, uri, secret_for, now, 900);

        let query = format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={credential}&X-Amz-Date={date}&X-Amz-Expires={expires}&X-Amz-SignedHeaders={signed_headers}&X-Amz-Signature={signature}{tail}"
        );
        let req = Request { raw_query: &query, headers: &headers[..1], ..req };
        let _ = verify(&req, uri, secret_for, now, 900);
    }

    #[test]
    fn helpers_never_panic(s in any::<String>(), slash in any::<bool>(), uri in uri_strategy()) {
        let _ = uri_encode(&s, slash);
        let _ = canonical_uri(&s, uri);
        let _ = canonical_query(&s);
        let _ = parse_amz_date(&s);
    }

    #[test]
    fn signed_requests_verify(
        method in "[A-Z]{1,7}",
        path in any::<String>(),
        query in any::<String>(),
        extra in prop::collection::vec(("x-h-[a-z0-9]{1,6}", any::<String>()), 0..4),
        payload in "[0-9a-f]{64}|UNSIGNED-PAYLOAD|STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        uri in uri_strategy(),
        now in 0i64..253_402_300_799, // up to 9999-12-31T23:59:59Z
        host in "[a-z0-9.:-]{1,20}",
    ) {
        let mut headers = vec![("Host".to_owned(), host)];
        headers.extend(extra);
        let req = Request {
            method: &method,
            raw_path: &path,
            raw_query: &query,
            headers: &headers,
            payload_hash: &payload,
        };
        let mut all = headers.clone();
        all.extend(sign_headers(&req, uri, &creds(), "eu-west-1", "iot", now));
        let signed = Request { headers: &all, ..req };
        let v = verify(&signed, uri, secret_for, now, 900).unwrap();
        prop_assert_eq!(v.signed_at, now);
        prop_assert!(!v.presigned);

        let tampered_payload = format!("{payload}0");
        let tampered = Request { payload_hash: &tampered_payload, ..signed };
        let is_mismatch = matches!(
            verify(&tampered, uri, secret_for, now, 900),
            Err(sigv4::AuthError::SignatureDoesNotMatch { .. })
        );
        prop_assert!(is_mismatch);
    }

    #[test]
    fn presigned_requests_verify(
        path in any::<String>(),
        query in "([a-z]{1,5}(=[a-zA-Z0-9%+ ]{0,6})?&?){0,4}",
        uri in uri_strategy(),
        now in 0i64..253_402_300_799,
        expires in 1u32..=604_800,
    ) {
        let headers = vec![("host".to_owned(), "localhost:9000".to_owned())];
        let req = Request {
            method: "GET",
            raw_path: &path,
            raw_query: &query,
            headers: &headers,
            payload_hash: sigv4::EMPTY_PAYLOAD_SHA256,
        };
        let signed_query = presign_query(&req, uri, &creds(), "us-east-1", "s3", now, expires);
        let signed = Request { raw_query: &signed_query, ..req };
        let v = verify(&signed, uri, secret_for, now + i64::from(expires), 900).unwrap();
        prop_assert!(v.presigned);
        prop_assert_eq!(
            verify(&signed, uri, secret_for, now + i64::from(expires) + 1, 900),
            Err(sigv4::AuthError::Expired)
        );
    }
}
