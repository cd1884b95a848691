//! The examples of the AWS IoT Developer Guide, reproduced field by field
//! (timestamps are passed in, so the documented ones are used).

mod common;

use common::{build, obj, reject, update};
use serde_json::json;
use shadow::{apply_update, delete, get_response, Limits, Shadow};

/// "Simulating Device Shadow service communications": the smart light bulb
/// `mySimulatedThing` / `simShadow1` with its `ColorRGB` array. The
/// documented shadow is at version 3 when the walkthrough starts, so it
/// starts here from a shadow deleted at version 2 a moment earlier (a
/// recreated shadow continues the numbering).
#[test]
fn color_rgb_light_bulb_walkthrough() {
    let tombstone = Shadow {
        state_desired: None,
        state_reported: None,
        metadata_desired: None,
        metadata_reported: None,
        version: 2,
        timestamp: 1591140000,
        deleted_at: Some(1591140000),
    };

    // A get before the shadow exists is rejected with 404.
    let err = get_response(Some(&tombstone), b"", 1591140001, Some("simShadow1")).unwrap_err();
    assert_eq!(err.to_json(None, 1591140001)["message"], "No shadow exists with name: 'simShadow1'");
    assert_eq!(err.code, 404);

    // The device creates the shadow with its current state.
    let created = update(
        Some(&tombstone),
        json!({
            "state": {"reported": {"ID": "SmartLamp21", "ColorRGB": [128, 128, 128]}},
            "clientToken": "426bfd96-e720-46d3-95cd-014e3ef12bb6"
        }),
        1591140517,
    );
    assert_eq!(
        created.accepted,
        json!({
            "state": {"reported": {"ID": "SmartLamp21", "ColorRGB": [128, 128, 128]}},
            "metadata": {"reported": {
                "ID": {"timestamp": 1591140517},
                "ColorRGB": [{"timestamp": 1591140517}, {"timestamp": 1591140517}, {"timestamp": 1591140517}]
            }},
            "version": 3,
            "timestamp": 1591140517,
            "clientToken": "426bfd96-e720-46d3-95cd-014e3ef12bb6"
        })
    );
    assert!(created.delta.is_none());

    // The app reads it (aws iot-data get-thing-shadow).
    let got = get_response(Some(&created.shadow), b"", 1591141111, Some("simShadow1")).unwrap();
    assert_eq!(
        got,
        json!({
            "state": {"reported": {"ID": "SmartLamp21", "ColorRGB": [128, 128, 128]}},
            "metadata": {"reported": {
                "ID": {"timestamp": 1591140517},
                "ColorRGB": [{"timestamp": 1591140517}, {"timestamp": 1591140517}, {"timestamp": 1591140517}]
            }},
            "version": 3,
            "timestamp": 1591141111
        })
    );

    // The app turns the bulb yellow.
    let desired = update(
        Some(&created.shadow),
        json!({"state": {"desired": {"ColorRGB": [255, 255, 0]}}, "clientToken": "21b21b21-bfd2-4279-8c65-e2f697ff4fab"}),
        1591141596,
    );
    assert_eq!(
        desired.accepted,
        json!({
            "state": {"desired": {"ColorRGB": [255, 255, 0]}},
            "metadata": {"desired": {
                "ColorRGB": [{"timestamp": 1591141596}, {"timestamp": 1591141596}, {"timestamp": 1591141596}]
            }},
            "version": 4,
            "timestamp": 1591141596,
            "clientToken": "21b21b21-bfd2-4279-8c65-e2f697ff4fab"
        })
    );
    // The device receives the documented /update/delta message.
    assert_eq!(
        desired.delta,
        Some(json!({
            "version": 4,
            "timestamp": 1591141596,
            "state": {"ColorRGB": [255, 255, 0]},
            "metadata": {"ColorRGB": [{"timestamp": 1591141596}, {"timestamp": 1591141596}, {"timestamp": 1591141596}]},
            "clientToken": "21b21b21-bfd2-4279-8c65-e2f697ff4fab"
        }))
    );

    // The device reports the new colour.
    let reported = update(
        Some(&desired.shadow),
        json!({"state": {"reported": {"ColorRGB": [255, 255, 0]}}, "clientToken": "a4dc2227-9213-4c6a-a6a5-053304f60258"}),
        1591142747,
    );
    assert_eq!(
        reported.accepted,
        json!({
            "state": {"reported": {"ColorRGB": [255, 255, 0]}},
            "metadata": {"reported": {
                "ColorRGB": [{"timestamp": 1591142747}, {"timestamp": 1591142747}, {"timestamp": 1591142747}]
            }},
            "version": 5,
            "timestamp": 1591142747,
            "clientToken": "a4dc2227-9213-4c6a-a6a5-053304f60258"
        })
    );
    assert!(reported.delta.is_none(), "desired and reported agree: no delta");
    assert_eq!(
        reported.documents,
        json!({
            "previous": {
                "state": {
                    "desired": {"ColorRGB": [255, 255, 0]},
                    "reported": {"ID": "SmartLamp21", "ColorRGB": [128, 128, 128]}
                },
                "metadata": {
                    "desired": {"ColorRGB": [{"timestamp": 1591141596}, {"timestamp": 1591141596}, {"timestamp": 1591141596}]},
                    "reported": {
                        "ID": {"timestamp": 1591140517},
                        "ColorRGB": [{"timestamp": 1591140517}, {"timestamp": 1591140517}, {"timestamp": 1591140517}]
                    }
                },
                "version": 4
            },
            "current": {
                "state": {
                    "desired": {"ColorRGB": [255, 255, 0]},
                    "reported": {"ID": "SmartLamp21", "ColorRGB": [255, 255, 0]}
                },
                "metadata": {
                    "desired": {"ColorRGB": [{"timestamp": 1591141596}, {"timestamp": 1591141596}, {"timestamp": 1591141596}]},
                    "reported": {
                        "ID": {"timestamp": 1591140517},
                        "ColorRGB": [{"timestamp": 1591142747}, {"timestamp": 1591142747}, {"timestamp": 1591142747}]
                    }
                },
                "version": 5
            },
            "timestamp": 1591142747,
            "clientToken": "a4dc2227-9213-4c6a-a6a5-053304f60258"
        })
    );

    // The app observes the result.
    let got = get_response(Some(&reported.shadow), b"", 1591143269, Some("simShadow1")).unwrap();
    assert_eq!(
        got,
        json!({
            "state": {
                "desired": {"ColorRGB": [255, 255, 0]},
                "reported": {"ID": "SmartLamp21", "ColorRGB": [255, 255, 0]}
            },
            "metadata": {
                "desired": {"ColorRGB": [{"timestamp": 1591141596}, {"timestamp": 1591141596}, {"timestamp": 1591141596}]},
                "reported": {
                    "ID": {"timestamp": 1591140517},
                    "ColorRGB": [{"timestamp": 1591142747}, {"timestamp": 1591142747}, {"timestamp": 1591142747}]
                }
            },
            "version": 5,
            "timestamp": 1591143269
        })
    );
}

/// "Updating a Shadow": only the fields in the request change; the device
/// gets the desired change on /update/delta.
#[test]
fn updating_a_shadow_rgb_example() {
    let initial = build(&[json!({"state": {"reported": {"color": {"r": 255, "g": 255, "b": 0}}}})]);
    let out = update(Some(&initial), json!({"state": {"desired": {"color": {"r": 10}, "engine": "ON"}}}), 2000);
    let delta = out.delta.expect("delta");
    assert_eq!(delta["state"], json!({"color": {"r": 10}, "engine": "ON"}));
    assert_eq!(delta["metadata"], json!({"color": {"r": {"timestamp": 2000}}, "engine": {"timestamp": 2000}}));
    let done = update(Some(&out.shadow), json!({"state": {"reported": {"color": {"r": 10}, "engine": "ON"}}}), 2001);
    assert!(done.delta.is_none());
    assert_eq!(
        done.shadow.state_reported.map(serde_json::Value::Object),
        Some(json!({"color": {"r": 10, "g": 255, "b": 0}, "engine": "ON"}))
    );
}

/// "Retrieving a Shadow Document": the GET response carries the delta and
/// the delta's metadata (taken from desired).
#[test]
fn retrieving_a_shadow_document() {
    let stored = Shadow {
        state_desired: Some(obj(json!({"lights": {"color": "RED"}, "engine": "ON"}))),
        state_reported: Some(obj(json!({"lights": {"color": "GREEN"}, "engine": "ON"}))),
        metadata_desired: Some(obj(
            json!({"lights": {"color": {"timestamp": 123456}}, "engine": {"timestamp": 123456}}),
        )),
        metadata_reported: Some(obj(
            json!({"lights": {"color": {"timestamp": 789012}}, "engine": {"timestamp": 789012}}),
        )),
        version: 10,
        timestamp: 789012,
        deleted_at: None,
    };
    let got = get_response(Some(&stored), b"", 123456789, None).unwrap();
    assert_eq!(
        got,
        json!({
            "state": {
                "desired": {"lights": {"color": "RED"}, "engine": "ON"},
                "reported": {"lights": {"color": "GREEN"}, "engine": "ON"},
                "delta": {"lights": {"color": "RED"}}
            },
            "metadata": {
                "desired": {"lights": {"color": {"timestamp": 123456}}, "engine": {"timestamp": 123456}},
                "reported": {"lights": {"color": {"timestamp": 789012}}, "engine": {"timestamp": 789012}},
                "delta": {"lights": {"color": {"timestamp": 123456}}}
            },
            "version": 10,
            "timestamp": 123456789
        })
    );
}

/// "Optimistic Locking": a stale version is a 409; the matching version is
/// accepted and increments it.
#[test]
fn optimistic_locking() {
    let mut doc = build(&[json!({"state": {"desired": {"colors": ["RED", "GREEN", "BLUE"]}}})]);
    doc.version = 10;
    let (code, message) = reject(Some(&doc), r#"{"state":{"desired":{"colors":["BLUE"]}},"version":9}"#, 2000);
    assert_eq!((code, message.as_str()), (409, "Version conflict"));
    let out = update(Some(&doc), json!({"state": {"desired": {"colors": ["BLUE"]}}, "version": 10}), 2000);
    assert_eq!(out.shadow.version, 11);
    assert_eq!(out.shadow.state_value(), json!({"desired": {"colors": ["BLUE"]}}));
}

/// "Deleting Data": `"desired": null` removes the section, a null field
/// removes the field.
#[test]
fn deleting_data() {
    let doc = build(&[json!({"state": {
        "desired": {"lights": {"color": "RED"}, "engine": "ON"},
        "reported": {"lights": {"color": "GREEN"}, "engine": "OFF"}
    }})]);
    let out = update(Some(&doc), json!({"state": {"desired": null, "reported": {"engine": null}}}), 2000);
    assert_eq!(out.shadow.state_value(), json!({"reported": {"lights": {"color": "GREEN"}}}));
    assert_eq!(out.shadow.metadata_value(), json!({"reported": {"lights": {"color": {"timestamp": 1000}}}}));
    assert!(out.delta.is_none());
}

/// "You can delete all data from a device's shadow by setting its state to
/// null … the device's shadow remains." The live service answers with
/// `{"state":null,"metadata":{"timestamp":…},"version":…,"timestamp":…}`.
#[test]
fn null_state_clears_but_keeps_the_shadow() {
    let doc = build(&[json!({"state": {"desired": {"a": 1}, "reported": {"b": 2}}})]);
    let out = update(Some(&doc), json!({"state": null}), 2000);
    assert_eq!(out.accepted, json!({"state": null, "metadata": {"timestamp": 2000}, "version": 2, "timestamp": 2000}));
    assert_eq!(out.shadow.state_value(), json!({}));
    assert!(out.delta.is_none());
    let got = get_response(Some(&out.shadow), b"", 2001, None).unwrap();
    assert_eq!(got, json!({"state": {}, "metadata": {}, "version": 2, "timestamp": 2001}));
}

/// "Deleting a Shadow": afterwards a get is a 404.
#[test]
fn deleting_a_shadow() {
    let doc = build(&[json!({"state": {"desired": {"lights": {"color": "RED"}, "engine": "ON"}}})]);
    let (tombstone, accepted) = delete(Some(&doc), b"", 2000, None).unwrap();
    assert_eq!(accepted, json!({"version": 1, "timestamp": 2000}));
    let err = get_response(Some(&tombstone), b"", 2001, Some("lamp")).unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (404, "No shadow exists with name: 'lamp'"));
}

/// "Delta State": the flat and nested examples.
#[test]
fn delta_state_examples() {
    let flat = build(&[
        json!({"state": {"desired": {"color": "RED", "state": "STOP"}}}),
        json!({"state": {"reported": {"color": "GREEN", "engine": "ON"}}}),
    ]);
    let got = get_response(Some(&flat), b"", 5000, None).unwrap();
    assert_eq!(got["state"]["delta"], json!({"color": "RED", "state": "STOP"}));
    assert_eq!(got["metadata"]["delta"], json!({"color": {"timestamp": 1000}, "state": {"timestamp": 1000}}));

    let nested = build(&[
        json!({"state": {"desired": {"lights": {"color": {"r": 255, "g": 255, "b": 255}}}}}),
        json!({"state": {"reported": {"lights": {"color": {"r": 255, "g": 0, "b": 255}}}}}),
    ]);
    let got = get_response(Some(&nested), b"", 5000, None).unwrap();
    assert_eq!(got["state"]["delta"], json!({"lights": {"color": {"g": 255}}}));
    assert_eq!(got["metadata"]["delta"], json!({"lights": {"color": {"g": {"timestamp": 1000}}}}));
}

/// "Message Order": each desired update produces a cumulative delta with
/// the new version.
#[test]
fn message_order_deltas() {
    let mut doc = build(&[json!({"state": {"reported": {"color": "blue"}}})]);
    doc.version = 10;
    let one = update(Some(&doc), json!({"state": {"desired": {"color": "RED"}}, "version": 10}), 123456778);
    let d1 = one.delta.unwrap();
    assert_eq!((d1["state"].clone(), d1["version"].clone()), (json!({"color": "RED"}), json!(11)));
    let two = update(Some(&one.shadow), json!({"state": {"desired": {"color": "GREEN"}}, "version": 11}), 123456779);
    let d2 = two.delta.unwrap();
    assert_eq!((d2["state"].clone(), d2["version"].clone()), (json!({"color": "GREEN"}), json!(12)));
}

/// "Array values in shadow documents": arrays are replaced whole; arrays
/// can't hold null.
#[test]
fn array_values() {
    let doc = build(&[json!({"state": {"desired": {"colors": ["RED", "GREEN", "BLUE"]}}})]);
    let out = update(Some(&doc), json!({"state": {"desired": {"colors": ["RED"]}}}), 2000);
    assert_eq!(out.shadow.state_value(), json!({"desired": {"colors": ["RED"]}}));
    assert_eq!(out.shadow.metadata_value(), json!({"desired": {"colors": [{"timestamp": 2000}]}}));
    let (code, _) = reject(Some(&out.shadow), r#"{"state":{"desired":{"colors":[null,"RED","GREEN"]}}}"#, 2001);
    assert_eq!(code, 400);
}

/// "Empty shadow document properties": a device clears desired while
/// reporting; sections absent when empty.
#[test]
fn empty_properties() {
    let doc = build(&[json!({"state": {"desired": {"color": "red"}}})]);
    assert_eq!(doc.state_value(), json!({"desired": {"color": "red"}}));
    let out = update(Some(&doc), json!({"state": {"reported": {"color": "red"}, "desired": null}}), 2000);
    assert_eq!(out.shadow.state_value(), json!({"reported": {"color": "red"}}));
    assert_eq!(
        out.accepted,
        json!({
            "state": {"reported": {"color": "red"}, "desired": null},
            "metadata": {"reported": {"color": {"timestamp": 2000}}, "desired": {"timestamp": 2000}},
            "version": 2,
            "timestamp": 2000
        })
    );
}

/// "/update/delta message body details": an attribute deleted from reported
/// but still desired is in the delta, so a reported-only update publishes it;
/// the delta holds every differing attribute, not only the updated ones.
#[test]
fn delta_rules_of_the_mqtt_topics_page() {
    let doc = build(&[
        json!({"state": {"desired": {"a": 1, "b": 2, "c": 3}}}),
        json!({"state": {"reported": {"a": 1, "b": 2, "c": 3, "extra": true}}}),
    ]);
    let out = update(Some(&doc), json!({"state": {"reported": {"b": null}}}), 2000);
    assert_eq!(out.delta.unwrap()["state"], json!({"b": 2}));

    let out = update(Some(&doc), json!({"state": {"desired": {"a": 10}, "reported": {"c": 30}}}), 2000);
    assert_eq!(out.delta.unwrap()["state"], json!({"a": 10, "c": 3}));
}

/// The request/response document formats of "Shadow document examples".
#[test]
fn response_document_formats() {
    let out = apply_update(
        None,
        br#"{"state":{"desired":{"attribute1":2,"attribute2":"string2","attributeN":true}},"clientToken":"token","version":0}"#,
        77,
        &Limits::default(),
    )
    .unwrap();
    let acc = out.accepted.as_object().unwrap();
    let mut keys: Vec<_> = acc.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["clientToken", "metadata", "state", "timestamp", "version"]);
    assert_eq!(out.accepted["metadata"]["desired"]["attribute2"], json!({"timestamp": 77}));
    let delta = out.delta.unwrap();
    assert_eq!(delta["state"], json!({"attribute1": 2, "attribute2": "string2", "attributeN": true}));
    assert_eq!(delta["clientToken"], "token");
    assert_eq!(out.documents["previous"], serde_json::Value::Null);
    assert_eq!(out.documents["current"]["version"], 1);
    assert_eq!(out.documents["clientToken"], "token");
    assert_eq!(out.documents["timestamp"], 77);
}
