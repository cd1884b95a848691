//! Throughput of rule evaluation.
//!
//! Run with `cargo run --release -p rules --example rules_bench`
//! (optionally followed by the number of seconds per measurement).

use std::hint::black_box;
use std::time::{Duration, Instant};

use rules::{Env, Input, Rule, Template};

struct BenchEnv;

impl Env for BenchEnv {
    fn new_uuid(&self) -> String {
        "0b7c8c3e-6a43-4f0a-9d0e-3f3c1d2e4b5a".to_string()
    }
    fn trace_id(&self) -> String {
        "trace".to_string()
    }
    fn get_thing_shadow(&self, _: &str, _: Option<&str>) -> Option<serde_json::Value> {
        None
    }
}

const SIMPLE: &str = "SELECT * FROM 'a/+' WHERE temp > 30";

const COMPLEX: &str = "SELECT upper(device) AS dev, round((temp - 32) * 5 / 9) AS celsius, \
    CASE WHEN temp > 90 THEN 'hot' WHEN temp > 60 THEN 'warm' ELSE 'cold' END AS band, \
    location.lat AS lat, location.lon AS lon, readings[2] AS third, \
    concat(topic(2), '-', clientid()) AS source, timestamp() AS ts, \
    (SELECT VALUE v FROM samples WHERE v > 10) AS big \
    FROM 'a/+' WHERE temp > 30 AND startswith(device, 'sensor')";

const PAYLOAD: &[u8] = br#"{"device":"sensor-17","temp":74.5,"humidity":41,"location":{"lat":48.85,"lon":2.35},
"readings":[1,2,3,4,5],"samples":[{"v":5},{"v":12},{"v":30}],"fw":"1.4.2"}"#;

fn measure(name: &str, secs: f64, mut f: impl FnMut() -> bool) {
    // Warm up, then run in batches until the time is up.
    for _ in 0..1000 {
        black_box(f());
    }
    let budget = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut n: u64 = 0;
    while start.elapsed() < budget {
        for _ in 0..1000 {
            black_box(f());
        }
        n += 1000;
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!("{name:<44} {:>12.0} /s  ({:.2} µs each)", n as f64 / elapsed, elapsed * 1e6 / n as f64);
}

fn main() {
    let secs: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let env = BenchEnv;
    let msg = Input {
        topic: "a/device-17",
        payload: PAYLOAD,
        client_id: Some("device-17"),
        principal: Some("cert"),
        timestamp_ms: 1_700_000_000_000,
    };
    let cold = Input { payload: br#"{"device":"sensor-17","temp":12}"#, ..msg };
    let binary = Input { payload: &[0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3], ..msg };

    let simple = Rule::parse(SIMPLE).unwrap();
    let complex = Rule::parse(COMPLEX).unwrap();
    let passthrough = Rule::parse("SELECT * FROM '#'").unwrap();
    let template = Template::parse("archive/${topic(2)}/${device}/${timestamp()}.json").unwrap();
    let fn_template = Template::parse("${topic()}/republish").unwrap();
    assert!(simple.evaluate(&msg, &env).is_some());
    assert!(simple.evaluate(&cold, &env).is_none());
    println!("complex output: {}", String::from_utf8(complex.evaluate(&msg, &env).unwrap().to_bytes()).unwrap());

    println!("payload {} bytes, {secs} s per measurement", PAYLOAD.len());
    measure("simple filter (match, SELECT *)", secs, || simple.evaluate(&msg, &env).is_some());
    measure("simple filter (no match)", secs, || simple.evaluate(&cold, &env).is_some());
    measure("complex SELECT (functions, CASE, nested)", secs, || complex.evaluate(&msg, &env).is_some());
    measure("SELECT * FROM '#' on a binary payload", secs, || passthrough.evaluate(&binary, &env).is_some());
    measure("template with a payload key", secs, || !template.render(&msg, &env).is_empty());
    measure("template with functions only", secs, || !fn_template.render(&msg, &env).is_empty());
    measure("parse the complex statement", secs, || Rule::parse(COMPLEX).is_ok());
}
