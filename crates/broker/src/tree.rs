//! The subscription tree: topic filters stored level by level so a topic is
//! matched by walking only the branches it can reach.
//!
//! Pure data structure (no locks, no I/O); the broker wraps it in a lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use mqtt::SubOptions;

/// What one subscription asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubEntry {
    pub options: SubOptions,
    pub subscription_id: Option<u32>,
}

/// One subscriber reached by a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub client_id: Arc<str>,
    pub entry: SubEntry,
    /// 0 for an ordinary subscription; for a `$share/…` group, a number
    /// shared by all its members in this result (members come in round-robin
    /// order: the broker delivers to the first one that can take the message).
    pub group: u32,
}

impl Match {
    pub fn shared(&self) -> bool {
        self.group != 0
    }
}

#[derive(Default)]
struct SharedGroup {
    members: Vec<(Arc<str>, SubEntry)>,
    next: AtomicUsize,
}

#[derive(Default)]
struct Node {
    children: HashMap<Box<str>, Node>,
    subs: HashMap<Arc<str>, SubEntry>,
    shared: HashMap<Box<str>, SharedGroup>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.subs.is_empty() && self.shared.is_empty()
    }
}

/// All subscriptions of all sessions.
#[derive(Default)]
pub struct SubscriptionTree {
    root: Node,
    count: usize,
}

impl SubscriptionTree {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of stored subscriptions.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Add or replace `client`'s subscription to `filter` (which may be a
    /// `$share/group/…` filter). Returns true when it did not exist before.
    pub fn insert(&mut self, client: &Arc<str>, filter: &str, entry: SubEntry) -> bool {
        let (group, inner) = split_shared(filter);
        let mut node = &mut self.root;
        for level in inner.split('/') {
            node = node.children.entry(level.into()).or_default();
        }
        let new = match group {
            None => node.subs.insert(client.clone(), entry).is_none(),
            Some(g) => {
                let grp = node.shared.entry(g.into()).or_default();
                match grp.members.iter_mut().find(|(c, _)| c == client) {
                    Some(m) => {
                        m.1 = entry;
                        false
                    }
                    None => {
                        grp.members.push((client.clone(), entry));
                        true
                    }
                }
            }
        };
        if new {
            self.count += 1;
        }
        new
    }

    /// Remove `client`'s subscription to `filter`; true if it existed.
    pub fn remove(&mut self, client: &str, filter: &str) -> bool {
        let (group, inner) = split_shared(filter);
        let levels: Vec<&str> = inner.split('/').collect();
        let removed = remove_rec(&mut self.root, &levels, client, group);
        if removed {
            self.count -= 1;
        }
        removed
    }

    /// Every subscription reached by `topic`. For each shared group one member
    /// is chosen, round robin.
    pub fn matches(&self, topic: &str, out: &mut Vec<Match>) {
        let levels: Vec<&str> = topic.split('/').collect();
        let dollar = topic.starts_with('$');
        collect(&self.root, &levels, 0, dollar, out);
    }
}

fn split_shared(filter: &str) -> (Option<&str>, &str) {
    match mqtt::topic::parse_shared(filter) {
        Some((g, f)) => (Some(g), f),
        None => (None, filter),
    }
}

fn remove_rec(node: &mut Node, levels: &[&str], client: &str, group: Option<&str>) -> bool {
    match levels.split_first() {
        None => match group {
            None => node.subs.remove(client).is_some(),
            Some(g) => {
                let Some(grp) = node.shared.get_mut(g) else {
                    return false;
                };
                let before = grp.members.len();
                grp.members.retain(|(c, _)| &**c != client);
                let removed = grp.members.len() != before;
                if grp.members.is_empty() {
                    node.shared.remove(g);
                }
                removed
            }
        },
        Some((first, rest)) => {
            let Some(child) = node.children.get_mut(*first) else {
                return false;
            };
            let removed = remove_rec(child, rest, client, group);
            if child.is_empty() {
                node.children.remove(*first);
            }
            removed
        }
    }
}

fn add_all(node: &Node, out: &mut Vec<Match>) {
    for (c, e) in &node.subs {
        out.push(Match { client_id: c.clone(), entry: *e, group: 0 });
    }
    for grp in node.shared.values() {
        let n = grp.members.len();
        if n == 0 {
            continue;
        }
        let group = out.len() as u32 + 1;
        let start = grp.next.fetch_add(1, Ordering::Relaxed) % n;
        for k in 0..n {
            let (c, e) = &grp.members[(start + k) % n];
            out.push(Match { client_id: c.clone(), entry: *e, group });
        }
    }
}

fn collect(node: &Node, levels: &[&str], idx: usize, dollar: bool, out: &mut Vec<Match>) {
    // Wildcards at the first level never match topics starting with '$'.
    let wild_ok = !(idx == 0 && dollar);
    if idx == levels.len() {
        add_all(node, out);
        // "a/#" also matches "a".
        if let Some(h) = node.children.get("#") {
            add_all(h, out);
        }
        return;
    }
    if let Some(child) = node.children.get(levels[idx]) {
        collect(child, levels, idx + 1, dollar, out);
    }
    if wild_ok {
        if let Some(plus) = node.children.get("+") {
            collect(plus, levels, idx + 1, dollar, out);
        }
        if let Some(h) = node.children.get("#") {
            add_all(h, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt::QoS;

    fn e(q: QoS) -> SubEntry {
        SubEntry { options: SubOptions::qos(q), subscription_id: None }
    }

    fn clients(t: &SubscriptionTree, topic: &str) -> Vec<String> {
        let mut out = Vec::new();
        t.matches(topic, &mut out);
        let mut v: Vec<String> = out.into_iter().map(|m| m.client_id.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn wildcards_and_dollar() {
        let mut t = SubscriptionTree::new();
        for (c, f) in
            [("a", "sport/#"), ("b", "sport/+/player1"), ("c", "#"), ("d", "+/+"), ("e", "$SYS/#"), ("f", "+")]
        {
            t.insert(&Arc::from(c), f, e(QoS::AtMostOnce));
        }
        assert_eq!(clients(&t, "sport"), vec!["a", "c", "f"]);
        assert_eq!(clients(&t, "sport/tennis/player1"), vec!["a", "b", "c"]);
        assert_eq!(clients(&t, "sport/tennis"), vec!["a", "c", "d"]);
        assert_eq!(clients(&t, "$SYS/x"), vec!["e"]);
        assert_eq!(clients(&t, "/x"), vec!["c", "d"]);
        assert_eq!(clients(&t, ""), vec!["c", "f"]);
    }

    #[test]
    fn insert_remove_prunes() {
        let mut t = SubscriptionTree::new();
        let c: Arc<str> = "c".into();
        assert!(t.insert(&c, "a/b/c", e(QoS::AtLeastOnce)));
        assert!(!t.insert(&c, "a/b/c", e(QoS::AtMostOnce)));
        assert_eq!(t.len(), 1);
        assert!(t.remove("c", "a/b/c"));
        assert!(!t.remove("c", "a/b/c"));
        assert!(t.is_empty());
        assert!(t.root.is_empty());
    }

    #[test]
    fn shared_round_robin() {
        let mut t = SubscriptionTree::new();
        t.insert(&Arc::from("x"), "$share/g/t/#", e(QoS::AtMostOnce));
        t.insert(&Arc::from("y"), "$share/g/t/#", e(QoS::AtMostOnce));
        t.insert(&Arc::from("z"), "t/1", e(QoS::AtMostOnce));
        let mut seen = Vec::new();
        for _ in 0..4 {
            let mut out = Vec::new();
            t.matches("t/1", &mut out);
            assert_eq!(out.len(), 3);
            // The first member of the group rotates.
            seen.extend(out.into_iter().filter(|m| m.shared()).take(1).map(|m| m.client_id.to_string()));
        }
        seen.sort();
        assert_eq!(seen, vec!["x", "x", "y", "y"]);
        assert!(t.remove("x", "$share/g/t/#"));
        assert!(t.remove("y", "$share/g/t/#"));
        assert_eq!(t.len(), 1);
    }

    proptest::proptest! {
        #[test]
        fn tree_agrees_with_matches(filters in proptest::collection::vec("[ab+#]{0,1}(/[ab+]{0,1}){0,3}", 1..8), topic in "[ab$]{0,1}(/[ab]{0,1}){0,3}") {
            let mut t = SubscriptionTree::new();
            let mut expected = Vec::new();
            for (i, f) in filters.iter().enumerate() {
                if !mqtt::topic::valid_topic_filter(f) { continue; }
                let c: Arc<str> = format!("c{i}").into();
                t.insert(&c, f, e(QoS::AtMostOnce));
                if mqtt::topic::matches(f, &topic) { expected.push(c.to_string()); }
            }
            expected.sort();
            proptest::prop_assert_eq!(clients(&t, &topic), expected);
        }
    }
}
