//! `thingport things …`

use serde_json::Value;

use crate::client::ApiClient;

pub async fn list(c: &ApiClient, json: bool) -> anyhow::Result<()> {
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let q = if token.is_empty() { String::new() } else { format!("nextToken={token}") };
        let v = c.call("GET", "/things", &q, &[], None).await?;
        all.extend(v["things"].as_array().cloned().unwrap_or_default());
        match v.get("nextToken").and_then(Value::as_str) {
            Some(t) => token = t.to_string(),
            None => break,
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "things": all }))?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|t| {
            vec![
                t["thingName"].as_str().unwrap_or("").to_string(),
                t["thingTypeName"].as_str().unwrap_or("-").to_string(),
                t["attributes"].as_object().map(|a| a.len()).unwrap_or(0).to_string(),
            ]
        })
        .collect();
    super::table(&["NAME", "TYPE", "ATTRIBUTES"], &rows);
    Ok(())
}

pub async fn create(c: &ApiClient, name: &str, json: bool) -> anyhow::Result<()> {
    let v = c.call("POST", &format!("/things/{name}"), "", &[], Some(&serde_json::json!({}))).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("created thing {name} ({})", v["thingArn"].as_str().unwrap_or(""));
    }
    Ok(())
}

pub async fn describe(c: &ApiClient, name: &str) -> anyhow::Result<()> {
    let mut v = c.call("GET", &format!("/things/{name}"), "", &[], None).await?;
    let p = c.call("GET", &format!("/things/{name}/principals"), "", &[], None).await?;
    v["principals"] = p["principals"].clone();
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

pub async fn delete(c: &ApiClient, name: &str) -> anyhow::Result<()> {
    // DeleteThing succeeds for unknown things (as AWS); the CLI says so instead.
    c.call("GET", &format!("/things/{name}"), "", &[], None).await?;
    c.call("DELETE", &format!("/things/{name}"), "", &[], None).await?;
    println!("deleted thing {name}");
    Ok(())
}
