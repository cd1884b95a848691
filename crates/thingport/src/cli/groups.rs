//! `thingport things update`, `thingport types …`, `thingport groups …` and
//! `thingport events …`.

use anyhow::bail;
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use crate::client::ApiClient;

/// `thingport things update`.
#[derive(Args)]
pub struct ThingUpdateArgs {
    /// Thing name.
    pub name: String,
    /// Attribute NAME=VALUE (repeatable). Replaces all attributes unless
    /// --merge; with --merge, NAME= removes the attribute.
    #[arg(long = "attr", value_name = "NAME=VALUE")]
    pub attrs: Vec<String>,
    /// Merge the given attributes into the current ones.
    #[arg(long)]
    pub merge: bool,
    /// Give the thing this thing type.
    #[arg(long = "type", value_name = "TYPE", conflicts_with = "remove_type")]
    pub type_name: Option<String>,
    /// Remove the thing's type.
    #[arg(long)]
    pub remove_type: bool,
    /// Refuse the update unless the thing is at this version.
    #[arg(long)]
    pub expected_version: Option<i64>,
    /// Print the updated thing as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum TypesCmd {
    /// Create a thing type.
    Create {
        name: String,
        #[arg(long)]
        description: Option<String>,
        /// Searchable attribute name (repeatable, at most 3).
        #[arg(long = "searchable-attr", value_name = "NAME")]
        searchable: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// List thing types.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a thing type.
    Describe { name: String },
    /// Deprecate a thing type (no new things can use it); --undo reverses it.
    Deprecate {
        name: String,
        #[arg(long)]
        undo: bool,
    },
    /// Delete a deprecated thing type no thing uses.
    Delete { name: String },
}

#[derive(Subcommand)]
pub enum GroupsCmd {
    /// Create a static thing group.
    Create {
        name: String,
        /// Parent group (fixed for the group's lifetime).
        #[arg(long)]
        parent: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Attribute NAME=VALUE (repeatable).
        #[arg(long = "attr", value_name = "NAME=VALUE")]
        attrs: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// List thing groups (all, or the children of --parent).
    List {
        #[arg(long)]
        parent: Option<String>,
        /// With --parent: all descendants, not only children.
        #[arg(long)]
        recursive: bool,
        /// Only groups whose name starts with this.
        #[arg(long)]
        prefix: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show a thing group, its ancestors and its things.
    Describe { name: String },
    /// Change a group's description or attributes.
    Update {
        name: String,
        #[arg(long)]
        description: Option<String>,
        /// Attribute NAME=VALUE (repeatable). Replaces all attributes unless --merge.
        #[arg(long = "attr", value_name = "NAME=VALUE")]
        attrs: Vec<String>,
        #[arg(long)]
        merge: bool,
        #[arg(long)]
        expected_version: Option<i64>,
    },
    /// Delete a thing group (its child groups first; its things stay).
    Delete { name: String },
    /// Add a thing to a group.
    AddThing { group: String, thing: String },
    /// Remove a thing from a group.
    RemoveThing { group: String, thing: String },
    /// List the things in a group.
    Things {
        group: String,
        /// Include the things of every descendant group.
        #[arg(long)]
        recursive: bool,
        #[arg(long)]
        json: bool,
    },
    /// List the groups a thing belongs to.
    ForThing {
        thing: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum EventsCmd {
    /// Show which registry events are published.
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Publish these event types (THING, THING_GROUP, THING_TYPE,
    /// THING_GROUP_MEMBERSHIP, THING_GROUP_HIERARCHY, THING_TYPE_ASSOCIATION).
    Enable {
        #[arg(required_unless_present = "all")]
        types: Vec<String>,
        /// Every registry event type.
        #[arg(long)]
        all: bool,
    },
    /// Stop publishing these event types.
    Disable {
        #[arg(required_unless_present = "all")]
        types: Vec<String>,
        #[arg(long)]
        all: bool,
    },
}

/// The registry event types `events enable --all` switches.
const REGISTRY_EVENT_TYPES: &[&str] = &[
    "THING",
    "THING_GROUP",
    "THING_TYPE",
    "THING_GROUP_MEMBERSHIP",
    "THING_GROUP_HIERARCHY",
    "THING_TYPE_ASSOCIATION",
];

fn parse_attrs(attrs: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut out = Map::new();
    for a in attrs {
        let Some((k, v)) = a.split_once('=') else {
            bail!("--attr {a:?} must be NAME=VALUE");
        };
        out.insert(k.to_string(), json!(v));
    }
    Ok(out)
}

/// A name as a URL path segment (percent-encoded, so `#`, `?`, `/` and
/// spaces reach the server, which rejects them with AWS's error).
fn seg(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn print_json(v: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// GET every page of a list operation; returns the items under `key`.
async fn fetch_all(c: &ApiClient, path: &str, query: &[(&str, &str)], key: &str) -> anyhow::Result<Vec<Value>> {
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let mut q: Vec<(&str, &str)> = query.to_vec();
        if !token.is_empty() {
            q.push(("nextToken", &token));
        }
        q.sort();
        let qs = q.iter().map(|(k, v)| format!("{k}={}", seg(v))).collect::<Vec<_>>().join("&");
        let v = c.call("GET", path, &qs, &[], None).await?;
        all.extend(v[key].as_array().cloned().unwrap_or_default());
        match v.get("nextToken").and_then(Value::as_str) {
            Some(t) => token = t.to_string(),
            None => break,
        }
    }
    Ok(all)
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or("-").to_string()
}

// ---- things update ----

pub async fn update_thing(c: &ApiClient, a: &ThingUpdateArgs) -> anyhow::Result<()> {
    let mut body = json!({});
    if !a.attrs.is_empty() {
        body["attributePayload"] = json!({ "attributes": parse_attrs(&a.attrs)?, "merge": a.merge });
    } else if a.merge {
        bail!("--merge needs at least one --attr NAME=VALUE");
    }
    if let Some(t) = &a.type_name {
        body["thingTypeName"] = json!(t);
    }
    if a.remove_type {
        body["removeThingType"] = json!(true);
    }
    if let Some(v) = a.expected_version {
        body["expectedVersion"] = json!(v);
    }
    let path = format!("/things/{}", seg(&a.name));
    c.call("PATCH", &path, "", &[], Some(&body)).await?;
    let t = c.call("GET", &path, "", &[], None).await?;
    if a.json {
        return print_json(&t);
    }
    println!(
        "updated thing {} (version {}, type {}, {} attribute(s))",
        a.name,
        t["version"],
        s(&t["thingTypeName"]),
        t["attributes"].as_object().map(|m| m.len()).unwrap_or(0)
    );
    Ok(())
}

// ---- types ----

pub async fn types(c: &ApiClient, cmd: TypesCmd) -> anyhow::Result<()> {
    match cmd {
        TypesCmd::Create { name, description, searchable, json } => {
            let mut props = json!({ "searchableAttributes": searchable });
            if let Some(d) = description {
                props["thingTypeDescription"] = json!(d);
            }
            let v = c
                .call(
                    "POST",
                    &format!("/thing-types/{}", seg(&name)),
                    "",
                    &[],
                    Some(&json!({ "thingTypeProperties": props })),
                )
                .await?;
            if json {
                return print_json(&v);
            }
            println!("created thing type {name} ({})", s(&v["thingTypeArn"]));
        }
        TypesCmd::List { json } => {
            let all = fetch_all(c, "/thing-types", &[], "thingTypes").await?;
            if json {
                return print_json(&json!({ "thingTypes": all }));
            }
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|t| {
                    let p = &t["thingTypeProperties"];
                    vec![
                        s(&t["thingTypeName"]),
                        if t["thingTypeMetadata"]["deprecated"] == json!(true) { "yes".into() } else { "no".into() },
                        p["searchableAttributes"]
                            .as_array()
                            .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","))
                            .filter(|x| !x.is_empty())
                            .unwrap_or_else(|| "-".into()),
                        s(&p["thingTypeDescription"]),
                    ]
                })
                .collect();
            super::table(&["NAME", "DEPRECATED", "SEARCHABLE", "DESCRIPTION"], &rows);
        }
        TypesCmd::Describe { name } => {
            let v = c.call("GET", &format!("/thing-types/{}", seg(&name)), "", &[], None).await?;
            print_json(&v)?;
        }
        TypesCmd::Deprecate { name, undo } => {
            c.call(
                "POST",
                &format!("/thing-types/{}/deprecate", seg(&name)),
                "",
                &[],
                Some(&json!({ "undoDeprecate": undo })),
            )
            .await?;
            if undo {
                println!("thing type {name} is no longer deprecated");
            } else {
                println!("deprecated thing type {name}");
            }
        }
        TypesCmd::Delete { name } => {
            c.call("DELETE", &format!("/thing-types/{}", seg(&name)), "", &[], None).await?;
            println!("deleted thing type {name}");
        }
    }
    Ok(())
}

// ---- groups ----

pub async fn groups(c: &ApiClient, cmd: GroupsCmd) -> anyhow::Result<()> {
    match cmd {
        GroupsCmd::Create { name, parent, description, attrs, json } => {
            let mut props = json!({ "attributePayload": { "attributes": parse_attrs(&attrs)? } });
            if let Some(d) = description {
                props["thingGroupDescription"] = json!(d);
            }
            let mut body = json!({ "thingGroupProperties": props });
            if let Some(p) = &parent {
                body["parentGroupName"] = json!(p);
            }
            let v = c.call("POST", &format!("/thing-groups/{}", seg(&name)), "", &[], Some(&body)).await?;
            if json {
                return print_json(&v);
            }
            match parent {
                Some(p) => println!("created thing group {name} in {p} ({})", s(&v["thingGroupArn"])),
                None => println!("created thing group {name} ({})", s(&v["thingGroupArn"])),
            }
        }
        GroupsCmd::List { parent, recursive, prefix, json } => {
            let mut q: Vec<(&str, &str)> = Vec::new();
            if let Some(p) = &parent {
                q.push(("parentGroup", p));
                if recursive {
                    q.push(("recursive", "true"));
                }
            }
            if let Some(p) = &prefix {
                q.push(("namePrefixFilter", p));
            }
            let all = fetch_all(c, "/thing-groups", &q, "thingGroups").await?;
            if json {
                return print_json(&json!({ "thingGroups": all }));
            }
            let mut rows = Vec::new();
            for g in &all {
                let name = s(&g["groupName"]);
                let d =
                    c.call("GET", &format!("/thing-groups/{}", seg(&name)), "", &[], None).await.unwrap_or(Value::Null);
                rows.push(vec![
                    name,
                    s(&d["thingGroupMetadata"]["parentGroupName"]),
                    s(&d["thingGroupProperties"]["thingGroupDescription"]),
                ]);
            }
            super::table(&["NAME", "PARENT", "DESCRIPTION"], &rows);
        }
        GroupsCmd::Describe { name } => {
            let mut v = c.call("GET", &format!("/thing-groups/{}", seg(&name)), "", &[], None).await?;
            v["things"] = json!(fetch_all(c, &format!("/thing-groups/{}/things", seg(&name)), &[], "things").await?);
            print_json(&v)?;
        }
        GroupsCmd::Update { name, description, attrs, merge, expected_version } => {
            let mut props = json!({});
            if let Some(d) = description {
                props["thingGroupDescription"] = json!(d);
            }
            if !attrs.is_empty() {
                props["attributePayload"] = json!({ "attributes": parse_attrs(&attrs)?, "merge": merge });
            }
            let mut body = json!({ "thingGroupProperties": props });
            if let Some(v) = expected_version {
                body["expectedVersion"] = json!(v);
            }
            let v = c.call("PATCH", &format!("/thing-groups/{}", seg(&name)), "", &[], Some(&body)).await?;
            println!("updated thing group {name} (version {})", v["version"]);
        }
        GroupsCmd::Delete { name } => {
            // DeleteThingGroup succeeds for a missing group (as on AWS); the
            // CLI says so instead of claiming a deletion.
            c.call("GET", &format!("/thing-groups/{}", seg(&name)), "", &[], None).await?;
            c.call("DELETE", &format!("/thing-groups/{}", seg(&name)), "", &[], None).await?;
            println!("deleted thing group {name}");
        }
        GroupsCmd::AddThing { group, thing } => {
            c.call(
                "PUT",
                "/thing-groups/addThingToThingGroup",
                "",
                &[],
                Some(&json!({ "thingGroupName": group, "thingName": thing })),
            )
            .await?;
            println!("added thing {thing} to thing group {group}");
        }
        GroupsCmd::RemoveThing { group, thing } => {
            c.call(
                "PUT",
                "/thing-groups/removeThingFromThingGroup",
                "",
                &[],
                Some(&json!({ "thingGroupName": group, "thingName": thing })),
            )
            .await?;
            println!("removed thing {thing} from thing group {group}");
        }
        GroupsCmd::Things { group, recursive, json } => {
            let q: &[(&str, &str)] = if recursive { &[("recursive", "true")] } else { &[] };
            let all = fetch_all(c, &format!("/thing-groups/{}/things", seg(&group)), q, "things").await?;
            if json {
                return print_json(&json!({ "things": all }));
            }
            let rows: Vec<Vec<String>> = all.iter().map(|t| vec![s(t)]).collect();
            super::table(&["THING"], &rows);
        }
        GroupsCmd::ForThing { thing, json } => {
            let all = fetch_all(c, &format!("/things/{}/thing-groups", seg(&thing)), &[], "thingGroups").await?;
            if json {
                return print_json(&json!({ "thingGroups": all }));
            }
            let rows: Vec<Vec<String>> = all.iter().map(|g| vec![s(&g["groupName"]), s(&g["groupArn"])]).collect();
            super::table(&["GROUP", "ARN"], &rows);
        }
    }
    Ok(())
}

// ---- events ----

pub async fn events(c: &ApiClient, cmd: EventsCmd) -> anyhow::Result<()> {
    let (types, all, enabled) = match cmd {
        EventsCmd::Show { json } => {
            let v = c.call("GET", "/event-configurations", "", &[], None).await?;
            if json {
                return print_json(&v);
            }
            let rows: Vec<Vec<String>> = v["eventConfigurations"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, c)| {
                            vec![
                                k.clone(),
                                if c["Enabled"] == json!(true) { "enabled".into() } else { "disabled".into() },
                            ]
                        })
                        .collect()
                })
                .unwrap_or_default();
            super::table(&["EVENT TYPE", "STATE"], &rows);
            return Ok(());
        }
        EventsCmd::Enable { types, all } => (types, all, true),
        EventsCmd::Disable { types, all } => (types, all, false),
    };
    let mut chosen: Vec<String> = types.iter().map(|t| t.to_ascii_uppercase()).collect();
    if all {
        chosen.extend(REGISTRY_EVENT_TYPES.iter().map(|t| t.to_string()));
    }
    let map: Map<String, Value> = chosen.iter().map(|t| (t.clone(), json!({ "Enabled": enabled }))).collect();
    c.call("PATCH", "/event-configurations", "", &[], Some(&json!({ "eventConfigurations": map }))).await?;
    let mut names: Vec<&str> = map.keys().map(String::as_str).collect();
    names.sort();
    println!("{} {}", if enabled { "enabled" } else { "disabled" }, names.join(", "));
    Ok(())
}
