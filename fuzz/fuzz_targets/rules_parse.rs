//! Rule SQL from arbitrary text: parsing never panics, and whatever parses can
//! be evaluated against a message.
#![no_main]

use libfuzzer_sys::fuzz_target;

struct Env;

impl rules::Env for Env {
    fn new_uuid(&self) -> String {
        "00000000-0000-0000-0000-000000000000".into()
    }
    fn trace_id(&self) -> String {
        "trace".into()
    }
    fn get_thing_shadow(&self, _thing: &str, _shadow: Option<&str>) -> Option<serde_json::Value> {
        None
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else { return };
    if let Ok(rule) = rules::Rule::parse(sql) {
        let input = rules::Input {
            topic: "a/b/c",
            payload: br#"{"temp": 31, "a": {"b": [1, 2, {"c": "x"}]}}"#,
            client_id: Some("dev"),
            principal: None,
            timestamp_ms: 0,
        };
        let _ = rule.evaluate(&input, &Env);
    }
});
