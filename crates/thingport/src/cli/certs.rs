//! `thingport certs …`

use serde_json::Value;

use crate::client::ApiClient;

pub async fn list(c: &ApiClient, json: bool) -> anyhow::Result<()> {
    let mut all = Vec::new();
    let mut marker = String::new();
    loop {
        let q = if marker.is_empty() {
            String::new()
        } else {
            format!("marker={marker}")
        };
        let v = c.call("GET", "/certificates", &q, &[], None).await?;
        all.extend(v["certificates"].as_array().cloned().unwrap_or_default());
        match v.get("nextMarker").and_then(Value::as_str) {
            Some(m) => marker = m.to_string(),
            None => break,
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "certificates": all }))?
        );
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
                &[(
                    "x-amzn-principal",
                    cert["certificateArn"].as_str().unwrap_or(""),
                )],
                None,
            )
            .await
            .ok()
            .and_then(|v| {
                v["things"].as_array().map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                })
            })
            .unwrap_or_default();
        rows.push(vec![
            id,
            cert["status"].as_str().unwrap_or("").to_string(),
            if things.is_empty() {
                "-".into()
            } else {
                things
            },
        ]);
    }
    super::table(&["CERTIFICATE ID", "STATUS", "THINGS"], &rows);
    Ok(())
}

pub async fn describe(c: &ApiClient, id: &str) -> anyhow::Result<()> {
    let v = c
        .call("GET", &format!("/certificates/{id}"), "", &[], None)
        .await?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

pub async fn set_status(c: &ApiClient, id: &str, status: &str) -> anyhow::Result<()> {
    c.call(
        "PUT",
        &format!("/certificates/{id}"),
        &format!("newStatus={status}"),
        &[],
        None,
    )
    .await?;
    println!("certificate {id} is now {status}");
    Ok(())
}

pub async fn delete(c: &ApiClient, id: &str) -> anyhow::Result<()> {
    c.call("DELETE", &format!("/certificates/{id}"), "", &[], None)
        .await?;
    println!("deleted certificate {id}");
    Ok(())
}
