//! UpdateThing, thing types, static thing groups and registry events, driven
//! through the CLI against the real binary (and an MQTT subscriber for the
//! events).

mod common;

use std::process::Command;
use std::time::Duration;

use common::Server;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use serde_json::Value;

/// Run a CLI command that must fail; returns its stderr.
fn cli_fail(server: &Server, args: &[&str]) -> String {
    let out = Command::new(common::bin()).args(args).arg("--data-dir").arg(&server.data_dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "thingport {args:?} should have failed; stdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

fn cli_json(server: &Server, args: &[&str]) -> Value {
    let out = server.cli(args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}):\n{out}"))
}

fn names(v: &Value, key: &str, field: Option<&str>) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| match field {
            Some(f) => x[f].as_str().unwrap().to_string(),
            None => x.as_str().unwrap().to_string(),
        })
        .collect()
}

#[test]
fn update_thing_attributes_type_and_version() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), 0);
    server.cli(&["things", "create", "lamp"]);

    let out = server.cli(&["things", "update", "lamp", "--attr", "room=kitchen", "--attr", "floor=1"]);
    assert!(out.contains("updated thing lamp (version 2"), "{out}");
    // Merge: add one, remove one with an empty value.
    let t =
        cli_json(&server, &["things", "update", "lamp", "--merge", "--attr", "floor=", "--attr", "watts=60", "--json"]);
    assert_eq!(t["version"], 3);
    assert_eq!(t["attributes"], serde_json::json!({ "room": "kitchen", "watts": "60" }));
    // Replace.
    let t = cli_json(&server, &["things", "update", "lamp", "--attr", "color=red", "--json"]);
    assert_eq!(t["attributes"], serde_json::json!({ "color": "red" }));
    assert_eq!(t["version"], 4);

    let err = cli_fail(&server, &["things", "update", "lamp", "--attr", "a=1", "--expected-version", "2"]);
    assert!(err.contains("409") && err.contains("VersionConflictException"), "{err}");
    server.cli(&["things", "update", "lamp", "--attr", "a=1", "--expected-version", "4"]);

    let err = cli_fail(&server, &["things", "update", "ghost", "--attr", "a=1"]);
    assert!(err.contains("404") && err.contains("ResourceNotFoundException"), "{err}");
    let err = cli_fail(&server, &["things", "update", "lamp", "--type", "nosuchtype"]);
    assert!(err.contains("ResourceNotFoundException"), "{err}");

    // Three attributes without a type, up to 50 with one.
    let four = ["--attr", "a=1", "--attr", "b=2", "--attr", "c=3", "--attr", "d=4"];
    let mut args = vec!["things", "update", "lamp"];
    args.extend(four);
    let err = cli_fail(&server, &args);
    assert!(err.contains("InvalidRequestException") && err.contains("at most 3"), "{err}");
    server.cli(&["types", "create", "light"]);
    args.extend(["--type", "light"]);
    let out = server.cli(&args);
    assert!(out.contains("type light, 4 attribute(s)"), "{out}");
    let err = cli_fail(&server, &["things", "update", "lamp", "--remove-type"]);
    assert!(err.contains("at most 3"), "{err}");
    let t = cli_json(&server, &["things", "update", "lamp", "--remove-type", "--attr", "only=1", "--json"]);
    assert!(t.get("thingTypeName").is_none(), "{t}");
    let err = cli_fail(&server, &["things", "update", "lamp", "--attr", "bad key=1"]);
    assert!(err.contains("InvalidRequestException"), "{err}");
}

#[test]
fn thing_types_lifecycle() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), 0);
    let out =
        server.cli(&["types", "create", "sensor", "--description", "Temperature sensor", "--searchable-attr", "room"]);
    assert!(out.contains("arn:aws:iot:us-east-1:000000000000:thingtype/sensor"), "{out}");
    let err = cli_fail(&server, &["types", "create", "sensor"]);
    assert!(err.contains("409") && err.contains("ResourceAlreadyExistsException"), "{err}");
    let err = cli_fail(&server, &["types", "create", "bad!name"]);
    assert!(err.contains("InvalidRequestException"), "{err}");
    let err = cli_fail(
        &server,
        &[
            "types",
            "create",
            "many",
            "--searchable-attr",
            "a",
            "--searchable-attr",
            "b",
            "--searchable-attr",
            "c",
            "--searchable-attr",
            "d",
        ],
    );
    assert!(err.contains("InvalidRequestException"), "{err}");
    server.cli(&["types", "create", "camera"]);

    let list = server.cli(&["types", "list"]);
    let lines: Vec<&str> = list.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{list}");
    assert!(lines[1].starts_with("camera"), "{list}");
    assert!(
        lines[2].starts_with("sensor") && lines[2].contains("room") && lines[2].contains("Temperature sensor"),
        "{list}"
    );
    let v = cli_json(&server, &["types", "list", "--json"]);
    assert_eq!(names(&v, "thingTypes", Some("thingTypeName")), ["camera", "sensor"]);

    let d = cli_json(&server, &["types", "describe", "sensor"]);
    assert_eq!(d["thingTypeProperties"]["searchableAttributes"], serde_json::json!(["room"]));
    assert_eq!(d["thingTypeMetadata"]["deprecated"], false);
    assert!(d["thingTypeId"].as_str().unwrap().len() == 36);

    server.cli(&["things", "create", "t1"]);
    server.cli(&["things", "update", "t1", "--type", "sensor"]);
    let err = cli_fail(&server, &["types", "delete", "sensor"]);
    assert!(err.contains("not deprecated"), "{err}");
    server.cli(&["types", "deprecate", "sensor"]);
    let d = cli_json(&server, &["types", "describe", "sensor"]);
    assert_eq!(d["thingTypeMetadata"]["deprecated"], true);
    assert!(d["thingTypeMetadata"]["deprecationDate"].is_number());
    // No new associations with a deprecated type; the thing keeps its own.
    server.cli(&["things", "create", "t2"]);
    let err = cli_fail(&server, &["things", "update", "t2", "--type", "sensor"]);
    assert!(err.contains("InvalidRequestException") && err.contains("deprecated"), "{err}");
    server.cli(&["things", "update", "t1", "--type", "sensor", "--attr", "x=1"]);
    let err = cli_fail(&server, &["types", "delete", "sensor"]);
    assert!(err.contains("still used by 1 thing"), "{err}");

    server.cli(&["types", "deprecate", "sensor", "--undo"]);
    server.cli(&["things", "update", "t2", "--type", "sensor"]);
    server.cli(&["things", "update", "t1", "--remove-type"]);
    server.cli(&["things", "update", "t2", "--remove-type"]);
    server.cli(&["types", "deprecate", "sensor"]);
    server.cli(&["types", "delete", "sensor"]);
    let err = cli_fail(&server, &["types", "describe", "sensor"]);
    assert!(err.contains("404") && err.contains("ResourceNotFoundException"), "{err}");
    let err = cli_fail(&server, &["types", "deprecate", "sensor"]);
    assert!(err.contains("ResourceNotFoundException"), "{err}");
}

#[test]
fn thing_groups_hierarchy_and_membership() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), 0);
    // A chain seven deep is the most AWS allows.
    server.cli(&["groups", "create", "g1", "--description", "top", "--attr", "site=berlin"]);
    for i in 2..=7 {
        let (name, parent) = (format!("g{i}"), format!("g{}", i - 1));
        let out = server.cli(&["groups", "create", &name, "--parent", &parent]);
        assert!(out.contains(&format!("created thing group {name} in {parent}")), "{out}");
    }
    let err = cli_fail(&server, &["groups", "create", "g8", "--parent", "g7"]);
    assert!(err.contains("InvalidRequestException") && err.contains("at most 7"), "{err}");
    let err = cli_fail(&server, &["groups", "create", "g2", "--parent", "g1"]);
    assert!(err.contains("409") && err.contains("ResourceAlreadyExistsException"), "{err}");
    let err = cli_fail(&server, &["groups", "create", "orphan", "--parent", "nope"]);
    assert!(err.contains("404") && err.contains("ResourceNotFoundException"), "{err}");
    let err = cli_fail(&server, &["groups", "create", "bad#name"]);
    assert!(err.contains("InvalidRequestException"), "{err}");
    server.cli(&["groups", "create", "side", "--parent", "g1"]);

    let d = cli_json(&server, &["groups", "describe", "g3"]);
    assert_eq!(d["thingGroupMetadata"]["parentGroupName"], "g2");
    assert_eq!(names(&d["thingGroupMetadata"], "rootToParentThingGroups", Some("groupName")), ["g1", "g2"]);
    assert_eq!(d["version"], 1);
    let d = cli_json(&server, &["groups", "describe", "g1"]);
    assert_eq!(d["thingGroupProperties"]["thingGroupDescription"], "top");
    assert_eq!(d["thingGroupProperties"]["attributePayload"]["attributes"]["site"], "berlin");

    let list = server.cli(&["groups", "list"]);
    assert!(list.lines().any(|l| l.starts_with("g3 ") && l.contains("g2")), "{list}");
    let children = cli_json(&server, &["groups", "list", "--parent", "g1", "--json"]);
    assert_eq!(names(&children, "thingGroups", Some("groupName")), ["g2", "side"]);
    let all = cli_json(&server, &["groups", "list", "--parent", "g4", "--recursive", "--json"]);
    assert_eq!(names(&all, "thingGroups", Some("groupName")), ["g5", "g6", "g7"]);
    let pre = cli_json(&server, &["groups", "list", "--prefix", "s", "--json"]);
    assert_eq!(names(&pre, "thingGroups", Some("groupName")), ["side"]);

    for t in ["a", "b", "c"] {
        server.cli(&["things", "create", t]);
    }
    server.cli(&["groups", "add-thing", "g1", "a"]);
    server.cli(&["groups", "add-thing", "g3", "b"]);
    server.cli(&["groups", "add-thing", "g3", "b"]); // again: a no-op
    server.cli(&["groups", "add-thing", "g7", "c"]);
    server.cli(&["groups", "add-thing", "side", "c"]);
    let direct = cli_json(&server, &["groups", "things", "g3", "--json"]);
    assert_eq!(names(&direct, "things", None), ["b"]);
    let rec = cli_json(&server, &["groups", "things", "g1", "--recursive", "--json"]);
    assert_eq!(names(&rec, "things", None), ["a", "b", "c"]);
    let table = server.cli(&["groups", "things", "g2", "--recursive"]);
    assert_eq!(table.lines().collect::<Vec<_>>(), ["THING", "b", "c"]);
    let of_c = cli_json(&server, &["groups", "for-thing", "c", "--json"]);
    assert_eq!(names(&of_c, "thingGroups", Some("groupName")), ["g7", "side"]);

    // Not in a group and its ancestor (or descendant) at once.
    let err = cli_fail(&server, &["groups", "add-thing", "g5", "b"]);
    assert!(err.contains("same hierarchy"), "{err}");
    let err = cli_fail(&server, &["groups", "add-thing", "g2", "b"]);
    assert!(err.contains("same hierarchy"), "{err}");
    let err = cli_fail(&server, &["groups", "add-thing", "g1", "ghost"]);
    assert!(err.contains("ResourceNotFoundException"), "{err}");
    let err = cli_fail(&server, &["groups", "add-thing", "ghost", "a"]);
    assert!(err.contains("ResourceNotFoundException"), "{err}");

    // At most 10 groups per thing.
    for i in 0..10 {
        let g = format!("flat{i}");
        server.cli(&["groups", "create", &g]);
        if i < 9 {
            server.cli(&["groups", "add-thing", &g, "a"]);
        }
    }
    let err = cli_fail(&server, &["groups", "add-thing", "flat9", "a"]);
    assert!(err.contains("10 thing groups"), "{err}");

    // Update, version check.
    server.cli(&["groups", "update", "g1", "--description", "root", "--attr", "zone=eu", "--merge"]);
    let d = cli_json(&server, &["groups", "describe", "g1"]);
    assert_eq!(d["version"], 2);
    assert_eq!(d["thingGroupProperties"]["thingGroupDescription"], "root");
    assert_eq!(d["thingGroupProperties"]["attributePayload"]["attributes"]["zone"], "eu");
    assert_eq!(d["thingGroupProperties"]["attributePayload"]["attributes"]["site"], "berlin");
    let err = cli_fail(&server, &["groups", "update", "g1", "--description", "x", "--expected-version", "1"]);
    assert!(err.contains("VersionConflictException"), "{err}");

    // Deleting: children first; things stay in the registry.
    let err = cli_fail(&server, &["groups", "delete", "g6"]);
    assert!(err.contains("InvalidRequestException") && err.contains("child groups"), "{err}");
    server.cli(&["groups", "delete", "g7"]);
    let of_c = cli_json(&server, &["groups", "for-thing", "c", "--json"]);
    assert_eq!(names(&of_c, "thingGroups", Some("groupName")), ["side"]);
    let err = cli_fail(&server, &["groups", "delete", "g7"]);
    assert!(err.contains("ResourceNotFoundException"), "{err}");
    server.cli(&["groups", "remove-thing", "side", "c"]);
    assert_eq!(
        names(&cli_json(&server, &["groups", "things", "side", "--json"]), "things", None),
        Vec::<String>::new()
    );

    // Deleting a thing removes its memberships.
    server.cli(&["things", "delete", "b"]);
    let rec = cli_json(&server, &["groups", "things", "g1", "--recursive", "--json"]);
    assert_eq!(names(&rec, "things", None), ["a"]);
    let err = cli_fail(&server, &["groups", "for-thing", "b"]);
    assert!(err.contains("ResourceNotFoundException"), "{err}");
}

fn mqtt_client(dev: &common::Device, port: u16, id: &str) -> (AsyncClient, EventLoop) {
    let mut o = MqttOptions::new(id, "localhost", port);
    o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(dev.tls())));
    o.set_keep_alive(Duration::from_secs(30));
    AsyncClient::new(o, 100)
}

/// The next PUBLISH (topic, JSON payload), or None after `secs`.
async fn next_publish(ev: &mut EventLoop, secs: f64) -> Option<(String, Value)> {
    let fut = async {
        loop {
            match ev.poll().await {
                // Registry events only: the watcher's own subscription events are not the subject here.
                Ok(Event::Incoming(Packet::Publish(p))) if !p.topic.starts_with("$aws/events/subscriptions/") => {
                    return (p.topic.clone(), serde_json::from_slice(&p.payload).unwrap());
                }
                Ok(_) => {}
                Err(e) => panic!("mqtt: {e}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs_f64(secs), fut).await.ok()
}

async fn wait_suback(ev: &mut EventLoop) {
    let fut = async {
        loop {
            if let Ok(Event::Incoming(Packet::SubAck(_))) = ev.poll().await {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), fut).await.unwrap();
}

/// Run a CLI command off the async runtime's worker (it blocks).
async fn cli(server: &Server, args: &[&str]) -> String {
    let bin = common::bin();
    let dir = server.data_dir.clone();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin).args(&args).arg("--data-dir").arg(&dir).output().unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_events_are_published_once_enabled_and_persist() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Server::start(tmp.path(), 0);
    let dev = server.provision("watcher", "ec");
    let (c, mut ev) = mqtt_client(&dev, server.mqtt_port, "registry-watcher");
    c.subscribe("$aws/events/#", QoS::AtLeastOnce).await.unwrap();
    wait_suback(&mut ev).await;

    // Off by default: nothing is published.
    cli(&server, &["things", "create", "quiet"]).await;
    cli(&server, &["groups", "create", "quiet-group"]).await;
    assert!(next_publish(&mut ev, 1.0).await.is_none());

    let shown = cli(&server, &["events", "show", "--json"]).await;
    let v: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(v["eventConfigurations"]["THING"]["Enabled"], false);

    cli(&server, &["events", "enable", "--all"]).await;
    cli(&server, &["things", "create", "loud"]).await;
    let (topic, p) = next_publish(&mut ev, 5.0).await.expect("thing created event");
    assert_eq!(topic, "$aws/events/thing/loud/created");
    assert_eq!(p["eventType"], "THING_EVENT");
    assert_eq!(p["operation"], "CREATED");
    assert_eq!(p["thingName"], "loud");
    assert_eq!(p["versionNumber"], 1);
    assert_eq!(p["accountId"], "000000000000");
    assert!(p["thingTypeName"].is_null());

    cli(&server, &["groups", "add-thing", "quiet-group", "loud"]).await;
    let (topic, p) = next_publish(&mut ev, 5.0).await.expect("membership event");
    assert_eq!(topic, "$aws/events/thingGroupMembership/thingGroup/quiet-group/thing/loud/added");
    assert_eq!(p["eventType"], "THING_GROUP_MEMBERSHIP_EVENT");
    assert_eq!(p["operation"], "ADDED");
    assert_eq!(p["thingArn"], "arn:aws:iot:us-east-1:000000000000:thing/loud");

    // The configuration survives a restart.
    server.kill9();
    let server = Server::start(tmp.path(), 0);
    let (c, mut ev) = mqtt_client(&dev, server.mqtt_port, "registry-watcher-2");
    c.subscribe("$aws/events/thing/+/+", QoS::AtLeastOnce).await.unwrap();
    wait_suback(&mut ev).await;
    cli(&server, &["things", "update", "loud", "--attr", "k=v"]).await;
    let (topic, p) = next_publish(&mut ev, 5.0).await.expect("thing updated event");
    assert_eq!(topic, "$aws/events/thing/loud/updated");
    assert_eq!(p["versionNumber"], 2);
    assert_eq!(p["attributes"]["k"], "v");

    cli(&server, &["events", "disable", "THING"]).await;
    cli(&server, &["things", "update", "loud", "--attr", "k=w"]).await;
    assert!(next_publish(&mut ev, 1.0).await.is_none());
}
