//! The management API refuses unsigned and wrongly signed requests with
//! AWS's error shape, and the CLI reports the refusal.

mod common;

use std::io::{Read, Write};

use common::Server;

fn raw_http(api: &str, request: &str) -> String {
    let addr = api.strip_prefix("http://").unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn unsigned_and_badly_signed_requests_get_403() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), 0);
    let host = server.api.strip_prefix("http://").unwrap();

    let r = raw_http(&server.api, &format!("GET /things HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"));
    assert!(r.starts_with("HTTP/1.1 403"), "{r}");
    assert!(r.contains("MissingAuthenticationTokenException"), "{r}");
    assert!(r.to_ascii_lowercase().contains("x-amzn-errortype: missingauthenticationtokenexception"), "{r}");

    let forged = format!(
        "GET /things HTTP/1.1\r\nHost: {host}\r\nX-Amz-Date: 20260101T000000Z\r\nAuthorization: AWS4-HMAC-SHA256 Credential=TPAKNOTAKEY/20260101/us-east-1/iot/aws4_request, SignedHeaders=host;x-amz-date, Signature={}\r\nConnection: close\r\n\r\n",
        "0".repeat(64)
    );
    let r = raw_http(&server.api, &forged);
    assert!(r.starts_with("HTTP/1.1 403"), "{r}");

    // Right key id, wrong secret.
    let creds: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("admin-credentials.json")).unwrap()).unwrap();
    let out = std::process::Command::new(common::bin())
        .args(["things", "list"])
        .env("THINGPORT_ENDPOINT", &server.api)
        .env("THINGPORT_ACCESS_KEY_ID", creds["accessKeyId"].as_str().unwrap())
        .env("THINGPORT_SECRET_ACCESS_KEY", "wrong-secret-wrong-secret-wrong-secret-00")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("403") && err.contains("InvalidSignatureException"), "{err}");

    // The right credentials work, and the health check needs none.
    assert!(server.cli(&["things", "list"]).contains("NAME"));
    let r = raw_http(&server.api, &format!("GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"));
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
}

#[test]
fn admin_credentials_file_is_private_and_env_credentials_are_used() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), 0);
    for f in ["admin-credentials.json", "ca/root-ca.key", "server/server.key"] {
        let mode = std::fs::metadata(tmp.path().join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f} has mode {mode:o}");
    }
    let dev = server.provision("perm-dev", "rsa");
    let mode = std::fs::metadata(dev.dir.join("private.pem.key")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let listed = server.cli(&["certs", "list"]);
    assert!(listed.contains(&dev.cert_id) && listed.contains("ACTIVE") && listed.contains("perm-dev"), "{listed}");
    // The server log never contains the admin secret or a private key.
    let creds: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("admin-credentials.json")).unwrap()).unwrap();
    let log = server.log_text();
    assert!(!log.contains(creds["secretAccessKey"].as_str().unwrap()));
    assert!(!log.contains("PRIVATE KEY"));
}
