//! `thingport policies …`

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use serde_json::{json, Value};

use crate::client::ApiClient;

fn read_document(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        return Ok(s);
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

pub async fn create(c: &ApiClient, name: &str, document: &Path) -> anyhow::Result<()> {
    let doc = read_document(document)?;
    c.call("POST", &format!("/policies/{name}"), "", &[], Some(&json!({ "policyDocument": doc }))).await?;
    println!("created policy {name}");
    Ok(())
}

pub async fn update(c: &ApiClient, name: &str, document: &Path) -> anyhow::Result<()> {
    let doc = read_document(document)?;
    let v = c
        .call(
            "POST",
            &format!("/policies/{name}/version"),
            "setAsDefault=true",
            &[],
            Some(&json!({ "policyDocument": doc })),
        )
        .await?;
    println!("policy {name} is now at version {} (default)", v["policyVersionId"].as_str().unwrap_or("?"));
    Ok(())
}

pub async fn list(c: &ApiClient, json_out: bool) -> anyhow::Result<()> {
    let v = c.call("GET", "/policies", "", &[], None).await?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let mut rows = Vec::new();
    for p in v["policies"].as_array().cloned().unwrap_or_default() {
        let name = p["policyName"].as_str().unwrap_or("").to_string();
        let t = c.call("POST", &format!("/policy-targets/{name}"), "", &[], None).await?;
        let n = t["targets"].as_array().map(Vec::len).unwrap_or(0);
        let d = c.call("GET", &format!("/policies/{name}"), "", &[], None).await?;
        rows.push(vec![name, d["defaultVersionId"].as_str().unwrap_or("").to_string(), n.to_string()]);
    }
    super::table(&["POLICY", "DEFAULT VERSION", "TARGETS"], &rows);
    Ok(())
}

pub async fn get(c: &ApiClient, name: &str) -> anyhow::Result<()> {
    let v = c.call("GET", &format!("/policies/{name}"), "", &[], None).await?;
    let doc = v["policyDocument"].as_str().unwrap_or("");
    let pretty = serde_json::from_str::<Value>(doc).map(|d| serde_json::to_string_pretty(&d).unwrap_or_default());
    println!("# {name}, version {}", v["defaultVersionId"].as_str().unwrap_or("?"));
    println!("{}", pretty.unwrap_or_else(|_| doc.to_string()));
    Ok(())
}

/// A target given as a certificate id, a thing-group name (`group:NAME`) or an ARN.
fn target_arn(c_region: &str, target: &str) -> String {
    if let Some(g) = target.strip_prefix("group:") {
        return format!("arn:aws:iot:{c_region}:000000000000:thinggroup/{g}");
    }
    target.to_string()
}

pub async fn attach(c: &ApiClient, name: &str, target: &str, detach: bool) -> anyhow::Result<()> {
    let info = c.call("GET", "/thingport/info", "", &[], None).await?;
    let region = info["region"].as_str().unwrap_or("us-east-1");
    let t = target_arn(region, target);
    let method = if detach { "POST" } else { "PUT" };
    c.call(method, &format!("/target-policies/{name}"), "", &[], Some(&json!({ "target": t }))).await?;
    println!(
        "{} policy {name} {} {target}",
        if detach { "detached" } else { "attached" },
        if detach { "from" } else { "to" }
    );
    Ok(())
}

pub async fn delete(c: &ApiClient, name: &str) -> anyhow::Result<()> {
    c.call("DELETE", &format!("/policies/{name}"), "", &[], None).await?;
    println!("deleted policy {name}");
    Ok(())
}

/// `thingport policies test CERT_ID --client-id C --action publish --resource topic/a/b`
pub async fn test(
    c: &ApiClient,
    cert: &str,
    client_id: &str,
    action: &str,
    resources: &[String],
) -> anyhow::Result<()> {
    let info = c.call("GET", "/thingport/info", "", &[], None).await?;
    let region = info["region"].as_str().unwrap_or("us-east-1");
    let account = info["accountId"].as_str().unwrap_or("000000000000");
    let resources: Vec<String> = resources
        .iter()
        .map(|r| if r.starts_with("arn:") { r.clone() } else { format!("arn:aws:iot:{region}:{account}:{r}") })
        .collect();
    let body = json!({
        "principal": cert,
        "authInfos": [{ "actionType": action.to_ascii_uppercase(), "resources": resources }],
    });
    let v = c.call("POST", "/test-authorization", &format!("clientId={client_id}"), &[], Some(&body)).await?;
    for r in v["authResults"].as_array().cloned().unwrap_or_default() {
        println!("{}", r["authDecision"].as_str().unwrap_or("?"));
    }
    Ok(())
}
