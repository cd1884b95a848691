//! Thing types, static thing groups (with a hierarchy), UpdateThing and the
//! registry events (`$aws/events/thing…`), with the rules AWS IoT applies.
//!
//! Every change to types, groups and memberships goes through one lock, so
//! the limit checks (hierarchy depth, groups per thing, "type in use") and
//! the write that follows them are atomic. Reads go straight to the store.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::http::StatusCode;
use parking_lot::{Mutex, RwLock};
use serde_json::{json, Value};
use store::registry::{EventConfigRecord, GroupMembership, GroupStore, ThingGroupRecord, ThingTypeRecord};
use store::ThingRecord;

use crate::api::error::ApiError;
use crate::registry::{valid_thing_name, Registry};

/// AWS: "The maximum depth of a thing group hierarchy is 7" (root = depth 1).
pub const MAX_GROUP_DEPTH: usize = 7;
/// Groups a thing can directly belong to. Unverified AWS figure: the AWS docs
/// say "you can add a thing to a maximum of 10 groups" but the quota page has
/// varied; we enforce 10.
pub const MAX_GROUPS_PER_THING: usize = 10;
/// Attributes on a thing with a type / without one (AWS: 50 / 3).
pub const MAX_ATTRIBUTES_TYPED: usize = 50;
pub const MAX_ATTRIBUTES_UNTYPED: usize = 3;
/// Attributes on a thing group (same limit as a typed thing).
pub const MAX_GROUP_ATTRIBUTES: usize = 50;
/// AWS: at most 3 searchable attributes per thing type.
pub const MAX_SEARCHABLE_ATTRIBUTES: usize = 3;
/// ThingTypeDescription / ThingGroupDescription maximum length (botocore model).
pub const MAX_DESCRIPTION: usize = 2028;

/// Event types UpdateEventConfigurations accepts (botocore `EventType`). Only
/// the registry ones publish anything here; the others are stored and
/// reported so configurations round-trip.
pub const EVENT_TYPES: &[&str] = &[
    "THING",
    "THING_GROUP",
    "THING_TYPE",
    "THING_GROUP_MEMBERSHIP",
    "THING_GROUP_HIERARCHY",
    "THING_TYPE_ASSOCIATION",
    "JOB",
    "JOB_EXECUTION",
    "POLICY",
    "CERTIFICATE",
    "CA_CERTIFICATE",
];

pub fn version_conflict(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "VersionConflictException", message)
}

/// Names of thing types and thing groups: 1–128 of `[a-zA-Z0-9:_-]`, like things.
pub fn valid_name(name: &str) -> bool {
    valid_thing_name(name)
}

fn check_name(kind: &str, name: &str) -> Result<(), ApiError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(ApiError::invalid(format!("{kind} name {name:?} must be 1-128 characters of [a-zA-Z0-9:_-]")))
    }
}

fn check_description(kind: &str, d: Option<&str>) -> Result<(), ApiError> {
    match d {
        Some(d) if d.chars().count() > MAX_DESCRIPTION => {
            Err(ApiError::invalid(format!("{kind} description is longer than {MAX_DESCRIPTION} characters")))
        }
        Some(d) if d.chars().any(char::is_control) => {
            Err(ApiError::invalid(format!("{kind} description must not contain control characters")))
        }
        _ => Ok(()),
    }
}

fn valid_attribute_name(k: &str) -> bool {
    !k.is_empty() && k.len() <= 128 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.,@/:#-".contains(&b))
}

/// Attribute names and values, and how many there may be.
pub fn check_attributes(what: &str, attrs: &BTreeMap<String, String>, max: usize) -> Result<(), ApiError> {
    if attrs.len() > max {
        return Err(ApiError::invalid(format!("{what} has {} attributes; at most {max} are allowed", attrs.len())));
    }
    for (k, v) in attrs {
        if !valid_attribute_name(k) {
            return Err(ApiError::invalid(format!(
                "attribute name {k:?} must be 1-128 characters of [a-zA-Z0-9_.,@/:#-]"
            )));
        }
        if v.len() > 800 {
            return Err(ApiError::invalid(format!("attribute {k} is longer than 800 characters")));
        }
    }
    Ok(())
}

fn thing_attribute_limit(typed: bool) -> usize {
    if typed {
        MAX_ATTRIBUTES_TYPED
    } else {
        MAX_ATTRIBUTES_UNTYPED
    }
}

/// Apply an attribute payload: `merge` adds/overwrites and an empty value
/// removes (AWS); otherwise the given map replaces the attributes (empty
/// values dropped, so "" never gets stored).
/// The attributes after an update: names checked as given (an empty value is
/// a removal), then merged into or replacing the current ones.
fn changed_attributes(
    current: &BTreeMap<String, String>,
    change: Option<&AttributeChange>,
) -> Result<BTreeMap<String, String>, ApiError> {
    let Some(change) = change else { return Ok(current.clone()) };
    if let Some(k) = change.attributes.keys().find(|k| !valid_attribute_name(k)) {
        return Err(ApiError::invalid(format!("attribute name {k:?} must be 1-128 characters of [a-zA-Z0-9_.,@/:#-]")));
    }
    Ok(apply_attributes(current, &change.attributes, change.merge))
}

pub fn apply_attributes(
    current: &BTreeMap<String, String>,
    given: &BTreeMap<String, String>,
    merge: bool,
) -> BTreeMap<String, String> {
    let mut out = if merge { current.clone() } else { BTreeMap::new() };
    for (k, v) in given {
        if v.is_empty() {
            out.remove(k);
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// An attribute payload from a request: the attributes and the merge flag.
#[derive(Debug, Clone, Default)]
pub struct AttributeChange {
    pub attributes: BTreeMap<String, String>,
    pub merge: bool,
}

/// UpdateThing's request.
#[derive(Debug, Clone, Default)]
pub struct ThingUpdate {
    pub type_name: Option<String>,
    pub remove_type: bool,
    pub attributes: Option<AttributeChange>,
    pub expected_version: Option<i64>,
}

/// UpdateThingGroup's request.
#[derive(Debug, Clone, Default)]
pub struct GroupUpdate {
    /// `Some`: replace the description.
    pub description: Option<String>,
    pub attributes: Option<AttributeChange>,
    pub expected_version: Option<i64>,
}

/// A group as DescribeThingGroup shows it: the record and its ancestors
/// (root first, parent last).
pub struct GroupView {
    pub group: ThingGroupRecord,
    pub ancestors: Vec<ThingGroupRecord>,
}

pub struct Groups {
    store: Arc<dyn GroupStore>,
    registry: Arc<Registry>,
    broker: Arc<broker::Broker>,
    lock: Mutex<()>,
    events: RwLock<EventConfigRecord>,
}

impl Groups {
    pub fn new(
        store: Arc<dyn GroupStore>,
        registry: Arc<Registry>,
        broker: Arc<broker::Broker>,
    ) -> anyhow::Result<Arc<Groups>> {
        // Off by default, as on AWS; the first read fixes the creation date.
        let events = match store.get_event_config()? {
            Some(c) => c,
            None => {
                let now = store::now_ms();
                let c = EventConfigRecord { enabled: BTreeMap::new(), created_at_ms: now, updated_at_ms: now };
                store.put_event_config(&c)?;
                c
            }
        };
        Ok(Arc::new(Groups { store, registry, broker, lock: Mutex::new(()), events: RwLock::new(events) }))
    }

    fn arn(&self, kind: &str, name: &str) -> String {
        format!("arn:aws:iot:{}:{}:{kind}/{name}", self.registry.region, self.registry.account_id)
    }

    pub fn group_arn(&self, name: &str) -> String {
        self.arn("thinggroup", name)
    }

    pub fn type_arn(&self, name: &str) -> String {
        self.arn("thingtype", name)
    }

    // ---- things ----

    /// The checks CreateThing needs from this module: the type exists (404)
    /// and is not deprecated (400), and the attribute count fits (3 without a
    /// type, 50 with one).
    pub fn check_new_thing(
        &self,
        type_name: Option<&str>,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), ApiError> {
        if let Some(t) = type_name {
            let tt = self.get_thing_type(t)?;
            if tt.deprecated {
                return Err(ApiError::invalid(format!(
                    "thing type {t} is deprecated: no new things can be associated with it"
                )));
            }
        }
        check_attributes("a thing", attributes, thing_attribute_limit(type_name.is_some()))
    }

    /// AWS UpdateThing.
    pub fn update_thing(&self, name: &str, u: ThingUpdate) -> Result<ThingRecord, ApiError> {
        let _g = self.lock.lock();
        let cur = self.registry.get_thing(name)?;
        if let Some(ev) = u.expected_version {
            if ev != cur.version {
                return Err(version_conflict(format!(
                    "thing {name} is at version {}, not the expected {ev}",
                    cur.version
                )));
            }
        }
        if u.remove_type && u.type_name.is_some() {
            return Err(ApiError::invalid("removeThingType and thingTypeName cannot be used together"));
        }
        let type_name = if u.remove_type {
            None
        } else if let Some(t) = u.type_name {
            let tt = self.get_thing_type(&t)?;
            // Deprecation stops new associations; a thing keeps its own type.
            if tt.deprecated && cur.type_name.as_deref() != Some(t.as_str()) {
                return Err(ApiError::invalid(format!(
                    "thing type {t} is deprecated: no new things can be associated with it"
                )));
            }
            Some(t)
        } else {
            cur.type_name.clone()
        };
        let attributes = changed_attributes(&cur.attributes, u.attributes.as_ref())?;
        check_attributes(&format!("thing {name}"), &attributes, thing_attribute_limit(type_name.is_some()))?;
        let new = ThingRecord { type_name, attributes, version: cur.version + 1, ..cur.clone() };
        if !self.store.update_thing_if_version(&new, cur.version)? {
            // Changed (or deleted) by a path that does not take our lock.
            return Err(version_conflict(format!("thing {name} changed during the update; retry")));
        }
        self.thing_event("UPDATED", &new);
        if cur.type_name != new.type_name {
            if let Some(old) = &cur.type_name {
                self.type_association_event("DELETED", &new, old);
            }
            if let Some(t) = &new.type_name {
                self.type_association_event("CREATED", &new, t);
            }
        }
        tracing::info!(thing = %name, version = new.version, "thing updated");
        Ok(new)
    }

    // ---- thing types ----

    pub fn create_thing_type(
        &self,
        name: &str,
        description: Option<String>,
        searchable_attributes: Vec<String>,
        tags: BTreeMap<String, String>,
    ) -> Result<ThingTypeRecord, ApiError> {
        check_name("thing type", name)?;
        check_description("thing type", description.as_deref())?;
        if searchable_attributes.len() > MAX_SEARCHABLE_ATTRIBUTES {
            return Err(ApiError::invalid(format!(
                "a thing type has at most {MAX_SEARCHABLE_ATTRIBUTES} searchable attributes"
            )));
        }
        for a in &searchable_attributes {
            if !valid_attribute_name(a) {
                return Err(ApiError::invalid(format!(
                    "searchable attribute {a:?} must be 1-128 characters of [a-zA-Z0-9_.,@/:#-]"
                )));
            }
        }
        let _g = self.lock.lock();
        let rec = ThingTypeRecord {
            name: name.to_string(),
            id: uuid::Uuid::new_v4().to_string(),
            description,
            searchable_attributes,
            tags,
            deprecated: false,
            deprecated_at_ms: None,
            created_at_ms: store::now_ms(),
        };
        self.store.create_thing_type(&rec).map_err(|e| match e {
            store::StoreError::AlreadyExists(_) => ApiError::conflict(format!("thing type {name} already exists")),
            other => other.into(),
        })?;
        self.thing_type_event("CREATED", &rec);
        tracing::info!(thing_type = %name, "thing type created");
        Ok(rec)
    }

    pub fn get_thing_type(&self, name: &str) -> Result<ThingTypeRecord, ApiError> {
        self.store.get_thing_type(name)?.ok_or_else(|| ApiError::not_found(format!("thing type {name} does not exist")))
    }

    pub fn list_thing_types(&self) -> Result<Vec<ThingTypeRecord>, ApiError> {
        Ok(self.store.list_thing_types()?)
    }

    /// AWS DeprecateThingType (`undo`: undeprecate).
    pub fn deprecate_thing_type(&self, name: &str, undo: bool) -> Result<(), ApiError> {
        let _g = self.lock.lock();
        let mut rec = self.get_thing_type(name)?;
        rec.deprecated = !undo;
        rec.deprecated_at_ms = if undo { None } else { Some(rec.deprecated_at_ms.unwrap_or_else(store::now_ms)) };
        self.store.set_thing_type_deprecated(name, rec.deprecated, rec.deprecated_at_ms)?;
        self.thing_type_event("UPDATED", &rec);
        tracing::info!(thing_type = %name, deprecated = rec.deprecated, "thing type deprecation changed");
        Ok(())
    }

    /// AWS DeleteThingType: only a deprecated type no thing uses. AWS also
    /// makes you wait five minutes after deprecating; Thingport does not.
    pub fn delete_thing_type(&self, name: &str) -> Result<(), ApiError> {
        let _g = self.lock.lock();
        let rec = self.get_thing_type(name)?;
        if !rec.deprecated {
            return Err(ApiError::invalid(format!(
                "thing type {name} is not deprecated; deprecate it before deleting it"
            )));
        }
        let n = self.store.count_things_of_type(name)?;
        if n > 0 {
            return Err(ApiError::invalid(format!(
                "thing type {name} is still used by {n} thing(s); change or remove their type first"
            )));
        }
        self.store.delete_thing_type(name)?;
        self.thing_type_event("DELETED", &rec);
        tracing::info!(thing_type = %name, "thing type deleted");
        Ok(())
    }

    // ---- thing groups ----

    pub fn get_group(&self, name: &str) -> Result<ThingGroupRecord, ApiError> {
        self.store
            .get_thing_group(name)?
            .ok_or_else(|| ApiError::not_found(format!("thing group {name} does not exist")))
    }

    /// Ancestors of a group, root first, parent last.
    fn ancestors(&self, g: &ThingGroupRecord) -> Result<Vec<ThingGroupRecord>, ApiError> {
        let mut out = Vec::new();
        let mut next = g.parent.clone();
        while let Some(p) = next {
            if out.len() > 2 * MAX_GROUP_DEPTH {
                return Err(ApiError::internal(format!("thing group {} has a parent cycle", g.name)));
            }
            let pg = self.get_group(&p)?;
            next = pg.parent.clone();
            out.push(pg);
        }
        out.reverse();
        Ok(out)
    }

    pub fn describe_group(&self, name: &str) -> Result<GroupView, ApiError> {
        let group = self.get_group(name)?;
        let ancestors = self.ancestors(&group)?;
        Ok(GroupView { group, ancestors })
    }

    pub fn create_group(
        &self,
        name: &str,
        parent: Option<String>,
        description: Option<String>,
        attributes: BTreeMap<String, String>,
        tags: BTreeMap<String, String>,
    ) -> Result<GroupView, ApiError> {
        check_name("thing group", name)?;
        if let Some(p) = &parent {
            check_name("parent thing group", p)?;
        }
        check_description("thing group", description.as_deref())?;
        // An empty value means "no attribute" here too.
        let attributes = apply_attributes(&BTreeMap::new(), &attributes, false);
        check_attributes(&format!("thing group {name}"), &attributes, MAX_GROUP_ATTRIBUTES)?;
        let _g = self.lock.lock();
        if self.store.get_thing_group(name)?.is_some() {
            return Err(ApiError::conflict(format!("thing group {name} already exists")));
        }
        let ancestors = match &parent {
            Some(p) => {
                let pg = self.get_group(p)?;
                let mut a = self.ancestors(&pg)?;
                a.push(pg);
                a
            }
            None => Vec::new(),
        };
        if ancestors.len() + 1 > MAX_GROUP_DEPTH {
            return Err(ApiError::invalid(format!(
                "thing group {name} would be at depth {}; a thing group hierarchy is at most {MAX_GROUP_DEPTH} deep",
                ancestors.len() + 1
            )));
        }
        let now = store::now_ms();
        let rec = ThingGroupRecord {
            name: name.to_string(),
            id: uuid::Uuid::new_v4().to_string(),
            parent,
            description,
            attributes,
            tags,
            version: 1,
            created_at_ms: now,
            updated_at_ms: now,
        };
        self.store.create_thing_group(&rec).map_err(|e| match e {
            store::StoreError::AlreadyExists(_) => ApiError::conflict(format!("thing group {name} already exists")),
            other => other.into(),
        })?;
        let view = GroupView { group: rec, ancestors };
        self.group_event("CREATED", &view);
        if let Some(parent) = view.ancestors.last() {
            self.hierarchy_event("ADDED", parent, &view.group);
        }
        tracing::info!(thing_group = %name, parent = ?view.group.parent, "thing group created");
        Ok(view)
    }

    /// AWS ListThingGroups. Without `parent`: every group, or only root groups
    /// when `recursive` is explicitly false. With `parent`: its direct
    /// children, or all its descendants when `recursive` is true.
    pub fn list_groups(
        &self,
        parent: Option<&str>,
        name_prefix: Option<&str>,
        recursive: Option<bool>,
    ) -> Result<Vec<ThingGroupRecord>, ApiError> {
        let all = self.store.list_thing_groups()?;
        let mut out: Vec<ThingGroupRecord> = match parent {
            None => {
                if recursive == Some(false) {
                    all.into_iter().filter(|g| g.parent.is_none()).collect()
                } else {
                    all
                }
            }
            Some(p) => {
                self.get_group(p)?;
                let wanted = if recursive == Some(true) {
                    descendants(&all, p)
                } else {
                    all.iter().filter(|g| g.parent.as_deref() == Some(p)).map(|g| g.name.clone()).collect()
                };
                all.into_iter().filter(|g| wanted.contains(&g.name)).collect()
            }
        };
        if let Some(prefix) = name_prefix {
            out.retain(|g| g.name.starts_with(prefix));
        }
        Ok(out)
    }

    /// AWS UpdateThingGroup; returns the new version.
    pub fn update_group(&self, name: &str, u: GroupUpdate) -> Result<i64, ApiError> {
        check_description("thing group", u.description.as_deref())?;
        let _g = self.lock.lock();
        let cur = self.get_group(name)?;
        if let Some(ev) = u.expected_version {
            if ev != cur.version {
                return Err(version_conflict(format!(
                    "thing group {name} is at version {}, not the expected {ev}",
                    cur.version
                )));
            }
        }
        let attributes = changed_attributes(&cur.attributes, u.attributes.as_ref())?;
        check_attributes(&format!("thing group {name}"), &attributes, MAX_GROUP_ATTRIBUTES)?;
        let new = ThingGroupRecord {
            description: match u.description {
                Some(d) => Some(d),
                None => cur.description.clone(),
            },
            attributes,
            version: cur.version + 1,
            updated_at_ms: store::now_ms(),
            ..cur.clone()
        };
        if !self.store.update_thing_group_if_version(&new, cur.version)? {
            return Err(version_conflict(format!("thing group {name} changed during the update; retry")));
        }
        let view = GroupView { ancestors: self.ancestors(&new)?, group: new };
        self.group_event("UPDATED", &view);
        Ok(view.group.version)
    }

    /// AWS DeleteThingGroup: idempotent (deleting a group that does not exist
    /// succeeds, as on AWS); refused while the group has child groups. Its
    /// things stay in the registry and leave the group.
    pub fn delete_group(&self, name: &str, expected_version: Option<i64>) -> Result<(), ApiError> {
        let _g = self.lock.lock();
        let Some(cur) = self.store.get_thing_group(name)? else {
            return Ok(());
        };
        if let Some(ev) = expected_version {
            if ev != cur.version {
                return Err(version_conflict(format!(
                    "thing group {name} is at version {}, not the expected {ev}",
                    cur.version
                )));
            }
        }
        let all = self.store.list_thing_groups()?;
        let children: Vec<&str> =
            all.iter().filter(|g| g.parent.as_deref() == Some(name)).map(|g| g.name.as_str()).collect();
        if !children.is_empty() {
            return Err(ApiError::invalid(format!(
                "thing group {name} has child groups ({}); delete them first",
                children.join(", ")
            )));
        }
        let members = self.store.group_members(name)?;
        let view = GroupView { ancestors: self.ancestors(&cur)?, group: cur };
        self.store.delete_thing_group(name)?;
        for m in &members {
            if let Ok(t) = self.registry.get_thing(&m.thing) {
                self.membership_event("REMOVED", &view.group, &t, &m.membership_id);
            }
        }
        if let Some(parent) = view.ancestors.last() {
            self.hierarchy_event("REMOVED", parent, &view.group);
        }
        self.group_event("DELETED", &view);
        tracing::info!(thing_group = %name, "thing group deleted");
        Ok(())
    }

    /// A group named directly or by ARN (`arn:aws:iot:…:thinggroup/NAME`).
    pub fn resolve_group_ref(&self, name: Option<&str>, arn: Option<&str>) -> Result<String, ApiError> {
        resolve_ref("thing group", "thinggroup", name, arn)
    }

    /// A thing named directly or by ARN (`arn:aws:iot:…:thing/NAME`).
    pub fn resolve_thing_ref(&self, name: Option<&str>, arn: Option<&str>) -> Result<String, ApiError> {
        resolve_ref("thing", "thing", name, arn)
    }

    /// AWS AddThingToThingGroup. Adding a member again is a no-op. A thing
    /// belongs to at most 10 groups, and not to a group and one of its
    /// ancestors at once (AWS: "you can't add a thing to more than one group
    /// in the same hierarchy"; we enforce the unambiguous part of that
    /// sentence, the same line of ancestry, and allow sibling groups).
    pub fn add_thing(&self, group: &str, thing: &str) -> Result<(), ApiError> {
        let _g = self.lock.lock();
        let g = self.get_group(group)?;
        let t = self.registry.get_thing(thing)?;
        let current = self.store.thing_memberships(thing)?;
        if current.iter().any(|m| m.group == group) {
            return Ok(());
        }
        if current.len() >= MAX_GROUPS_PER_THING {
            return Err(ApiError::invalid(format!(
                "thing {thing} already belongs to {MAX_GROUPS_PER_THING} thing groups, the most a thing can"
            )));
        }
        let lineage: BTreeSet<String> = self.ancestors(&g)?.into_iter().map(|a| a.name).collect();
        for m in &current {
            let other = self.get_group(&m.group)?;
            let related = lineage.contains(&other.name) || self.ancestors(&other)?.iter().any(|a| a.name == group);
            if related {
                return Err(ApiError::invalid(format!(
                    "thing {thing} is already in thing group {}, in the same hierarchy as {group}; \
                     a thing cannot be in a group and in its ancestor or descendant",
                    other.name
                )));
            }
        }
        let m = GroupMembership {
            group: group.to_string(),
            thing: thing.to_string(),
            membership_id: uuid::Uuid::new_v4().to_string(),
            added_at_ms: store::now_ms(),
        };
        if self.store.add_group_member(&m)? {
            self.membership_event("ADDED", &g, &t, &m.membership_id);
            tracing::info!(thing = %thing, thing_group = %group, "thing added to group");
        }
        Ok(())
    }

    /// AWS RemoveThingFromThingGroup; removing a non-member is a no-op.
    pub fn remove_thing(&self, group: &str, thing: &str) -> Result<(), ApiError> {
        let _g = self.lock.lock();
        let g = self.get_group(group)?;
        let t = self.registry.get_thing(thing)?;
        if let Some(m) = self.store.remove_group_member(group, thing)? {
            self.membership_event("REMOVED", &g, &t, &m.membership_id);
            tracing::info!(thing = %thing, thing_group = %group, "thing removed from group");
        }
        Ok(())
    }

    /// AWS ListThingsInThingGroup: thing names, sorted; `recursive` adds the
    /// things of every descendant group.
    pub fn things_in_group(&self, group: &str, recursive: bool) -> Result<Vec<String>, ApiError> {
        self.get_group(group)?;
        let mut groups = vec![group.to_string()];
        if recursive {
            let all = self.store.list_thing_groups()?;
            groups.extend(descendants(&all, group));
        }
        let mut out = BTreeSet::new();
        for g in &groups {
            for m in self.store.group_members(g)? {
                out.insert(m.thing);
            }
        }
        Ok(out.into_iter().collect())
    }

    /// AWS ListThingGroupsForThing: the groups a thing is directly in.
    pub fn groups_for_thing(&self, thing: &str) -> Result<Vec<String>, ApiError> {
        self.registry.get_thing(thing)?;
        Ok(self.store.thing_memberships(thing)?.into_iter().map(|m| m.group).collect())
    }

    // ---- registry events ----

    /// The event configuration, every known type present.
    pub fn event_configurations(&self) -> EventConfigRecord {
        let mut c = self.events.read().clone();
        for t in EVENT_TYPES {
            c.enabled.entry((*t).to_string()).or_insert(false);
        }
        c
    }

    /// AWS UpdateEventConfigurations: the given types change, others stay.
    pub fn update_event_configurations(&self, changes: &BTreeMap<String, bool>) -> Result<(), ApiError> {
        for k in changes.keys() {
            if !EVENT_TYPES.contains(&k.as_str()) {
                return Err(ApiError::invalid(format!(
                    "unknown event type {k:?}; expected one of {}",
                    EVENT_TYPES.join(", ")
                )));
            }
        }
        let _g = self.lock.lock();
        let mut c = self.events.read().clone();
        for (k, v) in changes {
            c.enabled.insert(k.clone(), *v);
        }
        c.updated_at_ms = store::now_ms();
        self.store.put_event_config(&c)?;
        *self.events.write() = c;
        tracing::info!(?changes, "event configurations updated");
        Ok(())
    }

    fn enabled(&self, kind: &str) -> bool {
        self.events.read().enabled.get(kind).copied().unwrap_or(false)
    }

    fn publish(&self, topic: String, mut payload: Value) {
        payload["eventId"] = json!(uuid::Uuid::new_v4().to_string());
        payload["timestamp"] = json!(store::now_ms());
        payload["accountId"] = json!(self.registry.account_id);
        let bytes = serde_json::to_vec(&payload).unwrap_or_default();
        self.broker.publish(broker::Message::system(&topic, bytes, mqtt::QoS::AtLeastOnce));
    }

    /// `$aws/events/thing/{thingName}/created|updated|deleted`.
    pub fn thing_event(&self, op: &str, t: &ThingRecord) {
        if !self.enabled("THING") {
            return;
        }
        self.publish(
            format!("$aws/events/thing/{}/{}", t.name, op.to_ascii_lowercase()),
            json!({
                "eventType": "THING_EVENT",
                "operation": op,
                "thingId": t.id,
                "thingName": t.name,
                "versionNumber": t.version,
                "thingTypeName": t.type_name,
                "attributes": t.attributes,
            }),
        );
    }

    /// `$aws/events/thingTypeAssociation/thing/{thingName}/{typeName}`,
    /// operation CREATED or DELETED. Published when CreateThing gives a type
    /// and when UpdateThing changes it; not when a thing is deleted (AWS
    /// documents no such event; the THING DELETED event carries the type).
    pub fn type_association_event(&self, op: &str, t: &ThingRecord, type_name: &str) {
        if !self.enabled("THING_TYPE_ASSOCIATION") {
            return;
        }
        self.publish(
            format!("$aws/events/thingTypeAssociation/thing/{}/{type_name}", t.name),
            json!({
                "eventType": "THING_TYPE_ASSOCIATION_EVENT",
                "operation": op,
                "thingId": t.id,
                "thingName": t.name,
                "thingTypeName": type_name,
            }),
        );
    }

    /// `$aws/events/thingType/{name}/created|updated|deleted` (deprecation and
    /// undeprecation are `updated`, as on AWS).
    fn thing_type_event(&self, op: &str, t: &ThingTypeRecord) {
        if !self.enabled("THING_TYPE") {
            return;
        }
        self.publish(
            format!("$aws/events/thingType/{}/{}", t.name, op.to_ascii_lowercase()),
            json!({
                "eventType": "THING_TYPE_EVENT",
                "operation": op,
                "thingTypeId": t.id,
                "thingTypeName": t.name,
                "isDeprecated": t.deprecated,
                "deprecationDate": t.deprecated_at_ms,
                "searchableAttributes": t.searchable_attributes,
                "description": t.description,
            }),
        );
    }

    /// `$aws/events/thingGroup/{groupName}/created|updated|deleted`.
    fn group_event(&self, op: &str, v: &GroupView) {
        if !self.enabled("THING_GROUP") {
            return;
        }
        let g = &v.group;
        let parent = v.ancestors.last();
        let root_to_parent: Vec<Value> =
            v.ancestors.iter().map(|a| json!({ "groupArn": self.group_arn(&a.name), "groupId": a.id })).collect();
        self.publish(
            format!("$aws/events/thingGroup/{}/{}", g.name, op.to_ascii_lowercase()),
            json!({
                "eventType": "THING_GROUP_EVENT",
                "operation": op,
                "thingGroupId": g.id,
                "thingGroupName": g.name,
                "versionNumber": g.version,
                "parentGroupName": parent.map(|p| &p.name),
                "parentGroupId": parent.map(|p| &p.id),
                "description": g.description,
                "rootToParentThingGroups": root_to_parent,
                "attributes": g.attributes,
                "dynamicGroupMappingId": null,
            }),
        );
    }

    /// `$aws/events/thingGroupMembership/thingGroup/{group}/thing/{thing}/added|removed`.
    fn membership_event(&self, op: &str, g: &ThingGroupRecord, t: &ThingRecord, id: &str) {
        if !self.enabled("THING_GROUP_MEMBERSHIP") {
            return;
        }
        self.publish(
            format!(
                "$aws/events/thingGroupMembership/thingGroup/{}/thing/{}/{}",
                g.name,
                t.name,
                op.to_ascii_lowercase()
            ),
            json!({
                "eventType": "THING_GROUP_MEMBERSHIP_EVENT",
                "operation": op,
                "groupArn": self.group_arn(&g.name),
                "groupId": g.id,
                "thingArn": self.registry.thing_arn(&t.name),
                "thingId": t.id,
                "membershipId": id,
            }),
        );
    }

    /// `$aws/events/thingGroupHierarchy/thingGroup/{parent}/childThingGroup/{child}/added|removed`.
    fn hierarchy_event(&self, op: &str, parent: &ThingGroupRecord, child: &ThingGroupRecord) {
        if !self.enabled("THING_GROUP_HIERARCHY") {
            return;
        }
        self.publish(
            format!(
                "$aws/events/thingGroupHierarchy/thingGroup/{}/childThingGroup/{}/{}",
                parent.name,
                child.name,
                op.to_ascii_lowercase()
            ),
            json!({
                "eventType": "THING_GROUP_HIERARCHY_EVENT",
                "operation": op,
                "thingGroupId": parent.id,
                "thingGroupName": parent.name,
                "childGroupId": child.id,
                "childGroupName": child.name,
            }),
        );
    }
}

/// Names of every descendant of `root` (not `root` itself).
fn descendants(all: &[ThingGroupRecord], root: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut frontier = vec![root.to_string()];
    while let Some(p) = frontier.pop() {
        for g in all.iter().filter(|g| g.parent.as_deref() == Some(p.as_str())) {
            if out.insert(g.name.clone()) {
                frontier.push(g.name.clone());
            }
        }
    }
    out
}

fn resolve_ref(what: &str, arn_kind: &str, name: Option<&str>, arn: Option<&str>) -> Result<String, ApiError> {
    let from_arn = match arn.filter(|a| !a.is_empty()) {
        Some(a) => {
            let n = a
                .strip_prefix("arn:")
                .and_then(|rest| rest.rsplit_once(&format!(":{arn_kind}/")))
                .map(|(_, n)| n)
                .filter(|n| valid_name(n))
                .ok_or_else(|| {
                    ApiError::invalid(format!("{a:?} is not a {what} ARN (arn:aws:iot:REGION:ACCOUNT:{arn_kind}/NAME)"))
                })?;
            Some(n.to_string())
        }
        None => None,
    };
    match (name.filter(|n| !n.is_empty()), from_arn) {
        (Some(n), Some(a)) if n != a => {
            Err(ApiError::invalid(format!("the {what} name {n:?} and ARN name {a:?} differ")))
        }
        (Some(n), _) => {
            check_name(what, n)?;
            Ok(n.to_string())
        }
        (None, Some(a)) => Ok(a),
        (None, None) => Err(ApiError::invalid(format!("a {what} name or ARN is required"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn attribute_merge_and_replace() {
        let cur = map(&[("a", "1"), ("b", "2")]);
        assert_eq!(apply_attributes(&cur, &map(&[("b", ""), ("c", "3")]), true), map(&[("a", "1"), ("c", "3")]));
        assert_eq!(apply_attributes(&cur, &map(&[("c", "3"), ("d", "")]), false), map(&[("c", "3")]));
    }

    #[test]
    fn refs_by_name_or_arn() {
        let arn = "arn:aws:iot:us-east-1:000000000000:thinggroup/g1";
        assert_eq!(resolve_ref("thing group", "thinggroup", None, Some(arn)).unwrap(), "g1");
        assert_eq!(resolve_ref("thing group", "thinggroup", Some("g1"), Some(arn)).unwrap(), "g1");
        assert!(resolve_ref("thing group", "thinggroup", Some("g2"), Some(arn)).is_err());
        assert!(resolve_ref("thing group", "thinggroup", None, None).is_err());
        assert!(resolve_ref("thing", "thing", None, Some(arn)).is_err());
        assert!(resolve_ref("thing", "thing", Some("bad name"), None).is_err());
    }

    #[test]
    fn descendants_walks_the_tree() {
        let g = |n: &str, p: Option<&str>| ThingGroupRecord {
            name: n.into(),
            id: n.into(),
            parent: p.map(Into::into),
            description: None,
            attributes: BTreeMap::new(),
            tags: BTreeMap::new(),
            version: 1,
            created_at_ms: 0,
            updated_at_ms: 0,
        };
        let all = vec![g("a", None), g("b", Some("a")), g("c", Some("b")), g("d", Some("a")), g("e", None)];
        assert_eq!(descendants(&all, "a").into_iter().collect::<Vec<_>>(), ["b", "c", "d"]);
        assert!(descendants(&all, "e").is_empty());
    }

    #[test]
    fn attribute_limits() {
        let three = map(&[("a", "1"), ("b", "2"), ("c", "3")]);
        assert!(check_attributes("t", &three, thing_attribute_limit(false)).is_ok());
        let mut four = three.clone();
        four.insert("d".into(), "4".into());
        assert!(check_attributes("t", &four, thing_attribute_limit(false)).is_err());
        assert!(check_attributes("t", &four, thing_attribute_limit(true)).is_ok());
        assert!(check_attributes("t", &map(&[("bad key", "1")]), 50).is_err());
    }
}
