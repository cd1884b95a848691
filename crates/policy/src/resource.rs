//! Validation of `Resource` / `NotResource` entries: `*` or an ARN whose
//! shape fits one of the services Thingport authorizes.
//!
//! Accepted shapes (any part may contain wildcards or policy variables):
//! - `arn:aws:iot:REGION:ACCOUNT:{client|topic|topicfilter|thing|rolealias}/…`
//! - `arn:aws:s3:::BUCKET` and `arn:aws:s3:::BUCKET/KEY`
//! - `arn:thingport:keys:REGION:ACCOUNT:{key|alias}/…`, and the same under
//!   `arn:aws:kms:` for KMS-shaped tools.
//!
//! Partitions `aws`, `aws-cn`, `aws-us-gov` and `thingport` are accepted.

use crate::error::{did_you_mean, PolicyError};
use crate::template::Template;

/// Stands for a variable or escape in the skeleton being checked.
const PH: char = '\u{1}';

const GENERIC: &str = "resource must be an ARN like arn:aws:iot:REGION:ACCOUNT:topic/NAME or \"*\"";
const PARTITIONS: &[&str] = &["aws", "aws-cn", "aws-us-gov", "thingport"];
const SERVICES: &[&str] = &["iot", "s3", "kms", "keys"];
const IOT_TYPES: &[&str] = &["client", "topic", "topicfilter", "thing", "rolealias"];
const KEY_TYPES: &[&str] = &["key", "alias"];

fn wild(s: &str) -> bool {
    s.contains(['*', '?', PH])
}

/// Checks the shape of one resource entry.
pub(crate) fn validate(t: &Template, path: &str) -> Result<(), PolicyError> {
    let sk = t.skeleton(PH);
    let err = |m: String| Err(PolicyError::new(path, m));
    if sk == "*" {
        return Ok(());
    }
    if !sk.starts_with("arn:") {
        return err(GENERIC.to_string());
    }
    let parts: Vec<&str> = sk.splitn(6, ':').collect();
    if parts.len() < 6 {
        // `arn:aws:iot:*` — a trailing wildcard may stand for the rest.
        if parts.last().is_some_and(|p| p.contains('*')) {
            return Ok(());
        }
        return err(format!(
            "{GENERIC}; an ARN has six parts arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE, \"{}\" has {}",
            t.raw,
            parts.len()
        ));
    }
    let (partition, service, region, account, res) = (parts[1], parts[2], parts[3], parts[4], parts[5]);
    if !wild(partition) && !PARTITIONS.contains(&partition) {
        return err(format!("unknown ARN partition \"{partition}\" (expected aws, aws-cn, aws-us-gov or thingport)"));
    }
    if res.is_empty() {
        return err(format!("{GENERIC}; the resource part after the account is empty"));
    }
    if wild(service) {
        return Ok(());
    }
    let typed = |types: &[&str], what: &str| -> Result<(), PolicyError> {
        let ty = res.split('/').next().unwrap_or("");
        if wild(ty) {
            return Ok(());
        }
        if !types.contains(&ty) {
            let list: Vec<String> = types.iter().map(|t| format!("{t}/")).collect();
            let hint = did_you_mean(ty, types.iter().copied());
            return Err(PolicyError::new(
                path,
                format!("unknown {what} resource type \"{ty}\" (expected {}){hint}", list.join(", ")),
            ));
        }
        if !res.contains('/') {
            return Err(PolicyError::new(path, format!("{what} resource \"{ty}\" needs a name: {ty}/NAME")));
        }
        Ok(())
    };
    match service {
        "iot" | "kms" | "keys" => {
            if region.is_empty() || account.is_empty() {
                return err(format!(
                    "{service} resource ARNs need a region and an account: arn:PARTITION:{service}:REGION:ACCOUNT:…"
                ));
            }
            if service == "iot" {
                typed(IOT_TYPES, "AWS IoT")
            } else {
                typed(KEY_TYPES, "key")
            }
        }
        "s3" => {
            if !(region.is_empty() || wild(region)) || !(account.is_empty() || wild(account)) {
                return err("S3 ARNs have no region or account: arn:aws:s3:::BUCKET/KEY".to_string());
            }
            Ok(())
        }
        _ => {
            let hint = did_you_mean(service, SERVICES.iter().copied());
            err(format!("unsupported service \"{service}\" in resource ARN (expected iot, s3, kms or keys){hint}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(s: &str) -> Result<(), String> {
        let t = Template::parse(s, true, "p").map_err(|e| e.message)?;
        validate(&t, "p").map_err(|e| e.message)
    }

    #[test]
    fn accepted() {
        for ok in [
            "*",
            "arn:aws:iot:eu-west-1:123456789012:topic/iotbutton/G030XXXX",
            "arn:aws:iot:eu-west-1:XXXXXXXXXXXX:topic/${iot:Certificate.Subject.SerialNumber}",
            "arn:aws:iot:*:*:client/${iot:ClientId}",
            "arn:aws:iot:us-east-1:123456789012:topicfilter/a/+/#",
            "arn:aws:iot:us-east-1:123456789012:thing/${iot:Connection.Thing.ThingName}/*",
            "arn:aws:iot:us-east-1:123456789012:*",
            "arn:aws:iot:us-east-1:123456789012:topic*",
            "arn:aws:iot:*",
            "arn:aws:s3:::bucket",
            "arn:aws:s3:::bucket/${iot:ClientId}/*",
            "arn:thingport:keys:local:000000000000:key/abc",
            "arn:aws:kms:us-east-1:123456789012:alias/x",
            "arn:aws-cn:iot:cn-north-1:123456789012:topic/x",
            "arn:*:*:*:*:*",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejected() {
        let cases = [
            ("topic/foo", GENERIC.to_string()),
            ("", GENERIC.to_string()),
            ("${*}", GENERIC.to_string()),
            (
                "arn:aws:iot:eu-west-1:123:topics/x",
                "unknown AWS IoT resource type \"topics\" (expected client/, topic/, topicfilter/, thing/, rolealias/) (did you mean \"topic\"?)".to_string(),
            ),
            (
                "arn:aws:iot:eu-west-1:123:topic",
                "AWS IoT resource \"topic\" needs a name: topic/NAME".to_string(),
            ),
            (
                "arn:aws:iot::123:topic/x",
                "iot resource ARNs need a region and an account: arn:PARTITION:iot:REGION:ACCOUNT:…".to_string(),
            ),
            (
                "arn:aws:ec2:eu-west-1:123:instance/x",
                "unsupported service \"ec2\" in resource ARN (expected iot, s3, kms or keys)".to_string(),
            ),
            (
                "arn:awz:iot:eu-west-1:123:topic/x",
                "unknown ARN partition \"awz\" (expected aws, aws-cn, aws-us-gov or thingport)".to_string(),
            ),
            (
                "arn:aws:s3:eu-west-1::bucket",
                "S3 ARNs have no region or account: arn:aws:s3:::BUCKET/KEY".to_string(),
            ),
            (
                "arn:aws:iot:eu-west-1:123:",
                format!("{GENERIC}; the resource part after the account is empty"),
            ),
        ];
        for (bad, want) in cases {
            assert_eq!(check(bad), Err(want), "{bad}");
        }
        let e = check("arn:aws:iot:eu-west-1").unwrap_err();
        assert!(e.contains("six parts"), "{e}");
    }
}
