"""Persistent sessions, client-id takeover and will messages."""

import time

import pytest
from paho.mqtt.packettypes import PacketTypes

from conftest import unique
from e2elib import props

VERSIONS = [pytest.param(4, id="v311"), pytest.param(5, id="v5")]


def test_persistent_session_v311(server, device, paho):
    cid = unique("persist311")
    t = unique("persist311") + "/t"
    c = paho(server, device, client_id=cid, version=4, clean=False)
    assert c.connect().session_present is False
    assert c.subscribe(t, qos=1) == [1]
    c.disconnect()

    pub = paho(server, device, version=4)
    pub.connect()
    pub.publish(t, b"q1 while away", qos=1)
    pub.publish(t, b"q0 while away", qos=0)  # QoS 0 is not queued for offline sessions
    pub.publish(t, b"q2 while away", qos=2)

    back = paho(server, device, client_id=cid, version=4, clean=False)
    assert back.connect().session_present is True
    got = back.collect(2)
    assert [(m.payload, m.qos) for m in got] == [(b"q1 while away", 1), (b"q2 while away", 1)]
    back.expect_none(topic_prefix=t)
    # The subscription is still there without subscribing again.
    pub.publish(t, b"live", qos=1)
    assert back.expect(t).payload == b"live"
    back.disconnect()

    # clean_session=1 discards the session: no session present, no subscription.
    clean = paho(server, device, client_id=cid, version=4, clean=True)
    assert clean.connect().session_present is False
    pub.publish(t, b"after clean", qos=1)
    clean.expect_none(topic_prefix=t)
    clean.disconnect()
    again = paho(server, device, client_id=cid, version=4, clean=False)
    assert again.connect().session_present is False


def test_persistent_session_v5(server, device, paho):
    cid = unique("persist5")
    t = unique("persist5") + "/t"
    c = paho(server, device, client_id=cid, version=5, clean=True)
    ack = c.connect(session_expiry=600)
    assert ack.session_present is False
    c.subscribe(t, qos=1, properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=5))
    c.disconnect()

    pub = paho(server, device, version=5)
    pub.connect()
    pub.publish(t, b"while away", qos=1, properties=props(UserProperty=[("k", "v")]))

    back = paho(server, device, client_id=cid, version=5, clean=False)
    ack = back.connect(session_expiry=600)
    assert ack.session_present is True
    m = back.expect(t)
    assert (m.payload, m.qos) == (b"while away", 1)
    assert m.properties.UserProperty == [("k", "v")]
    assert m.properties.SubscriptionIdentifier == [5]
    pub.publish(t, b"live", qos=1)
    assert back.expect(t).payload == b"live"


def test_session_expiry_zero_v5(server, device, paho):
    cid = unique("noexp")
    c = paho(server, device, client_id=cid, version=5)
    c.connect()  # no Session Expiry Interval: the session ends with the connection
    c.subscribe(unique("noexp") + "/t", qos=1)
    c.disconnect()
    back = paho(server, device, client_id=cid, version=5, clean=False)
    assert back.connect().session_present is False


def test_session_expires_v5(server, device, paho):
    cid = unique("shortexp")
    c = paho(server, device, client_id=cid, version=5)
    c.connect(session_expiry=1)
    c.subscribe(unique("shortexp") + "/t", qos=1)
    c.disconnect()
    time.sleep(1.6)
    back = paho(server, device, client_id=cid, version=5, clean=False)
    assert back.connect(session_expiry=1).session_present is False


def test_qos1_inflight_redelivered_after_reconnect(server, device, paho):
    """A QoS 1 message sent but never PUBACKed is sent again on reconnect (MQTT 4.4)."""
    from e2elib import RawConn, subscribe_packet

    cid = unique("redeliver")
    t = unique("redeliver") + "/t"
    raw = RawConn(server, device)
    assert raw.connect(cid, version=4, clean=False).body == b"\x00\x00"
    raw.send(subscribe_packet(1, [(t, 1)]))
    assert raw.read_packet().type == 9
    pub = paho(server, device, version=4)
    pub.connect()
    pub.publish(t, b"unacked", qos=1)
    p = raw.read_packet()
    assert p.type == 3 and (p.flags & 0x06) == 0x02 and b"unacked" in p.body
    raw.close()  # no PUBACK
    c = paho(server, device, client_id=cid, version=4, clean=False)
    assert c.connect().session_present is True
    m = c.expect(t)
    assert m.payload == b"unacked" and m.dup


@pytest.mark.parametrize("version", VERSIONS)
def test_client_id_takeover(server, device, paho, version):
    cid = unique("takeover")
    first = paho(server, device, client_id=cid, version=version)
    first.connect()
    second = paho(server, device, client_id=cid, version=version)
    second.connect()
    if version == 5:
        assert first.server_disconnect() == 0x8E  # Session taken over
    else:
        assert first.server_disconnect() is None  # 3.1.1: the connection is just closed
        assert first.disconnect_reasons[0] != 0
    # The second connection works.
    t = unique("takeover") + "/t"
    second.subscribe(t, qos=1)
    second.publish(t, b"still here", qos=1)
    assert second.expect(t).payload == b"still here"
    assert second.c.is_connected()


def test_takeover_keeps_persistent_session(server, device, paho):
    cid = unique("takeover-persist")
    t = unique("takeover-persist") + "/t"
    first = paho(server, device, client_id=cid, version=5)
    first.connect(session_expiry=300)
    first.subscribe(t, qos=1)
    second = paho(server, device, client_id=cid, version=5, clean=False)
    assert second.connect(session_expiry=300).session_present is True
    assert first.server_disconnect() == 0x8E
    pub = paho(server, device, version=5)
    pub.connect()
    pub.publish(t, b"to the new connection", qos=1)
    assert second.expect(t).payload == b"to the new connection"
    first.expect_none(topic_prefix=t)


# -- wills -------------------------------------------------------------------

def watcher(paho, server, device, topic, version=5):
    w = paho(server, device, version=version)
    w.connect()
    w.subscribe(topic, qos=1)
    return w


@pytest.mark.parametrize("version", VERSIONS)
def test_will_on_abnormal_disconnect(server, device, paho, version):
    wt = unique("will") + "/lost"
    w = watcher(paho, server, device, wt)
    c = paho(server, device, version=version)
    c.will_set(wt, b"client vanished", qos=1)
    c.connect()
    c.drop()  # TCP closed, no DISCONNECT
    m = w.expect(wt)
    assert (m.payload, m.qos) == (b"client vanished", 1)


@pytest.mark.parametrize("version", VERSIONS)
def test_no_will_on_normal_disconnect(server, device, paho, version):
    wt = unique("will") + "/normal"
    w = watcher(paho, server, device, wt)
    c = paho(server, device, version=version)
    c.will_set(wt, b"should not be sent", qos=1)
    c.connect()
    c.disconnect()
    w.expect_none(topic_prefix=wt)


@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
def test_will_when_mosquitto_sub_is_killed(server, device, paho, mosq_sub, version):
    wt = unique("will-mosq") + "/gone"
    w = watcher(paho, server, device, wt)
    sub = mosq_sub(server, device, [unique("will-mosq") + "/x"], version=version, client_id=unique("will-mosq"),
                   extra=["--will-topic", wt, "--will-payload", "killed", "--will-qos", "1", "--will-retain"])
    sub.wait_subscribed()
    sub.kill()  # SIGKILL: no DISCONNECT
    m = w.expect(wt)
    assert m.payload == b"killed"
    # --will-retain: the will is also retained.
    late = paho(server, device, version=5)
    late.connect()
    late.subscribe(wt, qos=1)
    m = late.expect(wt)
    assert (m.payload, m.retain) == (b"killed", True)
    late.publish(wt, b"", qos=1, retain=True)


def test_will_with_disconnect_reason_0x04(server, device, paho):
    wt = unique("will04") + "/t"
    w = watcher(paho, server, device, wt)
    c = paho(server, device, version=5)
    c.will_set(wt, b"asked for", qos=1)
    c.connect()
    c.disconnect(reason=0x04)
    assert w.expect(wt).payload == b"asked for"


def test_will_properties_forwarded(server, device, paho):
    wt = unique("willprops") + "/t"
    w = watcher(paho, server, device, wt)
    c = paho(server, device, version=5)
    c.will_set(wt, b'{"gone":1}', qos=1, properties=props(
        PacketTypes.WILLMESSAGE, ContentType="application/json", UserProperty=[("why", "test")],
        ResponseTopic="reply/here", CorrelationData=b"cd"))
    c.connect()
    c.drop()
    m = w.expect(wt)
    assert m.payload == b'{"gone":1}'
    assert m.properties.ContentType == "application/json"
    assert m.properties.UserProperty == [("why", "test")]
    assert m.properties.ResponseTopic == "reply/here"
    assert m.properties.CorrelationData == b"cd"


def test_will_delay(server, device, paho):
    wt = unique("willdelay") + "/t"
    w = watcher(paho, server, device, wt)
    c = paho(server, device, version=5)
    c.will_set(wt, b"late", qos=1, properties=props(PacketTypes.WILLMESSAGE, WillDelayInterval=1))
    c.connect(session_expiry=60)
    t0 = time.monotonic()
    c.drop()
    m = w.expect(wt, timeout=5)
    elapsed = time.monotonic() - t0
    assert m.payload == b"late"
    assert elapsed >= 0.9, f"will sent after {elapsed:.2f}s, before the 1 s Will Delay Interval"


def test_will_delay_cancelled_by_reconnect(server, device, paho):
    wt = unique("willcancel") + "/t"
    w = watcher(paho, server, device, wt)
    cid = unique("willcancel")
    c = paho(server, device, client_id=cid, version=5)
    c.will_set(wt, b"must not appear", qos=1, properties=props(PacketTypes.WILLMESSAGE, WillDelayInterval=1))
    c.connect(session_expiry=60)
    c.drop()
    back = paho(server, device, client_id=cid, version=5, clean=False)
    assert back.connect(session_expiry=60).session_present is True
    w.expect_none(duration=1.6, topic_prefix=wt)


def test_will_delay_capped_by_session_expiry(server, device, paho):
    """The will is sent when the session ends, even before the will delay (MQTT 5 §3.1.3.2.2)."""
    wt = unique("willcap") + "/t"
    w = watcher(paho, server, device, wt)
    c = paho(server, device, version=5)
    c.will_set(wt, b"session over", qos=1, properties=props(PacketTypes.WILLMESSAGE, WillDelayInterval=3600))
    c.connect()  # session expiry 0
    c.drop()
    assert w.expect(wt, timeout=3).payload == b"session over"


def test_will_on_takeover_v5(server, device, paho):
    """MQTT 5 §3.1.4: on takeover the existing client's will is published."""
    wt = unique("willtake") + "/t"
    w = watcher(paho, server, device, wt)
    cid = unique("willtake")
    first = paho(server, device, client_id=cid, version=5)
    first.will_set(wt, b"taken over", qos=1)
    first.connect()
    second = paho(server, device, client_id=cid, version=5)
    second.connect()
    assert first.server_disconnect() == 0x8E
    assert w.expect(wt).payload == b"taken over"


def test_qos2_exactly_once_inbound(server, device, paho):
    """A re-sent QoS 2 PUBLISH (DUP) before PUBREL is not routed twice; after
    PUBCOMP the packet id is free for a new message."""
    from e2elib import RawConn, publish_packet
    t = unique("exactly") + "/t"
    sub = paho(server, device, version=5)
    sub.connect()
    sub.subscribe(t, qos=2)
    raw = RawConn(server, device)
    try:
        assert raw.connect(unique("exactly"), version=5).body[1] == 0
        first = publish_packet(t, b"once", qos=2, packet_id=7, version=5)
        raw.send(first)
        assert raw.read_packet().type == 5
        raw.send(bytes([first[0] | 0x08]) + first[1:])  # DUP re-send
        assert raw.read_packet().type == 5
        raw.send(b"\x62\x02\x00\x07")  # PUBREL
        comp = raw.read_packet()
        assert comp.type == 7 and comp.reason == 0
        raw.send(b"\x62\x02\x00\x07")  # PUBREL again: unknown id
        comp = raw.read_packet()
        assert comp.type == 7 and comp.reason == 0x92  # Packet Identifier not found
        raw.send(publish_packet(t, b"new message, same id", qos=2, packet_id=7, version=5))
        assert raw.read_packet().type == 5
        raw.send(b"\x62\x02\x00\x07")
        assert raw.read_packet().type == 7
    finally:
        raw.close()
    got = sub.collect(2)
    assert [m.payload for m in got] == [b"once", b"new message, same id"]
    sub.expect_none(topic_prefix=t)
