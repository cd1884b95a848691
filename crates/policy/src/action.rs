//! Policy actions: the known set, validation of `Action` / `NotAction`
//! entries, and case-insensitive wildcard matching.
//!
//! Known actions are the AWS IoT Core data-plane actions (MQTT, Device
//! Shadow, retained messages, jobs, role aliases) and Thingport's own object
//! and key actions. An entry without wildcards must be one of them (matched
//! case-insensitively); an entry with `*` or `?` is accepted even if it
//! matches none, as IAM does.

use crate::error::{did_you_mean, PolicyError};
use crate::pattern::Glob;

/// Every action a policy may name literally, in canonical spelling.
pub const KNOWN_ACTIONS: &[&str] = &[
    // MQTT
    "iot:Connect",
    "iot:Publish",
    "iot:Subscribe",
    "iot:Receive",
    "iot:RetainPublish",
    "iot:DeleteConnection",
    "iot:GetRetainedMessage",
    "iot:ListRetainedMessages",
    // Device Shadow
    "iot:GetThingShadow",
    "iot:UpdateThingShadow",
    "iot:DeleteThingShadow",
    "iot:ListNamedShadowsForThing",
    // Jobs
    "iot:DescribeJobExecution",
    "iot:GetPendingJobExecutions",
    "iot:StartNextPendingJobExecution",
    "iot:UpdateJobExecution",
    // Credentials provider
    "iot:AssumeRoleWithCertificate",
    // Thingport objects and keys
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:ListBucket",
    "thingport:GenerateDataKey",
    "thingport:Decrypt",
];

/// The index of `action` in [`KNOWN_ACTIONS`] (exact spelling first, then
/// case-insensitively).
#[inline]
pub(crate) fn known_index(action: &str) -> Option<usize> {
    KNOWN_ACTIONS
        .iter()
        .position(|a| *a == action)
        .or_else(|| KNOWN_ACTIONS.iter().position(|a| a.eq_ignore_ascii_case(action)))
}

/// One `Action` / `NotAction` entry, compiled (lower-cased) for matching.
#[derive(Debug, Clone)]
pub(crate) struct ActionPattern {
    /// As written.
    pub(crate) raw: String,
    /// Matches the lower-cased action name.
    pub(crate) glob: Glob,
}

impl ActionPattern {
    /// Validates one entry.
    pub(crate) fn parse(raw: &str, path: &str) -> Result<Self, PolicyError> {
        if raw.is_empty() {
            return Err(PolicyError::new(path, "must not be empty"));
        }
        if raw.contains("${") {
            return Err(PolicyError::new(path, format!("policy variables are not allowed in actions: \"{raw}\"")));
        }
        let wildcard = raw.contains(['*', '?']);
        if !wildcard {
            if !raw.contains(':') {
                return Err(PolicyError::new(
                    path,
                    format!("action \"{raw}\" must look like \"service:Action\" (e.g. \"iot:Publish\") or \"*\""),
                ));
            }
            if known_index(raw).is_none() {
                let hint = did_you_mean(raw, KNOWN_ACTIONS.iter().copied());
                return Err(PolicyError::new(path, format!("unknown action \"{raw}\"{hint}")));
            }
        }
        Ok(ActionPattern { raw: raw.to_string(), glob: Glob::new(&raw.to_ascii_lowercase()) })
    }

    /// Whether the pattern matches `action_lc` (already lower-cased).
    #[cfg(test)]
    pub(crate) fn matches_lc(&self, action_lc: &str) -> bool {
        self.glob.matches(action_lc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup() {
        assert_eq!(known_index("iot:Publish"), Some(1));
        assert_eq!(known_index("IOT:PUBLISH"), Some(1));
        assert_eq!(known_index("iot:Pub"), None);
    }

    #[test]
    fn validation() {
        assert!(ActionPattern::parse("iot:Publish", "p").is_ok());
        assert!(ActionPattern::parse("iot:publish", "p").is_ok());
        assert!(ActionPattern::parse("iot:*", "p").is_ok());
        assert!(ActionPattern::parse("*", "p").is_ok());
        assert!(ActionPattern::parse("iot:Nothing*", "p").is_ok());
        let e = ActionPattern::parse("iot:Pubish", "Statement[1].Action[0]").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Statement[1].Action[0]: unknown action \"iot:Pubish\" (did you mean \"iot:Publish\"?)"
        );
        let e = ActionPattern::parse("Publish", "p").unwrap_err();
        assert!(e.message.contains("must look like"), "{e}");
        let e = ActionPattern::parse("", "p").unwrap_err();
        assert_eq!(e.message, "must not be empty");
        let e = ActionPattern::parse("iot:${iot:ClientId}", "p").unwrap_err();
        assert!(e.message.contains("not allowed"), "{e}");
    }

    #[test]
    fn matching() {
        let p = ActionPattern::parse("iot:Pub*", "p").unwrap();
        assert!(p.matches_lc("iot:publish"));
        assert!(!p.matches_lc("iot:subscribe"));
        let p = ActionPattern::parse("iot:?eceive", "p").unwrap();
        assert!(p.matches_lc("iot:receive"));
    }
}
