//! Property tests over generated documents and update requests.

use proptest::prelude::*;
use serde_json::{Map, Value};
use shadow::metadata::mirrors;
use shadow::{apply_update, delta, get_response, Limits, Shadow};

/// Scalars, with a few shared keys/values so that desired and reported
/// collide often.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        (0i64..4).prop_map(Value::from),
        (-2.0f64..2.0).prop_map(|f| Value::from((f * 2.0).round() / 2.0)),
        prop::sample::select(vec!["a", "b", ""]).prop_map(Value::from),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["k", "l", "m", "n"]).prop_map(str::to_string)
}

/// A patch value: scalars, nulls (removals), arrays without nulls, objects.
fn patch_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![4 => scalar(), 1 => Just(Value::Null)];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(scalar(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn section() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(Value::Null)),
        5 => prop::collection::btree_map(key(), patch_value(), 0..4)
            .prop_map(|m| Some(Value::Object(m.into_iter().collect()))),
    ]
}

/// An update request (valid as long as nesting stays within the limit).
fn request() -> impl Strategy<Value = Value> {
    (section(), section(), prop::option::of("[a-z]{0,8}"), prop::bool::weighted(0.05)).prop_map(
        |(desired, reported, token, null_state)| {
            let mut state = Map::new();
            if let Some(d) = desired {
                state.insert("desired".into(), d);
            }
            if let Some(r) = reported {
                state.insert("reported".into(), r);
            }
            let mut req = Map::new();
            req.insert("state".into(), if null_state { Value::Null } else { Value::Object(state) });
            if let Some(t) = token {
                req.insert("clientToken".into(), t.into());
            }
            Value::Object(req)
        },
    )
}

/// Run a sequence of updates, keeping the accepted results.
fn run(reqs: &[Value]) -> (Option<Shadow>, Vec<shadow::UpdateOutcome>) {
    let mut cur: Option<Shadow> = None;
    let mut outs = Vec::new();
    for (i, r) in reqs.iter().enumerate() {
        if let Ok(out) = apply_update(cur.as_ref(), r.to_string().as_bytes(), 100 + i as i64, &Limits::default()) {
            cur = Some(out.shadow.clone());
            outs.push(out);
        }
    }
    (cur, outs)
}

/// Every path of `delta` exists in `desired`; where the delta holds a
/// non-object value it is desired's value at that path.
fn delta_within(delta: &Map<String, Value>, desired: &Map<String, Value>) -> bool {
    delta.iter().all(|(k, v)| match (v, desired.get(k)) {
        (_, None) => false,
        (Value::Object(d), Some(Value::Object(w))) => delta_within(d, w) || v == &Value::Object(w.clone()),
        (v, Some(w)) => v == w,
    })
}

fn no_nulls_or_empty_objects(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Object(m) => !m.is_empty() && m.values().all(no_nulls_or_empty_objects),
        Value::Array(a) => a.iter().all(|e| !e.is_null() && (!e.is_object() || no_nulls_or_empty_objects(e))),
        _ => true,
    }
}

fn stored_invariants(s: &Shadow) {
    for (state, md) in [(&s.state_desired, &s.metadata_desired), (&s.state_reported, &s.metadata_reported)] {
        match (state, md) {
            (None, None) => {}
            (Some(st), Some(m)) => {
                let st = Value::Object(st.clone());
                assert!(no_nulls_or_empty_objects(&st), "stored state {st}");
                assert!(mirrors(&st, &Value::Object(m.clone())), "metadata {m:?} does not mirror {st}");
            }
            _ => panic!("state and metadata sections out of step: {s:?}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn apply_update_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = apply_update(None, &bytes, 1, &Limits::default());
        let doc = run(&[serde_json::json!({"state": {"desired": {"k": 1}, "reported": {"l": [1]}}})]).0;
        let _ = apply_update(doc.as_ref(), &bytes, 2, &Limits::default());
        let _ = get_response(doc.as_ref(), &bytes, 2, None);
        let _ = shadow::delete(doc.as_ref(), &bytes, 2, None);
    }

    #[test]
    fn apply_update_never_panics_on_json_like_text(text in r#"[{}\[\]":,a-z0-9 nul]{0,80}"#) {
        let _ = apply_update(None, text.as_bytes(), 1, &Limits::default());
    }

    #[test]
    fn updates_keep_the_invariants(reqs in prop::collection::vec(request(), 1..8)) {
        let (_, outs) = run(&reqs);
        for out in &outs {
            stored_invariants(&out.shadow);
            // The delta never panics and only holds desired paths.
            if let Some(d) = delta(&out.shadow) {
                let desired = out.shadow.state_desired.as_ref().expect("a delta needs desired");
                prop_assert!(delta_within(&d, desired), "delta {:?} not within desired {:?}", d, desired);
            }
            // The published delta is the shadow's delta.
            prop_assert_eq!(out.delta.as_ref().map(|v| v["state"].clone()), delta(&out.shadow).map(Value::Object));
        }
    }

    #[test]
    fn versions_strictly_increase(reqs in prop::collection::vec(request(), 1..10)) {
        let (_, outs) = run(&reqs);
        let versions: Vec<u64> = outs.iter().map(|o| o.shadow.version).collect();
        prop_assert!(versions.windows(2).all(|w| w[1] == w[0] + 1), "{:?}", versions);
        prop_assert!(versions.first().is_none_or(|v| *v == 1));
        for o in &outs {
            prop_assert_eq!(&o.accepted["version"], &Value::from(o.shadow.version));
        }
    }

    #[test]
    fn reporting_the_desired_state_clears_the_delta(reqs in prop::collection::vec(request(), 1..6)) {
        let (cur, _) = run(&reqs);
        let Some(cur) = cur else { return Ok(()) };
        let Some(desired) = cur.state_desired.clone() else {
            prop_assert!(delta(&cur).is_none());
            return Ok(());
        };
        let req = serde_json::json!({"state": {"reported": desired}});
        let out = apply_update(Some(&cur), req.to_string().as_bytes(), 10_000, &Limits::default()).unwrap();
        prop_assert!(out.delta.is_none(), "delta left: {:?}", out.delta);
        prop_assert!(delta(&out.shadow).is_none());
        let got = get_response(Some(&out.shadow), b"", 10_001, None).unwrap();
        prop_assert!(got["state"].get("delta").is_none());
    }

    #[test]
    fn version_check_matches_current(reqs in prop::collection::vec(request(), 1..5), guess in 0u64..8) {
        let (cur, _) = run(&reqs);
        let current = cur.as_ref().map_or(0, |s| s.version);
        let req = serde_json::json!({"state": {}, "version": guess});
        let res = apply_update(cur.as_ref(), req.to_string().as_bytes(), 10_000, &Limits::default());
        if guess == current {
            prop_assert_eq!(res.unwrap().shadow.version, current + 1);
        } else {
            prop_assert_eq!(res.unwrap_err().code, 409);
        }
    }

    #[test]
    fn shadows_round_trip_through_serde(reqs in prop::collection::vec(request(), 1..5)) {
        let (cur, _) = run(&reqs);
        if let Some(s) = cur {
            let text = serde_json::to_string(&s).unwrap();
            prop_assert_eq!(serde_json::from_str::<Shadow>(&text).unwrap(), s);
        }
    }
}
