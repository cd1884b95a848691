//! `thingport ca …` and certificate registration: bring your own CA.

use std::path::Path;

use anyhow::Context;
use serde_json::{json, Value};

use crate::client::ApiClient;

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

pub async fn registration_code(c: &ApiClient) -> anyhow::Result<()> {
    let v = c.call("GET", "/registrationcode", "", &[], None).await?;
    println!("{}", v["registrationCode"].as_str().unwrap_or(""));
    Ok(())
}

pub async fn register(
    c: &ApiClient,
    ca_cert: &Path,
    verification_cert: Option<&Path>,
    active: bool,
    auto_register: bool,
) -> anyhow::Result<()> {
    let mut body = json!({ "caCertificate": read(ca_cert)? });
    match verification_cert {
        Some(v) => body["verificationCertificate"] = json!(read(v)?),
        None => body["certificateMode"] = json!("SNI_ONLY"),
    }
    let q = format!("setAsActive={active}&allowAutoRegistration={auto_register}");
    let v = c.call("POST", "/cacertificate", &q, &[], Some(&body)).await?;
    println!("registered CA certificate {}", v["certificateId"].as_str().unwrap_or(""));
    Ok(())
}

pub async fn list(c: &ApiClient, json_out: bool) -> anyhow::Result<()> {
    let v = c.call("GET", "/cacertificates", "", &[], None).await?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let mut rows = Vec::new();
    for ca in v["certificates"].as_array().cloned().unwrap_or_default() {
        let id = ca["certificateId"].as_str().unwrap_or("").to_string();
        let d = c.call("GET", &format!("/cacertificate/{id}"), "", &[], None).await?;
        let auto = d["certificateDescription"]["autoRegistrationStatus"].as_str().unwrap_or("").to_string();
        rows.push(vec![id, ca["status"].as_str().unwrap_or("").to_string(), auto]);
    }
    super::table(&["CA CERTIFICATE ID", "STATUS", "AUTO-REGISTRATION"], &rows);
    Ok(())
}

pub async fn update(c: &ApiClient, id: &str, status: Option<&str>, auto: Option<&str>) -> anyhow::Result<()> {
    let mut q = Vec::new();
    if let Some(s) = status {
        q.push(format!("newStatus={s}"));
    }
    if let Some(a) = auto {
        q.push(format!("newAutoRegistrationStatus={a}"));
    }
    c.call("PUT", &format!("/cacertificate/{id}"), &q.join("&"), &[], None).await?;
    println!("updated CA certificate {id}");
    Ok(())
}

pub async fn delete(c: &ApiClient, id: &str) -> anyhow::Result<()> {
    c.call("DELETE", &format!("/cacertificate/{id}"), "", &[], None).await?;
    println!("deleted CA certificate {id}");
    Ok(())
}

/// `thingport certs register`: a device certificate signed by a registered CA,
/// or (with `without_ca`) one whose issuer Thingport does not know.
pub async fn register_certificate(
    c: &ApiClient,
    cert: &Path,
    ca_cert: Option<&Path>,
    without_ca: bool,
    active: bool,
) -> anyhow::Result<Value> {
    let status = if active { "ACTIVE" } else { "INACTIVE" };
    let mut body = json!({ "certificatePem": read(cert)?, "status": status });
    let path = if without_ca {
        "/certificate/register-no-ca"
    } else {
        if let Some(ca) = ca_cert {
            body["caCertificatePem"] = json!(read(ca)?);
        }
        "/certificate/register"
    };
    let v = c.call("POST", path, "", &[], Some(&body)).await?;
    println!("registered certificate {} ({status})", v["certificateId"].as_str().unwrap_or(""));
    Ok(v)
}

pub async fn rotate_server_certificate(c: &ApiClient) -> anyhow::Result<()> {
    let v = c.call("POST", "/thingport/server-certificate/rotate", "", &[], None).await?;
    println!("serving new server certificate {}", v["certificateId"].as_str().unwrap_or(""));
    Ok(())
}
