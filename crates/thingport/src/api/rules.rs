//! Topic rule operations of the AWS IoT control plane, plus Thingport's rule
//! metrics and table-store queries.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::error::ApiError;
use super::ApiState;

type ApiResult = Result<Json<Value>, ApiError>;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/rules", get(list_rules))
        .route("/rules/{name}", post(create_rule).get(get_rule).patch(replace_rule).delete(delete_rule))
        .route("/rules/{name}/enable", post(enable_rule))
        .route("/rules/{name}/disable", post(disable_rule))
        .route("/thingport/rules/metrics", get(rule_metrics))
        .route("/thingport/tables/{table}", get(query_table))
}

fn payload(body: &Bytes) -> Result<Value, ApiError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("request body is not valid JSON: {e}")))?;
    // botocore sends the TopicRulePayload itself as the body; accept it wrapped too.
    match v.get("topicRulePayload") {
        Some(p) => Ok(p.clone()),
        None if v.get("sql").is_some() => Ok(v),
        None => Err(ApiError::invalid("topicRulePayload (with sql and actions) is required")),
    }
}

async fn create_rule(State(s): State<ApiState>, Path(name): Path<String>, body: Bytes) -> Result<StatusCode, ApiError> {
    s.rules.put(&name, payload(&body)?, false)?;
    Ok(StatusCode::OK)
}

async fn replace_rule(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    s.rules.put(&name, payload(&body)?, true)?;
    Ok(StatusCode::OK)
}

async fn get_rule(State(s): State<ApiState>, Path(name): Path<String>) -> ApiResult {
    let (rec, p) = s.rules.get(&name)?;
    Ok(Json(json!({
        "ruleArn": s.rules.rule_arn(&name),
        "rule": {
            "ruleName": rec.name,
            "sql": p["sql"],
            "description": p.get("description").cloned().unwrap_or(json!("")),
            "createdAt": rec.created_at_ms as f64 / 1000.0,
            "actions": p.get("actions").cloned().unwrap_or(json!([])),
            "ruleDisabled": p.get("ruleDisabled").cloned().unwrap_or(json!(false)),
            "awsIotSqlVersion": p.get("awsIotSqlVersion").cloned().unwrap_or(json!("2016-03-23")),
            "errorAction": p.get("errorAction").cloned(),
        }
    })))
}

async fn list_rules(State(s): State<ApiState>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let mut all = s.rules.list()?;
    if let Some(d) = q.get("ruleDisabled") {
        let want = d == "true";
        all.retain(|(_, p)| p.get("ruleDisabled").and_then(Value::as_bool).unwrap_or(false) == want);
    }
    let list: Vec<Value> = all
        .iter()
        .map(|(rec, p)| {
            let topic =
                p["sql"].as_str().and_then(|sql| rules::Rule::parse(sql).ok()).map(|r| r.topic_filter().to_string());
            json!({
                "ruleArn": s.rules.rule_arn(&rec.name),
                "ruleName": rec.name,
                "topicPattern": topic,
                "createdAt": rec.created_at_ms as f64 / 1000.0,
                "ruleDisabled": p.get("ruleDisabled").and_then(Value::as_bool).unwrap_or(false),
            })
        })
        .filter(|v| q.get("topic").is_none_or(|t| v["topicPattern"].as_str() == Some(t)))
        .collect();
    Ok(Json(json!({ "rules": list })))
}

async fn delete_rule(State(s): State<ApiState>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    s.rules.delete(&name)?;
    Ok(StatusCode::OK)
}

async fn enable_rule(State(s): State<ApiState>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    s.rules.set_enabled(&name, true)?;
    Ok(StatusCode::OK)
}

async fn disable_rule(State(s): State<ApiState>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    s.rules.set_enabled(&name, false)?;
    Ok(StatusCode::OK)
}

async fn rule_metrics(State(s): State<ApiState>) -> ApiResult {
    Ok(Json(json!({ "rules": s.rules.metrics(), "pendingActions": s.rules.backlog() })))
}

async fn query_table(
    State(s): State<ApiState>,
    Path(table): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let limit = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100usize).clamp(1, 10_000);
    let items = s.rules.query_table(&table, q.get("hashKey").map(String::as_str), limit)?;
    Ok(Json(json!({ "items": items })))
}
