//! Reserved (`$…`) topics: which ones clients may use at all, before any
//! policy is asked. As on AWS IoT, every topic starting with `$` is reserved;
//! clients may only publish the requests the server serves (shadow
//! get/update/delete, Basic Ingest) and subscribe to the server's own
//! families (shadow responses, events). Anything else is refused, so no
//! policy — however broad — lets a device forge lifecycle events.

/// Whether a client may publish to `topic` at all.
pub fn may_publish(topic: &str) -> bool {
    if !topic.starts_with('$') {
        return true;
    }
    if topic.starts_with("$aws/rules/") {
        return true; // Basic Ingest: straight to a rule
    }
    is_shadow_request(topic)
}

/// Whether a client may subscribe to `filter` at all (`$share/…` unwrapped).
pub fn may_subscribe(filter: &str) -> bool {
    let inner = mqtt::topic::parse_shared(filter).map(|(_, f)| f).unwrap_or(filter);
    !inner.starts_with('$') || inner.starts_with("$aws/things/") || inner.starts_with("$aws/events/")
}

/// `$aws/things/{thing}/shadow/{get|update|delete}` or
/// `$aws/things/{thing}/shadow/name/{shadow}/{get|update|delete}`.
pub fn is_shadow_request(topic: &str) -> bool {
    let parts: Vec<&str> = topic.split('/').collect();
    let op_ok = |op: &str| matches!(op, "get" | "update" | "delete");
    match parts.as_slice() {
        ["$aws", "things", thing, "shadow", op] => !thing.is_empty() && op_ok(op),
        ["$aws", "things", thing, "shadow", "name", name, op] => !thing.is_empty() && !name.is_empty() && op_ok(op),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_topics() {
        assert!(may_publish("a/b"));
        assert!(may_publish("$aws/things/lamp/shadow/update"));
        assert!(may_publish("$aws/things/lamp/shadow/name/cfg/get"));
        assert!(may_publish("$aws/rules/myrule/x"));
        assert!(!may_publish("$aws/things/lamp/shadow/update/accepted"));
        assert!(!may_publish("$aws/events/presence/connected/victim"));
        assert!(!may_publish("$SYS/x"));
        assert!(!may_publish("$custom/x"));
        assert!(may_subscribe("#"));
        assert!(may_subscribe("$aws/things/lamp/shadow/update/accepted"));
        assert!(may_subscribe("$aws/events/presence/#"));
        assert!(may_subscribe("$share/g/$aws/events/#"));
        assert!(!may_subscribe("$SYS/#"));
        assert!(!may_subscribe("$custom/#"));
        assert!(!may_subscribe("$share/g/$SYS/#"));
    }
}
