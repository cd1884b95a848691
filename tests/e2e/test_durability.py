"""Durability: queued QoS 1 messages, retained messages and session
subscriptions survive `kill -9` and a restart on the same data dir and port."""

import pytest
from paho.mqtt.packettypes import PacketTypes

from conftest import unique
from e2elib import free_port, props


def start_on_fixed_port(make_server):
    for attempt in range(3):
        s = make_server("durable", mqtt_port=free_port())
        try:
            return s.start()
        except AssertionError:
            if attempt == 2 or "cannot listen" not in s.log_text():
                raise


def restart(server):
    server.kill9()
    server.start()


def test_kill9_keeps_queue_retained_and_subscriptions(make_server, paho):
    server = start_on_fixed_port(make_server)
    port = server.port
    dev = server.provision("durable-dev")

    # Offline persistent sessions: 3.1.1 clean_session=0 and MQTT 5 with expiry.
    s3 = paho(server, dev, client_id="dur-v311", version=4, clean=False)
    s3.connect()
    assert s3.subscribe([("dur/q", 1), ("dur/q2", 2)]) == [1, 2]
    s3.disconnect()
    s5 = paho(server, dev, client_id="dur-v5", version=5, clean=True)
    s5.connect(session_expiry=3600)
    s5.subscribe("dur/q", qos=1)
    s5.disconnect()

    pub = paho(server, dev, version=5)
    pub.connect()
    # PUBACK / PUBCOMP mean "stored": the server syncs before acknowledging.
    assert pub.publish("dur/q", b"before crash", qos=1, properties=props(UserProperty=[("n", "1")])) == 0
    assert pub.publish("dur/q2", b"qos2 before crash", qos=2) == 0
    assert pub.publish("dur/retained", b"retained before crash", qos=1, retain=True) == 0
    assert pub.publish("dur/retained-cleared", b"x", qos=1, retain=True) == 0
    assert pub.publish("dur/retained-cleared", b"", qos=1, retain=True) == 0
    pub.stop()

    restart(server)
    assert server.port == port

    # A message published after the restart reaches the offline sessions
    # through their restored subscriptions.
    pub = paho(server, dev, version=5)
    pub.connect()
    assert pub.publish("dur/q", b"after restart", qos=1) == 0

    back3 = paho(server, dev, client_id="dur-v311", version=4, clean=False)
    assert back3.connect().session_present is True
    got = back3.collect(3)
    assert sorted((m.topic, m.payload) for m in got) == sorted([
        ("dur/q", b"before crash"), ("dur/q2", b"qos2 before crash"), ("dur/q", b"after restart")])
    # Order per topic is kept.
    assert [m.payload for m in got if m.topic == "dur/q"] == [b"before crash", b"after restart"]
    assert {m.topic: m.qos for m in got} == {"dur/q": 1, "dur/q2": 2}
    back3.expect_none()

    back5 = paho(server, dev, client_id="dur-v5", version=5, clean=False)
    assert back5.connect(session_expiry=3600).session_present is True
    got = back5.collect(2)
    assert [m.payload for m in got] == [b"before crash", b"after restart"]
    assert got[0].properties.UserProperty == [("n", "1")]

    fresh = paho(server, dev, version=5)
    fresh.connect()
    fresh.subscribe("dur/#", qos=1)
    m = fresh.expect("dur/retained")
    assert (m.payload, m.retain) == (b"retained before crash", True)
    fresh.expect_none(topic_prefix="dur/retained-cleared")

    # Delivered messages are not delivered again after another crash.
    back3.disconnect()
    back5.disconnect()
    restart(server)
    again = paho(server, dev, client_id="dur-v311", version=4, clean=False)
    assert again.connect().session_present is True
    again.expect_none()


def test_sigterm_keeps_state_too(make_server, paho):
    server = start_on_fixed_port(make_server)
    dev = server.provision("graceful-dev")
    s = paho(server, dev, client_id="graceful-sub", version=4, clean=False)
    s.connect()
    s.subscribe("grace/t", qos=1)
    s.disconnect()
    pub = paho(server, dev, version=4)
    pub.connect()
    pub.publish("grace/t", b"queued", qos=1)
    pub.publish("grace/r", b"kept", qos=1, retain=True)
    pub.disconnect()
    assert server.stop() == 0, server.log_tail()
    assert not (server.data_dir / "endpoints.json").exists()
    server.start()
    back = paho(server, dev, client_id="graceful-sub", version=4, clean=False)
    assert back.connect().session_present is True
    assert back.expect("grace/t").payload == b"queued"
    back.subscribe("grace/r", qos=1)
    assert back.expect("grace/r").retain


def test_certificate_status_survives_restart(make_server):
    from e2elib import RawConn
    server = start_on_fixed_port(make_server)
    dev = server.provision("status-dev")
    server.certs("deactivate", dev.cert_id)
    restart(server)
    conn = RawConn(server, dev)
    try:
        assert conn.connect(unique("status"), version=4).body == b"\x00\x05"
    finally:
        conn.close()


def test_crash_with_connected_and_inflight_sessions(make_server, paho):
    """Sessions connected at the crash survive too, and a QoS 1 message that
    was sent but never acknowledged is delivered again after the restart."""
    from e2elib import RawConn, subscribe_packet

    server = start_on_fixed_port(make_server)
    dev = server.provision("inflight-dev")
    online = paho(server, dev, client_id="online-at-crash", version=4, clean=False)
    online.connect()
    online.subscribe("inflight/a", qos=1)
    raw = RawConn(server, dev)
    assert raw.connect("unacked-at-crash", version=4, clean=False).body == b"\x00\x00"
    raw.send(subscribe_packet(1, [("inflight/b", 1)]))
    assert raw.read_packet().type == 9
    pub = paho(server, dev, version=5)
    pub.connect()
    assert pub.publish("inflight/a", b"a1", qos=1) == 0
    assert pub.publish("inflight/b", b"b1", qos=1) == 0
    assert online.expect("inflight/a").payload == b"a1"
    p = raw.read_packet()
    assert p.type == 3 and p.body.endswith(b"b1")  # never PUBACKed

    restart(server)
    online.stop()
    raw.close()
    pub = paho(server, dev, version=5)
    pub.connect()
    assert pub.publish("inflight/a", b"a2", qos=1) == 0

    back = paho(server, dev, client_id="online-at-crash", version=4, clean=False)
    assert back.connect().session_present is True
    assert back.expect("inflight/a").payload == b"a2"  # a1 was acknowledged: not again
    back.expect_none()
    raw2 = RawConn(server, dev)
    try:
        assert raw2.connect("unacked-at-crash", version=4, clean=False).body == b"\x01\x00"
        p = raw2.read_packet()
        assert p is not None and p.type == 3 and p.body.endswith(b"b1"), p
    finally:
        raw2.close()


def test_queued_delivery_attributes_survive_restart(make_server, paho):
    server = start_on_fixed_port(make_server)
    dev = server.provision("attrs-dev")
    sub = paho(server, dev, client_id="attrs-sub", version=5)
    sub.connect(session_expiry=3600)
    sub.subscribe("attrs/t", qos=1, properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=9))
    sub.disconnect()
    pub = paho(server, dev, version=5)
    pub.connect()
    # QoS 2 and RETAIN to an established QoS 1 subscription without Retain As Published.
    assert pub.publish("attrs/t", b"queued", qos=2, retain=True) == 0
    pub.stop()
    restart(server)
    back = paho(server, dev, client_id="attrs-sub", version=5, clean=False)
    assert back.connect(session_expiry=3600).session_present is True
    m = back.expect("attrs/t")
    assert m.payload == b"queued"
    problems = []
    if m.qos != 1:
        problems.append(f"delivered at QoS {m.qos}, above the granted QoS 1 (MQTT-3.8.4-8)")
    if m.retain:
        problems.append("RETAIN 1 on a delivery to an established subscription (MQTT-3.3.1-9 / RAP=0)")
    if getattr(m.properties, "SubscriptionIdentifier", None) != [9]:
        problems.append(f"SubscriptionIdentifier {getattr(m.properties, 'SubscriptionIdentifier', None)}, "
                        "expected [9] (MQTT-3.3.4-3)")
    assert not problems, "; ".join(problems)


def test_qos2_release_survives_restart(make_server, paho):
    from e2elib import RawConn, subscribe_packet

    server = start_on_fixed_port(make_server)
    dev = server.provision("q2-dev")
    expiry = b"\x11\x00\x00\x0e\x10"  # Session Expiry Interval 3600
    raw = RawConn(server, dev)
    assert raw.connect("q2-sub", version=5, properties=expiry).body[:2] == b"\x00\x00"
    raw.send(subscribe_packet(1, [("q2/t", 2)], version=5))
    assert raw.read_packet().type == 9
    pub = paho(server, dev, version=5)
    pub.connect()
    assert pub.publish("q2/t", b"exactly once", qos=2) == 0
    p = raw.read_packet()
    assert p.type == 3 and (p.flags & 0x06) == 0x04
    pid = p.body[2 + len("q2/t"):4 + len("q2/t")]
    raw.send(b"\x50\x02" + pid)  # PUBREC
    rel = raw.read_packet()
    assert rel.type == 6 and rel.body[:2] == pid  # PUBREL; we crash before PUBCOMP
    restart(server)
    raw.close()
    raw2 = RawConn(server, dev)
    try:
        assert raw2.connect("q2-sub", version=5, clean=False, properties=expiry).body[:1] == b"\x01"
        nxt = raw2.read_packet(timeout=3)
        assert nxt is not None and nxt.type == 6, f"expected PUBREL for {pid.hex()}, got {nxt}"
    finally:
        raw2.close()
