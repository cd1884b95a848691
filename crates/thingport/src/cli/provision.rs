//! `thingport provision NAME --out DIR`: a device identity in one step.
//!
//! The key pair is made here and only a CSR goes to the server, so the
//! private key never crosses the network.

use std::path::Path;

use anyhow::Context;
use serde_json::json;

use crate::client::ApiClient;
use crate::datadir::{write_public, write_secret};

pub async fn run(
    c: &ApiClient,
    name: &str,
    out: &Path,
    key_type: pki::KeyType,
    policy: Option<&str>,
) -> anyhow::Result<()> {
    if !crate::registry::valid_thing_name(name) {
        anyhow::bail!("thing name {name:?} must be 1-128 characters of [a-zA-Z0-9:_-]");
    }
    let key_file = out.join("private.pem.key");
    if key_file.exists() {
        anyhow::bail!("{} already exists; choose another --out directory or remove it", key_file.display());
    }
    eprintln!("[1/4] creating thing {name}");
    match c.call("POST", &format!("/things/{name}"), "", &[], Some(&json!({}))).await {
        Ok(_) => {}
        Err(e) if e.to_string().contains("ResourceAlreadyExistsException") => {
            eprintln!("      thing {name} already exists; adding a new certificate to it");
        }
        Err(e) => return Err(e),
    }
    eprintln!("[2/4] generating a {} key pair locally", key_type.as_str());
    let key = pki::generate_key(key_type)?;
    let csr = pki::make_csr(&key, name)?;
    eprintln!("[3/4] asking the CA to sign the certificate request");
    let cert = c
        .call("POST", "/certificates", "setAsActive=true", &[], Some(&json!({ "certificateSigningRequest": csr })))
        .await?;
    let cert_pem = cert["certificatePem"].as_str().context("no certificatePem in the answer")?;
    let cert_arn = cert["certificateArn"].as_str().context("no certificateArn in the answer")?;
    let cert_id = cert["certificateId"].as_str().unwrap_or("");
    // Exclusive: the certificate is this thing's, whatever client id it uses.
    c.call(
        "PUT",
        &format!("/things/{name}/principals"),
        "thingPrincipalType=EXCLUSIVE_THING",
        &[("x-amzn-principal", cert_arn)],
        None,
    )
    .await?;
    if let Some(p) = policy {
        c.call("PUT", &format!("/target-policies/{p}"), "", &[], Some(&json!({ "target": cert_arn }))).await?;
    }
    let info = c.call("GET", "/thingport/info", "", &[], None).await?;
    let ca_pem = info["rootCaPem"].as_str().context("no rootCaPem in the answer")?;

    eprintln!("[4/4] writing {}", out.display());
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    write_secret(&key_file, key.expose().as_bytes())?;
    write_public(&out.join("certificate.pem.crt"), cert_pem.as_bytes())?;
    write_public(&out.join("root-ca.pem"), ca_pem.as_bytes())?;

    let mqtt = info["mqttAddress"].as_str().unwrap_or("localhost:8883");
    let (host, port) = mqtt.rsplit_once(':').unwrap_or((mqtt, "8883"));
    let host = match host {
        "0.0.0.0" | "[::]" | "127.0.0.1" => "localhost",
        h => h,
    };
    let d = out.display();
    println!("Device {name} is ready (certificate {cert_id}).\n");
    match policy {
        Some(p) => {
            println!("Policy {p} is attached: client ids {name} and {name}-*, topics {name}/... and its own shadow.\n")
        }
        None => println!("No policy is attached: the device may do nothing until you attach one.\n"),
    }
    println!("  {d}/certificate.pem.crt   device certificate");
    println!("  {d}/private.pem.key       private key (mode 0600, keep it secret)");
    println!("  {d}/root-ca.pem           CA that signed the server certificate\n");
    println!("Publish:\n");
    println!(
        "  mosquitto_pub -h {host} -p {port} --cafile {d}/root-ca.pem --cert {d}/certificate.pem.crt --key {d}/private.pem.key -i {name} -t {name}/hello -m 'hello from {name}' -q 1\n"
    );
    println!("Subscribe:\n");
    println!(
        "  mosquitto_sub -h {host} -p {port} --cafile {d}/root-ca.pem --cert {d}/certificate.pem.crt --key {d}/private.pem.key -i {name}-sub -t '{name}/#' -v"
    );
    Ok(())
}
