//! `thingport rules …` and `thingport tables …`

use std::path::Path;

use anyhow::Context;
use serde_json::{json, Value};

use crate::client::ApiClient;

/// Create a rule from a `topicRulePayload` JSON file, or from `--sql` and one republish/http action.
pub async fn create(
    c: &ApiClient,
    name: &str,
    file: Option<&Path>,
    sql: Option<&str>,
    republish: Option<&str>,
    http: Option<&str>,
) -> anyhow::Result<()> {
    let payload: Value = match (file, sql) {
        (Some(f), _) => {
            let text = std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
            let v: Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", f.display()))?;
            v.get("topicRulePayload").cloned().unwrap_or(v)
        }
        (None, Some(sql)) => {
            let mut actions = Vec::new();
            if let Some(t) = republish {
                actions.push(json!({ "republish": { "topic": t, "qos": 1 } }));
            }
            if let Some(u) = http {
                actions.push(json!({ "http": { "url": u } }));
            }
            if actions.is_empty() {
                actions.push(json!({ "cloudwatchLogs": { "logGroupName": "rules" } }));
            }
            json!({ "sql": sql, "actions": actions, "awsIotSqlVersion": "2016-03-23" })
        }
        (None, None) => anyhow::bail!("give a topicRulePayload JSON file or --sql"),
    };
    c.call("POST", &format!("/rules/{name}"), "", &[], Some(&json!({ "topicRulePayload": payload }))).await?;
    println!("created rule {name}");
    Ok(())
}

pub async fn list(c: &ApiClient, json_out: bool) -> anyhow::Result<()> {
    let v = c.call("GET", "/rules", "", &[], None).await?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let m = c.call("GET", "/thingport/rules/metrics", "", &[], None).await?;
    let rows: Vec<Vec<String>> = v["rules"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let name = r["ruleName"].as_str().unwrap_or("").to_string();
            let mm = &m["rules"][&name];
            vec![
                name.clone(),
                r["topicPattern"].as_str().unwrap_or("").to_string(),
                if r["ruleDisabled"].as_bool().unwrap_or(false) { "disabled" } else { "enabled" }.into(),
                mm["matched"].as_u64().unwrap_or(0).to_string(),
                mm["actionsSucceeded"].as_u64().unwrap_or(0).to_string(),
                mm["actionsFailed"].as_u64().unwrap_or(0).to_string(),
            ]
        })
        .collect();
    super::table(&["RULE", "TOPIC", "STATE", "MATCHED", "OK", "FAILED"], &rows);
    println!("pending actions: {}", m["pendingActions"]);
    Ok(())
}

pub async fn get(c: &ApiClient, name: &str) -> anyhow::Result<()> {
    let v = c.call("GET", &format!("/rules/{name}"), "", &[], None).await?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

pub async fn simple(c: &ApiClient, method: &str, path: &str, done: &str) -> anyhow::Result<()> {
    c.call(method, path, "", &[], None).await?;
    println!("{done}");
    Ok(())
}

pub async fn query_table(c: &ApiClient, table: &str, hash_key: Option<&str>) -> anyhow::Result<()> {
    let q = hash_key.map(|h| format!("hashKey={h}")).unwrap_or_default();
    let v = c.call("GET", &format!("/thingport/tables/{table}"), &q, &[], None).await?;
    for item in v["items"].as_array().cloned().unwrap_or_default() {
        println!("{item}");
    }
    Ok(())
}
