"""Eclipse Paho (MQTT 3.1.1 and 5) basics: TLS as in the seed example,
wildcards, QoS 0/1/2, retained messages."""

import pytest

from conftest import unique

VERSIONS = [pytest.param(4, id="v311"), pytest.param(5, id="v5")]


@pytest.mark.parametrize("version", VERSIONS)
def test_connect_tls12_pinned_like_seed_example(server, device, paho, version):
    c = paho(server, device, version=version, tls12=True)
    ack = c.connect()
    assert ack.reason == 0 and ack.session_present is False
    assert c.tls_version() == "TLSv1.2"
    c.disconnect()
    assert c.disconnect_reasons == [0]


@pytest.mark.parametrize("version", VERSIONS)
def test_connect_default_tls_negotiates_1_3(server, device, paho, version):
    c = paho(server, device, version=version, tls12=False)
    c.connect()
    assert c.tls_version() == "TLSv1.3"
    # Usable: a round trip to itself.
    t = unique("self") + "/t"
    assert c.subscribe(t, qos=1) == [1]
    c.publish(t, b"me", qos=1)
    assert c.expect(t).payload == b"me"


@pytest.mark.parametrize("ip_host", [False, True], ids=["localhost", "127.0.0.1"])
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("pub_qos", [0, 1, 2])
def test_wildcards_and_qos(server, device, paho, version, pub_qos, ip_host):
    host = "127.0.0.1" if ip_host else "localhost"
    base = unique(f"pahoq{pub_qos}")
    sub = paho(server, device, version=version, host=host)
    sub.connect()
    # '+' at QoS 2, '#' at QoS 1, an unrelated filter: each matching
    # subscription… but one delivery per message per session.
    assert sub.subscribe([(f"{base}/+/temp", 2), (f"{base}/#", 1), ("unrelated/+", 0)]) == [2, 1, 0]
    pub = paho(server, device, version=version, host=host)
    pub.connect()
    rc = pub.publish(f"{base}/room1/temp", b"21.5", qos=pub_qos)
    if pub_qos and version == 5:
        assert rc == 0
    pub.publish(f"{base}/room1/humidity", b"40", qos=pub_qos)
    pub.publish(f"{base}/room1/temp/extra", b"x", qos=pub_qos)
    got = sub.collect(3, topic_prefix=base)
    by_topic = {m.topic: m for m in got}
    assert set(by_topic) == {f"{base}/room1/temp", f"{base}/room1/humidity", f"{base}/room1/temp/extra"}
    assert by_topic[f"{base}/room1/temp"].payload == b"21.5"
    # Overlapping '+'(QoS 2) and '#'(QoS 1): the maximum granted QoS applies,
    # capped by the publish QoS.
    assert by_topic[f"{base}/room1/temp"].qos == min(pub_qos, 2)
    assert by_topic[f"{base}/room1/humidity"].qos == min(pub_qos, 1)
    assert all(not m.retain for m in got)
    sub.expect_none(topic_prefix=base)


@pytest.mark.parametrize("version", VERSIONS)
def test_subscribe_downgrades_qos(server, device, paho, version):
    t = unique("downgrade") + "/t"
    sub = paho(server, device, version=version)
    sub.connect()
    assert sub.subscribe(t, qos=0) == [0]
    pub = paho(server, device, version=version)
    pub.connect()
    pub.publish(t, b"q2", qos=2)
    m = sub.expect(t)
    assert m.qos == 0 and m.payload == b"q2"


@pytest.mark.parametrize("version", VERSIONS)
def test_retained_set_replace_clear(server, device, paho, version):
    t = unique("retained") + "/state"
    pub = paho(server, device, version=version)
    pub.connect()
    pub.publish(t, b"v1", qos=1, retain=True)

    s1 = paho(server, device, version=version)
    s1.connect()
    s1.subscribe(t, qos=1)
    m = s1.expect(t)
    assert (m.payload, m.retain, m.qos) == (b"v1", True, 1)
    # A live subscriber gets later retained publishes as normal messages
    # (retain flag 0 for an established subscription, MQTT-3.3.1-9 / v5 without RAP).
    pub.publish(t, b"v2", qos=1, retain=True)
    m = s1.expect(t)
    assert (m.payload, m.retain) == (b"v2", False)

    # Replaced: a new subscriber gets only v2.
    s2 = paho(server, device, version=version)
    s2.connect()
    s2.subscribe(t, qos=0)
    m = s2.expect(t)
    assert (m.payload, m.retain, m.qos) == (b"v2", True, 0)
    s2.expect_none(topic_prefix=t)

    # Cleared with an empty retained payload.
    pub.publish(t, b"", qos=1, retain=True)
    s1.expect(t, payload=b"")  # the clearing message itself is forwarded
    s3 = paho(server, device, version=version)
    s3.connect()
    s3.subscribe(t, qos=1)
    s3.expect_none(topic_prefix=t)


@pytest.mark.parametrize("version", VERSIONS)
def test_retained_delivered_through_wildcards(server, device, paho, version):
    base = unique("retwild")
    pub = paho(server, device, version=version)
    pub.connect()
    for i in range(3):
        pub.publish(f"{base}/d{i}/status", f"s{i}".encode(), qos=1, retain=True)
    sub = paho(server, device, version=version)
    sub.connect()
    sub.subscribe(f"{base}/+/status", qos=1)
    got = sub.collect(3, topic_prefix=base)
    assert sorted((m.topic, m.payload, m.retain) for m in got) == [
        (f"{base}/d{i}/status", f"s{i}".encode(), True) for i in range(3)]


def test_v311_and_v5_interoperate(server, device, paho):
    t = unique("interop") + "/t"
    s3 = paho(server, device, version=4)
    s3.connect()
    s3.subscribe(t, qos=1)
    s5 = paho(server, device, version=5)
    s5.connect()
    s5.subscribe(t, qos=1)
    p5 = paho(server, device, version=5)
    p5.connect()
    p5.publish(t, b"from5", qos=1)
    assert s3.expect(t).payload == b"from5"
    assert s5.expect(t).payload == b"from5"
    p3 = paho(server, device, version=4)
    p3.connect()
    p3.publish(t, b"from3", qos=1)
    assert s5.expect(t).payload == b"from3"
    assert s3.expect(t).payload == b"from3"


@pytest.mark.parametrize("version", VERSIONS)
def test_unsubscribe_stops_delivery(server, device, paho, version):
    t = unique("unsub") + "/t"
    c = paho(server, device, version=version)
    c.connect()
    c.subscribe(t, qos=1)
    c.publish(t, b"1", qos=1)
    c.expect(t, payload=b"1")
    c.unsubscribe(t)
    c.publish(t, b"2", qos=1)
    c.expect_none(topic_prefix=t)


@pytest.mark.parametrize("version", VERSIONS)
def test_wildcard_edge_cases(server, device, paho, version):
    base = unique("edge")
    c = paho(server, device, version=version)
    c.connect()
    assert c.subscribe([(f"{base}/#", 1), (f"{base}x/+/c", 1), (f"+/{base}y", 1)]) == [1, 1, 1]
    pub = paho(server, device, version=version)
    pub.connect()
    pub.publish(base, b"parent level matches #", qos=1)          # MQTT-4.7.1-2
    pub.publish(f"{base}x//c", b"empty level matches +", qos=1)
    pub.publish(f"/{base}y", b"leading slash: empty first level", qos=1)
    pub.publish(f"{base}x/b/c/d", b"no", qos=1)
    pub.publish(f"{base.upper()}/a", b"case sensitive: no", qos=1)
    got = c.collect(3)
    assert sorted(m.topic for m in got) == sorted([base, f"{base}x//c", f"/{base}y"])
    c.expect_none()


def test_v311_suback_failure_code(server, device):
    from e2elib import RawConn, subscribe_packet
    raw = RawConn(server, device)
    try:
        assert raw.connect(unique("suback311"), version=4).body == b"\x00\x00"
        too_deep = unique("deep") + "/a" * 8  # over the 7-slash limit: refused
        raw.send(subscribe_packet(1, [(too_deep, 1), ("ok/" + unique("t"), 2)], version=4))
        p = raw.read_packet()
        # 3.1.1 knows only 0x00-0x02 and 0x80 (MQTT-3.9.3-2).
        assert p.type == 9 and p.body == b"\x00\x01\x80\x02", p
    finally:
        raw.close()


@pytest.mark.parametrize("version", VERSIONS)
def test_offline_delivery_uses_granted_qos_and_retain_0(server, device, paho, version):
    """Without a restart: messages queued while offline keep the delivery QoS
    (min of publish and granted) and RETAIN 0 (established subscription)."""
    cid = unique("offq")
    t = unique("offq") + "/t"
    c = paho(server, device, client_id=cid, version=version, clean=False if version == 4 else True)
    c.connect(**({"session_expiry": 600} if version == 5 else {}))
    c.subscribe(t, qos=1)
    c.disconnect()
    pub = paho(server, device, version=5)
    pub.connect()
    pub.publish(t, b"q2 retained", qos=2, retain=True)
    back = paho(server, device, client_id=cid, version=version, clean=False)
    back.connect(**({"session_expiry": 600} if version == 5 else {}))
    m = back.expect(t)
    assert (m.payload, m.qos, m.retain) == (b"q2 retained", 1, False)
    pub.publish(t, b"", qos=1, retain=True)


@pytest.mark.parametrize("version", VERSIONS)
def test_burst_is_complete_and_ordered(server, device, paho, version):
    """500 QoS 1 messages from one publisher on one topic: all arrive, in order (MQTT 4.6)."""
    t = unique("burst") + "/t"
    sub = paho(server, device, version=version)
    sub.connect()
    sub.subscribe(t, qos=1)
    pub = paho(server, device, version=version)
    pub.connect()
    n = 500
    infos = [pub.c.publish(t, str(i).encode(), qos=1) for i in range(n)]
    for info in infos:
        info.wait_for_publish(10)
        assert info.is_published()
    got = sub.collect(n, timeout=20)
    assert [int(m.payload) for m in got] == list(range(n))
