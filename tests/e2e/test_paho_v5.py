"""MQTT 5 features through Eclipse Paho."""

import time

import pytest
from paho.mqtt.packettypes import PacketTypes

from conftest import unique
from e2elib import props


def connected(paho, server, device, **kw):
    c = paho(server, device, version=5, **kw)
    c.connect()
    return c


def test_connack_properties(server, device, paho):
    c = paho(server, device, version=5, keepalive=10)
    ack = c.connect(session_expiry=30 * 24 * 3600)
    p = ack.properties
    assert p.ReceiveMaximum == 100
    assert p.TopicAliasMaximum == 8
    # keep-alive 10 s is clamped to AWS's minimum of 30 s and said so.
    assert p.ServerKeepAlive == 30
    # 30 days is more than the 7-day maximum: the server says what it grants.
    assert p.SessionExpiryInterval == 7 * 24 * 3600
    assert getattr(p, "MaximumPacketSize", 0) >= 128 * 1024
    assert getattr(p, "SharedSubscriptionAvailable", 1) == 1
    assert getattr(p, "SubscriptionIdentifierAvailable", 1) == 1
    assert getattr(p, "WildcardSubscriptionAvailable", 1) == 1
    assert getattr(p, "RetainAvailable", 1) == 1
    c.disconnect()

    c2 = paho(server, device, version=5, keepalive=5000)
    ack = c2.connect()
    assert ack.properties.ServerKeepAlive == 1200
    assert not hasattr(ack.properties, "SessionExpiryInterval")


def test_assigned_client_identifier(server, device, paho):
    c = paho(server, device, client_id="", version=5)
    ack = c.connect()
    assigned = ack.properties.AssignedClientIdentifier
    assert assigned and len(assigned) <= 128


def test_retain_handling(server, device, paho):
    t = unique("rh") + "/t"
    pub = connected(paho, server, device)
    pub.publish(t, b"kept", qos=1, retain=True)

    # 0: retained messages on every subscribe, including re-subscribes.
    c0 = connected(paho, server, device)
    c0.subscribe(t, qos=1, retain_handling=0)
    assert c0.expect(t).retain
    c0.subscribe(t, qos=1, retain_handling=0)
    assert c0.expect(t).payload == b"kept"

    # 1: only if the subscription did not exist.
    c1 = connected(paho, server, device)
    c1.subscribe(t, qos=1, retain_handling=1)
    m = c1.expect(t)
    assert (m.payload, m.retain) == (b"kept", True)
    c1.subscribe(t, qos=1, retain_handling=1)
    c1.expect_none(topic_prefix=t)

    # 2: never.
    c2 = connected(paho, server, device)
    c2.subscribe(t, qos=1, retain_handling=2)
    c2.expect_none(topic_prefix=t)
    # ...but live messages still arrive.
    pub.publish(t, b"live", qos=1)
    assert c2.expect(t).payload == b"live"
    assert c1.expect(t).payload == b"live"


def test_no_local(server, device, paho):
    t = unique("nolocal") + "/t"
    me = connected(paho, server, device)
    assert me.subscribe(t, qos=1, no_local=True) == [1]
    me.publish(t, b"mine", qos=1)
    other = connected(paho, server, device)
    other.publish(t, b"theirs", qos=1)
    assert me.expect(t).payload == b"theirs"
    me.expect_none(topic_prefix=t)


def test_retain_as_published(server, device, paho):
    t = unique("rap") + "/t"
    rap = connected(paho, server, device)
    rap.subscribe(t, qos=1, retain_as_published=True)
    plain = connected(paho, server, device)
    plain.subscribe(t, qos=1)
    pub = connected(paho, server, device)
    pub.publish(t, b"r", qos=1, retain=True)
    pub.publish(t, b"n", qos=1, retain=False)
    m1, m2 = rap.collect(2)
    assert [(m1.payload, m1.retain), (m2.payload, m2.retain)] == [(b"r", True), (b"n", False)]
    m1, m2 = plain.collect(2)
    assert [(m1.payload, m1.retain), (m2.payload, m2.retain)] == [(b"r", False), (b"n", False)]
    pub.publish(t, b"", qos=1, retain=True)  # clean up


def test_subscription_identifiers(server, device, paho):
    base = unique("subid")
    c = connected(paho, server, device)
    c.subscribe(f"{base}/+", qos=1, properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=7))
    c.subscribe(f"{base}/#", qos=1, properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=268435455))
    c.subscribe(f"{base}/x/only", qos=1)  # no identifier
    pub = connected(paho, server, device)

    pub.publish(f"{base}/a", b"1", qos=1)
    # Either one copy with both identifiers or one copy per subscription (MQTT-3.3.4-3..5).
    ids = []
    first = c.expect(f"{base}/a")
    ids += first.properties.SubscriptionIdentifier
    if len(ids) < 2:
        ids += c.expect(f"{base}/a").properties.SubscriptionIdentifier
    assert sorted(ids) == [7, 268435455]

    pub.publish(f"{base}/x/only", b"2", qos=1)
    got = []
    m = c.expect(f"{base}/x/only")
    got += getattr(m.properties, "SubscriptionIdentifier", [])
    if not got:
        # a second copy for the '#' subscription, carrying its identifier
        got += c.expect(f"{base}/x/only").properties.SubscriptionIdentifier
    assert got == [268435455]

    # Retained messages sent on subscribe carry the identifier too.
    pub.publish(f"{base}/ret", b"r", qos=1, retain=True)
    c.drain()
    c2 = connected(paho, server, device)
    c2.subscribe(f"{base}/ret", qos=1, properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=42))
    m = c2.expect(f"{base}/ret")
    assert m.retain and m.properties.SubscriptionIdentifier == [42]
    pub.publish(f"{base}/ret", b"", qos=1, retain=True)


def test_request_response_properties_forwarded(server, device, paho):
    t = unique("props") + "/req"
    sub5 = connected(paho, server, device)
    sub5.subscribe(t, qos=1)
    sub3 = paho(server, device, version=4)
    sub3.connect()
    sub3.subscribe(t, qos=1)
    pub = connected(paho, server, device)
    user = [("a", "1"), ("b", "two"), ("a", "3")]
    p = props(
        UserProperty=user,
        ResponseTopic=t + "/reply",
        CorrelationData=b"\x00\x01corr\xff",
        ContentType="application/json",
        PayloadFormatIndicator=1,
    )
    pub.publish(t, b'{"on": true}', qos=1, properties=p)
    m = sub5.expect(t)
    assert m.payload == b'{"on": true}'
    assert m.properties.UserProperty == user  # order and duplicates kept (MQTT-3.3.2-18)
    assert m.properties.ResponseTopic == t + "/reply"
    assert m.properties.CorrelationData == b"\x00\x01corr\xff"
    assert m.properties.ContentType == "application/json"
    assert m.properties.PayloadFormatIndicator == 1
    # A 3.1.1 subscriber gets the same payload.
    assert sub3.expect(t).payload == b'{"on": true}'

    # The responder answers on the response topic with the correlation data.
    pub.subscribe(t + "/reply", qos=1)
    sub5.publish(m.properties.ResponseTopic, b"ok", qos=1,
                 properties=props(CorrelationData=m.properties.CorrelationData))
    r = pub.expect(t + "/reply")
    assert (r.payload, r.properties.CorrelationData) == (b"ok", b"\x00\x01corr\xff")


def test_message_expiry(server, device, paho):
    base = unique("expiry")
    pub = connected(paho, server, device)
    # An offline persistent session with a subscription.
    off = paho(server, device, version=5, clean=True)
    off.connect(session_expiry=300)
    off.subscribe(f"{base}/queued", qos=1)
    off.disconnect()

    pub.publish(f"{base}/short", b"gone soon", qos=1, retain=True, properties=props(MessageExpiryInterval=1))
    pub.publish(f"{base}/long", b"stays", qos=1, retain=True, properties=props(MessageExpiryInterval=100))
    pub.publish(f"{base}/queued", b"stale", qos=1, properties=props(MessageExpiryInterval=1))
    t0 = time.monotonic()
    time.sleep(max(0.0, 2.1 - (time.monotonic() - t0)))  # let the 1 s expiries pass

    sub = connected(paho, server, device)
    sub.subscribe(f"{base}/#", qos=1)
    m = sub.expect(f"{base}/long")
    assert m.retain and m.payload == b"stays"
    # The remaining lifetime is forwarded (MQTT-3.3.2-6).
    assert 90 <= m.properties.MessageExpiryInterval <= 98
    sub.expect_none(topic_prefix=f"{base}/short")

    back = paho(server, device, client_id=off.client_id, version=5, clean=False)
    ack = back.connect(session_expiry=300)
    assert ack.session_present
    back.expect_none(topic_prefix=base)
    pub.publish(f"{base}/long", b"", qos=1, retain=True)


def test_topic_alias(server, device, paho):
    t = unique("alias") + "/a/long/topic/name"
    sub = connected(paho, server, device)
    sub.subscribe(t, qos=1)
    pub = connected(paho, server, device)
    assert pub.publish(t, b"1", qos=1, properties=props(TopicAlias=3)) == 0
    assert pub.publish("", b"2", qos=1, properties=props(TopicAlias=3)) == 0
    # Re-map alias 3 to another topic.
    t2 = t + "2"
    sub.subscribe(t2, qos=1)
    assert pub.publish(t2, b"3", qos=1, properties=props(TopicAlias=3)) == 0
    assert pub.publish("", b"4", qos=0, properties=props(TopicAlias=3)) is not None
    got = sub.collect(4)
    assert [(m.topic, m.payload) for m in got] == [(t, b"1"), (t, b"2"), (t2, b"3"), (t2, b"4")]


def test_topic_alias_above_maximum_disconnects(server, device, paho):
    pub = connected(paho, server, device)
    pub.publish(unique("alias9") + "/t", b"x", qos=0, properties=props(TopicAlias=9), wait=False)
    assert pub.server_disconnect() == 0x94  # Topic Alias invalid


def test_unknown_topic_alias_disconnects(server, device, paho):
    pub = connected(paho, server, device)
    pub.publish("", b"x", qos=1, properties=props(TopicAlias=5), wait=False)
    assert pub.server_disconnect() == 0x82  # Protocol Error


def test_shared_subscription(server, device, paho):
    base = unique("shared")
    pub = connected(paho, server, device)
    pub.publish(f"{base}/r", b"retained", qos=1, retain=True)
    a = connected(paho, server, device)
    b = connected(paho, server, device)
    everyone = connected(paho, server, device)
    assert a.subscribe(f"$share/g1/{base}/#", qos=1) == [1]
    assert b.subscribe(f"$share/g1/{base}/#", qos=1) == [1]
    everyone.subscribe(f"{base}/#", qos=1)
    assert everyone.expect(f"{base}/r").retain
    n = 20
    for i in range(n):
        pub.publish(f"{base}/m", str(i).encode(), qos=1)
    assert sorted(int(m.payload) for m in everyone.collect(n, topic_prefix=f"{base}/m")) == list(range(n))
    got_a, got_b = [], []
    deadline = time.monotonic() + 5
    while len(got_a) + len(got_b) < n and time.monotonic() < deadline:
        got_a += a.drain()
        got_b += b.drain()
        time.sleep(0.02)
    pa = [int(m.payload) for m in got_a if m.topic == f"{base}/m"]
    pb = [int(m.payload) for m in got_b if m.topic == f"{base}/m"]
    assert sorted(pa + pb) == list(range(n)), (pa, pb)  # each message to exactly one member
    assert pa and pb, f"not distributed: a={pa} b={pb}"
    # Retained messages are not sent for a new shared subscription (MQTT 5 §4.8.2).
    assert not [m for m in got_a + got_b if m.topic == f"{base}/r"]
    pub.publish(f"{base}/r", b"", qos=1, retain=True)


def test_shared_subscription_member_leaves(server, device, paho):
    base = unique("shared2")
    a = connected(paho, server, device)
    b = connected(paho, server, device)
    a.subscribe(f"$share/grp/{base}/t", qos=1)
    b.subscribe(f"$share/grp/{base}/t", qos=1)
    b.disconnect()
    pub = connected(paho, server, device)
    for i in range(5):
        pub.publish(f"{base}/t", str(i).encode(), qos=1)
    assert [m.payload for m in a.collect(5)] == [b"0", b"1", b"2", b"3", b"4"]


def test_disconnect_with_session_expiry_update(server, device, paho):
    """DISCONNECT may set a new Session Expiry Interval (when it was > 0)."""
    c = paho(server, device, version=5)
    c.connect(session_expiry=60)
    t = unique("sexp") + "/t"
    c.subscribe(t, qos=1)
    c.disconnect(properties=props(PacketTypes.DISCONNECT, SessionExpiryInterval=0))
    again = paho(server, device, client_id=c.client_id, version=5, clean=False)
    ack = again.connect(session_expiry=60)
    assert ack.session_present is False


def test_keep_alive_zero_gets_server_keep_alive(server, device):
    from e2elib import RawConn
    raw = RawConn(server, device)
    try:
        ack = raw.connect(unique("ka0"), version=5, keepalive=0)
        assert ack.body[1] == 0
        # Property 0x13 Server Keep Alive = 1200 (AWS maximum) is present.
        assert b"\x13\x04\xb0" in ack.body[2:], ack.body.hex()
    finally:
        raw.close()


def test_resubscribe_replaces_options(server, device, paho):
    t = unique("resub") + "/t"
    c = connected(paho, server, device)
    assert c.subscribe(t, qos=0) == [0]
    assert c.subscribe(t, qos=2) == [2]
    c.publish(t, b"x", qos=2)
    m = c.expect(t)
    assert m.qos == 2
    c.expect_none(topic_prefix=t)  # one subscription, one copy


def test_unsubscribe_reason_codes(server, device, paho):
    c = connected(paho, server, device)
    t = unique("unsubrc") + "/t"
    c.subscribe(t, qos=1)
    assert c.unsubscribe(t) == [0]
    assert c.unsubscribe(t) == [0x11]  # No subscription existed


def test_client_maximum_packet_size_respected(server, device, paho):
    """MQTT-3.1.2-25: never send a packet larger than the client's Maximum Packet Size."""
    from e2elib import RawConn, subscribe_packet
    t = unique("mps") + "/t"
    raw = RawConn(server, device)
    try:
        assert raw.connect(unique("mps"), version=5, properties=b"\x27" + (200).to_bytes(4, "big")).body[1] == 0
        raw.send(subscribe_packet(1, [(t, 1)], version=5))
        assert raw.read_packet().type == 9
        pub = connected(paho, server, device)
        pub.publish(t, b"L" * 300, qos=1)
        pub.publish(t, b"small", qos=1)
        p = raw.read_packet()
        assert p.type == 3 and p.body.endswith(b"small"), p
    finally:
        raw.close()


def test_shared_and_non_shared_subscription_in_one_session(server, device, paho):
    base = unique("sharedboth")
    c = connected(paho, server, device)
    c.subscribe(f"{base}/#", qos=1, properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=1))
    c.subscribe(f"$share/solo/{base}/#", qos=1, properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=2))
    pub = connected(paho, server, device)
    pub.publish(f"{base}/x", b"m", qos=1)
    first = c.expect(f"{base}/x")
    ids = [first.properties.SubscriptionIdentifier]
    try:
        ids.append(c.expect(f"{base}/x", timeout=1).properties.SubscriptionIdentifier)
    except AssertionError:
        pass
    assert sorted(ids) == [[1], [2]], f"copies received with subscription identifiers {ids}"
