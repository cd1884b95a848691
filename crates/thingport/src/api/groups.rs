//! AWS IoT control-plane operations on thing types, static thing groups and
//! registry event configurations, plus the hooks the thing handlers call so
//! that CreateThing/DeleteThing publish registry events. Paths, methods and
//! JSON shapes follow the botocore `iot` service model.

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use store::registry::{ThingGroupRecord, ThingTypeRecord};
use store::ThingRecord;

use super::error::ApiError;
use super::ApiState;
use crate::groups::{AttributeChange, GroupUpdate, GroupView};

type ApiResult = Result<Json<Value>, ApiError>;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/thing-types", get(list_thing_types))
        .route("/thing-types/{name}", post(create_thing_type).get(describe_thing_type).delete(delete_thing_type))
        .route("/thing-types/{name}/deprecate", post(deprecate_thing_type))
        .route("/thing-groups", get(list_thing_groups))
        .route("/thing-groups/addThingToThingGroup", put(add_thing_to_thing_group))
        .route("/thing-groups/removeThingFromThingGroup", put(remove_thing_from_thing_group))
        .route(
            "/thing-groups/{name}",
            post(create_thing_group).get(describe_thing_group).patch(update_thing_group).delete(delete_thing_group),
        )
        .route("/thing-groups/{name}/things", get(list_things_in_thing_group))
        .route("/things/{name}/thing-groups", get(list_thing_groups_for_thing))
        .route("/event-configurations", get(describe_event_configurations).patch(update_event_configurations))
}

// ---- hooks for the thing handlers in iot.rs ----

/// Checks CreateThing needs for types: the type exists (404) and is not
/// deprecated (400); at most 3 attributes without a type, 50 with one.
pub fn check_new_thing(
    state: &ApiState,
    type_name: Option<&str>,
    attributes: &BTreeMap<String, String>,
) -> Result<(), ApiError> {
    state.groups.check_new_thing(type_name, attributes)
}

/// Publish `$aws/events/thing/{name}/{op}` (op: CREATED, UPDATED, DELETED)
/// when THING events are enabled; a thing created with a type also gets a
/// THING_TYPE_ASSOCIATION event.
pub fn thing_event(state: &ApiState, op: &str, thing: &ThingRecord) {
    state.groups.thing_event(op, thing);
    if op == "CREATED" {
        if let Some(t) = &thing.type_name {
            state.groups.type_association_event("CREATED", thing, t);
        }
    }
}

// ---- request helpers ----

pub(crate) fn parse_body<T: for<'de> Deserialize<'de> + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("request body is not valid JSON: {e}")))
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

fn query_bool(q: &HashMap<String, String>, key: &str) -> Result<Option<bool>, ApiError> {
    match q.get(key).map(String::as_str) {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(v) => Err(ApiError::invalid(format!("{key} must be true or false, not {v:?}"))),
    }
}

/// Offset pagination: `nextToken` is the offset (opaque to clients).
fn page<T: Clone>(items: &[T], q: &HashMap<String, String>) -> Result<(Vec<T>, Option<String>), ApiError> {
    let start: usize = match q.get("nextToken").map(String::as_str) {
        Some(t) if !t.is_empty() => t.parse().map_err(|_| ApiError::invalid("invalid nextToken"))?,
        _ => 0,
    };
    let max: usize = match q.get("maxResults") {
        Some(m) => match m.parse() {
            Ok(n) if (1..=250).contains(&n) => n,
            _ => return Err(ApiError::invalid(format!("maxResults must be between 1 and 250, not {m:?}"))),
        },
        None => 250,
    };
    let end = start.saturating_add(max).min(items.len());
    let slice = items.get(start..end).map(<[T]>::to_vec).unwrap_or_default();
    let next = (end < items.len()).then(|| end.to_string());
    Ok((slice, next))
}

fn with_token(mut v: Value, next: Option<String>) -> Value {
    if let Some(n) = next {
        v["nextToken"] = json!(n);
    }
    v
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AttributePayloadBody {
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    #[serde(default)]
    merge: bool,
}

impl From<AttributePayloadBody> for AttributeChange {
    fn from(a: AttributePayloadBody) -> Self {
        AttributeChange { attributes: a.attributes, merge: a.merge }
    }
}

#[derive(Debug, Deserialize)]
struct TagBody {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Value", default)]
    value: Option<String>,
}

fn tags(list: Vec<TagBody>) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    for t in list {
        if t.key.is_empty() || t.key.len() > 128 {
            return Err(ApiError::invalid("tag keys are 1-128 characters"));
        }
        out.insert(t.key, t.value.unwrap_or_default());
    }
    Ok(out)
}

// ---- thing types ----

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThingTypePropertiesBody {
    thing_type_description: Option<String>,
    #[serde(default)]
    searchable_attributes: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateThingTypeBody {
    thing_type_properties: Option<ThingTypePropertiesBody>,
    #[serde(default)]
    tags: Vec<TagBody>,
}

fn type_properties(t: &ThingTypeRecord) -> Value {
    let mut p = json!({ "searchableAttributes": t.searchable_attributes });
    if let Some(d) = &t.description {
        p["thingTypeDescription"] = json!(d);
    }
    p
}

fn type_metadata(t: &ThingTypeRecord) -> Value {
    let mut m = json!({ "deprecated": t.deprecated, "creationDate": secs(t.created_at_ms) });
    if let Some(d) = t.deprecated_at_ms {
        m["deprecationDate"] = json!(secs(d));
    }
    m
}

async fn create_thing_type(State(s): State<ApiState>, Path(name): Path<String>, body: Bytes) -> ApiResult {
    let b: CreateThingTypeBody = parse_body(&body)?;
    let props = b.thing_type_properties.unwrap_or_default();
    let t =
        s.groups.create_thing_type(&name, props.thing_type_description, props.searchable_attributes, tags(b.tags)?)?;
    Ok(Json(json!({
        "thingTypeName": t.name,
        "thingTypeArn": s.groups.type_arn(&t.name),
        "thingTypeId": t.id,
    })))
}

async fn describe_thing_type(State(s): State<ApiState>, Path(name): Path<String>) -> ApiResult {
    let t = s.groups.get_thing_type(&name)?;
    Ok(Json(json!({
        "thingTypeName": t.name,
        "thingTypeId": t.id,
        "thingTypeArn": s.groups.type_arn(&t.name),
        "thingTypeProperties": type_properties(&t),
        "thingTypeMetadata": type_metadata(&t),
    })))
}

async fn list_thing_types(State(s): State<ApiState>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let mut types = s.groups.list_thing_types()?;
    if let Some(n) = q.get("thingTypeName") {
        types.retain(|t| &t.name == n);
    }
    let (items, next) = page(&types, &q)?;
    let list: Vec<Value> = items
        .iter()
        .map(|t| {
            json!({
                "thingTypeName": t.name,
                "thingTypeArn": s.groups.type_arn(&t.name),
                "thingTypeProperties": type_properties(t),
                "thingTypeMetadata": type_metadata(t),
            })
        })
        .collect();
    Ok(Json(with_token(json!({ "thingTypes": list }), next)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeprecateBody {
    #[serde(default)]
    undo_deprecate: bool,
}

async fn deprecate_thing_type(State(s): State<ApiState>, Path(name): Path<String>, body: Bytes) -> ApiResult {
    let b: DeprecateBody = parse_body(&body)?;
    s.groups.deprecate_thing_type(&name, b.undo_deprecate)?;
    Ok(Json(json!({})))
}

async fn delete_thing_type(State(s): State<ApiState>, Path(name): Path<String>) -> ApiResult {
    s.groups.delete_thing_type(&name)?;
    Ok(Json(json!({})))
}

// ---- thing groups ----

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThingGroupPropertiesBody {
    thing_group_description: Option<String>,
    attribute_payload: Option<AttributePayloadBody>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateThingGroupBody {
    parent_group_name: Option<String>,
    thing_group_properties: Option<ThingGroupPropertiesBody>,
    #[serde(default)]
    tags: Vec<TagBody>,
}

fn name_and_arn(s: &ApiState, g: &ThingGroupRecord) -> Value {
    json!({ "groupName": g.name, "groupArn": s.groups.group_arn(&g.name) })
}

fn group_properties(g: &ThingGroupRecord) -> Value {
    let mut p = json!({ "attributePayload": { "attributes": g.attributes } });
    if let Some(d) = &g.description {
        p["thingGroupDescription"] = json!(d);
    }
    p
}

fn describe_json(s: &ApiState, v: &GroupView) -> Value {
    let g = &v.group;
    let mut meta = json!({
        "rootToParentThingGroups": v.ancestors.iter().map(|a| name_and_arn(s, a)).collect::<Vec<_>>(),
        "creationDate": secs(g.created_at_ms),
    });
    if let Some(p) = &g.parent {
        meta["parentGroupName"] = json!(p);
    }
    json!({
        "thingGroupName": g.name,
        "thingGroupId": g.id,
        "thingGroupArn": s.groups.group_arn(&g.name),
        "version": g.version,
        "thingGroupProperties": group_properties(g),
        "thingGroupMetadata": meta,
    })
}

async fn create_thing_group(State(s): State<ApiState>, Path(name): Path<String>, body: Bytes) -> ApiResult {
    let b: CreateThingGroupBody = parse_body(&body)?;
    let props = b.thing_group_properties.unwrap_or_default();
    let v = s.groups.create_group(
        &name,
        b.parent_group_name.filter(|p| !p.is_empty()),
        props.thing_group_description,
        props.attribute_payload.map(|a| a.attributes).unwrap_or_default(),
        tags(b.tags)?,
    )?;
    Ok(Json(json!({
        "thingGroupName": v.group.name,
        "thingGroupArn": s.groups.group_arn(&v.group.name),
        "thingGroupId": v.group.id,
    })))
}

async fn describe_thing_group(State(s): State<ApiState>, Path(name): Path<String>) -> ApiResult {
    let v = s.groups.describe_group(&name)?;
    Ok(Json(describe_json(&s, &v)))
}

async fn list_thing_groups(State(s): State<ApiState>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let groups = s.groups.list_groups(
        q.get("parentGroup").map(String::as_str).filter(|p| !p.is_empty()),
        q.get("namePrefixFilter").map(String::as_str),
        query_bool(&q, "recursive")?,
    )?;
    let (items, next) = page(&groups, &q)?;
    let list: Vec<Value> = items.iter().map(|g| name_and_arn(&s, g)).collect();
    Ok(Json(with_token(json!({ "thingGroups": list }), next)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateThingGroupBody {
    thing_group_properties: Option<ThingGroupPropertiesBody>,
    expected_version: Option<i64>,
}

async fn update_thing_group(State(s): State<ApiState>, Path(name): Path<String>, body: Bytes) -> ApiResult {
    let b: UpdateThingGroupBody = parse_body(&body)?;
    let props = b.thing_group_properties.ok_or_else(|| ApiError::invalid("thingGroupProperties is required"))?;
    let version = s.groups.update_group(
        &name,
        GroupUpdate {
            description: props.thing_group_description,
            attributes: props.attribute_payload.map(Into::into),
            expected_version: b.expected_version,
        },
    )?;
    Ok(Json(json!({ "version": version })))
}

async fn delete_thing_group(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let expected = match q.get("expectedVersion") {
        Some(v) => {
            Some(v.parse::<i64>().map_err(|_| ApiError::invalid(format!("expectedVersion {v:?} is not a number")))?)
        }
        None => None,
    };
    s.groups.delete_group(&name, expected)?;
    // Its policy attachments go with it (a new group of the same name starts bare).
    s.policies.forget_target(&s.groups.group_arn(&name))?;
    Ok(Json(json!({})))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MembershipBody {
    thing_group_name: Option<String>,
    thing_group_arn: Option<String>,
    thing_name: Option<String>,
    thing_arn: Option<String>,
    /// Dynamic groups do not exist here, so there is nothing to override.
    #[serde(default)]
    #[allow(dead_code)]
    override_dynamic_groups: bool,
}

fn membership(s: &ApiState, body: &Bytes) -> Result<(String, String), ApiError> {
    let b: MembershipBody = parse_body(body)?;
    let group = s.groups.resolve_group_ref(b.thing_group_name.as_deref(), b.thing_group_arn.as_deref())?;
    let thing = s.groups.resolve_thing_ref(b.thing_name.as_deref(), b.thing_arn.as_deref())?;
    Ok((group, thing))
}

async fn add_thing_to_thing_group(State(s): State<ApiState>, body: Bytes) -> ApiResult {
    let (group, thing) = membership(&s, &body)?;
    s.groups.add_thing(&group, &thing)?;
    Ok(Json(json!({})))
}

async fn remove_thing_from_thing_group(State(s): State<ApiState>, body: Bytes) -> ApiResult {
    let (group, thing) = membership(&s, &body)?;
    s.groups.remove_thing(&group, &thing)?;
    Ok(Json(json!({})))
}

async fn list_things_in_thing_group(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let recursive = query_bool(&q, "recursive")?.unwrap_or(false);
    let things = s.groups.things_in_group(&name, recursive)?;
    let (items, next) = page(&things, &q)?;
    Ok(Json(with_token(json!({ "things": items }), next)))
}

async fn list_thing_groups_for_thing(
    State(s): State<ApiState>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let groups = s.groups.groups_for_thing(&name)?;
    let (items, next) = page(&groups, &q)?;
    let list: Vec<Value> = items.iter().map(|g| json!({ "groupName": g, "groupArn": s.groups.group_arn(g) })).collect();
    Ok(Json(with_token(json!({ "thingGroups": list }), next)))
}

// ---- event configurations ----

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateEventConfigurationsBody {
    #[serde(default)]
    event_configurations: BTreeMap<String, EventConfigurationBody>,
}

#[derive(Debug, Default, Deserialize)]
struct EventConfigurationBody {
    #[serde(rename = "Enabled", default)]
    enabled: bool,
}

async fn describe_event_configurations(State(s): State<ApiState>) -> ApiResult {
    let c = s.groups.event_configurations();
    let map: serde_json::Map<String, Value> =
        c.enabled.iter().map(|(k, v)| (k.clone(), json!({ "Enabled": v }))).collect();
    Ok(Json(json!({
        "eventConfigurations": map,
        "creationDate": secs(c.created_at_ms),
        "lastModifiedDate": secs(c.updated_at_ms),
    })))
}

async fn update_event_configurations(State(s): State<ApiState>, body: Bytes) -> ApiResult {
    let b: UpdateEventConfigurationsBody = parse_body(&body)?;
    let changes: BTreeMap<String, bool> = b.event_configurations.into_iter().map(|(k, v)| (k, v.enabled)).collect();
    s.groups.update_event_configurations(&changes)?;
    Ok(Json(json!({})))
}
