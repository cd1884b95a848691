"""AWS IoT lifecycle events and `$` topics."""

import json
import time

import pytest

from conftest import unique


def events_watcher(paho, server, device):
    w = paho(server, device, version=5)
    w.connect()
    assert w.subscribe("$aws/events/presence/connected/#", qos=1) == [1]
    assert w.subscribe("$aws/events/presence/disconnected/#", qos=1) == [1]
    return w


def event(w, kind, cid):
    m = w.expect(f"$aws/events/presence/{kind}/{cid}")
    return json.loads(m.payload)


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_connected_and_disconnected_events(server, device, paho, version):
    w = events_watcher(paho, server, device)
    cid = unique("presence")
    before = int(time.time() * 1000)
    c = paho(server, device, client_id=cid, version=version)
    c.connect()
    ev = event(w, "connected", cid)
    after = int(time.time() * 1000)
    assert ev["clientId"] == cid
    assert ev["eventType"] == "connected"
    assert before - 1000 <= ev["timestamp"] <= after + 1000
    assert isinstance(ev["sessionIdentifier"], str) and ev["sessionIdentifier"]
    assert ev["principalIdentifier"] == device.cert_id
    assert ev["ipAddress"] == "127.0.0.1"
    assert isinstance(ev["versionNumber"], int)
    assert "disconnectReason" not in ev

    c.disconnect()
    dv = event(w, "disconnected", cid)
    assert dv["clientId"] == cid
    assert dv["eventType"] == "disconnected"
    assert dv["sessionIdentifier"] == ev["sessionIdentifier"]
    assert dv["principalIdentifier"] == device.cert_id
    assert dv["disconnectReason"] == "CLIENT_INITIATED_DISCONNECT"
    assert dv["versionNumber"] == ev["versionNumber"]
    assert dv["timestamp"] >= ev["timestamp"]
    assert "ipAddress" not in dv


def test_disconnect_reasons_in_events(server, device, paho):
    w = events_watcher(paho, server, device)
    lost = paho(server, device, client_id=unique("lost"))
    lost.connect()
    event(w, "connected", lost.client_id)
    lost.drop()
    assert event(w, "disconnected", lost.client_id)["disconnectReason"] == "CONNECTION_LOST"

    cid = unique("dup")
    a = paho(server, device, client_id=cid)
    a.connect()
    b = paho(server, device, client_id=cid)
    b.connect()
    a.wait_disconnected()
    assert event(w, "disconnected", cid)["disconnectReason"] == "DUPLICATE_CLIENTID"


def test_hash_does_not_match_dollar_topics(server, device, paho):
    base = unique("dollar")
    hash_sub = paho(server, device, version=5)
    hash_sub.connect()
    assert hash_sub.subscribe([("#", 1), ("+/events/#", 1), ("+/presence/connected/+", 1)]) == [1, 1, 1]
    w = events_watcher(paho, server, device)
    other = paho(server, device, client_id=unique("dollar-trigger"))
    other.connect()
    event(w, "connected", other.client_id)  # the event exists...
    other.disconnect()
    event(w, "disconnected", other.client_id)
    # ...and a normal message published after it reaches '#' after it would have.
    sentinel = paho(server, device, version=5)
    sentinel.connect()
    sentinel.publish(f"{base}/sentinel", b"s", qos=1)
    seen = []
    while True:
        m = hash_sub.expect()
        seen.append(m.topic)
        if m.topic == f"{base}/sentinel":
            break
    dollar = [t for t in seen if t.startswith("$")]
    assert not dollar, f"'#' / '+' at the first level matched $ topics: {dollar}"


def test_events_subscription_allowed(server, device, paho):
    c = paho(server, device, version=5)
    c.connect()
    assert c.subscribe("$aws/events/#", qos=1) == [1]
    assert c.subscribe("$aws/events/presence/+/+", qos=1) == [1]
    assert c.c.is_connected()


def test_lifecycle_events_cannot_be_forged(server, device, paho):
    w = events_watcher(paho, server, device)
    forger = paho(server, device, version=5)
    forger.connect()
    victim = unique("victim")
    try:
        rc = forger.publish(f"$aws/events/presence/connected/{victim}", b'{"clientId":"forged"}', qos=1)
    except AssertionError:
        rc = None  # no PUBACK: the server closed the connection, also a refusal
    # Refused with a PUBACK >= 0x80 (or the connection is closed), and never delivered.
    delivered = [m for m in w.drain() if m.topic.endswith(victim)]
    try:
        delivered.append(w.expect(f"$aws/events/presence/connected/{victim}", timeout=1))
    except AssertionError:
        pass
    assert not delivered, f"forged lifecycle event delivered (PUBACK {rc}): {delivered[0].payload!r}"
    assert rc is None or rc >= 0x80, f"PUBACK {rc} for a publish to a reserved $aws/events topic"


def test_unsupported_reserved_topics_refused(server, device, paho):
    c = paho(server, device, version=5)
    c.connect()
    problems = []
    rc = c.publish("$custom/x", b"x", qos=1)
    if rc < 0x80:
        problems.append(f"PUBACK {rc:#x} for $custom/x")
    codes = c.subscribe([("$custom/#", 1), ("$SYS/#", 1)])
    if any(code < 0x80 for code in codes):
        problems.append(f"SUBACK {codes} for $custom/#, $SYS/#")
    assert not problems, "; ".join(problems)


def test_version_number_increases_per_connection(server, device, paho):
    w = events_watcher(paho, server, device)
    cid = unique("version")
    versions = []
    for _ in range(2):
        c = paho(server, device, client_id=cid, version=5)
        c.connect()
        con = event(w, "connected", cid)
        c.disconnect()
        dis = event(w, "disconnected", cid)
        assert con["versionNumber"] == dis["versionNumber"]
        versions.append(con["versionNumber"])
    assert versions[1] > versions[0], f"versionNumber of two successive connections: {versions}"


def test_disconnected_event_fields(server, device, paho):
    w = events_watcher(paho, server, device)
    c = paho(server, device, client_id=unique("fields"), version=4)
    c.connect()
    event(w, "connected", c.client_id)
    c.disconnect()
    dv = event(w, "disconnected", c.client_id)
    assert dv["clientInitiatedDisconnect"] is True
    lost = paho(server, device, client_id=unique("fields-lost"), version=4)
    lost.connect()
    event(w, "connected", lost.client_id)
    lost.drop()
    dv = event(w, "disconnected", lost.client_id)
    assert dv["clientInitiatedDisconnect"] is False
    assert dv["disconnectReason"] == "CONNECTION_LOST"


def test_no_events_for_client_ids_with_wildcards(server, device, paho):
    w = events_watcher(paho, server, device)
    odd = paho(server, device, client_id=unique("odd+id#"), version=5)
    odd.connect()
    odd.disconnect()
    normal = paho(server, device, client_id=unique("normal"), version=5)
    normal.connect()
    # The event for the normal id arrives; nothing for the wildcard id came before it.
    m = w.expect()
    assert m.topic == f"$aws/events/presence/connected/{normal.client_id}", m.topic
