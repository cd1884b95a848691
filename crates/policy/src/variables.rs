//! Policy variables: the names a policy may use inside `${…}`, and how their
//! values are looked up for one connection.
//!
//! The catalogue follows the AWS IoT developer guide (basic, thing and X.509
//! certificate policy variables). Names are matched case-insensitively and
//! stored in their canonical spelling, so `${iot:clientid}` asks the
//! [`Variables`] provider for `iot:ClientId`.
//!
//! Certificate attributes may hold several values. A provider may answer a
//! base name such as `iot:Certificate.Subject.Organization` with
//! [`VarValue::Many`]; the engine then derives the AWS forms itself:
//! the bare name means the first value, `.List` all of them (at most five, as
//! in AWS), and `.N` the zero-based N-th one.
//!
//! AWS rule kept here: a certificate value containing `*`, `$`, `+`, `?` or
//! `#`, or longer than 1024 characters, is **not substituted** (the variable
//! counts as missing), so a certificate with subject `*` cannot widen a policy.
//! In addition, substituted text is always literal in Thingport: a client id
//! of `a*` never acts as a wildcard.

use std::collections::HashMap;

/// The value of a policy variable or condition key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarValue {
    /// A single value.
    One(String),
    /// A multi-valued attribute (certificate name lists, `iot:ConnectAttributes`…).
    /// An empty list counts as missing.
    Many(Vec<String>),
}

impl VarValue {
    /// The values as a slice (one element for [`VarValue::One`]).
    pub fn as_slice(&self) -> &[String] {
        match self {
            VarValue::One(s) => std::slice::from_ref(s),
            VarValue::Many(v) => v,
        }
    }
}

impl From<&str> for VarValue {
    fn from(s: &str) -> Self {
        VarValue::One(s.to_owned())
    }
}

impl From<String> for VarValue {
    fn from(s: String) -> Self {
        VarValue::One(s)
    }
}

impl From<Vec<String>> for VarValue {
    fn from(v: Vec<String>) -> Self {
        VarValue::Many(v)
    }
}

/// What the variables resolve to for one connection (values fixed for its
/// lifetime).
///
/// `name` is given without `${}` and in canonical spelling, e.g.
/// `iot:Connection.Thing.ThingName` or `iot:Connection.Thing.Attributes[color]`.
/// Return `None` when the connection has no such value.
pub trait Variables {
    /// The value of `name`, if the connection has one.
    fn get(&self, name: &str) -> Option<VarValue>;
}

impl Variables for HashMap<String, VarValue> {
    fn get(&self, name: &str) -> Option<VarValue> {
        HashMap::get(self, name).cloned()
    }
}

/// No variables at all (every `${…}` is missing).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoVariables;

impl Variables for NoVariables {
    fn get(&self, _name: &str) -> Option<VarValue> {
        None
    }
}

/// Variables with a single value each (not multi-valued).
const SINGLE: &[&str] = &[
    "iot:ClientId",
    "iot:Domain",
    "iot:DomainName",
    "aws:SourceIp",
    "aws:CurrentTime",
    "aws:EpochTime",
    "iot:Connection.Thing.ThingName",
    "iot:Connection.Thing.ThingTypeName",
    "iot:Connection.Thing.IsAttached",
    "iot:Certificate.SerialNumber",
    "iot:Certificate.Id",
    "iot:Certificate.Validity.NotBefore",
    "iot:Certificate.Validity.NotAfter",
    "cognito-identity.amazonaws.com:sub",
];

/// Distinguished-name attributes under `iot:Certificate.{Subject,Issuer}.`.
const DN_ATTRS: &[&str] = &[
    "Country",
    "Organization",
    "OrganizationalUnit",
    "DistinguishedNameQualifier",
    "State",
    "CommonName",
    "SerialNumber",
    "Title",
    "Surname",
    "GivenName",
    "Initials",
    "Pseudonym",
    "GenerationQualifier",
];

/// Alternative-name attributes under `iot:Certificate.{Subject,Issuer}.AlternativeName.`.
const SAN_ATTRS: &[&str] = &["RFC822Name", "DNSName", "DirectoryName", "UniformResourceIdentifier", "IPAddress"];

/// Condition keys that are not variables but are worth spelling canonically.
const CONDITION_KEYS: &[&str] = &[
    "iot:ConnectAttributes",
    "iot:LastWillTopic",
    "iot:ClientMode",
    "aws:SecureTransport",
    "aws:SourceVpc",
    "aws:SourceVpce",
    "aws:PrincipalTag",
];

const ATTRIBUTES_PREFIX: &str = "iot:Connection.Thing.Attributes[";
const CERT_PREFIX: &str = "iot:Certificate.";

/// AWS: certificate arrays are limited to five items; extra ones are ignored.
const CERT_ARRAY_LIMIT: usize = 5;
/// AWS: certificate strings longer than this are not substituted.
const CERT_VALUE_MAX_CHARS: usize = 1024;

/// Every variable name, for "did you mean" suggestions.
pub(crate) fn all_names() -> Vec<String> {
    let mut v: Vec<String> = SINGLE.iter().map(|s| s.to_string()).collect();
    v.push("iot:Certificate.AvailableKeys".into());
    v.push(format!("{ATTRIBUTES_PREFIX}NAME]"));
    for side in ["Subject", "Issuer"] {
        for a in DN_ATTRS {
            v.push(format!("{CERT_PREFIX}{side}.{a}"));
        }
        for a in SAN_ATTRS {
            v.push(format!("{CERT_PREFIX}{side}.AlternativeName.{a}"));
        }
    }
    v
}

/// The canonical spelling of variable `name`, or `None` if it is not a known
/// policy variable.
pub(crate) fn canonical_variable(name: &str) -> Option<String> {
    if let Some(c) = SINGLE.iter().find(|c| c.eq_ignore_ascii_case(name)) {
        return Some((*c).to_string());
    }
    if let Some(rest) = strip_prefix_ci(name, ATTRIBUTES_PREFIX) {
        let attr = rest.strip_suffix(']')?;
        let ok = !attr.is_empty()
            && attr.len() <= 128
            && attr.chars().all(|c| c.is_ascii_alphanumeric() || "_.,@/:#-".contains(c));
        return ok.then(|| format!("{ATTRIBUTES_PREFIX}{attr}]"));
    }
    let rest = strip_prefix_ci(name, CERT_PREFIX)?;
    // AvailableKeys (itself a list), optionally with .List
    for form in ["AvailableKeys", "AvailableKeys.List"] {
        if rest.eq_ignore_ascii_case(form) {
            return Some(format!("{CERT_PREFIX}{form}"));
        }
    }
    let (side, rest) = if let Some(r) = strip_prefix_ci(rest, "Subject.") {
        ("Subject", r)
    } else if let Some(r) = strip_prefix_ci(rest, "Issuer.") {
        ("Issuer", r)
    } else {
        return None;
    };
    let (attrs, group, rest) = match strip_prefix_ci(rest, "AlternativeName.") {
        Some(r) => (SAN_ATTRS, "AlternativeName.", r),
        None => (DN_ATTRS, "", rest),
    };
    let (attr, suffix) = match rest.split_once('.') {
        Some((a, s)) => (a, Some(s)),
        None => (rest, None),
    };
    let attr = attrs.iter().find(|a| a.eq_ignore_ascii_case(attr))?;
    let suffix = match suffix {
        None => String::new(),
        Some(s) if s.eq_ignore_ascii_case("List") => ".List".into(),
        Some(s) if !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit()) => {
            format!(".{s}")
        }
        Some(_) => return None,
    };
    Some(format!("{CERT_PREFIX}{side}.{group}{attr}{suffix}"))
}

/// The canonical spelling of a condition key: a known variable or key in its
/// canonical case, anything else exactly as written.
pub(crate) fn canonical_condition_key(key: &str) -> String {
    if let Some(c) = canonical_variable(key) {
        return c;
    }
    if let Some(c) = CONDITION_KEYS.iter().find(|c| c.eq_ignore_ascii_case(key)) {
        return (*c).to_string();
    }
    key.to_string()
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len() && s.is_char_boundary(prefix.len()) && s[..prefix.len()].eq_ignore_ascii_case(prefix) {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

/// How a canonical name selects from a multi-valued attribute.
enum Selector<'a> {
    /// The bare name: the first value.
    First,
    /// `base.List`: all values.
    List(&'a str),
    /// `base.N`: the N-th value.
    Index(&'a str, usize),
}

fn selector(name: &str) -> Selector<'_> {
    if let Some((base, last)) = name.rsplit_once('.') {
        if last == "List" {
            return Selector::List(base);
        }
        if name.starts_with(CERT_PREFIX) && !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = last.parse() {
                return Selector::Index(base, n);
            }
        }
    }
    Selector::First
}

fn is_cert(name: &str) -> bool {
    name.starts_with(CERT_PREFIX)
}

/// The list of values a (canonical) name stands for, with AWS's derivations
/// (`.List`, `.N`) and the five-item cap on certificate arrays.
/// `keep_all_plain`: whether a bare multi-valued non-certificate name keeps
/// all its values (condition keys such as `iot:ConnectAttributes`) rather
/// than only the first.
fn values_of(vars: &dyn Variables, name: &str, keep_all_plain: bool) -> Option<Vec<String>> {
    let cert = is_cert(name);
    let cap = |mut v: Vec<String>| {
        if cert {
            v.truncate(CERT_ARRAY_LIMIT);
        }
        v
    };
    let first_only = |v: Vec<String>| -> Vec<String> {
        if cert || !keep_all_plain {
            v.into_iter().take(1).collect()
        } else {
            v
        }
    };
    let direct = vars.get(name);
    let vals = match (direct, selector(name)) {
        (Some(VarValue::One(s)), _) => vec![s],
        (Some(VarValue::Many(v)), Selector::First) => {
            if name.ends_with(".AvailableKeys") {
                cap(v)
            } else {
                first_only(v)
            }
        }
        (Some(VarValue::Many(v)), _) => cap(v),
        (None, Selector::First) => return None,
        (None, Selector::List(base)) => cap(vars.get(base)?.as_slice().to_vec()),
        (None, Selector::Index(base, n)) => {
            let all = cap(vars.get(base)?.as_slice().to_vec());
            vec![all.into_iter().nth(n)?]
        }
    };
    (!vals.is_empty()).then_some(vals)
}

/// The single value to substitute for `${name}`, or `None` if the variable
/// is missing, multi-valued, or (for certificate variables) unsafe to
/// substitute per AWS.
pub(crate) fn substitution(vars: &dyn Variables, name: &str) -> Option<String> {
    let mut vals = values_of(vars, name, false)?;
    if vals.len() != 1 {
        return None;
    }
    let v = vals.pop()?;
    if is_cert(name) && (v.chars().count() > CERT_VALUE_MAX_CHARS || v.contains(['*', '$', '+', '?', '#'])) {
        return None;
    }
    Some(v)
}

/// The values of condition key `key` taken from the connection's variables.
pub(crate) fn key_values(vars: &dyn Variables, key: &str) -> Option<Vec<String>> {
    values_of(vars, key, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(kv: &[(&str, VarValue)]) -> HashMap<String, VarValue> {
        kv.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn canonical_names() {
        assert_eq!(canonical_variable("iot:clientid").as_deref(), Some("iot:ClientId"));
        assert_eq!(
            canonical_variable("iot:connection.thing.attributes[Color]").as_deref(),
            Some("iot:Connection.Thing.Attributes[Color]")
        );
        assert_eq!(
            canonical_variable("iot:Certificate.subject.commonname").as_deref(),
            Some("iot:Certificate.Subject.CommonName")
        );
        assert_eq!(
            canonical_variable("iot:Certificate.Issuer.AlternativeName.dnsname.list").as_deref(),
            Some("iot:Certificate.Issuer.AlternativeName.DNSName.List")
        );
        assert_eq!(
            canonical_variable("iot:Certificate.Subject.Country.1").as_deref(),
            Some("iot:Certificate.Subject.Country.1")
        );
        assert_eq!(canonical_variable("iot:Certificate.Subject.Country.x"), None);
        assert_eq!(canonical_variable("iot:Certificate.Subject.Locality"), None);
        assert_eq!(canonical_variable("iot:Connection.Thing.Attributes[]"), None);
        assert_eq!(canonical_variable("iot:Connection.Thing.Attributes[a b]"), None);
        assert_eq!(canonical_variable("iot:Nope"), None);
        assert_eq!(canonical_variable(""), None);
        for n in all_names() {
            if !n.contains("NAME]") {
                assert_eq!(canonical_variable(&n).as_deref(), Some(n.as_str()));
            }
        }
    }

    #[test]
    fn condition_keys() {
        assert_eq!(canonical_condition_key("iot:connectattributes"), "iot:ConnectAttributes");
        assert_eq!(canonical_condition_key("aws:sourceip"), "aws:SourceIp");
        assert_eq!(canonical_condition_key("custom:Key"), "custom:Key");
    }

    #[test]
    fn derived_forms() {
        let orgs: Vec<String> = (0..7).map(|i| format!("org{i}")).collect();
        let v = map(&[
            ("iot:Certificate.Subject.Organization", VarValue::Many(orgs)),
            ("iot:ConnectAttributes", VarValue::Many(vec!["CleanSession".into(), "LastWill".into()])),
        ]);
        assert_eq!(substitution(&v, "iot:Certificate.Subject.Organization").as_deref(), Some("org0"));
        assert_eq!(substitution(&v, "iot:Certificate.Subject.Organization.2").as_deref(), Some("org2"));
        assert_eq!(substitution(&v, "iot:Certificate.Subject.Organization.5"), None);
        assert_eq!(substitution(&v, "iot:Certificate.Subject.Organization.List"), None);
        assert_eq!(key_values(&v, "iot:Certificate.Subject.Organization.List").unwrap().len(), 5);
        assert_eq!(key_values(&v, "iot:ConnectAttributes").unwrap().len(), 2);
        assert_eq!(substitution(&v, "iot:ConnectAttributes").as_deref(), Some("CleanSession"));
        assert_eq!(key_values(&v, "iot:Nothing"), None);
    }

    #[test]
    fn unsafe_certificate_values_are_not_substituted() {
        for bad in ["*", "a$b", "a+", "x?", "#", &"x".repeat(1025)] {
            let v = map(&[("iot:Certificate.Subject.CommonName", VarValue::One(bad.to_string()))]);
            assert_eq!(substitution(&v, "iot:Certificate.Subject.CommonName"), None, "{bad}");
        }
        let v = map(&[("iot:Certificate.Subject.CommonName", VarValue::One("x".repeat(1024)))]);
        assert!(substitution(&v, "iot:Certificate.Subject.CommonName").is_some());
        // Non-certificate values are substituted (as literal text).
        let v = map(&[("iot:ClientId", VarValue::One("a*".into()))]);
        assert_eq!(substitution(&v, "iot:ClientId").as_deref(), Some("a*"));
        // Empty lists are missing.
        let v = map(&[("iot:ClientId", VarValue::Many(vec![]))]);
        assert_eq!(substitution(&v, "iot:ClientId"), None);
    }
}
