//! Merge, null, array, metadata and delta semantics beyond the documented
//! examples.

mod common;

use common::{build, update};
use serde_json::{json, Value};
use shadow::{delta, get_response};

#[test]
fn null_removes_a_key_and_its_metadata() {
    let doc = build(&[json!({"state": {"reported": {"a": 1, "b": {"c": 2, "d": 3}}}})]);
    let out = update(Some(&doc), json!({"state": {"reported": {"a": null, "b": {"c": null}}}}), 2000);
    assert_eq!(out.shadow.state_value(), json!({"reported": {"b": {"d": 3}}}));
    assert_eq!(out.shadow.metadata_value(), json!({"reported": {"b": {"d": {"timestamp": 1000}}}}));
    // /accepted echoes the nulls that were sent, with their timestamps.
    assert_eq!(out.accepted["state"], json!({"reported": {"a": null, "b": {"c": null}}}));
    assert_eq!(
        out.accepted["metadata"],
        json!({"reported": {"a": {"timestamp": 2000}, "b": {"c": {"timestamp": 2000}}}})
    );
}

#[test]
fn removing_the_last_key_removes_the_object_and_the_section() {
    let doc = build(&[json!({"state": {"desired": {"a": {"b": {"c": 1}}}, "reported": {"x": 1}}})]);
    let out = update(Some(&doc), json!({"state": {"desired": {"a": {"b": {"c": null}}}}}), 2000);
    assert_eq!(out.shadow.state_desired, None);
    assert_eq!(out.shadow.metadata_desired, None);
    assert_eq!(out.shadow.state_value(), json!({"reported": {"x": 1}}));
}

#[test]
fn null_for_a_missing_key_is_harmless() {
    let out = update(None, json!({"state": {"desired": {"ghost": null}, "reported": null}}), 5);
    assert_eq!(out.shadow.state_value(), json!({}));
    assert_eq!(out.shadow.version, 1);
    assert_eq!(out.documents["current"], json!({"state": {}, "metadata": {}, "version": 1}));
}

#[test]
fn section_null_removes_only_that_section() {
    let doc = build(&[json!({"state": {"desired": {"a": 1}, "reported": {"a": 2}}})]);
    let out = update(Some(&doc), json!({"state": {"reported": null}}), 2000);
    assert_eq!(out.shadow.state_value(), json!({"desired": {"a": 1}}));
    assert_eq!(out.delta.unwrap()["state"], json!({"a": 1}));
}

#[test]
fn merge_keeps_untouched_timestamps() {
    let doc = build(&[
        json!({"state": {"reported": {"temp": 20, "hum": 40, "pos": {"x": 1, "y": 2}}}}),
        json!({"state": {"reported": {"temp": 21, "pos": {"y": 3}}}}),
    ]);
    assert_eq!(
        doc.metadata_value(),
        json!({"reported": {
            "temp": {"timestamp": 1001},
            "hum": {"timestamp": 1000},
            "pos": {"x": {"timestamp": 1000}, "y": {"timestamp": 1001}}
        }})
    );
}

#[test]
fn arrays_replace_whole_and_compare_whole() {
    let doc = build(&[
        json!({"state": {"desired": {"sched": [{"on": 8}, {"off": 22}]}, "reported": {"sched": [{"on": 8}]}}}),
    ]);
    assert_eq!(delta(&doc).map(Value::Object), Some(json!({"sched": [{"on": 8}, {"off": 22}]})));
    let out = update(Some(&doc), json!({"state": {"reported": {"sched": [{"on": 8}, {"off": 22}]}}}), 2000);
    assert!(out.delta.is_none());
    assert_eq!(
        out.shadow.metadata_reported.clone().map(Value::Object),
        Some(json!({"sched": [{"on": {"timestamp": 2000}}, {"off": {"timestamp": 2000}}]}))
    );
    // An array is never merged element-wise.
    let out = update(Some(&out.shadow), json!({"state": {"desired": {"sched": [{"on": 9}]}}}), 2001);
    assert_eq!(out.shadow.state_desired.map(Value::Object), Some(json!({"sched": [{"on": 9}]})));
}

#[test]
fn nested_delta_keeps_paths_and_ignores_reported_only_keys() {
    let doc = build(&[
        json!({"state": {"desired": {"cfg": {"net": {"ssid": "home", "dhcp": true}, "led": 1}}}}),
        json!({"state": {"reported": {"cfg": {"net": {"ssid": "work", "dhcp": true, "ip": "10.0.0.2"}, "led": 1}, "up": 5}}}),
    ]);
    let got = get_response(Some(&doc), b"", 3000, None).unwrap();
    assert_eq!(got["state"]["delta"], json!({"cfg": {"net": {"ssid": "home"}}}));
    assert_eq!(got["metadata"]["delta"], json!({"cfg": {"net": {"ssid": {"timestamp": 1000}}}}));
}

#[test]
fn type_changes_in_either_direction() {
    let doc = build(&[json!({"state": {"reported": {"a": {"x": 1}, "b": 5}}})]);
    let out = update(Some(&doc), json!({"state": {"reported": {"a": "flat", "b": {"y": [true]}}}}), 2000);
    assert_eq!(out.shadow.state_value(), json!({"reported": {"a": "flat", "b": {"y": [true]}}}));
    assert_eq!(
        out.shadow.metadata_value(),
        json!({"reported": {"a": {"timestamp": 2000}, "b": {"y": [{"timestamp": 2000}]}}})
    );
}

#[test]
fn empty_object_patches_are_echoed_but_not_stored() {
    let out = update(None, json!({"state": {"desired": {"a": {}}, "reported": {}}}), 5);
    assert_eq!(out.shadow.state_value(), json!({}));
    assert_eq!(out.accepted["state"], json!({"desired": {"a": {}}, "reported": {}}));
    assert_eq!(out.accepted["metadata"], json!({"desired": {"a": {}}, "reported": {}}));
}

#[test]
fn numbers_equal_by_value_clear_the_delta() {
    let doc = build(&[json!({"state": {"desired": {"level": 1}}})]);
    let out = update(Some(&doc), json!({"state": {"reported": {"level": 1.0}}}), 2000);
    assert!(out.delta.is_none());
}

#[test]
fn falsy_values_are_values() {
    let doc = build(&[json!({"state": {"desired": {"on": false, "n": 0, "s": "", "l": []}}})]);
    assert_eq!(delta(&doc).map(Value::Object), Some(json!({"on": false, "n": 0, "s": "", "l": []})));
    let out = update(Some(&doc), json!({"state": {"reported": {"on": false, "n": 0, "s": "", "l": []}}}), 2000);
    assert!(out.delta.is_none());
}

#[test]
fn other_top_level_members_are_ignored() {
    let out = update(
        None,
        json!({"state": {"reported": {"a": 1}}, "metadata": {"x": 1}, "timestamp": 5, "delta": {"q": 1}}),
        7,
    );
    assert_eq!(out.shadow.state_value(), json!({"reported": {"a": 1}}));
    assert_eq!(
        out.accepted,
        json!({
            "state": {"reported": {"a": 1}},
            "metadata": {"reported": {"a": {"timestamp": 7}}},
            "version": 1,
            "timestamp": 7
        })
    );
}

#[test]
fn get_echoes_the_client_token_and_uses_response_time() {
    let doc = build(&[json!({"state": {"reported": {"a": 1}}})]);
    let got = get_response(Some(&doc), br#"{"clientToken":"g1"}"#, 9999, None).unwrap();
    assert_eq!(got["clientToken"], "g1");
    assert_eq!(got["timestamp"], 9999);
    for empty in [&b""[..], b"{}", b"  ", b"whatever"] {
        let got = get_response(Some(&doc), empty, 9999, None).unwrap();
        assert!(got.get("clientToken").is_none());
    }
}

#[test]
fn delta_carries_the_whole_current_delta() {
    let doc = build(&[json!({"state": {"desired": {"a": 1, "b": 2}}})]);
    // A desired update that touches only `b` still sends `a`.
    let out = update(Some(&doc), json!({"state": {"desired": {"b": 3}}, "clientToken": "x"}), 2000);
    let d = out.delta.unwrap();
    assert_eq!(d["state"], json!({"a": 1, "b": 3}));
    assert_eq!(d["metadata"], json!({"a": {"timestamp": 1000}, "b": {"timestamp": 2000}}));
    assert_eq!(
        (d["version"].clone(), d["timestamp"].clone(), d["clientToken"].clone()),
        (json!(2), json!(2000), json!("x"))
    );
}
