//! Every way a policy document can be refused, with the exact error text.

mod common;

use common::{doc, err, parse};
use policy::{ParseOptions, PolicyDocument};

const ALLOW: &str = r#""Effect": "Allow""#;
const PUB: &str = r#""Action": "iot:Publish""#;
const RES: &str = r#""Resource": "arn:aws:iot:eu-west-1:123456789012:topic/a""#;

fn stmt(parts: &[&str]) -> String {
    format!("{{{}}}", parts.join(", "))
}

#[test]
fn json_syntax_has_line_and_column() {
    let e = err("{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n}");
    assert!(e.starts_with("line 4, column 1: invalid JSON: "), "{e}");
    let e = err(r#"{"Version": "2012-10-17" "Statement": []}"#);
    assert!(e.starts_with("line 1, column 26: invalid JSON: expected `,` or `}`"), "{e}");
    let e = err(&format!("{} trailing", doc(&stmt(&[ALLOW, PUB, RES]))));
    assert!(e.contains("invalid JSON: trailing characters"), "{e}");
}

#[test]
fn duplicate_json_keys() {
    let e = err(&doc(r#"{"Effect": "Allow", "Effect": "Deny", "Action": "iot:Publish", "Resource": "*"}"#));
    assert!(e.starts_with("line 1, column "), "{e}");
    assert!(e.contains("invalid JSON: duplicate key \"Effect\""), "{e}");
}

#[test]
fn size_limit_excludes_whitespace() {
    let mut resources = Vec::new();
    while resources.join(",").len() < 2100 {
        resources.push(format!("\"arn:aws:iot:eu-west-1:123456789012:topic/t{}\"", resources.len()));
    }
    let big = doc(&format!(r#"{{"Effect": "Allow", "Action": "iot:Publish", "Resource": [{}]}}"#, resources.join(",")));
    let e = err(&big);
    assert!(e.starts_with("policy: document is "), "{e}");
    assert!(e.ends_with("characters long without whitespace; the limit is 2048"), "{e}");
    // The same document passes with a larger limit.
    let opts = ParseOptions { max_len_without_whitespace: 10_000 };
    assert!(PolicyDocument::parse(&big, &opts).is_ok());
    // Whitespace does not count.
    let small = doc(&stmt(&[ALLOW, PUB, RES]));
    let padded = small.replace(", ", &format!(",{}", " ".repeat(1000)));
    assert!(padded.len() > 3000);
    parse(&padded);
    // Exactly at the limit is fine, one over is not.
    let n = small.chars().filter(|c| !c.is_whitespace()).count();
    let at = ParseOptions { max_len_without_whitespace: n };
    assert!(PolicyDocument::parse(&small, &at).is_ok());
    let under = ParseOptions { max_len_without_whitespace: n - 1 };
    assert_eq!(
        PolicyDocument::parse(&small, &under).unwrap_err().to_string(),
        format!("policy: document is {n} characters long without whitespace; the limit is {}", n - 1)
    );
}

#[test]
fn document_level() {
    assert_eq!(err(""), "policy: document is empty");
    assert_eq!(err("  \n "), "policy: document is empty");
    assert_eq!(err("[]"), "policy: must be a JSON object, not an array");
    assert_eq!(err("\"x\""), "policy: must be a JSON object, not a string");
    assert_eq!(
        err(r#"{"Version": "2012-10-17", "Statment": []}"#),
        "policy: unknown key \"Statment\" (did you mean \"Statement\"?)"
    );
    assert_eq!(err(r#"{"Version": "2012-10-17", "Foo": 1, "Statement": []}"#), "policy: unknown key \"Foo\"");
    assert_eq!(err(r#"{"Version": "2012-10-17"}"#), "policy: missing Statement");
    assert_eq!(
        err(r#"{"Version": "2012-10-18", "Statement": []}"#),
        "Version: unsupported version \"2012-10-18\" (expected \"2012-10-17\")"
    );
    assert_eq!(
        err(r#"{"Version": 2012, "Statement": []}"#),
        "Version: must be the string \"2012-10-17\", not a number"
    );
    assert_eq!(err(r#"{"Version": "2012-10-17", "Id": 5, "Statement": []}"#), "Id: must be a string, not a number");
}

#[test]
fn statement_container() {
    assert_eq!(err(r#"{"Version": "2012-10-17", "Statement": []}"#), "Statement: must not be empty");
    assert_eq!(
        err(r#"{"Version": "2012-10-17", "Statement": "Allow"}"#),
        "Statement: must be an object or an array of objects, not a string"
    );
    assert_eq!(err(&doc(&format!("{}, 3", stmt(&[ALLOW, PUB, RES])))), "Statement[1]: must be an object, not a number");
    // A single statement object: paths say "Statement".
    assert_eq!(
        err(r#"{"Version": "2012-10-17", "Statement": {"Action": "iot:Publish", "Resource": "*"}}"#),
        "Statement: missing Effect"
    );
}

#[test]
fn statement_keys() {
    assert_eq!(
        err(&doc(&stmt(&[ALLOW, r#""Actions": "iot:Publish""#, RES]))),
        "Statement[0]: unknown key \"Actions\" (did you mean \"Action\"?)"
    );
    let e = err(&doc(&stmt(&[ALLOW, PUB, RES, r#""Principal": "*""#])));
    assert!(e.starts_with("Statement[0]: unknown key \"Principal\": AWS IoT policies have no principal"), "{e}");
    assert_eq!(err(&doc(&stmt(&[PUB, RES]))), "Statement[0]: missing Effect");
    assert_eq!(
        err(&doc(&stmt(&[r#""Effect": "allow""#, PUB, RES]))),
        "Statement[0].Effect: must be \"Allow\" or \"Deny\", not \"allow\" (did you mean \"Allow\"?)"
    );
    assert_eq!(
        err(&doc(&stmt(&[r#""Effect": true"#, PUB, RES]))),
        "Statement[0].Effect: must be \"Allow\" or \"Deny\", not a boolean"
    );
    assert_eq!(err(&doc(&stmt(&[r#""Sid": 1"#, ALLOW, PUB, RES]))), "Statement[0].Sid: must be a string, not a number");
    assert_eq!(
        err(&doc(&format!(
            "{}, {}, {}",
            stmt(&[r#""Sid": "a""#, ALLOW, PUB, RES]),
            stmt(&[r#""Sid": "b""#, ALLOW, PUB, RES]),
            stmt(&[r#""Sid": "a""#, ALLOW, PUB, RES])
        ))),
        "Statement[2].Sid: duplicate Sid \"a\" (also used by Statement[0])"
    );
}

#[test]
fn actions() {
    assert_eq!(err(&doc(&stmt(&[ALLOW, RES]))), "Statement[0]: missing Action or NotAction");
    assert_eq!(
        err(&doc(&stmt(&[ALLOW, PUB, r#""NotAction": "iot:Connect""#, RES]))),
        "Statement[0]: has both Action and NotAction (use one)"
    );
    assert_eq!(err(&doc(&stmt(&[ALLOW, r#""Action": []"#, RES]))), "Statement[0].Action: must not be empty");
    assert_eq!(err(&doc(&stmt(&[ALLOW, r#""NotAction": []"#, RES]))), "Statement[0].NotAction: must not be empty");
    assert_eq!(
        err(&doc(&stmt(&[ALLOW, r#""Action": {"a": 1}"#, RES]))),
        "Statement[0].Action: must be a string or an array of strings, not an object"
    );
    assert_eq!(
        err(&doc(&stmt(&[ALLOW, r#""Action": ["iot:Publish", 7]"#, RES]))),
        "Statement[0].Action[1]: must be a string, not a number"
    );
    assert_eq!(err(&doc(&stmt(&[ALLOW, r#""Action": [""]"#, RES]))), "Statement[0].Action[0]: must not be empty");
    assert_eq!(
        err(&doc(&format!("{}, {}", stmt(&[ALLOW, PUB, RES]), stmt(&[ALLOW, r#""Action": ["iot:Pubish"]"#, RES])))),
        "Statement[1].Action[0]: unknown action \"iot:Pubish\" (did you mean \"iot:Publish\"?)"
    );
    assert_eq!(
        err(&doc(&stmt(&[ALLOW, r#""Action": "iot:Subcribe""#, RES]))),
        "Statement[0].Action: unknown action \"iot:Subcribe\" (did you mean \"iot:Subscribe\"?)"
    );
    assert_eq!(
        err(&doc(&stmt(&[ALLOW, r#""NotAction": ["iot:Frobnicate"]"#, RES]))),
        "Statement[0].NotAction[0]: unknown action \"iot:Frobnicate\""
    );
    assert_eq!(
        err(&doc(&stmt(&[ALLOW, r#""Action": "Publish""#, RES]))),
        "Statement[0].Action: action \"Publish\" must look like \"service:Action\" (e.g. \"iot:Publish\") or \"*\""
    );
    assert_eq!(
        err(&doc(&stmt(&[ALLOW, r#""Action": "iot:${iot:ClientId}""#, RES]))),
        "Statement[0].Action: policy variables are not allowed in actions: \"iot:${iot:ClientId}\""
    );
}

#[test]
fn resources() {
    assert_eq!(err(&doc(&stmt(&[ALLOW, PUB]))), "Statement[0]: missing Resource or NotResource");
    assert_eq!(
        err(&doc(&stmt(&[ALLOW, PUB, RES, r#""NotResource": "*""#]))),
        "Statement[0]: has both Resource and NotResource (use one)"
    );
    assert_eq!(err(&doc(&stmt(&[ALLOW, PUB, r#""Resource": []"#]))), "Statement[0].Resource: must not be empty");
    assert_eq!(err(&doc(&stmt(&[ALLOW, PUB, r#""Resource": [""]"#]))), "Statement[0].Resource[0]: must not be empty");
    assert_eq!(
        err(&doc(&stmt(&[ALLOW, PUB, r#""Resource": null"#]))),
        "Statement[0].Resource: must be a string or an array of strings, not null"
    );
    let three = format!(
        "{}, {}, {}",
        stmt(&[ALLOW, PUB, RES]),
        stmt(&[ALLOW, PUB, RES]),
        stmt(&[ALLOW, PUB, r#""Resource": ["topic/foo"]"#])
    );
    assert_eq!(
        err(&doc(&three)),
        "Statement[2].Resource[0]: resource must be an ARN like arn:aws:iot:REGION:ACCOUNT:topic/NAME or \"*\""
    );
    assert_eq!(
        err(&doc(&stmt(&[ALLOW, PUB, r#""NotResource": ["*", "arn:aws:iot:eu-west-1:1:topics/x"]"#]))),
        "Statement[0].NotResource[1]: unknown AWS IoT resource type \"topics\" (expected client/, topic/, topicfilter/, thing/, rolealias/) (did you mean \"topic\"?)"
    );
    assert_eq!(
        err(&doc(&stmt(&[ALLOW, PUB, r#""Resource": "arn:aws:iot:eu-west-1:1:topic""#]))),
        "Statement[0].Resource: AWS IoT resource \"topic\" needs a name: topic/NAME"
    );
    assert_eq!(
        err(&doc(&stmt(&[ALLOW, PUB, r#""Resource": "arn:aws:sqs:eu-west-1:1:q""#]))),
        "Statement[0].Resource: unsupported service \"sqs\" in resource ARN (expected iot, s3, kms or keys)"
    );
}

#[test]
fn variables() {
    let r = |res: &str| doc(&stmt(&[ALLOW, PUB, &format!(r#""Resource": "{res}""#)]));
    assert_eq!(
        err(&r("arn:aws:iot:eu-west-1:1:topic/${iot:ClientID2}")),
        "Statement[0].Resource: unknown policy variable \"${iot:ClientID2}\" (did you mean \"iot:ClientId\"?)"
    );
    assert_eq!(
        err(&r("arn:aws:iot:eu-west-1:1:topic/${iot:Connection.Thing.ThingNam}")),
        "Statement[0].Resource: unknown policy variable \"${iot:Connection.Thing.ThingNam}\" (did you mean \"iot:Connection.Thing.ThingName\"?)"
    );
    assert_eq!(
        err(&r("arn:aws:iot:eu-west-1:1:topic/${aws:username}")),
        "Statement[0].Resource: unknown policy variable \"${aws:username}\""
    );
    assert_eq!(
        err(&r("arn:aws:iot:eu-west-1:1:topic/${iot:ClientId")),
        "Statement[0].Resource: unterminated policy variable \"${iot:ClientId\""
    );
    assert_eq!(
        err(&r("arn:aws:iot:eu-west-1:1:topic/${iot:Certificate.Subject.Locality}")),
        "Statement[0].Resource: unknown policy variable \"${iot:Certificate.Subject.Locality}\""
    );
    // No Version (2008-10-17): variables are refused, not taken literally.
    let old = r#"{"Statement": [{"Effect": "Allow", "Action": "iot:Publish", "Resource": "arn:aws:iot:eu-west-1:1:topic/${iot:ClientId}"}]}"#;
    assert_eq!(
        err(old),
        "Statement[0].Resource: policy variable \"${iot:ClientId}\" needs \"Version\": \"2012-10-17\" (older versions would treat it as literal text)"
    );
    let old = old.replace("{\"Statement\"", "{\"Version\": \"2008-10-17\", \"Statement\"");
    assert!(err(&old).contains("needs \"Version\": \"2012-10-17\""));
    // Without variables an old or missing Version is fine.
    let d = parse(r#"{"Statement": [{"Effect": "Allow", "Action": "iot:Publish", "Resource": "*"}]}"#);
    assert_eq!(d.version(), "2008-10-17");
}

#[test]
fn conditions() {
    let c = |cond: &str| doc(&stmt(&[ALLOW, PUB, RES, &format!(r#""Condition": {cond}"#)]));
    assert_eq!(
        err(&c("[]")),
        "Statement[0].Condition: must be an object mapping condition operators to keys, not an array"
    );
    assert_eq!(err(&c("{}")), "Statement[0].Condition: must not be empty");
    assert_eq!(
        err(&c(r#"{"StringEqual": {"iot:ClientId": "a"}}"#)),
        "Statement[0].Condition.StringEqual: unknown condition operator (did you mean \"StringEquals\"?)"
    );
    assert_eq!(
        err(&c(r#"{"ForAnyValues:StringEquals": {"iot:ClientId": "a"}}"#)),
        "Statement[0].Condition.ForAnyValues:StringEquals: unknown set operator \"ForAnyValues:\" (expected ForAnyValue: or ForAllValues:) (did you mean \"ForAnyValue\"?)"
    );
    assert_eq!(
        err(&c(r#"{"NullIfExists": {"iot:ClientId": "true"}}"#)),
        "Statement[0].Condition.NullIfExists: Null cannot be combined with IfExists"
    );
    assert_eq!(
        err(&c(r#"{"StringEquals": "a"}"#)),
        "Statement[0].Condition.StringEquals: must be an object mapping condition keys to values, not a string"
    );
    assert_eq!(err(&c(r#"{"StringEquals": {}}"#)), "Statement[0].Condition.StringEquals: must not be empty");
    assert_eq!(
        err(&c(r#"{"StringEquals": {"iot:ClientId": []}}"#)),
        "Statement[0].Condition.StringEquals.iot:ClientId: must not be an empty array"
    );
    assert_eq!(
        err(&c(r#"{"StringEquals": {"iot:ClientId": {"a": "b"}}}"#)),
        "Statement[0].Condition.StringEquals.iot:ClientId: condition values must be strings, numbers or booleans, not an object"
    );
    assert_eq!(
        err(&c(r#"{"StringEquals": {"iot:ClientId": ["a", null]}}"#)),
        "Statement[0].Condition.StringEquals.iot:ClientId[1]: condition values must be strings, numbers or booleans, not null"
    );
    assert_eq!(
        err(&c(r#"{"NumericGreaterThan": {"k": "many"}}"#)),
        "Statement[0].Condition.NumericGreaterThan.k: \"many\" is not a number"
    );
    assert_eq!(
        err(&c(r#"{"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "10.0.0.0/40"]}}"#)),
        "Statement[0].Condition.IpAddress.aws:SourceIp[1]: \"10.0.0.0/40\" is not an IP address or CIDR block (e.g. 203.0.113.0/24)"
    );
    assert_eq!(
        err(&c(r#"{"DateGreaterThan": {"aws:CurrentTime": "2024-13-01"}}"#)),
        "Statement[0].Condition.DateGreaterThan.aws:CurrentTime: \"2024-13-01\" is not a date (ISO 8601 such as 2024-05-01T12:00:00Z, or epoch seconds)"
    );
    assert_eq!(
        err(&c(r#"{"Bool": {"iot:Connection.Thing.IsAttached": "yes"}}"#)),
        "Statement[0].Condition.Bool.iot:Connection.Thing.IsAttached: \"yes\" is not \"true\" or \"false\""
    );
    assert_eq!(
        err(&c(r#"{"Null": {"k": "maybe"}}"#)),
        "Statement[0].Condition.Null.k: \"maybe\" is not \"true\" or \"false\""
    );
    assert_eq!(
        err(&c(r#"{"ArnLike": {"k": "topic/x"}}"#)),
        "Statement[0].Condition.ArnLike.k: \"topic/x\" is not an ARN (arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE) or \"*\""
    );
    assert_eq!(
        err(&c(r#"{"StringLike": {"iot:ClientId": "${iot:ClientIdd}"}}"#)),
        "Statement[0].Condition.StringLike.iot:ClientId: unknown policy variable \"${iot:ClientIdd}\" (did you mean \"iot:ClientId\"?)"
    );
    assert_eq!(err(&c(r#"{"StringEquals": {"": "a"}}"#)), "Statement[0].Condition.StringEquals: empty condition key");
}

#[test]
fn accepted_shapes() {
    // Seed 1: the IoT button's default policy.
    let d = parse(
        r#"{"Version":"2012-10-17","Statement":[{"Action":"iot:Publish","Effect":"Allow","Resource":"arn:aws:iot:eu-west-1:123456789012:topic/iotbutton/G030XXXX"}]}"#,
    );
    assert_eq!(d.version(), "2012-10-17");
    assert_eq!(d.statements().len(), 1);
    let s = &d.statements()[0];
    assert_eq!(s.effect(), policy::Effect::Allow);
    assert_eq!(s.actions().collect::<Vec<_>>(), ["iot:Publish"]);
    assert!(!s.is_not_action() && !s.is_not_resource());
    // Sid, Id, single statement object, number and bool condition values.
    let d = parse(
        r#"{"Version": "2012-10-17", "Id": "p1", "Statement": {"Sid": "s1", "Effect": "Deny",
            "NotAction": ["iot:Connect"], "NotResource": "*",
            "Condition": {"NumericLessThan": {"x": 3}, "Bool": {"b": false}}}}"#,
    );
    let s = &d.statements()[0];
    assert_eq!(s.sid(), Some("s1"));
    assert!(s.is_not_action() && s.is_not_resource());
    assert_eq!(s.conditions().collect::<Vec<_>>(), [("NumericLessThan", "x"), ("Bool", "b")]);
    assert!(d.text().contains("\"Id\": \"p1\""));
}
