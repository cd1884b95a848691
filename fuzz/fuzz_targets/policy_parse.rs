//! Policy documents from arbitrary text: parsing never panics, and whatever
//! parses can be compiled and evaluated.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(doc) = policy::PolicyDocument::parse(text, &policy::ParseOptions::default()) {
        let vars: std::collections::HashMap<String, policy::VarValue> = Default::default();
        let compiled = policy::CompiledPolicies::compile(&[("p".into(), "1".into(), &doc)], &vars);
        let _ = compiled.evaluate("iot:Publish", "arn:aws:iot:us-east-1:000000000000:topic/a/b", &policy::NoRequestContext);
    }
});
