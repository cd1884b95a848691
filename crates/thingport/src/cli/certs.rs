//! `thingport certs …`

use serde_json::Value;

use crate::client::ApiClient;

pub async fn list(c: &ApiClient, json: bool) -> anyhow::Result<()> {
    let mut all = Vec::new();
    let mut marker = String::new();
    loop {
        let q = if marker.is_empty() { String::new() } else { format!("marker={marker}") };
        let v = c.call("GET", "/certificates", &q, &[], None).await?;
        all.extend(v["certificates"].as_array().cloned().unwrap_or_default());
        match v.get("nextMarker").and_then(Value::as_str) {
            Some(m) => marker = m.to_string(),
            None => break,
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "certificates": all }))?);
        return Ok(());
    }
    let mut rows = Vec::new();
    for cert in &all {
        let id = cert["certificateId"].as_str().unwrap_or("").to_string();
        let things = c
            .call(
                "GET",
                "/principals/things",
                "",
                &[("x-amzn-principal", cert["certificateArn"].as_str().unwrap_or(""))],
                None,
            )
            .await
            .ok()
            .and_then(|v| {
                v["things"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","))
            })
            .unwrap_or_default();
        rows.push(vec![
            id,
            cert["status"].as_str().unwrap_or("").to_string(),
            if things.is_empty() { "-".into() } else { things },
        ]);
    }
    super::table(&["CERTIFICATE ID", "STATUS", "THINGS"], &rows);
    Ok(())
}

pub async fn describe(c: &ApiClient, id: &str) -> anyhow::Result<()> {
    let v = c.call("GET", &format!("/certificates/{id}"), "", &[], None).await?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

pub async fn set_status(c: &ApiClient, id: &str, status: &str) -> anyhow::Result<()> {
    c.call("PUT", &format!("/certificates/{id}"), &format!("newStatus={status}"), &[], None).await?;
    println!("certificate {id} is now {status}");
    Ok(())
}

pub async fn delete(c: &ApiClient, id: &str) -> anyhow::Result<()> {
    c.call("DELETE", &format!("/certificates/{id}"), "", &[], None).await?;
    println!("deleted certificate {id}");
    Ok(())
}

/// `thingport certs create [--thing T] [--out DIR]`: one-click key and
/// certificate from the CA (AWS CreateKeysAndCertificate); the private key is
/// shown once and never kept by the server.
pub async fn create(
    c: &ApiClient,
    thing: Option<&str>,
    out: Option<&std::path::Path>,
    key_type: pki::KeyType,
    json_out: bool,
) -> anyhow::Result<()> {
    let q = format!("setAsActive=true&keyType={}", key_type.as_str());
    let v = c.call("POST", "/keys-and-certificate", &q, &[], None).await?;
    let arn = v["certificateArn"].as_str().unwrap_or("");
    if let Some(t) = thing {
        c.call("PUT", &format!("/things/{t}/principals"), "", &[("x-amzn-principal", arn)], None).await?;
    }
    if let Some(dir) = out {
        std::fs::create_dir_all(dir)?;
        crate::datadir::write_secret(
            &dir.join("private.pem.key"),
            v["keyPair"]["PrivateKey"].as_str().unwrap_or("").as_bytes(),
        )?;
        crate::datadir::write_public(
            &dir.join("certificate.pem.crt"),
            v["certificatePem"].as_str().unwrap_or("").as_bytes(),
        )?;
        let info = c.call("GET", "/thingport/info", "", &[], None).await?;
        crate::datadir::write_public(&dir.join("root-ca.pem"), info["rootCaPem"].as_str().unwrap_or("").as_bytes())?;
    }
    if json_out {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("created certificate {} (ACTIVE)", v["certificateId"].as_str().unwrap_or(""));
        if let Some(t) = thing {
            println!("attached to thing {t}");
        }
        match out {
            Some(dir) => println!("wrote {}/certificate.pem.crt, private.pem.key (0600), root-ca.pem", dir.display()),
            None => {
                println!("(use --out DIR to save the private key: it is not kept by the server)")
            }
        }
    }
    Ok(())
}

/// `thingport certs attach|detach ID THING`.
pub async fn attach(c: &ApiClient, id: &str, thing: &str, detach: bool) -> anyhow::Result<()> {
    let info = c.call("GET", &format!("/certificates/{id}"), "", &[], None).await?;
    let arn = info["certificateDescription"]["certificateArn"].as_str().unwrap_or("").to_string();
    let method = if detach { "DELETE" } else { "PUT" };
    c.call(method, &format!("/things/{thing}/principals"), "", &[("x-amzn-principal", &arn)], None).await?;
    println!(
        "{} certificate {id} {} thing {thing}",
        if detach { "detached" } else { "attached" },
        if detach { "from" } else { "to" }
    );
    Ok(())
}
